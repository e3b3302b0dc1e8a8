"""Label files of a dataset, all written from its journal: one writer per format.

Every writer has the same small interface (stylegan2-ada's dataset_tool in spirit):
`add(k, record)` for the k-th kept face, `close()` publishes, `discard()` on failure.
A writer writes under temporary names; `close()` renames them into place, `discard()`
removes them, so a run that fails or is interrupted while exporting leaves the label
files of the last complete export (or none), never half a file. Streaming: memory does
not grow with n. A new format is a new writer in WRITERS.

Conventions (all formats): coordinates in pixels of the saved image, pixel centres at
integer coordinates, (0, 0) the centre of the top-left pixel; box = x, y, w, h with x, y
the top-left pixel of the box (dlib's rectangle, inclusive: w = right - left + 1);
landmarks in the iBUG 300-W 68-point order, 0-based.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import quoteattr

from synthface import __version__
from synthface.errors import SynthfaceError
from synthface.files import write_atomic
from synthface.journal import ALL_FORMATS, BOX_COLS, POINT_COLS, STATE_DIR, FaceRecord, iter_records, split_of
from synthface.pose import POSE_COLS, face_attributes
from synthface.steering import draw_targets

# The left-right mirror of each of the 68 iBUG points (for flip augmentation).
FLIP_IDX_68 = (list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30]
               + [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
               + [54, 53, 52, 51, 50, 49, 48] + [59, 58, 57, 56, 55]
               + [64, 63, 62, 61, 60] + [67, 66, 65])
# The 68 iBUG 300-W points by name; "left"/"right" are the subject's own (the subject's
# right eye is on the image's left: points 36-41).
IBUG68_NAMES = ([f"jaw_{i}" for i in range(1, 18)] + [f"right_eyebrow_{i}" for i in range(1, 6)]
                + [f"left_eyebrow_{i}" for i in range(1, 6)] + [f"nose_bridge_{i}" for i in range(1, 5)]
                + [f"nose_lower_{i}" for i in range(1, 6)] + [f"right_eye_{i}" for i in range(1, 7)]
                + [f"left_eye_{i}" for i in range(1, 7)] + [f"outer_lip_{i}" for i in range(1, 13)]
                + [f"inner_lip_{i}" for i in range(1, 9)])


def _chain(a: int, b: int, closed: bool = False) -> list:
    pairs = [[i, i + 1] for i in range(a, b)]
    return pairs + ([[b, a]] if closed else [])


# The standard 68-point contour drawing (0-based pairs; COCO's file stores them 1-based):
# jaw, brows, nose bridge and base, eyes and lips as closed loops.
SKELETON_68 = (_chain(0, 16) + _chain(17, 21) + _chain(22, 26) + _chain(27, 30) + [[30, 33]] + _chain(31, 35)
               + _chain(36, 41, True) + _chain(42, 47, True) + _chain(48, 59, True) + _chain(60, 67, True))
# Per-keypoint OKS sigmas of COCO-WholeBody's 68 face points (the same iBUG order), as
# published with its evaluation (myeval_wholebody.py): what COCOeval needs for faces.
FACE_SIGMAS_68 = (
    0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023,
    0.029, 0.032, 0.037, 0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011,
    0.011, 0.012, 0.012, 0.011, 0.011, 0.013, 0.015, 0.009, 0.007, 0.007,
    0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011,
    0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034, 0.008, 0.008,
    0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007,
    0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.01, 0.008)


def clipped_box(box, size: int) -> list:
    """x, y, w, h clipped to the image (COCO and YOLO never reach past its edges)."""
    x, y, w, h = box
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, size), min(y + h, size)
    return [x0, y0, max(x1 - x0, 0), max(y1 - y0, 0)]


def keypoint_triplets(points, size: int) -> list:
    """(x, y, v) per point: v = 2 (labelled, visible) inside the image, and (0, 0, 0)
    outside it, the COCO and YOLO rule for a point that is not in the picture."""
    out = []
    for px, py in points:
        out += [px, py, 2] if 0 <= px < size and 0 <= py < size else [0, 0, 0]
    return out


LICENCE_NOTE = (
    "The images are synthetic, made by the generator named here. The landmark labels come "
    "from dlib's shape_predictor_68_face_landmarks.dat, trained on the iBUG 300-W dataset, "
    "whose licence excludes commercial use: treat the landmark labels as non-commercial. "
    "Face boxes come from dlib's HOG frontal face detector (Boost Software License). The "
    "generator's licence follows from the data it was trained on (see its model card).")


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


class _FileWriter:
    """A writer of one file: opened under NAME.tmp, renamed on close."""

    filename = ""

    def __init__(self, out: Path, size: int, landmarks: bool, attr_cols=(), mode: str = "w", **kw):
        self.path = out / self.filename
        self.size, self.landmarks, self.attr_cols = size, landmarks, list(attr_cols)
        self.f = open(_tmp(self.path), mode, **kw)

    def close(self) -> None:
        self.f.close()
        os.replace(_tmp(self.path), self.path)

    def discard(self) -> None:
        self.f.close()
        _tmp(self.path).unlink(missing_ok=True)


class _FolderWriter:
    """A writer of a folder of small files: NAME.tmp/, swapped in on close."""

    folder = ""

    def __init__(self, out: Path, size: int, landmarks: bool, attr_cols=()):
        self.path, self.size, self.landmarks, self.attr_cols = out / self.folder, size, landmarks, list(attr_cols)
        shutil.rmtree(_tmp(self.path), ignore_errors=True)
        _tmp(self.path).mkdir(parents=True)
        self._made: set = set()

    def file(self, rel: Path) -> Path:
        p = _tmp(self.path) / rel
        if p.parent not in self._made:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(p.parent)
        return p

    def close(self) -> None:
        old = self.path.with_name(self.path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            os.replace(self.path, old)
        os.replace(_tmp(self.path), self.path)
        shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(_tmp(self.path), ignore_errors=True)


def label_columns(landmarks: bool, attr_cols=()) -> list[str]:
    """labels.csv's columns: the face, its box, its pose / expression / steering
    attributes (`attr_cols`), its points."""
    return ["file", "split", "seed", "index"] + BOX_COLS + list(attr_cols) + (POINT_COLS if landmarks else [])


def _values(rec: FaceRecord, landmarks: bool, attr_cols=()) -> list:
    values = [rec.file, rec.split, rec.seed, rec.index, *rec.box, round(rec.score, 6)]
    values += [rec.attributes[c] for c in attr_cols]
    return values + ([float(v) for v in rec.landmarks.reshape(-1)] if landmarks else [])


class CsvWriter(_FileWriter):
    """labels.csv: one row per face."""

    filename = "labels.csv"

    def __init__(self, out, size, landmarks, attr_cols=()):
        super().__init__(out, size, landmarks, attr_cols, newline="")
        self.w = csv.writer(self.f)
        self.w.writerow(label_columns(landmarks, attr_cols))

    def add(self, k: int, rec: FaceRecord) -> None:
        self.w.writerow(_values(rec, self.landmarks, self.attr_cols))


class ParquetWriter(_FileWriter):
    """labels.parquet: labels.csv's rows, in row groups of 10,000."""

    filename = "labels.parquet"

    def __init__(self, out, size, landmarks, attr_cols=()):
        import pyarrow as pa
        import pyarrow.parquet as papq

        super().__init__(out, size, landmarks, attr_cols, "wb")
        int_cols = {"seed", "index", "x", "y", "w", "h"}
        self.cols = label_columns(landmarks, attr_cols)
        # the dtypes pandas gives labels.csv: the same frame from either file
        self.schema = pa.schema([(c, pa.string() if c in ("file", "split") else pa.int64() if c in int_cols
                                  else pa.float64()) for c in self.cols])
        self.pq = papq.ParquetWriter(self.f, self.schema)
        self.rows: list = []

    def add(self, k, rec):
        self.rows.append(_values(rec, self.landmarks, self.attr_cols))
        if len(self.rows) >= 10000:
            self._flush()

    def _flush(self):
        import pyarrow as pa

        if self.rows:
            self.pq.write_table(pa.Table.from_pylist([dict(zip(self.cols, r)) for r in self.rows], self.schema))
            self.rows.clear()

    def close(self):
        self._flush()
        self.pq.close()
        super().close()

    def discard(self):
        try:
            self.pq.close()
        finally:
            super().discard()


