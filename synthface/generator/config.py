"""Training configuration: dataclasses with defaults, YAML presets, overrides.

The defaults are the `dcgan64` preset. A YAML preset in configs/ lists only what
differs from them; unknown keys are an error, never silently ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from synthface.errors import SynthfaceError

def _config_dir() -> Path:
    """The presets: installed as the package data `synthface.configs` (the repository's
    configs/ folder, mapped there by pyproject.toml), or configs/ beside the package
    when it runs from a checkout without being installed."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here / "configs", here.parent / "configs"):
        if candidate.is_dir():
            return candidate
    try:
        import importlib.resources

        return Path(str(importlib.resources.files("synthface.configs")))
    except (ImportError, TypeError):  # not installed either: the error names the missing folder
        return here.parent / "configs"


CONFIG_DIR = _config_dir()


@dataclass
class ModelConfig:
    # "dcgan": the DCGAN paper's transposed-conv design; "upconv": the article's
    # nearest-upsample + 4x4 conv design (seed56).
    arch: str = "dcgan"
    # Output side in pixels: dcgan needs a power of two >= 16, upconv a multiple of 8.
    resolution: int = 64
    # Length of the noise vector; 100 in both the DCGAN paper and the article.
    z_dim: int = 100
    # dcgan: channels of the last generator layer (doubling towards 4x4, "ngf");
    # upconv: channels of every generator conv (the article used 128).
    g_width: int = 64
    # dcgan: channels of the first discriminator layer ("ndf"); upconv: same idea.
    d_width: int = 64
    # Dropout before the discriminator's dense output (the article: 0.25).
    d_dropout: float = 0.0
    # Spectral norm on D's layers (replacing its BatchNorm, as in SN-GAN): a smoother
    # discriminator on small data. Off in the paper presets.
    spectral_norm: bool = False


@dataclass
class DataConfig:
    # 64 is the DCGAN paper's batch; small enough for 2 CPU cores.
    batch_size: int = 64
    # FFHQ's standard augmentation: faces are left-right symmetric.
    flip: bool = True
    # Decoded uint8 images are kept here between runs so epochs (and resumes) are not
    # bound by JPEG/PNG decoding; "" keeps them in memory only.
    cache_dir: str = "~/.cache/synthface"
    # "all", or FFHQ's official "train" (images 0-59,999) / "validation" split, read from
    # ffhq-dataset-v2.json beside the images.
    split: str = "all"


@dataclass
class TrainConfig:
    max_epochs: int = 25
    # Batches per "epoch" (the article: 100); 0 means one pass over the data.
    batches_per_epoch: int = 0
    # Adam as in the DCGAN paper: lr 2e-4, beta1 0.5 (0.9 makes training oscillate).
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    # Outputs, in epochs: one loss.csv row, one sample grid, one weights snapshot.
    log_every: int = 1
    sample_every: int = 1
    save_every: int = 5
    # Side of the fixed-noise sample grid (n x n faces).
    grid: int = 8
    # Passed to Lightning's Trainer; "auto" picks a GPU when there is one.
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    # "auto": bf16-mixed on a GPU, 32-true on CPU (bf16 on CPU is slower).
    precision: str = "auto"
    # Stop after this many minutes of training (0: no limit) and save as usual: for a
    # fixed GPU or CPU budget when the epochs that fit are not known in advance.
    max_minutes: float = 0.0
    # Every this many epochs (0: never), a quick quality check: detection yield and
    # Fréchet face distance of `eval_samples` faces from the sampled (EMA) generator
    # against the training faces (dlib; descriptors cached), into metrics.csv/.png, so
    # the best snapshot can be picked by quality and not by the losses alone.
    eval_every: int = 0
    eval_samples: int = 500
    # Tensors in channels_last memory order: faster convolutions on GPUs.
    channels_last: bool = False
    # -- the data-efficient recipe (issue 13); off = the DCGAN paper / the article ------
    # "bce": the non-saturating loss of the DCGAN paper; "hinge": SN-GAN's and BigGAN's.
    loss: str = "bce"
    # DiffAugment policies applied to everything D sees (augment.py), comma-separated:
    # color, translation, cutout. With ~10k faces D memorises the real set without it.
    diffaugment: str = ""
    # Generator EMA half-life in thousands of images (StyleGAN: 10); 0 = off. The EMA is
    # what sample grids show and what is saved as the generator.
    ema_halflife_kimg: float = 0.0
    # The half-life is at most this fraction of the images shown so far (StyleGAN2-ADA).
    ema_rampup: float = 0.05


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _apply(obj, values: dict, where: str) -> None:
    if not isinstance(values, dict):
        raise SynthfaceError(f"config {where or 'file'}: expected a mapping, got {values!r}")
    known = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        name = f"{where}.{key}" if where else key
        if key not in known:
            raise SynthfaceError(
                f"unknown config key '{name}' (known: {', '.join(sorted(known))})"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, name)
        else:
            setattr(obj, key, _coerce(value, current, name))


def _coerce(value, current, name: str):
    """Keep the field's type: YAML reads `5` as int where a float is meant, etc."""
    if current is None or isinstance(current, str) and current == "auto":
        return value
    typ = type(current)
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise SynthfaceError(f"config '{name}' must be true or false, got {value!r}")
    if typ in (int, float):
        if isinstance(value, str):  # PyYAML reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SynthfaceError(f"config '{name}' must be a number, got {value!r}")
        if typ is int and float(value) != int(value):
            raise SynthfaceError(f"config '{name}' must be a whole number, got {value!r}")
        return typ(value)
    if typ is str:
        return str(value)
    return value


