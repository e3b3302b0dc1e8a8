"""Face detectors: train dlib's HOG detector on a dataset, score one on real photos.

Face sets for detection are plain lists of `(image path, boxes, ignored)` with boxes
x, y, w, h in pixels. They come from a synthface dataset (labels.csv; scenes' truncated
faces ignored), a dlib imglab XML (its ignore flags), a COCO json (iscrowd ignored), or
a folder of photos with 300-W points (NAME.jpg with NAME_1.pts, NAME_2.pts ..., or a
300-W crop folder, NAME.jpg with NAME.pts: a box is its 68 points' extent, the convention
of ../shared's helen-train-photos/boxes.json).

Scoring is VOC's: detections sorted by score are matched greedily to the unmatched
truth box of highest IoU (>= 0.5); a detection on an ignored box counts neither way;
AP is the area under the precision envelope (all-point interpolation).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError
from synthface.face.geometry import iou, points_extent, reshape, square  # noqa: F401 (iou, square: public here too)

log = logging.getLogger("synthface")

def load_boxes(path) -> list:
    """[(image path, [(x, y, w, h)], [ignored (x, y, w, h)])] from any labelled input
    readers.read_labelled takes; a face labelled by points alone gets their extent."""
    from synthface.formats.readers import read_labelled

    out = []
    for image in read_labelled(path):
        boxes, ignored = [], []
        for face in image.faces:
            box = tuple(float(v) for v in face.box) if face.box is not None else points_extent(face.landmarks)
            (ignored if face.ignore else boxes).append(box)
        out.append((Path(image.file), boxes, ignored))
    return out


def box_conventions(datasets) -> dict:
    """{dataset: its box convention} for the synthface datasets among `datasets` (their
    dataset.json says it); other inputs (XML, COCO, photos) record none."""
    import json

    out = {}
    for d in datasets:
        card = Path(d).expanduser() / "dataset.json"
        try:
            convention = json.loads(card.read_text()).get("conventions", {}).get("box_convention")
        except (OSError, ValueError, AttributeError):
            convention = None
        if isinstance(convention, str):
            out[str(d)] = convention
    return out


def face_set_sign(folder) -> str | None:
    """What shows `folder` to be labelled faces (a dataset, or photos with points),
    or None: its label files, a .pts file in it, or a synthface dataset it is part of."""
    folder = Path(folder).expanduser()
    for name in ("labels.csv", "dataset.json", "dlib.xml", "coco.json", ".synthface"):
        if (folder / name).exists():
            return f"it holds {name}"
    for parent in folder.resolve().parents[:2]:  # DATASET/images, DATASET/images/00000
        if (parent / "labels.csv").is_file() or (parent / ".synthface").is_dir():
            return f"it is inside the dataset {parent}"
    pts = next(folder.rglob("*.pts"), None) if folder.is_dir() else None
    return f"it holds face points ({pts.relative_to(folder)})" if pts is not None else None


def check_negatives(folder) -> None:
    """--negatives are face-free images; a face set there would teach faces as not-faces."""
    sign = face_set_sign(folder)
    if sign:
        raise SynthfaceError(f"--negatives {folder} is a face set ({sign}); negatives must be face-free images, "
                             "such as `detector mine` writes")


# -- training ---------------------------------------------------------------------------
@dataclass
class DetectorOptions:
    """dlib.simple_object_detector_training_options, with synthface's defaults."""

    C: float = 5.0
    epsilon: float = 0.01
    # detection window side in pixels (dlib's 80); smaller boxes are ignored. Measured on
    # 109 HELEN photos: 80 trains (recall 75% on them), 40 learns nothing for faces of
    # 100-250 px (recall 0)
    window: int = 80
    flip: bool = True  # add left-right flipped copies
    upsample: int = 0  # upsample training images this many times (finds smaller faces)
    max_runtime: float = 0.0  # seconds, 0: none
    num_threads: int = 0  # 0: all cores

    def validate(self) -> None:
        import math

        if not (self.C > 0 and math.isfinite(self.C)):  # NaN fails too
            raise SynthfaceError(f"--C must be a number above 0, got {self.C}")
        if not 0 <= self.max_runtime < 1e9:
            raise SynthfaceError(f"--max-runtime must be seconds from 0 (none) up, got {self.max_runtime}")
        if not 0 <= self.num_threads <= 1024:
            raise SynthfaceError(f"--workers must be from 0 (all cores) to 1024, got {self.num_threads}")
        if not 0 < self.epsilon < 1:
            raise SynthfaceError(f"--epsilon must be in (0, 1), got {self.epsilon}")
        if not 16 <= self.window <= 256:
            raise SynthfaceError(f"--window must be from 16 to 256, got {self.window}")
        if not 0 <= self.upsample <= 2:
            raise SynthfaceError(f"--upsample must be from 0 to 2, got {self.upsample}")