class ImglabWriter(_FileWriter):
    """dlib.xml: imglab's format, read as is by dlib's trainers and by imglab. Also
    what `landmarks train` hands dlib (its records carry absolute image paths)."""

    filename = "dlib.xml"

    def __init__(self, out, size, landmarks, attr_cols=(), path: Path | None = None):
        if path is not None:  # another file name than the dataset's dlib.xml
            self.filename = path.name
            out = path.parent
        super().__init__(out, size, landmarks, attr_cols)
        self.f.write("<?xml version='1.0' encoding='ISO-8859-1'?>\n<dataset>\n<name>synthface</name>\n"
                     f"<comment>Generated by synthface {__version__}; see dataset.json.</comment>\n<images>\n")

    def add(self, k, rec):
        x, y, w, h = (int(round(v)) for v in rec.box)
        parts = "".join(f"      <part name='{i:02d}' x='{round(px)}' y='{round(py)}'/>\n"
                        for i, (px, py) in enumerate(rec.landmarks)) if rec.landmarks is not None else ""
        dims = f" width='{self.size}' height='{self.size}'" if self.size else ""
        self.f.write(f"  <image file={quoteattr(rec.file)}{dims}>\n"
                     f"    <box top='{y}' left='{x}' width='{w}' height='{h}'>\n{parts}    </box>\n"
                     "  </image>\n")

    def close(self):
        self.f.write("</images>\n</dataset>\n")
        super().close()


