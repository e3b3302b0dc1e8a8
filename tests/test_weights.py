import json

import pytest
import torch

from synthface.generator.config import load_config
from synthface.errors import SynthfaceError
from synthface.generator.networks import arch_of, build_generator
from synthface.generator.weights import load_generator, save_generator


@pytest.mark.parametrize("preset", ["tiny", "seed56"])
def test_round_trip_gives_the_same_output(tmp_path, preset):
    arch = arch_of(load_config(preset).model)
    g = build_generator(arch)
    g.train()(torch.randn(8, arch["z_dim"]))  # move BatchNorm's running stats off their init
    g.eval()
    path = save_generator(g, arch, tmp_path / "g.safetensors")
    loaded, meta = load_generator(path)
    z = torch.randn(4, arch["z_dim"])
    with torch.no_grad():
        assert torch.equal(loaded(z), g(z))
    assert meta["arch"] == arch
    # the header alone is enough when the JSON is lost
    (tmp_path / "g.json").unlink()
    assert load_generator(path)[1]["arch"] == arch


def test_fp16_weights_load(tmp_path):
    from safetensors.torch import save_file

    arch = arch_of(load_config("tiny").model)
    g = build_generator(arch).eval()
    save_generator(g, arch, tmp_path / "g.safetensors")
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in g.state_dict().items()}
    save_file(half, str(tmp_path / "g.safetensors"))
    loaded, _ = load_generator(tmp_path / "g.safetensors")
    z = torch.randn(2, arch["z_dim"])
    with torch.no_grad():
        assert torch.allclose(loaded(z), g(z), atol=2e-2)


def test_bad_weight_files_are_one_line_errors(tmp_path):
    with pytest.raises(SynthfaceError, match="checkpoint not found"):
        load_generator(tmp_path / "none.safetensors")
    arch = arch_of(load_config("tiny").model)
    path = save_generator(build_generator(arch), arch, tmp_path / "g.safetensors")
    (tmp_path / "g.json").write_text(json.dumps({"arch": {**arch, "g_width": 16}}))
    with pytest.raises(SynthfaceError, match="do not match the architecture") as exc:
        load_generator(path)
    assert "\n" not in str(exc.value)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(SynthfaceError, match="no readable generator architecture"):
        load_generator(tmp_path / "bad.safetensors")