def train_detector(dataset, output, options: DetectorOptions | None = None, *, progress: bool = True,
                   verbose: bool = False, weights=None, negatives=None) -> dict:
    """Fit dlib's HOG detector to a labelled set (any form load_boxes reads), or to several
    (`dataset` a list, each image oversampled by its `weights` entry, as `landmarks
    train` mixes faces); `negatives`: a folder of face-free images, each added whole
    with no box (every window of it a negative; `detector mine` finds such images);
    writes the model and OUTPUT.json (a summary). dlib's trainer needs boxes of one
    aspect ratio: every box is reshaped about its centre, keeping its area, to the
    dataset's median h / w (`aspect` in the summary), so the detector draws boxes in the
    dataset's convention (a `--box head` set's taller than wide). dlib's own solver
    output only with `verbose`."""
    import cv2
    import dlib

    from synthface.core.files import check_writable_file, publish_file, write_summary
    from synthface.core.imaging import read_image
    from synthface.core.outputs import DETECTOR_MODEL, sha256_of
    from synthface.trainers.landmarks import mix_face_sets
    from synthface.core.workers import run_in_child

    options = options or DetectorOptions()
    options.validate()
    output = check_writable_file(output, "-o")
    datasets = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    if negatives is not None:
        check_negatives(negatives)
    conventions = box_conventions(datasets)
    if len(set(conventions.values())) > 1:
        raise SynthfaceError("the --data sets label their boxes in different conventions (" + ", ".join(
            f"{d}: {c}" for d, c in conventions.items()) + "); a detector learns one: relabel one with "
            "`make-dataset ... --resume --box CONVENTION`")
    sets = []
    for d in datasets:
        images = load_boxes(d)
        if not images:
            raise SynthfaceError(f"{d}: no images with face boxes")
        sets.append(images)
    images, counts = mix_face_sets(sets, weights, unit="image")
    if negatives is not None:
        from synthface.core.imagefiles import image_files

        negative_images = image_files(negatives, "--negatives")
        if not negative_images:
            raise SynthfaceError(f"--negatives {Path(negatives).expanduser()}: no images there")
        images = images + [(p, [], []) for p in negative_images]
    aspect = box_aspect(images)
    scale = 2 ** options.upsample
    entries = []  # (image, [[x, y, w, h, ignored]])
    sizes: dict = {}
    for image, boxes, ignore in images:
        if image not in sizes:  # each read whole once, before dlib's trainer reads them (a cut-off file would crash it)
            sizes[image] = read_image(image, cv2.IMREAD_GRAYSCALE).shape[:2]
        height, width = (v * scale for v in sizes[image])
        rows = []
        for b, ign in [(b, False) for b in boxes] + [(b, True) for b in ignore]:
            x, y, w, h = (round(v * scale) for v in reshape(b, aspect))
            # the window cannot shrink to a box this small, nor reach one this close to the
            # border (HOG's cells pad it): such boxes are ignored, neither taught nor penalised
            near_x, near_y = 0.15 * w, 0.15 * h
            ign = bool(ign or (w * h) ** 0.5 < options.window * 0.8 or x < near_x or y < near_y
                       or x + w > width - near_x or y + h > height - near_y)
            rows.append([x, y, w, h, ign])
        entries.append([image, rows, width])
    if not any(not r[4] for _, rows, _ in entries for r in rows):
        raise SynthfaceError(f"{dataset}: no face box of at least {options.window * 0.8:.0f} px away from the "
                             "border (lower --window or add --upsample)")
    opts = dlib.simple_object_detector_training_options()
    opts.C, opts.epsilon = options.C, options.epsilon
    opts.detection_window_size = options.window * options.window
    opts.add_left_right_image_flips = options.flip
    opts.num_threads = options.num_threads or os.cpu_count() or 1
    opts.be_verbose = verbose
    if options.max_runtime:
        opts.max_runtime_seconds = options.max_runtime
    t0 = time.perf_counter()
    unmatchable = 0
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "train.xml"
        if scale > 1:
            from synthface.core.imaging import read_rgb, write_png

            upsampled: dict = {}
            for entry in entries:
                if entry[0] not in upsampled:  # an oversampled image: upsampled once
                    dst = upsampled[entry[0]] = Path(tmp) / f"{len(upsampled):07d}.png"
                    write_png(dst, cv2.resize(read_rgb(entry[0]), None, fx=scale, fy=scale,
                                              interpolation=cv2.INTER_LINEAR))
                entry[0] = upsampled[entry[0]]
        from synthface.formats.imglab import dlib_path

        (Path(tmp) / "links").mkdir()
        for k, entry in enumerate(entries):  # absolute paths dlib's XML reader can open
            entry[0] = dlib_path(Path(entry[0]).resolve(), Path(tmp) / "links", k)
        tmp_model = Path(tmp) / "det.svm"
        if progress:
            log.info("training dlib's HOG detector on %d faces in %d images (%d ignored; Ctrl-C stops it)",
                     sum(not r[4] for _, rows, _ in entries for r in rows), len(entries),
                     sum(r[4] for _, rows, _ in entries for r in rows))
        for attempt in range(MAX_RETRIES + 1):
            _write_training_xml(entries, xml)
            try:
                # in a child process: Ctrl-C stops it at once (dlib's C++ loop ignores signals)
                run_in_child(_train_hog, str(xml), str(tmp_model), _hog_options(opts))
                break
            except RuntimeError as exc:
                listed = {line.strip() for line in str(exc).splitlines() if line.strip().startswith("/")}
                if "impossible set of object boxes" in str(exc) and listed and attempt < MAX_RETRIES:
                    # boxes too alike or too close for the window to tell apart: ignore that image's boxes
                    for image, rows, _ in entries:
                        if str(image) in listed:
                            for r in rows:
                                r[4] = True
                    unmatchable += len(listed)
                    continue
                row = _unmatchable_box(str(exc), entries, options.flip)
                if row is None or attempt == MAX_RETRIES:
                    raise SynthfaceError(f"dlib's trainer: {' '.join(str(exc).split())[:300]}") from None
                row[4] = True  # a box no window position reaches (IoU < 0.5): ignore it, retry
                unmatchable += 1
        publish_file(tmp_model, output)
    faces = sum(not r[4] for _, rows, _ in entries for r in rows)
    # format and sha256: how a later run knows the model (and this summary) for its own
    summary = {"format": DETECTOR_MODEL, "model_sha256": sha256_of(output), "images": len(entries), "faces": faces,
               "ignored": sum(len(rows) for _, rows, _ in entries) - faces,
               "unmatchable": unmatchable, "aspect": aspect,
               "box_convention": next(iter(conventions.values()), None), "seconds": round(time.perf_counter() - t0, 1),
               "model": str(output), "options": asdict(options),
               "dataset": str(datasets[0]) if len(datasets) == 1 else [str(d) for d in datasets],
               "sources": {str(d): c for d, c in zip(datasets, counts)},
               "negatives": 0 if negatives is None else len(negative_images)}
    write_summary(output, summary)
    return summary


