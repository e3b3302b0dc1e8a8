"""Box geometry shared by the writers, the readers, scenes and the detector. A leaf: it
imports nothing of synthface's.

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
