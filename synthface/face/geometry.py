"""Box geometry shared by the writers, the readers, scenes and the detector, and the face
box conventions (`make-dataset --box`, convention_box). A leaf: it imports nothing of
synthface's.

Boxes are x, y, w, h in pixels, (x, y) the top-left pixel (dlib's rectangle, inclusive:
w = right - left + 1). Points are 0-based pixel centres.
"""

from __future__ import annotations

import numpy as np


def iou(a, b) -> float:
    """Intersection over union of two x, y, w, h boxes (0 when neither has an area)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def clipped_box(box, width: int, height: int | None = None) -> list:
    """x, y, w, h clipped to the image (COCO and YOLO never reach past its edges)."""
    height = width if height is None else height
    x, y, w, h = box
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    return [x0, y0, max(x1 - x0, 0), max(y1 - y0, 0)]


def square(box) -> tuple:
    """The square of the same centre and a side of the mean of w and h: dlib's detector
    trainer needs boxes of one aspect ratio (its window's); HOG's own boxes are square."""
    x, y, w, h = box
    side = (w + h) / 2
    return (x + w / 2 - side / 2, y + h / 2 - side / 2, side, side)


def reshape(box, aspect: float) -> tuple:
    """The box of the same centre and area with height / width = `aspect`: dlib's
    detector trainer needs boxes of one aspect ratio, and reshaping to the dataset's own
    (rather than squaring) keeps its box convention (a head box stays taller than wide)."""
    x, y, w, h = box
    w2 = (w * h / aspect) ** 0.5
    h2 = aspect * w2
    return (x + w / 2 - w2 / 2, y + h / 2 - h2 / 2, w2, h2)


def points_box(points) -> tuple:
    """The inclusive pixel box around points (the dlib box convention)."""
    p = np.asarray(points, float)
    x0, y0 = p.min(0)
    x1, y1 = p.max(0)
    return (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))


def points_extent(points) -> tuple:
    """The points' extent as a box with 0-based pixel edges (x1 - x0 wide): the face box
    of photos labelled with 300-W points (HELEN's, for detector work)."""
    p = np.asarray(points, float)
    x0, y0 = p.min(0)
    x1, y1 = p.max(0)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def keypoint_triplets(points, width: int, height: int | None = None, visibility=None) -> list:
    """(x, y, v) per point, the COCO and YOLO form: v = 2 labelled and visible, 1 labelled
    but hidden (`visibility` says so: an occluder), and (0, 0, 0) outside the image."""
    height = width if height is None else height
    out = []
    for i, (px, py) in enumerate(points):
        if not (0 <= px < width and 0 <= py < height):
            out += [0, 0, 0]
        else:
            out += [px, py, 2 if visibility is None else int(visibility[i])]
    return out


# -- box conventions ------------------------------------------------------------------
# How a face box is drawn, computed from the 68 points (which every face has, turned or
# not), for a detector to be trained on the boxes its benchmark annotates.
BOX_CONVENTIONS = {
    "dlib": "the box dlib's HOG detector found, brows to lower lip",
    "points": "the square around the 68 points (centred on their extent, side = its larger side), "
              "the convention of landmark sets such as 300-W",
    "head": "forehead to chin, ear to ear (WIDER FACE / FDDB style): the 68 points' extent plus a hairline "
            "one facial third above the brows, along the face's own up axis",
}
BROWS = slice(17, 27)  # points 17-26, both eyebrows
CHIN = 8
# Facial thirds (hairline -> brows = brows -> nose base = nose base -> chin, the
# anthropometric canon): the hairline sits one third above the brows, and the brows are
# two thirds above the chin, so the hairline is half the brow-to-chin distance above the
# brows. Brow to chin spans two thirds, so it measures a third more steadily than the
# nose base (point 33) alone, which the mouth's opening and the pitch move.
FOREHEAD = 0.5


def convention_box(points, dlib_box, convention: str) -> tuple:
    """A face's box in `convention` (BOX_CONVENTIONS), as int x, y, w, h in the dlib box
    convention (inclusive pixels: a box around pixel centres x0..x1 is x1 - x0 + 1 wide).
    "dlib": `dlib_box` itself; "points": the square around the 68 points; "head": the
    axis-aligned extent of the 68 points and of the brows moved up to the hairline along
    the face's up axis (chin -> brow midpoint), so a rolled or turned face's forehead is
    where that face's is."""
    if convention == "dlib":
        return tuple(dlib_box)
    p = np.asarray(points, float)
    if convention == "points":
        lo, hi = np.round(p.min(0)), np.round(p.max(0))  # the pixels of the outermost points
        side = (hi - lo + 1).max()
        # centred on the extent, and never leaving out the outermost points' pixels
        start = np.clip(np.round((p.min(0) + p.max(0)) / 2 - (side - 1) / 2), hi - side + 1, lo)
        return (int(start[0]), int(start[1]), int(side), int(side))
    if convention == "head":
        brows = p[BROWS]
        up = brows.mean(0) - p[CHIN]  # chin -> brow midpoint: two facial thirds
        hairline = brows + FOREHEAD * up
        q = np.vstack([p, hairline])
        (x0, y0), (x1, y1) = np.round(q.min(0)), np.round(q.max(0))
        return (int(x0), int(y0), int(x1 - x0) + 1, int(y1 - y0) + 1)
    raise ValueError(f"unknown box convention {convention!r}")


def pad_pixels(size: int, pad: float) -> int:
    """--pad's border in pixels, a side, for images of `size`."""
    return int(round(size * pad))