def box_aspect(images) -> float:
    """The median h / w of the taught (not ignored) boxes, to 2 decimals (1.0 without
    any): the one aspect ratio dlib's trainer gets, the dataset's own convention."""
    ratios = [b[3] / b[2] for _, boxes, _ in images for b in boxes if b[2] > 0 and b[3] > 0]
    return round(float(np.median(ratios)), 2) if ratios else 1.0


MAX_RETRIES = 200
_HOG_KEYS = ("C", "epsilon", "detection_window_size", "add_left_right_image_flips", "num_threads", "be_verbose",
             "max_runtime_seconds")


def _hog_options(opts) -> dict:
    return {k: getattr(opts, k) for k in _HOG_KEYS}


def _train_hog(xml: str, model: str, options: dict) -> None:
    import dlib

    opts = dlib.simple_object_detector_training_options()
    for k, v in options.items():
        setattr(opts, k, v)
    dlib.train_simple_object_detector(xml, model, opts)


def _write_training_xml(entries, xml: Path) -> None:
    """The trainer's boxes as imglab XML, through the dataset's own imglab writer."""
    from synthface.formats.imglab import write_imglab
    from synthface.face.labels import Face, LabelledImage, LabelSchema

    write_imglab(xml, (LabelledImage(str(image), faces=[Face((x, y, w, h), ignore=ign) for x, y, w, h, ign in rows])
                       for image, rows, _ in entries), LabelSchema(landmarks=False))


