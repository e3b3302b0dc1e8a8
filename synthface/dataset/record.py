"""A run's record, typed: what DATASET/.synthface/run.json holds (folder.py), read
through named properties instead of string keys.

`RunRecord` wraps the identity dict that make-dataset (`RunRecord.of_run`) and scenes.py build, kept
as `raw` exactly as it is saved and compared, so run.json stays byte for byte what it
was and folders made before resume as they did. Export, merge and scenes read the run
through it. Keys a run always has are read as such (a run.json without them fails as it
did); keys that older runs or other kinds of runs lack read as None or their default:

    seed, image_size, generator, annotate.landmarks, predictor_sha256   (make-dataset)
    kind ("scenes"), n, scenes                                          (scenes only)
    pad, augment, rotate_3d, shards, generator.steering,
    annotate.detector ("hog"), annotate.labels ("single"), annotate.max_disagreement
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from synthface.dataset.folder import check_identity, comparable, differing, read_identity
from synthface.face.geometry import pad_pixels


class Shards(NamedTuple):
    """A sharded run's part: shard `index` of `num`, of a dataset of `n` faces."""
    num: int
    index: int
    n: int


# annotate options left out of a run's identity at their defaults, so that folders made
# before the option existed still resume
DEFAULTS_LEFT_OUT = {("detector", "hog"), ("labels", "single"), ("max_disagreement", None)}


def _predictor_hash(acfg) -> str | None:
    if not acfg.landmarks:
        return None
    from synthface.face.annotate import model_path
    from synthface.generator.weights import file_sha256

    return file_sha256(model_path("landmarks68", acfg.predictor_path))


