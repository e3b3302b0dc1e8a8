"""Landmark models: train a dlib shape predictor on a face set, or on several mixed by
weight (the mixing rule for real + synthetic sets).

The face sets (synthface datasets, imglab XML, COCO, 300-W folders) and the scoring of a
model on real faces (NME, CED) are landmarks_eval.py's; their names are importable from
here too.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError
from synthface.face.geometry import points_box
from synthface.formats.readers import read_pts  # noqa: F401 (public here too: landmarks' users read .pts files)
from synthface.trainers.landmarks_eval import Face, _detector_boxes, load_face_set, match_detection
from synthface.trainers.landmarks_eval import (FAIL_NME, _rect, ced_curve, evaluate_landmarks,  # noqa: F401
                                               format_nme, load_predictor, nme, plot_ced, point_errors, summarize_nme)

log = logging.getLogger("synthface")


# -- training ----------------------------------------------------------------------------
@dataclass
class TrainOptions:
    # dlib's defaults are tuned for a few thousand large faces; these suit tens of
    # thousands of small (56-128 px) ones.
    cascade_depth: int = 10  # regressors in the cascade (dlib: 10)
    tree_depth: int = 4  # 16 leaves a tree (dlib: 4)
    num_trees_per_cascade_level: int = 500  # (dlib: 500)
    nu: float = 0.1  # shrinkage; lower generalises better, needs more trees (dlib: 0.1)
    # random starts per face (dlib: 20); 0: auto, ceil(30,000 / faces) within 5..35: a
    # small set gets more (bench_mixing, NME by oversampling 5 / 20 / 35: 432 helen faces
    # 7.42 / 5.33 / 5.00%, 870 faces scored on afw 7.21 / 6.18 / 5.82%), 6,000 or more get
    # 5, which suits tens of thousands
    oversampling_amount: int = 0
    feature_pool_size: int = 400  # pixels sampled per level (dlib: 400)
    num_test_splits: int = 20  # candidate splits per node (dlib: 20)
    lambda_param: float = 0.1  # locality prior of the sampled pixel pairs (dlib: 0.1)
    num_threads: int = 0  # 0: all cores
    random_seed: str = ""  # dlib's seed of the random starts and pixel pairs, any text ("": dlib's)

    def validate(self) -> None:
        """dlib's own ranges and a model that fits in memory, checked before any work
        (dlib raises mid-run otherwise, or runs out of memory)."""
        import math

        for name, (lo, hi) in COUNT_RANGES.items():
            value = getattr(self, name)
            if name == "oversampling_amount" and value == 0:
                continue  # auto
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise SynthfaceError(f"--{name.replace('_', '-')} must be from {lo} to {hi}, got {value}")
        if not 0 < self.nu <= 1:  # NaN fails too
            raise SynthfaceError(f"--nu must be in (0, 1], got {self.nu}")
        if not (0 < self.lambda_param and math.isfinite(self.lambda_param)):
            raise SynthfaceError(f"--lambda-param must be a number above 0, got {self.lambda_param}")
        if not 0 <= self.num_threads <= 1024:
            raise SynthfaceError(f"--workers must be from 0 (all cores) to 1024, got {self.num_threads}")
        try:
            str(self.random_seed).encode("utf-8")
        except UnicodeEncodeError:  # bytes from argv that are not UTF-8 come as surrogates
            raise SynthfaceError("--random-seed must be text (UTF-8); it holds bytes that are not") from None
        size = model_bytes(self)
        if size > MAX_MODEL_BYTES:
            raise SynthfaceError(f"--tree-depth {self.tree_depth} with --cascade-depth {self.cascade_depth} and "
                                 f"--num-trees-per-cascade-level {self.num_trees_per_cascade_level} makes a model of "
                                 f"about {size / 2**30:,.0f} GiB (a tree has 2^depth leaves of 68 points); at most "
                                 f"{MAX_MODEL_BYTES >> 30} GiB: lower one of them")


# Each count's (lowest, highest). dlib refuses 0 for every one and a feature pool below 2
# (a split compares two of its pixels). The tops are sanity, not dlib's: a tree of depth
# d has 2^d leaves, so at 16 (65,536 leaves) a leaf holds under one random start of a
# 50,000-start set, and each level past that only doubles the model (dlib accepts 30 and
# fails allocating it).
COUNT_RANGES = {"cascade_depth": (1, 100_000), "tree_depth": (1, 16), "num_trees_per_cascade_level": (1, 100_000),
                "oversampling_amount": (1, 100_000), "feature_pool_size": (2, 100_000),
                "num_test_splits": (1, 100_000)}
# A trained model is held whole in memory by dlib while it trains and by every annotate
# worker that loads it; dlib's own 68-point model is 100 MB, the defaults here about 45 MB.
MAX_MODEL_BYTES = 4 << 30


def model_bytes(options: TrainOptions) -> int:
    """About the size of the model `options` train: per tree, 2^depth leaves of 68
    float (x, y) offsets and a split each (measured: 559 bytes a leaf at depth 20)."""
    return options.cascade_depth * options.num_trees_per_cascade_level * (2 ** options.tree_depth) * 560


def auto_oversampling(faces: int) -> int:
    """TrainOptions' oversampling 0: about 30,000 samples, within 5..35 per face."""
    return min(35, max(5, -(-30_000 // max(faces, 1))))


def write_training_xml(faces: list[Face], xml: Path) -> int:
    """The faces as imglab XML for dlib's trainer, through the dataset's own imglab writer
    (absolute image paths, every attribute escaped). A photo listed several times (a
    weighted source's copies) is one image entry with all its boxes: dlib loads every
    entry into memory, so a real set at weight 23 would otherwise be held 23 times.
    Returns the number of image entries."""
    from synthface.formats.imglab import dlib_path, write_imglab
    from synthface.face.labels import Face as Labelled, LabelledImage, LabelSchema

    by_image: dict = {}
    for face in faces:
        by_image.setdefault(face.image.resolve(), []).append(face)
    links = [dlib_path(image, xml.parent, k) for k, image in enumerate(by_image)]
    write_imglab(xml, (LabelledImage(link, faces=[Labelled(f.box, None, np.asarray(f.points)) for f in group])
                       for link, group in zip(links, by_image.values())), LabelSchema(landmarks=True))
    return len(by_image)


def boxes_for_training(faces: list[Face], upsample: int = 1, progress: bool = True) -> list[Face]:
    """Give boxless (300-W) faces the detector's box, as at test time; a face the
    detector misses gets its points' bounding box."""
    import dlib
    from synthface.core.progress import progress_bar

    from synthface.core.imaging import read_rgb

    detector = dlib.get_frontal_face_detector()
    out = []
    for face in progress_bar(faces, desc="face boxes", unit="face", disable=not progress, leave=False):
        if face.box is None:
            box = match_detection(_detector_boxes(detector, read_rgb(face.image), upsample), face.points)
            face = Face(face.image, box or points_box(face.points), face.points)
        out.append(face)
    return out


MAX_WEIGHT = 100.0


def mix_face_sets(sets: list, weights=None, seed: int = 0, unit: str = "face") -> tuple[list, list]:
    """Faces of several sources, each oversampled by its weight: a weight w gives every
    face floor(w) times, plus a seeded random share w - floor(w) of them once more.
    Returns (faces, faces taken per source)."""
    weights = [1.0] * len(sets) if not weights else list(weights)
    if len(weights) != len(sets):
        raise SynthfaceError(f"{len(weights)} --weight for {len(sets)} --data (give one per dataset, or none)")
    for w in weights:
        if not 0 < w <= MAX_WEIGHT:  # NaN fails too
            raise SynthfaceError(f"--weight must be above 0 and at most {MAX_WEIGHT:g}, got {w}")
    rng = np.random.default_rng(seed)
    out, counts = [], []
    for faces, w in zip(sets, weights):
        whole, part = int(w), w - int(w)
        taken = list(faces) * whole
        extra = round(part * len(faces))
        if whole == 0 and extra == 0:
            raise SynthfaceError(f"--weight {w} takes no {unit} of a set of {len(faces)} (weight x {unit}s < 0.5); "
                                 "raise it")
        taken += [faces[i] for i in sorted(rng.choice(len(faces), extra, replace=False))] if extra else []
        out += taken
        counts.append(len(taken))
    return out, counts


# The mixing rule (bench/bench_mixing.py): without --weight, real faces trained beside
# synthetic ones are weighted so that they make up this share of the training faces.
REAL_SHARE = 0.5


def check_dlib_boxes(path) -> None:
    """A landmark model starts from the boxes dlib's detector gives (at eval, and in every
    use): a synthface dataset labelled in another box convention would teach it to start
    from boxes it will never be given."""
    from synthface.dataset.folder import read_options

    path = Path(path).expanduser()
    for folder in (path, *path.parents[:2]) if path.is_dir() else path.parents[:3]:
        options = read_options(folder)
        if options is not None:
            if options.get("box", "dlib") != "dlib":
                raise SynthfaceError(f"{folder} labels faces with --box {options['box']}; landmark models are "
                                     "trained on dlib's boxes, which they are given at use: label it again with "
                                     f"`synthface make-dataset ... --out {folder} --resume --box dlib`")
            return


def is_synthetic(path) -> bool:
    """A synthface dataset (its folder, or a file or folder inside it): dataset.json says so."""
    path = Path(path).expanduser().resolve()
    for folder in (path, *path.parents[:2]):
        card = folder / "dataset.json"
        if card.is_file():
            try:
                return str(json.loads(card.read_text()).get("format", "")).startswith("synthface-")
            except (OSError, ValueError, AttributeError):
                return False
    return False


def mixing_rule(datasets: list, sizes: list, share: float = REAL_SHARE, oversampling: int = 0) -> list | None:
    """Weights for real + synthetic sources without --weight: every synthetic source 1,
    every real source weighted so that the real faces make up at least `share` of the
    training faces (never below 1: real faces are never thinned) and, with the automatic
    oversampling (0), so that each real face gets at least the random starts it would
    get alone: adding synthetic faces takes no training from the real ones. None when
    the sources are all of one kind."""
    synthetic = [is_synthetic(d) for d in datasets]
    if all(synthetic) or not any(synthetic):
        return None
    n_syn = sum(n for n, s in zip(sizes, synthetic) if s)
    n_real = sum(n for n, s in zip(sizes, synthetic) if not s)
    w = max(1.0, share / (1 - share) * n_syn / n_real)
    if not oversampling:  # more faces, fewer starts each: raise w until the real faces' starts hold
        alone = auto_oversampling(n_real)
        for _ in range(20):
            need = alone / auto_oversampling(round(n_real * w) + n_syn)
            if need <= w + 1e-9:
                break
            w = need
    w = round(min(w, MAX_WEIGHT), 2)  # beyond 100 real copies (100,000 synthetic faces), a lower share
    return [1.0 if s else w for s in synthetic]


def rule_line(datasets: list, weights: list, sizes: list, why: str = "and as many random starts a real face as "
              "alone") -> str:
    """What the mixing rule chose, as the summary says it."""
    real = [(w, n) for d, w, n in zip(datasets, weights, sizes) if not is_synthetic(d)]
    taken = sum(w * n for w, n in real)
    part = taken / (taken + sum(n for d, n in zip(datasets, sizes) if is_synthetic(d)))
    return (f"real faces weighted {real[0][0]:g}: {part:.0%} of the training faces (the rule: at least "
            f"{REAL_SHARE:.0%}, {why}; --weight overrides)")


def trained_path(data) -> str:
    """A training set's absolute path, as a summary's `trained_on` keeps it."""
    return str(Path(data).expanduser().resolve())


def train_landmarks(dataset, output, options: TrainOptions | None = None, *, upsample: int = 1,
                    progress: bool = True, pts_origin: int = 1, split: str | None = None, weights=None,
                    verbose: bool = False) -> dict:
    """Train a 68-point dlib shape predictor on a face set, or on several (`dataset` a
    list, each oversampled by its `weights` entry); returns a summary. `split`: the faces
    of a synthface dataset to train on; by default its train split (the val split is
    for `landmarks eval`), every face of other inputs."""
    from synthface.formats.readers import split_for
    from synthface.face.annotate import check_upsample
    from synthface.core.files import check_writable_file, publish_file, write_summary
    from synthface.core.outputs import LANDMARKS_MODEL, sha256_of
    from synthface.core.progress import heartbeat
    from synthface.core.workers import run_in_child

    options = options or TrainOptions()
    options.validate()
    check_upsample(upsample)
    # checked before training, not after: a model that cannot be saved is lost work
    output = check_writable_file(output, "-o")
    datasets = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    sets, splits = [], []
    for d in datasets:
        check_dlib_boxes(d)
        splits.append(split_for(d, split, "train"))
        faces = load_face_set(d, pts_origin, splits[-1])
        if not faces:
            where = f" in its {splits[-1]} split (--split)" if splits[-1] != "all" else ""
            raise SynthfaceError(f"{d}: no faces with landmarks{where}")
        sets.append(faces)
    rule = None
    if not weights and len(sets) > 1:
        weights = rule = mixing_rule(datasets, [len(s) for s in sets], oversampling=options.oversampling_amount)
    mix_face_sets(sets, weights)  # the weights checked before the detector runs on every face
    faces, counts = mix_face_sets([boxes_for_training(s, upsample, progress) for s in sets], weights)
    missing = [f.image for f in faces if not f.image.is_file()]
    if missing:
        raise SynthfaceError(f"{len(missing)} image(s) listed in {dataset} are missing, e.g. {missing[0]}")
    import cv2

    from synthface.core.imaging import read_image

    for image in dict.fromkeys(f.image for f in faces):  # each read whole once: a cut-off file crashes dlib's trainer
        read_image(image, cv2.IMREAD_GRAYSCALE)
    opts = {k: v for k, v in asdict(options).items() if k != "num_threads"}
    opts.update(num_threads=options.num_threads or os.cpu_count() or 1, be_verbose=verbose,
                oversampling_amount=options.oversampling_amount or auto_oversampling(len(faces)))
    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "train.xml"
        write_training_xml(faces, xml)
        tmp_model = Path(tmp) / "model.dat"
        if progress:
            log.info("training dlib's shape predictor on %d faces (cascade depth %d, %d trees a level, "
                     "oversampling %d; Ctrl-C stops it)", len(faces), options.cascade_depth,
                     options.num_trees_per_cascade_level, opts["oversampling_amount"])
        # in a child process: Ctrl-C stops it at once (dlib's C++ loop ignores signals);
        # dlib reports nothing while it fits, so a heartbeat says it is still at work
        with heartbeat("landmarks train", disable=not progress):
            run_in_child(_train_shape_predictor, str(xml), str(tmp_model), opts)
        publish_file(tmp_model, output)
    # format and sha256: how a later run knows the model (and this summary) for its own
    summary = {"format": LANDMARKS_MODEL, "model_sha256": sha256_of(output), "faces": len(faces),
               "sources": {str(d): c for d, c in zip(datasets, counts)},
               "splits": {str(d): s for d, s in zip(datasets, splits)},
               # the same sets by their absolute paths: what `landmarks eval` compares with its --data
               "trained_on": {trained_path(d): s for d, s in zip(datasets, splits)},
               "weights": list(weights) if weights else [1.0] * len(datasets),
               "mixing_rule": rule_line(datasets, rule, [len(s) for s in sets]) if rule else None,
               "seconds": round(time.perf_counter() - t0, 1), "model": str(output),
               "options": {**asdict(options), "num_threads": opts["num_threads"],
                           "oversampling_amount": opts["oversampling_amount"]}}
    write_summary(output, summary)
    return summary


def _train_shape_predictor(xml: str, model: str, options: dict) -> None:
    import dlib

    opts = dlib.shape_predictor_training_options()
    for key, value in options.items():
        setattr(opts, key, value)
    dlib.train_shape_predictor(xml, model, opts)