def _unmatchable_box(message: str, entries, flipped: bool):
    """The [x, y, w, h, ignored] row that dlib's "impossible set of object labels" names
    (its image index counts the flipped copies after the originals), or None."""
    import re

    index = re.search(r"image index\s+(\d+)", message)
    rect = re.search(r"truth rect:\s+\[\((-?\d+), (-?\d+)\) \((-?\d+), (-?\d+)\)\]", message)
    if not index or not rect:
        return None
    i = int(index.group(1))
    left, top, right, bottom = (int(v) for v in rect.groups())
    if i >= len(entries) and flipped:
        i -= len(entries)
        width = entries[i][2]
        left, right = width - 1 - right, width - 1 - left
    if i >= len(entries):
        return None
    rows = [r for r in entries[i][1] if not r[4]]
    if not rows:
        return None
    return min(rows, key=lambda r: abs(r[0] - left) + abs(r[1] - top) + abs(r[0] + r[2] - 1 - right)
               + abs(r[1] + r[3] - 1 - bottom))


# -- scoring -----------------------------------------------------------------------------
def match(detections, truth, ignored=(), threshold: float = 0.5, ious: list | None = None) -> list:
    """Per detection (score, 1 true positive / 0 false positive / None ignored), VOC's
    greedy matching in descending score; `ious` collects (score, IoU) of each true
    positive (how well the matched boxes sit)."""
    used = [False] * len(truth)
    out = []
    for score, box in sorted(detections, key=lambda d: -d[0]):
        best, k = 0.0, -1
        for i, t in enumerate(truth):
            o = iou(box, t)
            if o > best and not used[i]:
                best, k = o, i
        if best >= threshold:
            used[k] = True
            out.append((score, 1))
            if ious is not None:
                ious.append((score, best))
        elif any(iou(box, g) >= threshold for g in ignored):
            out.append((score, None))
        else:
            out.append((score, 0))
    return out


