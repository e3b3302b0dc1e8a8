import re

import pytest

from synthface.generator.config import CONFIG_DIR, load_config, parse_override
from synthface.errors import SynthfaceError


def test_presets_load_with_their_values():
    seed56 = load_config("seed56")
    assert (seed56.model.arch, seed56.model.resolution, seed56.model.g_width) == ("upconv", 56, 128)
    assert seed56.model.d_dropout == 0.25 and seed56.train.batches_per_epoch == 100
    dcgan = load_config("dcgan64")
    assert (dcgan.model.arch, dcgan.model.resolution, dcgan.train.lr_g, dcgan.train.beta1) == ("dcgan", 64, 2e-4, 0.5)
    assert load_config(str(CONFIG_DIR / "tiny.yaml")).model.resolution == 32
    assert load_config(None).to_dict() == dcgan.to_dict()  # the defaults are dcgan64


def test_overrides_keep_types():
    cfg = load_config("tiny", ["train.max_epochs=7", "train.lr_g=1e-3", "data.flip=false", "train.lr_d=1"])
    assert cfg.train.max_epochs == 7 and cfg.train.lr_g == 1e-3 and cfg.data.flip is False
    assert isinstance(cfg.train.lr_d, float)
    assert parse_override("a.b.c=3") == {"a": {"b": {"c": 3}}}


@pytest.mark.parametrize("override, message", [
    ("model.foo=1", "unknown config key 'model.foo'"),
    ("nope.x=1", "unknown config key 'nope'"),
    ("train.max_epochs=abc", "'train.max_epochs' must be a number"),
    ("train.max_epochs=1.5", "must be a whole number"),
    ("model.resolution=48", "power of two"),
    ("model.arch=vae", "model.arch must be"),
    ("data.batch_size=0", "data.batch_size must be at least 1"),
    ("max_epochs", "not of the form"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(SynthfaceError, match=message) as exc:
        load_config("dcgan64", [override])
    assert "\n" not in str(exc.value)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(SynthfaceError, match="presets: dcgan128, dcgan64, seed56, tiny"):
        load_config("stylegan9")


@pytest.mark.parametrize("override, message", [
    ("train.lr_g=.inf", "train.lr_g must be 0 or more (and finite), got inf"),
    ("train.max_minutes=.nan", "train.max_minutes must be 0 or more (and finite), got nan"),
    ("train.beta1=.nan", "train.beta1 must be in [0, 1), got nan"),
    ("train.beta2=1", "train.beta2 must be in [0, 1), got 1"),
])
def test_training_numbers_are_finite_and_in_range(override, message):
    from synthface.generator.config import load_config

    with pytest.raises(SynthfaceError, match=re.escape(message)):
        load_config("tiny", [override])


def test_a_runs_own_config_loads_and_a_binary_or_list_config_is_one_line(tmp_path):
    import yaml

    from synthface.errors import SynthfaceError

    saved = tmp_path / "config.yaml"  # as a training run writes it, with its data path
    saved.write_text(yaml.safe_dump({**load_config("tiny").to_dict(), "data_path": "/faces"}, sort_keys=False))
    assert load_config(str(saved)).to_dict() == load_config("tiny").to_dict()
    (tmp_path / "photo.yaml").write_bytes(b"\xff\xd8\xff\xe0 a jpeg")
    with pytest.raises(SynthfaceError, match="is not a YAML file"):
        load_config(str(tmp_path / "photo.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SynthfaceError, match="is not a YAML mapping of sections"):
        load_config(str(tmp_path / "list.yaml"))