def preset_path(name_or_path: str) -> Path:
    """A preset name ("seed56") or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SynthfaceError(f"config file not found: {path}")
        return path
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise SynthfaceError(
            f"no config preset '{name_or_path}' (presets: {', '.join(known)}; or give a .yaml path)"
        )
    return candidate


def parse_override(text: str) -> dict:
    """`train.max_epochs=5` -> {"train": {"max_epochs": 5}} (value read as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise SynthfaceError(f"override '{text}' is not of the form section.key=value")
    value = yaml.safe_load(raw) if raw else ""
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(preset: str | None = None, overrides: list | None = None) -> Config:
    """Defaults, then the preset's YAML, then each override (dicts or key=value text)."""
    cfg = Config()
    if preset:
        path = preset_path(preset)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SynthfaceError(f"config {path} is not valid YAML: {exc}".splitlines()[0]) from None
        except UnicodeDecodeError:
            raise SynthfaceError(f"config {path} is not a YAML file (not text)") from None
        if not isinstance(values, dict):
            raise SynthfaceError(f"config {path} is not a YAML mapping of sections (model:, train:, ...)")
        values.pop("data_path", None)  # a run's own config.yaml names its data: --data says it here
        _apply(cfg, values, "")
    for item in overrides or []:
        _apply(cfg, parse_override(item) if isinstance(item, str) else item, "")
    validate(cfg)
    return cfg


def config_from_dict(values: dict) -> Config:
    cfg = Config()
    _apply(cfg, values, "")
    validate(cfg)
    return cfg


PRECISIONS = ("auto", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")


def validate(cfg: Config) -> None:
    m, d, t = cfg.model, cfg.data, cfg.train
    if m.arch not in ("dcgan", "upconv"):
        raise SynthfaceError(f"model.arch must be 'dcgan' or 'upconv', got '{m.arch}'")
    if m.arch == "dcgan" and (m.resolution < 16 or m.resolution & (m.resolution - 1)):
        raise SynthfaceError(f"model.resolution for dcgan must be a power of two >= 16, got {m.resolution}")
    if m.arch == "upconv" and (m.resolution < 16 or m.resolution % 8):
        raise SynthfaceError(f"model.resolution for upconv must be a multiple of 8 >= 16, got {m.resolution}")
    for name, value in (("model.z_dim", m.z_dim), ("model.g_width", m.g_width),
                        ("model.d_width", m.d_width), ("data.batch_size", d.batch_size),
                        ("train.max_epochs", t.max_epochs), ("train.log_every", t.log_every),
                        ("train.sample_every", t.sample_every), ("train.save_every", t.save_every),
                        ("train.grid", t.grid)):
        if value < 1:
            raise SynthfaceError(f"{name} must be at least 1, got {value}")
    if t.batches_per_epoch < 0:
        raise SynthfaceError(f"train.batches_per_epoch must be 0 (one pass) or more, got {t.batches_per_epoch}")
    if d.split not in ("all", "train", "validation"):
        raise SynthfaceError(f"data.split must be all, train or validation, got '{d.split}'")
    if not 0 <= t.seed < 2 ** 32:  # numpy's and Lightning's seed range
        raise SynthfaceError(f"train.seed (--seed) must be from 0 to 2**32 - 1, got {t.seed}")
    for name, value, limit in (("model.resolution", m.resolution, 1024), ("model.z_dim", m.z_dim, 4096),
                               ("model.g_width", m.g_width, 1024), ("model.d_width", m.d_width, 1024),
                               ("data.batch_size", d.batch_size, 65536), ("train.grid", t.grid, 32)):
        if value > limit:
            raise SynthfaceError(f"{name} must be at most {limit}, got {value}")
    if t.precision not in PRECISIONS:
        raise SynthfaceError(f"train.precision (--precision) must be one of {', '.join(PRECISIONS)}, got '{t.precision}'")
    if t.accelerator not in ("auto", "cpu", "gpu", "cuda"):
        raise SynthfaceError(f"train.accelerator (--accelerator) must be auto, cpu, gpu or cuda, got '{t.accelerator}'")
    if t.eval_every < 0 or not 2 <= t.eval_samples <= 20000:
        raise SynthfaceError(f"train.eval_every must be 0 or more and train.eval_samples from 2 to 20000, "
                             f"got {t.eval_every} and {t.eval_samples}")
    if t.loss not in ("bce", "hinge"):
        raise SynthfaceError(f"train.loss must be bce or hinge, got '{t.loss}'")
    from synthface.generator.diffaugment import parse_policy

    parse_policy(t.diffaugment)
    for name, value in (("train.max_minutes", t.max_minutes), ("train.ema_halflife_kimg", t.ema_halflife_kimg),
                        ("train.ema_rampup", t.ema_rampup), ("train.lr_g", t.lr_g), ("train.lr_d", t.lr_d)):
        if not 0 <= value < float("inf"):  # also NaN
            raise SynthfaceError(f"{name} must be 0 or more (and finite), got {value}")
    for name, value in (("train.beta1", t.beta1), ("train.beta2", t.beta2)):
        if not 0 <= value < 1:  # Adam's betas; NaN fails too
            raise SynthfaceError(f"{name} must be in [0, 1), got {value}")
    if not 0.0 <= m.d_dropout < 1.0:
        raise SynthfaceError(f"model.d_dropout must be in [0, 1), got {m.d_dropout}")