def average_precision(matched: list, n_truth: int) -> tuple[float, np.ndarray, np.ndarray]:
    """VOC all-point AP of (score, tp) pairs over all images; returns (AP, recall, precision)."""
    scored = sorted((m for m in matched if m[1] is not None), key=lambda m: -m[0])
    if n_truth == 0:
        raise SynthfaceError("no truth boxes to score against")
    tp = np.cumsum([m[1] for m in scored]) if scored else np.zeros(0)
    fp = np.cumsum([1 - m[1] for m in scored]) if scored else np.zeros(0)
    recall = tp / n_truth
    precision = tp / np.maximum(tp + fp, 1e-12)
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    idx = np.nonzero(r[1:] != r[:-1])[0]
    ap = float(np.sum((r[idx + 1] - r[idx]) * p[idx + 1]))
    return ap, recall, precision


def open_detector(model: str):
    import dlib

    if model == "dlib":
        return dlib.get_frontal_face_detector()
    if not Path(model).is_file():
        raise SynthfaceError(f"detector not found: {model} (a .svm from `synthface detector train`, or dlib)")
    try:
        return dlib.fhog_object_detector(str(model))
    except RuntimeError as exc:
        raise SynthfaceError(f"{model}: not a dlib HOG detector ({str(exc).strip().splitlines()[0]})") from None


def evaluate_detector(model: str, data, upsample: int = 1, threshold: float = -0.5, progress: bool = True,
                      images=None) -> dict:
    """AP at IoU 0.5, recall, and false positives per image at the detector's own
    threshold (score 0); detections down to `threshold` feed the PR curve. Also AP at IoU
    0.3 and the mean IoU of the boxes matched there at score 0: a detector that finds the
    faces but draws its boxes in another convention (brows to lip, forehead to chin) has
    an AP30 far above its AP50 and a mean IoU near 0.5."""
    from synthface.core.progress import progress_bar

    from synthface.face.annotate import check_upsample
    from synthface.core.imaging import read_rgb

    check_upsample(upsample)
    detector = open_detector(model)
    images = images if images is not None else load_boxes(data)
    matched, matched30, ious, n_truth, fp_at_0, tp_at_0 = [], [], [], 0, 0, 0
    t0 = time.perf_counter()
    for image, truth, ignored in progress_bar(images, desc="detector eval", unit="image", disable=not progress, leave=False):
        rects, scores, _ = detector.run(read_rgb(image), upsample, threshold)
        dets = [(float(s), (r.left(), r.top(), r.width(), r.height())) for r, s in zip(rects, scores)]
        m = match(dets, truth, ignored)
        matched += m
        matched30 += match(dets, truth, ignored, 0.3, ious)
        n_truth += len(truth)
        tp_at_0 += sum(1 for s, t in m if t == 1 and s >= 0)
        fp_at_0 += sum(1 for s, t in m if t == 0 and s >= 0)
    ap, recall, precision = average_precision(matched, n_truth)
    at_0 = [o for s, o in ious if s >= 0]
    return {"model": model, "images": len(images), "faces": n_truth, "ap50": ap,
            "ap30": average_precision(matched30, n_truth)[0],
            "mean_iou_at_0": float(np.mean(at_0)) if at_0 else None,
            "max_recall": float(recall[-1]) if len(recall) else 0.0,
            "recall_at_0": tp_at_0 / n_truth, "fp_per_image_at_0": fp_at_0 / max(len(images), 1),
            "seconds": round(time.perf_counter() - t0, 1), "upsample": upsample,
            "pr": {"recall": [round(float(v), 4) for v in recall[::max(1, len(recall) // 200)]],
                   "precision": [round(float(v), 4) for v in precision[::max(1, len(precision) // 200)]]}}


def plot_pr(results: dict, path) -> None:
    """Precision against recall for named reports, as a PNG."""
    from synthface.core.imaging import plot_curves

    grid = np.linspace(0, 1, 101)
    series = {}
    for name, r in results.items():
        rec, prec = np.array(r["pr"]["recall"]), np.array(r["pr"]["precision"])
        series[f"{name} (AP {r['ap50']:.2f})"] = [float(prec[rec >= g].max()) if (rec >= g).any() else 0.0
                                                  for g in grid]
    plot_curves(grid, series, path, x_label="recall", y_label="precision (interpolated)", mark="detector eval")
