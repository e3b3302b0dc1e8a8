"""Landmark face sets and the scores of a landmark model on them (landmarks.py trains
the models on the same sets).

Face sets come in three shapes, all read into the same plain list of
`Face(image, box, points)` (box x, y, w, h; points (68, 2), 0-based pixel centres):
- a synthface dataset folder (its dlib.xml) or any dlib imglab XML file;
- a folder of 300-W faces: NAME.jpg/.png + NAME.pts. The .pts coordinates are 1-based
  (the 300-W / MATLAB convention) and are shifted by -1 on reading (`pts_origin=1`).
  Measured on 300w-dev/afw, dlib's own model fits the points better that way (NME
  3.49% against 4.16% when they are read as 0-based), which supports the convention.

NME is the mean point-to-point error divided by the outer-eye-corner distance (points
36 and 45, 0-based), the 300-W "inter-ocular" normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError
from synthface.face.geometry import iou, points_box

FAIL_NME = 0.08


@dataclass
class Face:
    """A face to train or score a landmark model on: its image, box and 68 points."""

    image: Path
    box: tuple | None  # x, y, w, h; None: to be found by the detector
    points: np.ndarray  # (68, 2) float


def load_face_set(path, pts_origin: int = 1, split: str = "all") -> list[Face]:
    """Faces with 68 points from any labelled input readers.read_labelled takes: a
    synthface dataset folder (`split`: "train", "val" or "all"; a scene's faces each),
    an imglab XML, a COCO json with keypoints, or a folder of 300-W faces (NAME.pts or
    NAME_K.pts beside the images, searched recursively; the images/ folder of a
    synthface dataset is one). Faces a detector should ignore are left out."""
    from synthface.formats.readers import read_labelled

    path = Path(path).expanduser()
    images = read_labelled(path, split, pts_origin)
    pts_folder = path.is_dir() and not any((path / f).is_file() for f in ("labels.csv", "dlib.xml"))
    faces = []
    for image in images:
        if pts_folder and not image.faces:
            raise SynthfaceError(f"{image.file} has no {Path(image.file).with_suffix('.pts').name} beside it")
        for face in image.faces:
            if face.ignore:
                continue
            if face.landmarks is None:
                raise SynthfaceError(f"{path}: {image.file} has a face without 68 points "
                                     f"({face.attributes.get('parts', 0)} parts); a landmark set needs them")
            box = None if face.box is None else tuple(int(round(v)) for v in face.box)
            faces.append(Face(Path(image.file), box, np.asarray(face.landmarks, float)))
    return faces


def match_detection(detections: list, points: np.ndarray, min_iou: float = 0.3):
    """The detected box that belongs to this face (best overlap with its points' box)."""
    truth = points_box(points)
    best = max(detections, key=lambda d: iou(d, truth), default=None)
    return best if best is not None and iou(best, truth) >= min_iou else None


def point_errors(pred: np.ndarray, truth: np.ndarray, name="") -> np.ndarray:
    """Each point's error over the outer-eye-corner distance (68,): their mean is the NME."""
    eyes = float(np.linalg.norm(truth[36] - truth[45]))
    if not eyes > 0:
        raise SynthfaceError(f"{name or 'a face'}: its outer eye corners (points 36 and 45) coincide, "
                             "so its NME is undefined; fix or remove its points")
    return np.linalg.norm(pred - truth, axis=1) / eyes


def nme(pred: np.ndarray, truth: np.ndarray, name="") -> float:
    """A face's NME: its points' mean error over the outer-eye-corner distance."""
    return float(point_errors(pred, truth, name).mean())


def _detector_boxes(detector, rgb, upsample: int) -> list:
    from synthface.face.annotate import rect_to_box

    return [rect_to_box(r) for r in detector(rgb, upsample)]


def _rect(box):
    import dlib

    x, y, w, h = (int(round(v)) for v in box)
    return dlib.rectangle(x, y, x + w - 1, y + h - 1)


# -- scoring a model ---------------------------------------------------------------------
def points_function(model: str):
    """`points(rgb, box) -> (68, 2)` of a landmark model: a dlib shape predictor (.dat,
    or "dlib68" for dlib's own) or a CNN exported by `landmarks train-cnn` (.pt)."""
    if str(model).endswith(".pt"):
        from synthface.trainers.cnn_net import Exported

        path = Path(model).expanduser()
        if not path.is_file():
            raise SynthfaceError(f"model not found: {path}" + (" (a folder)" if path.is_dir() else ""))
        return Exported(path).points
    from synthface.face.annotate import shape_to_array

    predictor = load_predictor(model)
    return lambda rgb, box: shape_to_array(predictor(rgb, _rect(box)))


def load_predictor(model: str):
    """A shape predictor from a .dat path, or "dlib68" for dlib's own 68-point model."""
    from synthface.face.annotate import load_shape_predictor

    return load_shape_predictor() if model == "dlib68" else load_shape_predictor(path=Path(model).expanduser())


def evaluate_landmarks(model: str, data, *, boxes: str = "detector", upsample: int = 1,
                       progress: bool = True, pts_origin: int = 1, split: str | None = None) -> dict:
    """NME of a shape predictor on real faces with ground-truth points (of a synthface
    dataset, its val split unless `split` says otherwise)."""
    import dlib

    from synthface.core.imaging import read_rgb
    from synthface.core.progress import progress_bar
    from synthface.face.annotate import check_upsample
    from synthface.formats.readers import split_for

    if boxes not in ("detector", "truth"):
        raise SynthfaceError(f"--boxes must be 'detector' or 'truth', got '{boxes}'")
    check_upsample(upsample)
    points_of = points_function(model)
    detector = dlib.get_frontal_face_detector()
    split = split_for(data, split, "val")
    faces = load_face_set(data, pts_origin, split)
    if not faces and split != "all":
        raise SynthfaceError(f"{data}: no faces with landmarks in its {split} split (--split)")
    per_point, names, missed = [], [], 0
    shown = _face_names(faces, data)
    for face, name in progress_bar(list(zip(faces, shown)), desc="landmarks eval", unit="face", disable=not progress,
                                   leave=False):
        rgb = read_rgb(face.image)
        if boxes == "truth":
            box = points_box(face.points)
        else:
            box = match_detection(_detector_boxes(detector, rgb, upsample), face.points)
            if box is None:
                missed += 1
                continue
        per_point.append(point_errors(points_of(rgb, box), face.points, face.image))
        names.append(name)
    from synthface.face.scheme68 import N_POINTS

    per_point = np.array(per_point).reshape(-1, N_POINTS)  # (0, 68) when none was scored
    return {**summarize_nme(per_point.mean(axis=1), len(faces), missed, per_point), "images": names, "split": split}


def _face_names(faces: list, data) -> list[str]:
    """Each face as the report names it: its image's path inside --data (the folder, or the
    label file's folder; links are not followed), else its absolute path; "(face K)" after
    it where the image holds several faces, K counted in the labels' order."""
    import os
    from collections import Counter

    base = Path(os.path.abspath(Path(data).expanduser()))
    base = base if base.is_dir() else base.parent
    many, seen, names = Counter(str(f.image) for f in faces), Counter(), []
    for f in faces:
        path = Path(os.path.abspath(f.image))
        name = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.as_posix()
        seen[str(f.image)] += 1
        names.append(f"{name} (face {seen[str(f.image)]})" if many[str(f.image)] > 1 else name)
    return names


def ced_curve(errors: np.ndarray, n_total: int, limit: float = FAIL_NME, steps: int = 81):
    """Cumulative error distribution: share of all faces (missed ones count as failures)
    with NME at most t, for t in [0, limit]."""
    ts = np.linspace(0, limit, steps)
    share = np.array([(errors <= t).sum() / max(n_total, 1) for t in ts])
    return ts, share


def summarize_nme(errors: np.ndarray, n_total: int, missed: int, per_point: np.ndarray | None = None) -> dict:
    """NME mean, median, failures and AUC of the scored faces' errors; with each face's
    point errors (faces, 68), also the mean error of each region of the face (jaw, brows,
    nose, eyes, mouth)."""
    from synthface.face.scheme68 import REGIONS_68

    if n_total == 0:
        raise SynthfaceError("no faces with landmarks to score")
    if len(errors) == 0:
        raise SynthfaceError("no face could be scored (the detector missed all of them; try --boxes truth)")
    ts, share = ced_curve(errors, len(errors))
    auc = float(np.trapezoid(share, ts) / FAIL_NME)
    r = {"faces": int(n_total), "scored": int(len(errors)), "missed_by_detector": int(missed),
         "nme_mean": float(errors.mean()), "nme_median": float(np.median(errors)),
         "failure_rate": float((errors > FAIL_NME).mean()), "auc_at_8pct": auc}
    if per_point is not None:
        r["nme_by_region"] = {k: round(float(per_point[:, a:b].mean()), 6) for k, (a, b) in REGIONS_68.items()}
    r["errors"] = [round(float(e), 6) for e in errors]
    return r


def plot_ced(results: dict, path) -> None:
    """CED curves (NME on x, share of scored faces on y) for named result dicts."""
    from synthface.core.imaging import plot_curves

    curves = {}
    ts = None
    for name, r in results.items():
        ts, share = ced_curve(np.array(r["errors"]), len(r["errors"]))
        curves[name] = share
    plot_curves(ts * 100, curves, path, x_label="NME %", y_label="share of faces with NME at most x",
                mark="landmarks eval", x_ticks=range(0, int(FAIL_NME * 100) + 1),
                y_range=(0, 1))


def worst_faces_line(r: dict, most: int = 3) -> str | None:
    """The worst-scored failures (NME above 8%) by image, worst first, as `landmarks eval`
    prints them under its summary, so that a face a model put far off can be looked at;
    None when no face failed (or the result names no images)."""
    errors, images = r.get("errors") or [], r.get("images") or []
    failed = sorted((k for k, e in enumerate(errors[:len(images)]) if e > FAIL_NME), key=lambda k: -errors[k])
    if not failed:  # (a stable sort: ties stay in --data's order)
        return None
    shown = ", ".join(f"{images[k]} {errors[k]:.2%}" for k in failed[:most])
    more = f" and {len(failed) - most} more" if len(failed) > most else ""
    return f"worst faces (NME above 8%, worst first): {shown}{more}; each face's NME is in the report (-o)"


def format_nme(r: dict) -> str:
    """A summarize_nme result in one line, as `landmarks eval` prints it."""
    split = f" of the {r['split']} split" if r.get("split", "all") != "all" else ""
    return (f"{r['scored']} of {r['faces']} faces{split} scored ({r['missed_by_detector']} missed by the detector): "
            f"NME mean {r['nme_mean']:.2%}, median {r['nme_median']:.2%}, failures (>8%) "
            f"{r['failure_rate']:.1%}, AUC@8% {r['auc_at_8pct']:.3f}"
            + ("; by region: " + ", ".join(f"{k} {v:.2%}" for k, v in r["nme_by_region"].items())
               if r.get("nme_by_region") else ""))
