"""make-dataset's settings: `MakeConfig`, every option checked before any work.

A run's identity (what makes two runs the same dataset) is drawn from it in make.py;
export.py writes the labels it asks for (formats, box, val split). Also a shard's quota
of faces and --pad in pixels.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from synthface.face.annotate import DETECTORS, LABELS, AnnotateConfig, check_predictor_text, check_upsample
from synthface.errors import SynthfaceError
from synthface.face.geometry import pad_pixels  # noqa: F401 (re-exported)
from synthface.formats import ALL_FORMATS, parse_formats
from synthface.face.geometry import BOX_CONVENTIONS
from synthface.dataset.folder import DEFAULT_VAL_FRACTION
from synthface.generator.sampling import BLOCK, check_seed
from synthface.core.workers import check_workers

MAX_IMAGE_SIZE = 2048  # a 2048 px face, upsampled twice for the detector, is 200 MB of pixels


def check_box(box: str, landmarks: bool) -> None:
    """A --box convention (geometry.BOX_CONVENTIONS); all but dlib's are computed from the 68 points."""
    if box not in BOX_CONVENTIONS:
        raise SynthfaceError(f"--box must be one of {', '.join(BOX_CONVENTIONS)}, got '{box}'")
    if box != "dlib" and not landmarks:
        raise SynthfaceError(f"--box {box} needs --landmarks (the box is computed from the face's 68 points)")


@dataclass
class MakeConfig:
    n: int
    seed: int = 0
    # Side of the saved images; None keeps the generator's resolution. Larger images
    # are upscaled (bicubic) before detection, so labels match the saved pixels.
    image_size: int | None = None
    # A reflected border around each face, as a fraction of its side: the generator's
    # tight crops otherwise leave the detector and a landmark model trained on the
    # dataset nothing but black beyond the face's edges, unlike real photos.
    pad: float = 0.0
    # Candidates per work chunk handed to a worker, rounded up to whole generator blocks
    # when at least one block (also the journal's fsync unit).
    batch_size: int = 256
    # Workers: a thread of the calling process, the rest spawned processes (workers.py);
    # 0 does everything in the calling thread.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Give up when this many candidates were tried without reaching n
    # (None: 20 x n + 1000, i.e. a pass rate under about 5%).
    max_tries: int | None = None
    formats: tuple = ALL_FORMATS
    # The face box convention of the labels (geometry.BOX_CONVENTIONS): dlib's own box, or
    # one computed from the 68 points (needs landmarks) to match the boxes a detector's
    # benchmark annotates. A label setting like `formats`: it changes no image or journal row.
    box: str = "dlib"
    # Dataset-time augmentation (transforms.AugmentConfig; None: none): each kept face
    # and its labels transformed exactly, with parameters from the face's seed. "auto":
    # on with landmarks, off without: it was the one change that trained better landmark
    # models (docs/landmarks.md); the card and the run's summary say it is on.
    augment: object = "auto"
    # The share of faces held out as the validation split, chosen per face from its seed
    # (journal.split_of). An export option: changing it on --resume re-splits the labels.
    val_fraction: float = DEFAULT_VAL_FRACTION
    # Face profiling (rotate3d.Rotate3DConfig; None: none): each kept face turned in 3D by
    # a yaw and pitch from its seed, its points carried through the turn, before --augment.
    # "auto": on with landmarks (yaw +-30 degrees), off without: real + turned faces trained
    # better landmark models than real + unturned ones in every case measured
    # (docs/landmarks.md).
    rotate3d: object = "auto"
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    # Part K of N of the same dataset (see shard_quota and merge.py); with N > 1, K must
    # be given (None: not given, which is part 0 of 1).
    num_shards: int = 1
    shard_index: int | None = None

    def __post_init__(self):
        if self.shard_index is None and self.num_shards == 1:
            self.shard_index = 0
        if isinstance(self.augment, str) and self.augment == "auto":
            from synthface.face.augment import AugmentConfig

            self.augment = AugmentConfig() if self.annotate.landmarks else None
        if isinstance(self.rotate3d, str) and self.rotate3d == "auto":
            from synthface.face.rotate3d import Rotate3DConfig

            self.rotate3d = Rotate3DConfig() if self.annotate.landmarks else None

    @property
    def target(self) -> int:
        """Faces this run makes: n, or a shard's share of n with a margin."""
        return shard_quota(self.n, self.num_shards)

    def validate(self) -> None:
        """Every option, before any work and before any folder is made."""
        if self.n < 1:
            raise SynthfaceError(f"-n must be at least 1, got {self.n}")
        check_seed(self.seed)
        if self.num_shards < 1:
            raise SynthfaceError(f"--num-shards must be at least 1, got {self.num_shards}")
        if self.shard_index is None and self.num_shards > 1:  # shard 0 by default would be a silent guess
            raise SynthfaceError(f"--num-shards {self.num_shards} needs --shard-index K: which part this job makes, "
                                 f"0 .. {self.num_shards - 1}")
        if not 0 <= (self.shard_index or 0) < self.num_shards:
            raise SynthfaceError(f"--shard-index must be in [0, {self.num_shards - 1}], got {self.shard_index}")
        if self.image_size is not None and not 16 <= self.image_size <= MAX_IMAGE_SIZE:
            raise SynthfaceError(f"--image-size must be from 16 to {MAX_IMAGE_SIZE}, got {self.image_size}")
        if not 0.0 <= self.pad <= 1.0:  # NaN fails too
            raise SynthfaceError(f"--pad must be in [0, 1], got {self.pad}")
        if not 1 <= self.batch_size <= 100_000:
            raise SynthfaceError(f"--batch-size must be from 1 to 100000, got {self.batch_size}")
        check_workers(self.workers)
        if self.max_tries is not None and self.max_tries < 1:
            raise SynthfaceError(f"--max-tries must be at least 1, got {self.max_tries}")
        parse_formats(self.formats)
        check_box(self.box, self.annotate.landmarks)
        if self.augment is not None:
            self.augment.validate()
        if self.rotate3d is not None:
            if not self.annotate.landmarks:
                raise SynthfaceError("--rotate-3d needs --landmarks (the turn is fitted to the face's 68 points)")
            self.rotate3d.validate()
        if not 0.0 <= self.val_fraction < 1.0:  # NaN fails too
            raise SynthfaceError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        a = self.annotate
        check_upsample(a.upsample)
        check_predictor_text(a.predictor_path)
        if a.labels not in LABELS:
            raise SynthfaceError(f"--labels must be one of {', '.join(LABELS)}, got '{a.labels}'")
        if a.max_disagreement is not None:
            if a.labels != "flip" or not a.landmarks:
                raise SynthfaceError("--max-disagreement needs --landmarks --labels flip (the disagreement is "
                                     "that of the two flip predictions)")
            if not a.max_disagreement > 0:  # NaN fails too
                raise SynthfaceError(f"--max-disagreement must be above 0, got {a.max_disagreement}")
        if a.detector not in DETECTORS:
            raise SynthfaceError(f"--detector must be one of {', '.join(DETECTORS)}, got '{a.detector}'")
        if not math.isfinite(a.min_score):
            raise SynthfaceError(f"--min-score must be a number, got {a.min_score}")


def shard_quota(n: int, num_shards: int) -> int:
    """A shard's faces: its share of n plus a margin (3 standard deviations of the
    acceptance count, and one block), so that the shards together cover the first n
    faces of the single run with near certainty; merge says so if they fall short."""
    if num_shards == 1:
        return n
    share = -(-n // num_shards)
    return share + int(3 * share ** 0.5) + BLOCK