def pts_text(points) -> str:
    """A 300-W .pts file. Its coordinates are 1-based (300-W's MATLAB convention, which
    300-W tools and `landmarks.read_pts` expect): each 0-based point plus one."""
    body = "\n".join(f"{x + 1:g} {y + 1:g}" for x, y in points)
    return f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n"


class PtsWriter:
    """images/SSSSS/NNNNNNNN.pts beside each NNNNNNNN.png, where 300-W tools look: iBUG
    300-W point files, 1-based like 300-W's own. Each file is written whole (temporary
    name, then rename); face k's labels are the same in every export of a run, so a
    partial export leaves only correct files (prune_images removes those beyond n)."""

    def __init__(self, out, size, landmarks, attr_cols=()):
        self.out = out

    def add(self, k, rec):
        write_atomic(self.out / Path(rec.file).with_suffix(".pts"), pts_text(rec.landmarks))

    def close(self):
        pass

    def discard(self):
        pass


class CocoWriter(_FileWriter):
    """coco.json: images, then annotations (streamed to a part file, appended at close)."""

    filename = "coco.json"

    def __init__(self, out, size, landmarks, attr_cols=()):
        super().__init__(out, size, landmarks, attr_cols)
        self.f.write('{"info": ' + json.dumps({"description": "synthface synthetic faces",
                                               "version": __version__}) + ', "images": [')
        self.anns = open(out / STATE_DIR / "coco_annotations.part", "w")

    def add(self, k, rec):
        self.f.write((", " if k else "") + json.dumps(
            {"id": k + 1, "file_name": rec.file, "width": self.size, "height": self.size, "split": rec.split}))
        box = clipped_box(rec.box, self.size)
        ann = {"id": k + 1, "image_id": k + 1, "category_id": 1, "bbox": box,
               "area": box[2] * box[3], "iscrowd": 0, "score": round(rec.score, 6)}
        if self.attr_cols:
            ann["attributes"] = {c: rec.attributes[c] for c in self.attr_cols}
        if self.landmarks:
            ann["keypoints"] = keypoint_triplets(rec.landmarks.tolist(), self.size)
            ann["num_keypoints"] = sum(v == 2 for v in ann["keypoints"][2::3])
        self.anns.write((", " if k else "") + json.dumps(ann))

    def close(self):
        self.anns.close()
        self.f.write('], "annotations": [')
        with open(self.anns.name) as part:
            shutil.copyfileobj(part, self.f)
        os.unlink(self.anns.name)
        category = {"id": 1, "name": "face", "supercategory": "face"}
        if self.landmarks:
            category["keypoints"] = IBUG68_NAMES
            category["skeleton"] = [[a + 1, b + 1] for a, b in SKELETON_68]  # COCO: 1-based
            category["sigmas"] = list(FACE_SIGMAS_68)  # COCOeval: params.kpt_oks_sigmas
        self.f.write('], "categories": [' + json.dumps(category) + "]}\n")
        super().close()

    def discard(self):
        self.anns.close()
        Path(self.anns.name).unlink(missing_ok=True)
        super().discard()


