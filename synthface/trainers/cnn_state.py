"""What a train-cnn run starts from: the checkpoints folder it resumes (only the run that
made it, and only when whole) or, with --init, the weights of a model train-cnn wrote
(only one of this crop and width)."""

from __future__ import annotations

import json
from pathlib import Path

from synthface.core.files import write_atomic
from synthface.errors import SynthfaceError
from synthface.trainers.cnn_net import build_network


# what a run made before an option existed did, to be read as that option's value
OLDER_RUNS = {"loss": "l1",  # before --loss: L1
              "init": None,  # before --init: random weights
              "colour": 0.0}  # before --colour: brightness and contrast alone


def checkpoints_of(output) -> Path:
    """Where train-cnn keeps its checkpoints for `output`: OUTPUT_STEM.checkpoints/ beside it."""
    output = Path(output)
    return output.with_name(output.stem + ".checkpoints")


def check_resume(ckpt_dir: Path, run: dict, state: dict) -> None:
    """A checkpoints folder is resumed only by the run that made it (the same options,
    data, splits and weights, in its options.json) and only when whole; a folder it did
    not make is not touched. `state`: the new module's weights, whose names and shapes a
    checkpoint must hold."""
    import torch

    saved = ckpt_dir / "options.json"
    again = f"; remove {ckpt_dir} to start anew"
    if saved.is_file():
        try:
            before = json.loads(saved.read_text())
        except (ValueError, UnicodeDecodeError):
            raise SynthfaceError(f"{saved} is damaged{again}") from None
        if not isinstance(before, dict):
            raise SynthfaceError(f"{saved} is damaged (not a run's settings){again}")
        before = {**OLDER_RUNS, **before}
        if before != run:
            changed = sorted(k for k in {*before, *run} if before.get(k) != run.get(k))
            values = "; ".join(f"{k}: {str(before.get(k))[:60]} there, {str(run.get(k))[:60]} now" for k in changed)
            raise SynthfaceError(f"{ckpt_dir} holds a run with other settings ({values}); give the same "
                                 f"options and data to resume{again}")
        last = ckpt_dir / "last.ckpt"
        if last.is_file():
            try:
                ckpt = torch.load(last, map_location="cpu", weights_only=False)
            except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the same mistake
                raise SynthfaceError(f"{last} is damaged ({type(exc).__name__}){again}") from None
            why = _not_a_checkpoint(ckpt, state)
            if why:
                raise SynthfaceError(f"{last} is damaged ({why}){again}")
    elif ckpt_dir.is_dir() and any(ckpt_dir.iterdir()):
        raise SynthfaceError(f"{ckpt_dir} holds files that train-cnn did not write; move them, or give another -o")
    else:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(saved, json.dumps(run, indent=2) + "\n")


def start_weights(path, options) -> tuple[dict, str]:
    """The network weights of an exported model to start training from, and the file's
    sha256; a file that is not a train-cnn model of this crop and width is refused."""
    import torch

    from synthface.core.outputs import sha256_of
    from synthface.trainers.cnn_net import Exported

    if not str(path).strip():
        raise SynthfaceError("--init is empty; give a model file that train-cnn wrote (NAME.pt)")
    path = Path(path).expanduser()
    if path.is_dir():
        raise SynthfaceError(f"--init {path} is a folder; give a model file that train-cnn wrote (NAME.pt)")
    if not path.is_file():
        raise SynthfaceError(f"--init {path}: no such model file" if not path.exists() else
                             f"--init {path}: not a file")
    if path.stat().st_size == 0:
        raise SynthfaceError(f"--init {path} is empty; give a model file that train-cnn wrote (NAME.pt)")
    try:
        model = Exported(path)  # refuses what is not TorchScript with the crop's settings
    except SynthfaceError as exc:
        raise SynthfaceError(f"--init {exc}") from None
    if model.size != options.size or model.margin != options.margin:
        raise SynthfaceError(f"--init {path}: it was trained at --size {model.size} --margin {model.margin:g}; "
                             f"give those (now --size {options.size} --margin {options.margin:g})")
    weights = {k[len("net."):]: v for k, v in model.module.state_dict().items() if k.startswith("net.")}
    wanted = build_network(options.width).state_dict()
    if set(weights) != set(wanted):
        raise SynthfaceError(f"--init {path}: not a network that train-cnn made (its weights have other names)")
    first = weights["features.0.weight"].shape[0]
    if any(weights[k].shape != wanted[k].shape for k in wanted):
        raise SynthfaceError(f"--init {path}: it was trained at --width {first}; give that (now --width "
                             f"{options.width})" if first != options.width else
                             f"--init {path}: not a network that train-cnn made (its weights have other shapes)")
    if not all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point()):
        raise SynthfaceError(f"--init {path}: some of its weights are not numbers (NaN or inf); it cannot be "
                             "trained on")
    return weights, sha256_of(path)


def _not_a_checkpoint(ckpt, state: dict) -> str | None:
    """Why `ckpt` (as torch.load read it) is not a Lightning checkpoint of this model, or
    None: Lightning would fail on it inside fit with a message that names no file."""
    import torch

    keys = ("epoch", "global_step", "pytorch-lightning_version", "state_dict", "optimizer_states", "lr_schedulers")
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in keys):
        return "not a Lightning checkpoint"
    if not all(isinstance(ckpt[k], int) and not isinstance(ckpt[k], bool) and ckpt[k] >= 0
               for k in ("epoch", "global_step")):
        return "its epoch or step is not a count"
    weights = ckpt["state_dict"]
    if not isinstance(weights, dict) or set(weights) != set(state) or any(
            not isinstance(weights[k], torch.Tensor) or weights[k].shape != state[k].shape for k in state):
        return "its weights are not this model's"
    return None