@dataclass(frozen=True)
class RunRecord:
    """A run's identity (what makes two runs the same dataset), read-only and typed.
    Two records are equal when their saved dicts are."""
    raw: dict = field(hash=False)

    # -- made, loaded, saved, compared -------------------------------------------------
    @classmethod
    def from_identity(cls, identity: dict) -> RunRecord:
        """The record of an identity dict (copied: later changes to it do not reach the record)."""
        return cls(copy.deepcopy(identity))

    @classmethod
    def of_run(cls, cfg, sampler) -> RunRecord:
        """The record of a make-dataset run (a MakeConfig, with its sampler): what makes two
        runs the same dataset (n, workers and batch size do not)."""
        size = cfg.image_size or sampler.resolution
        return cls({"seed": cfg.seed, "image_size": size + 2 * pad_pixels(size, cfg.pad),
                    **({"pad": cfg.pad} if cfg.pad else {}),
                    **({"augment": cfg.augment.to_dict()} if cfg.augment is not None else {}),
                    **({"rotate_3d": cfg.rotate3d.to_dict()} if cfg.rotate3d is not None else {}),
                    "generator": sampler.identity,
                    # the detector only when not the default: folders made before --detector resume
                    "annotate": {k: v for k, v in asdict(cfg.annotate).items()
                                 if k != "predictor_path" and (k, v) not in DEFAULTS_LEFT_OUT},
                    "predictor_sha256": _predictor_hash(cfg.annotate),
                    **({"shards": {"num": cfg.num_shards, "index": cfg.shard_index, "n": cfg.n}}
                       if cfg.num_shards > 1 else {})})

    @classmethod
    def load(cls, folder) -> RunRecord | None:
        """The record in a folder's run.json, or None when it has none."""
        identity = read_identity(Path(folder))
        return None if identity is None else cls(identity)

    @classmethod
    def of(cls, run) -> RunRecord:
        """A record as it is, or the record of an identity dict (callers that still pass one)."""
        return run if isinstance(run, RunRecord) else cls.from_identity(run)

    def save(self, folder) -> None:
        """A new folder gets this record; a resumed one must already have it (folder.check_identity)."""
        check_identity(Path(folder), self.raw)

    def comparable(self) -> dict:
        """What must match for two runs to make the same dataset (folder.comparable)."""
        return comparable(self.raw)

    def differing(self, other: RunRecord) -> list[str]:
        """The settings in which two records differ (that matter: folder.differing)."""
        return differing(self.raw, other.raw)

    def without_shards(self) -> RunRecord:
        """The record of the whole run a shard is part of: its own without `shards`."""
        return RunRecord({k: v for k, v in self.raw.items() if k != "shards"})

    # -- the run -----------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The run's kind: "faces" for a make-dataset run (its identity has none), "scenes"."""
        return self.raw.get("kind", "faces")

    @property
    def seed(self) -> int:
        return self.raw["seed"]

    @property
    def n(self) -> int | None:
        """The faces asked for: a scenes run's -n, a shard's whole -n; None for a plain
        make-dataset run (-n is not part of its identity)."""
        if "n" in self.raw:
            return self.raw["n"]
        return self.shards.n if self.shards is not None else None

    @property
    def image_size(self) -> int:
        """The saved images' side in pixels, --pad's border included."""
        return self.raw["image_size"]

    @property
    def pad(self) -> float:
        return self.raw.get("pad", 0.0)

    @property
    def shards(self) -> Shards | None:
        """Which part of a --num-shards run this is; None for a whole run."""
        s = self.raw.get("shards")
        return None if s is None else Shards(s["num"], s["index"], s["n"])

    @property
    def scenes(self) -> dict | None:
        """A scenes run's scene settings (SceneConfig.identity), else None."""
        return self.raw.get("scenes")

    # -- the generator -----------------------------------------------------------------
    @property
    def generator(self) -> dict:
        """The sampler's identity: kind "generator" (checkpoint, sha256, arch, steering)
        or "replay" (folder, fingerprint, resolution)."""
        return self.raw["generator"]

    @property
    def steering(self) -> dict | None:
        """The steering spec ({"targets": [...], ...}) of a steered generator, else None."""
        return self.generator.get("steering")

    @property
    def steered(self) -> list[str]:
        """The names of the steered attributes, in order (none without steering)."""
        return [t["name"] for t in self.steering["targets"]] if self.steering else []

    # -- the labelling -----------------------------------------------------------------
    @property
    def annotate(self) -> dict:
        """The annotate settings as saved (defaults left out: DEFAULTS_LEFT_OUT)."""
        return self.raw["annotate"]

    @property
    def annotate_config(self):
        """The annotate settings as an AnnotateConfig (the defaults left out filled in)."""
        from synthface.face.annotate import AnnotateConfig

        return AnnotateConfig(**self.annotate)

    @property
    def landmarks(self) -> bool:
        return self.annotate["landmarks"]

    @property
    def labels(self) -> str:
        """The 68 points' labelling: "single", or "flip" (flip-checked)."""
        return self.annotate.get("labels", "single")

    @property
    def flip_labels(self) -> bool:
        return self.annotate.get("labels") == "flip"

    @property
    def detector(self) -> str:
        """The face detector: "hog" or "mmod"."""
        return self.annotate.get("detector", "hog")

    @property
    def max_disagreement(self) -> float | None:
        return self.annotate.get("max_disagreement")

    @property
    def predictor_sha256(self) -> str | None:
        """The 68-point predictor file's sha256; None without landmarks."""
        return self.raw["predictor_sha256"]

    # -- the transforms ----------------------------------------------------------------
    @property
    def turned(self) -> bool:
        """Whether the faces were turned in 3D (--rotate-3d)."""
        return "rotate_3d" in self.raw

    @property
    def rotate3d(self):
        """The 3D turn as a Rotate3DConfig (values as saved); None when not turned."""
        if not self.turned:
            return None
        from synthface.face.rotate3d import Rotate3DConfig

        return Rotate3DConfig(**self.raw["rotate_3d"])

    @property
    def rotate3d_settings(self) -> dict | None:
        """The 3D turn as saved, for the dataset card; None when not turned."""
        return self.raw.get("rotate_3d")

    @property
    def augment(self):
        """The dataset-time augmentation as an AugmentConfig; None when off."""
        if not self.raw.get("augment"):
            return None
        from synthface.face.augment import AugmentConfig

        return AugmentConfig(**self.raw["augment"])

    @property
    def augment_settings(self) -> dict | None:
        """The augmentation as saved, for the dataset card; None when off."""
        return self.raw.get("augment")