class YoloWriter(_FolderWriter):
    """labels/SSSSS/NNNNNNNN.txt for images/SSSSS/NNNNNNNN.png (Ultralytics' rule: an
    image's label is its path with /images/ replaced by /labels/ and .txt), with
    trainset.txt / valset.txt (the split's image paths, "./"-relative to the dataset)
    and data.yaml. (Not train.txt / val.txt: Hugging Face's imagefolder would take those
    names for split files and load no images.) `path:` is the dataset's absolute folder, as Ultralytics reads a relative
    one against its own datasets folder; a moved dataset needs that line changed or
    removed (without it Ultralytics uses data.yaml's folder)."""

    folder = "labels"

    def __init__(self, out, size, landmarks, attr_cols=()):
        super().__init__(out, size, landmarks, attr_cols)
        self.out = out
        self.lists = {s: open(out / STATE_DIR / f"{s}set.txt.part", "w") for s in ("train", "val")}

    def add(self, k, rec):
        size = self.size
        x0, y0, w, h = clipped_box(rec.box, size)
        vals = [(x0 + w / 2) / size, (y0 + h / 2) / size, w / size, h / size]
        if self.landmarks:
            kp = keypoint_triplets(rec.landmarks.tolist(), size)
            for i in range(0, len(kp), 3):
                vals += [kp[i] / size, kp[i + 1] / size, kp[i + 2]]
        self.file(Path(*Path(rec.file).parts[1:]).with_suffix(".txt")).write_text(
            "0 " + " ".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in vals) + "\n")
        self.lists[rec.split].write(f"./{rec.file}\n")

    def close(self):
        for f in self.lists.values():
            f.close()
        has_val = os.path.getsize(self.lists["val"].name) > 0
        kind = "pose" if self.landmarks else "detect"
        lines = [f"# Ultralytics YOLO {kind} labels: yolo {kind} train data=THIS_FILE",
                 "# labels/ mirrors images/; trainset.txt and valset.txt list each split's images.",
                 "# Moved this folder? Delete the path line (Ultralytics then uses this file's folder).",
                 f"path: {json.dumps(str(self.out.resolve()))}", "train: trainset.txt",
                 "val: valset.txt" if has_val else "val: trainset.txt  # no face in the val split (--val-fraction)",
                 "names:", "  0: face"]
        if self.landmarks:
            lines += ["kpt_shape: [68, 3]", f"flip_idx: {json.dumps(FLIP_IDX_68)}"]
        super().close()
        for name, f in self.lists.items():
            os.replace(f.name, self.out / f"{name}set.txt")
        write_atomic(self.out / "data.yaml", "\n".join(lines) + "\n")

    def discard(self):
        for f in self.lists.values():
            f.close()
            Path(f.name).unlink(missing_ok=True)
        super().discard()


class HfWriter(_FileWriter):
    """metadata.jsonl: Hugging Face imagefolder's labels, one JSON object per image
    (`file_name` relative to the dataset), read by
    `datasets.load_dataset("imagefolder", data_dir=DATASET)`."""

    filename = "metadata.jsonl"

    def add(self, k, rec):
        row = {"file_name": rec.file, "split": rec.split, "seed": rec.seed, "index": rec.index,
               "box": [int(v) for v in rec.box], "score": round(rec.score, 6)}
        row.update({c: rec.attributes[c] for c in self.attr_cols})
        if self.landmarks:
            row["landmarks"] = [[float(x), float(y)] for x, y in rec.landmarks]
        self.f.write(json.dumps(row) + "\n")


SPLITS = ("train", "val", "all")


def read_labels(root, split: str = "all"):
    """labels.csv of a synthface dataset as a pandas DataFrame, rows of one split
    ("train", "val") or all of them."""
    import pandas as pd

    root = Path(root).expanduser()
    if split not in SPLITS:
        raise SynthfaceError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = root / "labels.csv"
    if not path.is_file():
        raise SynthfaceError(f"{root} is not a synthface dataset (no labels.csv)")
    frame = pd.read_csv(path)
    if split != "all":
        if "split" not in frame:
            raise SynthfaceError(f"{path} has no split column (made by an older synthface); "
                                 "run the same make-dataset command with --resume to write it again")
        frame = frame[frame["split"] == split].reset_index(drop=True)
    return frame


WRITERS = {"csv": CsvWriter, "parquet": ParquetWriter, "hf": HfWriter, "xml": ImglabWriter, "pts": PtsWriter,
           "coco": CocoWriter, "yolo": YoloWriter}


