"""Generator weights on disk: `NAME.safetensors` + `NAME.json` (architecture arguments).

Those two files alone rebuild the generator: no pickle, no training code. The JSON is
also copied into the safetensors header's metadata, so a lone .safetensors still loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from synthface.errors import SynthfaceError
from synthface.generator.networks import ARCH_KEYS, build_generator

FORMAT = "synthface-generator/1"


def save_generator(generator: torch.nn.Module, arch: dict, path, extra: dict | None = None) -> Path:
    """Write the generator's weights (buffers included) and its architecture JSON."""
    from safetensors.torch import save

    from synthface.core.files import write_atomic

    path = Path(path)
    meta = {"format": FORMAT, "arch": dict(arch), **(extra or {})}
    state = {k: v.detach().to("cpu").contiguous() for k, v in generator.state_dict().items()}
    # never a half-written weights file: both written under temporary names, then renamed
    write_atomic(path, save(state, metadata={"synthface": json.dumps(meta)}))
    write_atomic(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    return path


def read_generator_meta(path) -> dict:
    """The architecture metadata of a weights file: the sibling JSON, else its header."""
    path = Path(path)
    side = path.with_suffix(".json")
    try:
        if side.is_file():
            meta = json.loads(side.read_text())
        else:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["synthface"])
    except Exception as exc:  # a missing key, bad JSON, or safetensors' own header error
        raise SynthfaceError(f"{path}: no readable generator architecture ({exc.__class__.__name__}); "
                             f"expected {side.name} beside it") from None
    arch = meta.get("arch") if isinstance(meta, dict) else None
    if not isinstance(arch, dict) or "arch" not in arch:
        raise SynthfaceError(f"{side}: not a synthface generator description (no 'arch')")
    return meta


def load_generator(path, device="cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the generator from its weights file; returns (generator in eval mode, meta)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise SynthfaceError(f"checkpoint not found: {path}")
    meta = read_generator_meta(path)
    arch = {k: meta["arch"][k] for k in ARCH_KEYS if k in meta["arch"]}
    generator = build_generator(arch)
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own types for a corrupt file
        raise SynthfaceError(f"{path}: not a readable safetensors file ({exc})".splitlines()[0]) from None
    # fp16 files load into fp32 nets; integer buffers (BatchNorm's counter) stay as they are
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise SynthfaceError(f"{path}: weights do not match the architecture in its JSON ({first})") from None
    return generator.to(device).eval(), meta


def file_sha256(path) -> str:
    from synthface.core.outputs import sha256_of

    return sha256_of(path)
