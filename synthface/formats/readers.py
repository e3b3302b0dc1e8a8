"""One reader for every kind of labelled input, yielding the label model (labels.py):
`read_labelled(path)` -> [LabelledImage], each with its faces.

The forms, told apart by what `path` is:
- a synthface dataset folder (faces or scenes): its labels.csv, a row per face, rows of
  one image grouped (`split`: "train", "val" or "all");
- an imglab XML file (dlib.xml of a dataset, or any), or a folder holding dlib.xml;
- a COCO json file (boxes, `iscrowd` faces ignored; 68 keypoints when present);
- a folder of images with 300-W points beside them, searched recursively: NAME.pts for
  a face crop (300-W's own layout, and a synthface dataset's images/), NAME_1.pts,
  NAME_2.pts ... for the faces of a whole photo (HELEN's). These faces have no box
  (`Face.box` None): a landmark trainer gives them the detector's, a detector trainer
  their points' extent. Images with no point file are images without faces.

Image paths come back joined to the folder they are relative to. Every malformed value
(a box that is not four numbers within MAX_COORD pixels with a width and height above 0,
a point that is not such a number) is one line that names the file and where in it
(check_face_values), before any trainer sees it.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from xml.sax.saxutils import unescape

import numpy as np

from synthface.errors import SynthfaceError
from synthface.core.imagefiles import IMAGE_EXTS
from synthface.face.labels import BOX_COLS, Face, LabelledImage
from synthface.face.scheme68 import N_POINTS, POINT_COLS, parse_pts

SPLITS = ("train", "val", "all")
# pixels: no photo is a million pixels a side, and dlib keeps boxes and points as integers
# (its XML reader refuses 1e300): a larger coordinate is a damaged file, not a face
MAX_COORD = 1_000_000


def check_face_values(where: str, box, points=None, name: str = "box") -> None:
    """A face's box (x, y, w, h: four numbers within MAX_COORD, w and h above 0) and
    points ((68, 2) numbers within MAX_COORD), or one line naming `where`."""
    if box is not None:
        if len(box) != 4 or not all(math.isfinite(v) and abs(v) <= MAX_COORD for v in box):
            raise SynthfaceError(f"{where}: its {name} [{', '.join(f'{v:g}' for v in box)}] is not x, y, w, h in "
                                 f"pixels (four numbers within +-{MAX_COORD:,})")
        if not (box[2] > 0 and box[3] > 0):
            raise SynthfaceError(f"{where}: its {name} has width {box[2]:g} and height {box[3]:g}; both must be "
                                 "above 0")
    if points is not None:
        bad = ~(np.isfinite(points) & (np.abs(points) <= MAX_COORD)).all(1)
        if bad.any():
            k = int(bad.argmax())
            raise SynthfaceError(f"{where}: its point {k} is ({points[k][0]:g}, {points[k][1]:g}), not a pixel "
                                 f"position within +-{MAX_COORD:,}")


def read_pts(path, origin: int = 1) -> np.ndarray:
    """A 300-W .pts file -> (68, 2) points, 0-based (`origin`: the file's first pixel)."""
    path = Path(path)
    try:
        points = parse_pts(path.read_text(errors="replace"), origin)
    except ValueError as exc:
        raise SynthfaceError(f"{path}: {exc}") from None
    except OSError as exc:
        raise SynthfaceError(f"{path}: cannot be read ({exc.strerror})") from None
    check_face_values(str(path), None, points)
    return points


def split_for(path, split: str | None, default: str) -> str:
    """The split to read of `path`: `split` when given; else `default` ("train" to train,
    "val" to score) for a synthface dataset folder, which has splits, and "all" for any
    other input (300-W folders, imglab XML, COCO), which has none."""
    if split is not None:
        return split
    return default if (Path(path) / "labels.csv").is_file() else "all"


def read_labelled(path, split: str = "all", pts_origin: int = 1) -> list[LabelledImage]:
    """Every labelled image of `path` (see the module docstring for the forms)."""
    path = Path(path).expanduser()
    if split not in SPLITS:
        raise SynthfaceError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not path.exists():
        raise SynthfaceError(f"not found: {path}")
    if split != "all" and not (path / "labels.csv").is_file():
        raise SynthfaceError(f"--split {split} needs a synthface dataset folder (with labels.csv): {path}")
    if path.is_file():
        return read_coco(path) if path.suffix.lower() == ".json" else read_imglab(path)
    if (path / "labels.csv").is_file():
        return read_dataset(path, split)
    if (path / "dlib.xml").is_file():
        return read_imglab(path / "dlib.xml")
    return read_pts_folder(path, pts_origin)


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
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SynthfaceError(f"{path}: not a readable labels.csv ({str(exc).splitlines()[0]})") from None
    missing = [c for c in ["file", *BOX_COLS] if c not in frame]
    if missing:
        raise SynthfaceError(f"{path} lacks the column(s) {', '.join(missing)}: not a synthface labels file")
    return _rows_of_split(frame, split, path)


def _rows_of_split(frame, split: str, path: Path):
    """The rows of one split ("all": every row); the index stays the row's place in the file."""
    if split == "all":
        return frame
    if "split" not in frame:
        raise SynthfaceError(f"{path} has no split column (made by an older synthface); "
                             "run the same make-dataset command with --resume to write it again")
    return frame[frame["split"] == split]


def _finite_rows(frame, cols, path: Path, what: str) -> np.ndarray:
    """The columns as numbers, each finite and within MAX_COORD pixels, or one line
    naming the file's line and the column."""
    import pandas as pd

    values = frame[cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(values) & (np.abs(values) <= MAX_COORD))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raw = f"{cols[col]} is {frame[cols[col]].iloc[row]!s:.40}"
        problem = "that is not a number" if not np.isfinite(values[row, col]) else f"beyond +-{MAX_COORD:,} px"
        raise SynthfaceError(f"{path}, line {int(frame.index[row]) + 2}: a {what} {problem} ({raw})")
    return values


def read_dataset(root: Path, split: str = "all") -> list[LabelledImage]:
    """A synthface dataset folder (faces or scenes) through its labels.csv: every row
    checked (a damaged value is one line whichever split it is in), one split's read."""
    if split not in SPLITS:
        raise SynthfaceError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    frame = read_labels(root)
    path = root / "labels.csv"
    boxes = _finite_rows(frame, BOX_COLS, path, "box value")
    empty = ~((boxes[:, 2] > 0) & (boxes[:, 3] > 0))
    if empty.any():
        row = int(empty.argmax())
        raise SynthfaceError(f"{path}, line {int(frame.index[row]) + 2}: a box of width {boxes[row, 2]:g} and "
                             f"height {boxes[row, 3]:g}; both must be above 0")
    points = (_finite_rows(frame, POINT_COLS, path, "landmark").reshape(-1, N_POINTS, 2)
              if set(POINT_COLS) <= set(frame.columns) else None)
    kept = frame.index.isin(_rows_of_split(frame, split, path).index)
    frame, boxes = frame[kept], boxes[kept]
    points = None if points is None else points[kept]
    skip = {"file", "split", *BOX_COLS, "score", *POINT_COLS}
    extra = [c for c in frame.columns if c not in skip]
    scores = frame["score"].tolist() if "score" in frame else [None] * len(frame)
    splits = frame["split"].tolist() if "split" in frame else [""] * len(frame)
    columns = {c: frame[c].tolist() for c in extra}
    # a scene's rows share its `scene`; a face image's row is the image (its seed and index)
    image_cols = ["scene"] if "scene" in columns else [c for c in ("seed", "index") if c in columns]
    images: dict[str, LabelledImage] = {}
    for i, file in enumerate(frame["file"].tolist()):
        attrs = {c: v[i] for c, v in columns.items()}
        image = images.get(file)
        if image is None:
            image = images[file] = LabelledImage(str(root / file), split=splits[i],
                                                 attributes={c: attrs[c] for c in image_cols})
        image.faces.append(Face(tuple(float(v) for v in boxes[i]), scores[i],
                                None if points is None else points[i], ignore=bool(attrs.get("truncated", 0)),
                                attributes=attrs))
    return list(images.values())


def read_imglab(xml: Path) -> list[LabelledImage]:
    """An imglab XML file, through dlib's own reader; 68 parts are the landmarks."""
    from synthface.face.annotate import load_imglab

    meta = load_imglab(xml)
    out = []
    for img in meta.images:
        faces = []
        # dlib hands back attribute text undecoded: &amp; and the like, as XML writers escape them
        name = unescape(img.filename, {"&quot;": '"', "&apos;": "'"})
        for k, b in enumerate(img.boxes):
            parts = b.parts
            pts = (np.array([(parts[f"{i:02d}"].x, parts[f"{i:02d}"].y) for i in range(N_POINTS)], float)
                   if len(parts) == N_POINTS and all(f"{i:02d}" in parts for i in range(N_POINTS)) else None)
            r = b.rect
            box = (r.left(), r.top(), r.width(), r.height())
            # dlib reads a negative width as an empty box (width 0)
            check_face_values(f"{xml}: image {name}, box {k + 1}", box, pts)
            faces.append(Face(box, None, pts, ignore=bool(b.ignore), attributes={"parts": len(parts)}))
        out.append(LabelledImage(str(xml.parent / name), faces=faces))
    return out


MAX_IMAGE_SIDE = 100_000  # pixels: a COCO image's width or height above this is a damaged file


def _shown(value) -> str:
    """A JSON value as a message shows it: as JSON, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _coco_image(path: Path, k: int, im) -> tuple:
    """(id, LabelledImage) of COCO's images[k], checked: an id, a file_name that is text,
    a width and height (when given) that are whole numbers of pixels."""
    if not isinstance(im, dict) or isinstance(im.get("id"), (bool, float)) or \
            not isinstance(im.get("id"), (int, str)):
        raise SynthfaceError(f"{path}: image {k + 1} of \"images\" is not an object with an id (a number or text)")
    where = f"{path}: image {im['id']}"
    name = im.get("file_name")
    if not isinstance(name, str) or not name.strip():
        raise SynthfaceError(f"{where}: its file_name {_shown(name)} is not a file name (text)")
    sides = []
    for key in ("width", "height"):
        v = im.get(key)
        if v is None:  # not given: the readers that need it read the image
            sides.append(0)
            continue
        if not ((type(v) is int or (type(v) is float and v.is_integer())) and 1 <= v <= MAX_IMAGE_SIDE):
            raise SynthfaceError(f"{where}: its {key} {_shown(v)} is not a whole number of pixels from 1 to "
                                 f"{MAX_IMAGE_SIDE:,}")
        sides.append(int(v))
    return im["id"], LabelledImage(str(path.parent / name), sides[0], sides[1], str(im.get("split", "")))


def read_coco(path: Path) -> list[LabelledImage]:
    """A COCO json file: boxes (iscrowd ones ignored), 68 keypoints when present."""
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise SynthfaceError(f"{path}: not a COCO json file (not JSON: {str(exc).splitlines()[0]})") from None
    if not (isinstance(data, dict) and isinstance(data.get("images"), list)
            and isinstance(data.get("annotations"), list)):
        raise SynthfaceError(f"{path}: not a COCO json file (no \"images\" and \"annotations\" lists)")
    images = dict(_coco_image(path, k, im) for k, im in enumerate(data["images"]))
    anns = data["annotations"]
    for k, a in enumerate(anns):
        ident = a.get("id") if isinstance(a, dict) else None
        where = f"{path}: " + (f"annotation {_shown(ident)}" if isinstance(ident, (int, str)) else
                               f"annotation {k + 1} of \"annotations\" (it has no id)")
        try:
            if not isinstance(a["bbox"], list):
                raise TypeError("bbox")
            box = tuple(float(v) for v in a["bbox"])
            image = images[a["image_id"]]
        except (KeyError, TypeError, ValueError, OverflowError):
            raise SynthfaceError(f"{where}: no bbox of four numbers, or an unknown image_id") from None
        if len(box) != 4:
            raise SynthfaceError(f"{where}: its bbox {a['bbox']} is not x, y, w, h (four numbers)")
        check_face_values(where, box, name="bbox")
        pts = vis = None
        kp = a.get("keypoints")
        if isinstance(kp, list) and len(kp) == 3 * N_POINTS:
            try:
                arr = np.asarray(kp, float).reshape(N_POINTS, 3)
            except (TypeError, ValueError, OverflowError):
                raise SynthfaceError(f"{where}: its keypoints are not all numbers") from None
            pts = arr[:, :2]
            check_face_values(where, None, pts)
            if not np.isin(arr[:, 2], (0, 1, 2)).all():
                raise SynthfaceError(f"{where}: a keypoint visibility is not 0, 1 or 2 (COCO's flags)")
            vis = arr[:, 2].astype(int)
        score, attributes = a.get("score"), a.get("attributes")
        if score is not None and not (type(score) is int or (type(score) is float and math.isfinite(score))):
            raise SynthfaceError(f"{where}: its score {_shown(score)} is not a number")
        if attributes is not None and not isinstance(attributes, dict):
            raise SynthfaceError(f"{where}: its attributes are not an object")
        image.faces.append(Face(box, score, pts, vis, ignore=bool(a.get("iscrowd")),
                                attributes=dict(attributes or {})))
    return list(images.values())


def _face_number(pts: Path, photo: Path) -> int | None:
    """K of PHOTO_K.pts (None when the name is not of that form)."""
    m = re.fullmatch(re.escape(photo.stem) + r"_(\d+)", pts.stem)
    return int(m.group(1)) if m else None


def read_pts_folder(folder: Path, pts_origin: int = 1) -> list[LabelledImage]:
    """Images with NAME.pts (one face) or NAME_1.pts, NAME_2.pts ... beside them."""
    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not photos:
        raise SynthfaceError(f"{folder}: no labels.csv or dlib.xml, and no images with .pts files")
    by_stem = defaultdict(list)
    for pts in folder.rglob("*.pts"):
        by_stem[(pts.parent, pts.stem.rsplit("_", 1)[0])].append(pts)
    out = []
    for photo in photos:
        own = photo.with_suffix(".pts")
        if own.is_file():
            files = [own]
        else:
            numbered = [(k, p) for p in by_stem.get((photo.parent, photo.stem), [])
                        if (k := _face_number(p, photo)) is not None]
            files = [p for _, p in sorted(numbered)]
        faces = [Face(None, None, read_pts(p, pts_origin), attributes={"pts": p.name}) for p in files]
        out.append(LabelledImage(str(photo), faces=faces))
    return out