def write_exports(out: Path, cfg, identity: dict, command: str = "") -> dict:
    """Write every label format chosen in cfg.formats plus dataset.json / README.md."""
    out = Path(out)
    landmarks = cfg.annotate.landmarks
    size = identity["image_size"]
    formats = [f for f in ALL_FORMATS if f in set(cfg.formats) | {"csv"}
               and (landmarks or f != "pts")]
    steering = identity["generator"].get("steering")
    steered = [t["name"] for t in steering["targets"]] if steering else []
    flip = identity["annotate"].get("labels") == "flip"
    attr_cols = ((POSE_COLS if landmarks else []) + (["disagreement"] if flip else [])
                 + [f"{name}_target" for name in steered])
    values: dict = {c: [] for c in attr_cols}
    by_target: dict = {}  # steered runs: candidates kept and rejected per target bin
    rejected: Counter = Counter()
    splits: Counter = Counter()
    count = candidates = 0
    writers = []
    try:
        for f in formats:
            writers.append(WRITERS[f](out, size, landmarks, attr_cols))
        for rec in iter_records(out / STATE_DIR / "journal.csv"):
            if count == cfg.target:
                break
            candidates += 1
            if steering:
                targets = draw_targets(steering, rec.seed)
                rec.attributes = {f"{name}_target": round(v, 4) for name, v in targets.items()}
                for name, v in targets.items():
                    bins = by_target.setdefault(name, {})
                    edge = target_bin(name, v)
                    bins.setdefault(edge, Counter())[rec.status or "kept"] += 1
            if not rec.kept:
                rejected[rec.status] += 1
                continue
            rec.split = split_of(rec.seed, cfg.val_fraction)
            if landmarks:
                rec.attributes.update(face_attributes(rec.landmarks, size))
            if flip:
                rec.attributes["disagreement"] = round(rec.disagreement, 6)
            for c in attr_cols:
                values[c].append(rec.attributes[c])
            splits[rec.split] += 1
            for w in writers:
                w.add(count, rec)
            count += 1
    except BaseException:
        for w in writers:
            w.discard()
        raise
    for w in writers:
        w.close()

    summary = {"faces": count, "train": splits["train"], "val": splits["val"],
               "candidates": candidates, "rejected": dict(rejected),
               "rejection_rate": round(sum(rejected.values()) / max(candidates, 1), 4)}
    if landmarks and count:
        summary["pose"] = pose_statistics({c: values[c] for c in POSE_COLS})
        plot_pose(values, out / "pose.png")
    if steering:
        summary["steering"] = {"targets": steering["targets"], "by_target": {
            name: {k: dict(c) for k, c in sorted(bins.items(), key=lambda kv: float(kv[0].split(" ")[0]))}
            for name, bins in by_target.items()}}
    write_card(out, cfg, identity, summary, command, formats)
    return summary


def target_bin(name: str, value: float) -> str:
    """The bin of a steering target, for counts per bin: 10 degrees, or 0.05 of mouth opening."""
    import math

    width = 0.05 if name == "mouth_open" else 10.0
    lo = math.floor(value / width) * width
    return f"{lo:g} to {lo + width:g}"


def plot_pose(values: dict, path: Path) -> None:
    """pose.png: the share of faces per 5-degree bin of measured yaw and pitch, and of
    their steering targets where the run was steered."""
    import numpy as np

    from synthface.imaging import plot_curves

    edges = np.arange(-60.0, 60.1, 5.0)
    series = {}
    for name in ("yaw", "pitch", "yaw_target", "pitch_target"):
        if values.get(name):
            counts, _ = np.histogram(np.clip(values[name], -59.9, 59.9), edges)
            series[name.replace("_target", " target")] = counts / max(len(values[name]), 1)
    plot_curves((edges[:-1] + edges[1:]) / 2, series, path, x_label="degrees (share of faces per 5-degree bin)")


def _pose_section(summary: dict, steering) -> str:
    pose = summary.get("pose")
    if not pose:
        return ""
    rows = "\n".join(f"| {name} | {p['mean']:.3g} | {p['std']:.3g} | {p['p5']:.3g} | {p['p50']:.3g} | {p['p95']:.3g} |"
                     for name, p in pose.items())
    steer = ""
    if steering:
        parts = []
        for t in steering["targets"]:
            how = (f"N({t['centre']:g}, {t['std']:g}) clipped to {t['low']:g}..{t['high']:g}" if t.get("std") is not None
                   else f"uniform in {t['low']:g}..{t['high']:g}")
            parts.append(f"{t['name']} {how}")
        steer = ("\nSteered: each face's targets were drawn from its seed (" + "; ".join(parts) + "); the columns "
                 "without `_target` are measured on the face made. Candidates kept and rejected per target bin are "
                 "in dataset.json (`counts.steering.by_target`).\n")
    return f"""## Pose and expression
Measured on each face's 68 points (synthface.pose: yaw > 0 turned to the image's right,
pitch > 0 up, roll > 0 clockwise, in degrees, from cv2.solvePnP against a generic 3D face;
mouth_open = inner-lip gap / outer-eye-corner distance; eye_open = eye aspect ratio).

| attribute | mean | std | p5 | p50 | p95 |
|---|---|---|---|---|---|
{rows}
{steer}
"""


def pose_statistics(values: dict) -> dict:
    """Per attribute: mean, std, 5/50/95th percentiles; for yaw and pitch also the share
    beyond 20 degrees (from 0 for yaw, from the median for pitch)."""
    import numpy as np

    out = {}
    for name, v in values.items():
        v = np.asarray(v, float)
        out[name] = {"mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4),
                     **{f"p{q}": round(float(np.percentile(v, q)), 4) for q in (5, 50, 95)}}
    if "yaw" in values:
        out["yaw"]["beyond_20"] = round(float(np.mean(np.abs(values["yaw"]) > 20)), 4)
        pitch = np.asarray(values["pitch"], float)
        out["pitch"]["beyond_20_from_median"] = round(float(np.mean(np.abs(pitch - np.median(pitch)) > 20)), 4)
    return out


def write_card(out: Path, cfg, identity: dict, summary: dict, command: str, formats) -> None:
    landmarks = cfg.annotate.landmarks
    card = {
        "format": "synthface-dataset/1",
        "synthface_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "seed": cfg.seed,
        "generator": identity["generator"],
        "image_size": identity["image_size"],
        "augment": identity.get("augment"),
        "annotation": {"labels": "single", **identity["annotate"],
                       "detector": ("dlib.cnn_face_detection_model_v1 (MMOD, mmod_human_face_detector.dat), boxes "
                                    "mapped to the HOG convention (annotate.MMOD_TO_HOG)"
                                    if identity["annotate"].get("detector") == "mmod"
                                    else "dlib.get_frontal_face_detector (HOG)"),
                       "predictor": "shape_predictor_68_face_landmarks.dat" if landmarks else None,
                       "predictor_sha256": identity["predictor_sha256"],
                       "filter": f"exactly one face with detector score >= {cfg.annotate.min_score}"},
        "counts": summary,
        "files": {"images": "images/SSSSS/NNNNNNNN.png, 1,000 a folder",
                  "formats": sorted(formats)},
        "split": {"val_fraction": cfg.val_fraction, "train": summary["train"], "val": summary["val"],
                  "rule": "a face is in val when splitmix64(seed) / 2**64 < val_fraction (synthface.journal.split_of)"},
        "conventions": {
            "coordinates": "pixels of the saved image; pixel centres at integers, (0, 0) = centre of the top-left pixel",
            "box": "x, y, w, h: top-left pixel and size (dlib rectangle, inclusive)",
            "landmarks": "68 points, iBUG 300-W order, 0-based (x0, y0 .. x67, y67)" if landmarks else None,
            "seed": "each image is candidate `index` of the run, made from its own `seed`",
        },
        "licence": LICENCE_NOTE,
        "platform": platform.platform(),
    }
    if landmarks:
        card["keypoints"] = {"names": IBUG68_NAMES, "skeleton": SKELETON_68, "oks_sigmas": list(FACE_SIGMAS_68),
                             "flip_idx": FLIP_IDX_68,
                             "note": "0-based; left/right are the subject's; sigmas from COCO-WholeBody's face set"}
    write_atomic(out / "dataset.json", json.dumps(card, indent=2) + "\n")
    rej = ", ".join(f"{k}: {v}" for k, v in sorted(summary["rejected"].items())) or "none"
    gen = identity["generator"]
    gen_line = (f"`{gen.get('checkpoint')}` (sha256 `{gen.get('sha256', '')[:16]}...`, arch `{gen.get('arch')}`)"
                if gen["kind"] == "generator" else f"stand-in replay of real faces in `{gen.get('folder')}`")
    write_atomic(out / "README.md", _card_text(cfg, identity, summary, command, formats, gen_line, rej))


def _card_text(cfg, identity, summary, command, formats, gen_line, rej) -> str:
    """The dataset's README.md: what it is, each file, how to load it in each ecosystem
    (only the formats written), its conventions and split."""
    landmarks = cfg.annotate.landmarks
    steering = identity["generator"].get("steering")
    targets = [f"{t['name']}_target" for t in steering["targets"]] if steering else []
    size = identity["image_size"]
    kind = "pose" if landmarks else "detect"
    pts_cols = ", x0, y0 .. x67, y67" if landmarks else ""
    files = {
        "csv": f"- `labels.csv`: one row per face: file, split, seed, index, x, y, w, h, score"
               + (", yaw, pitch, roll, mouth_open, eye_open" if landmarks else "")
               + (", disagreement" if identity["annotate"].get("labels") == "flip" else "")
               + "".join(f", {c}" for c in targets) + pts_cols,
        "parquet": "- `labels.parquet`: the same rows and dtypes as labels.csv",
        "hf": "- `metadata.jsonl`: Hugging Face imagefolder labels: file_name, split, seed, index, box, score"
              + (", the pose and expression columns, landmarks (68 [x, y] lists)" if landmarks else "")
              + "".join(f", {c}" for c in targets),
        "xml": "- `dlib.xml`: dlib imglab format (`dlib.train_shape_predictor`, `dlib.train_simple_object_detector`)",
        "pts": "- `images/SSSSS/NNNNNNNN.pts`: iBUG 300-W point files beside the images, 1-based as in 300-W "
               "(0-based point + 1)",
        "coco": "- `coco.json`: COCO " + ("keypoints (68 named iBUG points; the category holds the 68-point skeleton "
                                          "and the COCO-WholeBody face OKS sigmas for COCOeval)" if landmarks
                                          else "boxes") + ", category \"face\", each image's split in `split`",
        "yolo": f"- `data.yaml`, `labels/SSSSS/NNNNNNNN.txt`, `trainset.txt`, `valset.txt`: Ultralytics YOLO {kind} "
                "(labels/ mirrors images/; the two lists are the splits)",
    }
    snippets = {
        "csv": ("pandas", f"""```python
import pandas as pd
labels = pd.read_{'parquet' if 'parquet' in formats else 'csv'}("DATASET/labels.{'parquet' if 'parquet' in formats else 'csv'}")
train = labels[labels.split == "train"]
""" + ("""points = train.filter(regex=r"^[xy]\\d+$").to_numpy().reshape(-1, 68, 2)  # (faces, 68, x/y)
""" if landmarks else "") + "```"),
        "torch": ("PyTorch (with synthface installed)", """```python
from torch.utils.data import DataLoader
from synthface import FaceLandmarks
loader = DataLoader(FaceLandmarks("DATASET", split="train"), batch_size=64, shuffle=True)
for batch in loader:  # image (B, 3, H, W) in [0, 1], box (B, 4), """ + ("landmarks (B, 68, 2), " if landmarks else "")
                  + """seed, score, ...
    ...
```"""),
        "hf": ("Hugging Face datasets", """```python
from datasets import load_dataset
ds = load_dataset("imagefolder", data_dir="DATASET")["train"]  # every face; its `split` field says train or val
val = ds.filter(lambda r: r["split"] == "val")
```"""),
        "yolo": ("Ultralytics", f"""```
yolo {kind} train data=DATASET/data.yaml model=yolov8n{'-pose' if landmarks else ''}.yaml imgsz={size}
```
`path:` in data.yaml is this folder's absolute path when it was written; after moving the
folder, delete that line (Ultralytics then uses data.yaml's folder)."""),
        "coco": ("pycocotools", """```python
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
gt = COCO("DATASET/coco.json")
""" + ("""e = COCOeval(gt, gt.loadRes("your_detections.json"), "keypoints")
e.params.kpt_oks_sigmas = np.array(gt.loadCats(1)[0]["sigmas"])  # the 68 face sigmas
e.evaluate(); e.accumulate(); e.summarize()
""" if landmarks else "") + "```"),
        "xml": ("dlib", f"""```python
import dlib
{'dlib.train_shape_predictor("DATASET/dlib.xml", "landmarks.dat", dlib.shape_predictor_training_options())' if landmarks
 else 'dlib.train_simple_object_detector("DATASET/dlib.xml", "faces.svm", dlib.simple_object_detector_training_options())'}
```"""),
        "pts": ("300-W tools and synthface", """```
synthface landmarks train --dataset DATASET --split train -o landmarks.dat   # or --dataset DATASET/images (.pts)
synthface landmarks eval --model landmarks.dat --data DATASET --split val
```"""),
    }
    pad_note = "" if cfg.pad else (
        "\nFor detector training, make the dataset with `--pad` (e.g. 0.25): without it most faces\n"
        "fill the frame and their boxes reach past the image, which dlib's detector trainer refuses.\n")
    pose_files = ""
    if landmarks:
        pose_files = ("\n- `pose.png`: the share of faces per 5-degree bin of measured yaw and pitch"
                      + (" and of their steering targets" if steering else ""))
    extra_lines = ""
    if identity["annotate"].get("detector") == "mmod":
        extra_lines += "\n- Detector: dlib's MMOD CNN face detector, boxes mapped to the HOG convention"
    if identity["annotate"].get("labels") == "flip":
        extra_lines += ("\n- Labels: flip-checked (the 68-point prediction on the image and on its mirror, mapped "
                        "back and averaged); `disagreement` = the two predictions' mean distance / outer-eye-corner "
                        "distance" + (f"; faces above {cfg.annotate.max_disagreement:g} rejected"
                                      if cfg.annotate.max_disagreement is not None else ""))
    if identity.get("augment"):
        a = identity["augment"]
        extra_lines += (f"\n- Augmented at dataset time, labels transformed exactly (synthface.transforms, parameters "
                        f"from each face's seed): roll +-{a['rotate']:g} degrees, scale +-{a['scale']:g}, shift "
                        f"+-{a['shift']:g}, flip {a['flip']:g}, colour +-{a['colour']:g}, blur {a['blur']:g}, "
                        f"noise {a['noise']:g}, JPEG {a['jpeg']:g}")
    chosen = set(formats) | {"torch"}
    loading = "\n\n".join(f"**{title}**\n{text}" for key, (title, text) in snippets.items() if key in chosen)
    return f"""# Synthetic face dataset (synthface {__version__})

{summary['faces']} faces of {size}x{size} pixels, each with its face box
{'and 68 landmarks ' if landmarks else ''}from dlib: {summary['train']} in the train split, {summary['val']} in val.

- Command: `{command or 'make_dataset()'}`
- Generator: {gen_line}
- Seed: {cfg.seed} (image `index` j is made from `candidate_seed(seed, j)`, stored as `seed`)
- Candidates drawn: {summary['candidates']}; rejected: {rej} (rate {summary['rejection_rate']:.1%})
- Filter: exactly one face, detector score >= {cfg.annotate.min_score}, detector upsampling {cfg.annotate.upsample}{extra_lines}

## Files
- `images/SSSSS/NNNNNNNN.png`: the faces, 1,000 a folder
{chr(10).join(line for key, line in files.items() if key in formats)}
- `dataset.json`: this card as data (counts, split, conventions{', pose statistics, keypoint names, skeleton, sigmas, flip_idx' if landmarks else ''}){pose_files}

Only the formats chosen with `--format` are written: {', '.join(sorted(formats))}.

## Loading it
DATASET is this folder.

{loading}

{_pose_section(summary, steering) if landmarks else ""}## Split
The `val` split holds {summary['val']} of the {summary['faces']} faces (`--val-fraction {cfg.val_fraction:g}`), `train` the rest.
A face's split is chosen from its own seed alone (`synthface.journal.split_of`: val when
splitmix64(seed) / 2**64 < {cfg.val_fraction:g}), so it is the same however the dataset was made
(workers, resume, shards and merge). Each format carries it: the `split` column / field,
Ultralytics' trainset.txt / valset.txt, COCO's per-image `split`.

## Conventions
Coordinates are in pixels of the saved image, with pixel centres at integer coordinates
((0, 0) is the centre of the top-left pixel). Boxes are x, y, w, h: the top-left pixel and
the size of dlib's (inclusive) rectangle; in labels.csv, labels.parquet, metadata.jsonl and
dlib.xml a box may reach past the image's edge (the face does: dlib's box of a face filling
the frame), while COCO and YOLO boxes are clipped to the image. Landmarks follow the iBUG
300-W 68-point order, 0-based (x0, y0 .. x67, y67; left and right are the subject's own);
.pts files are 1-based. A point outside the image is kept as is in labels.csv / parquet /
metadata / dlib.xml / .pts and is written (0, 0, 0), not labelled, in COCO and YOLO; inside
the image its visibility is 2 (dlib labels every point, occluded or not).
{pad_note}
## Licence
{LICENCE_NOTE}
"""
