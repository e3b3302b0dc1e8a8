"""Group photos for detector scenes, and the head mask a face is pasted with.

A team photo, a class photo, a crowd at a table: rows of faces at about the same size,
each on a neck and shoulders, the rows behind a little smaller and higher, staggered so
that each face looks between two in front. Faces that float as squares on a background
teach a detector none of that context (shoulders below every face, faces next to faces),
and a grey scan of such a photo is where a detector from scattered faces did worst.

`group_places` lays out the rows; `draw_body` puts a neck and shoulders under a placed
face (before the face is pasted, so the face's own neck runs into them); `head_mask` is
the paste mask of blend "head": the face, the forehead and hair above the brows and the
neck below the chin, from the 68 points, so a face keeps its head's outline instead of
the generator's square.
"""

from __future__ import annotations

import math

import numpy as np

JAW = slice(0, 17)
BROWS = slice(17, 27)
CHIN = 8


def head_mask(points, height: int, width: int) -> np.ndarray:
    """uint8 mask (0 / 255) of a face image of `height` x `width` px with its 68 `points`:
    the jaw line, the brows moved up 85% of the chin-to-brow distance (forehead and hair),
    the temples, and the neck from the jaw's lower corners down to the image's bottom."""
    import cv2

    p = np.asarray(points, np.float64)
    up = p[BROWS].mean(0) - p[CHIN]
    span = p[16] - p[0]
    out = span / max(np.linalg.norm(span), 1e-6)  # the face's right, in the image
    # the skull: half an ellipse over the brows, as wide as the jaw and 85% of the chin-to-brow distance high
    centre, half = p[BROWS].mean(0), np.linalg.norm(span) * 0.55
    t = np.linspace(0, np.pi, 24)[:, None]
    skull = centre + np.cos(t) * out * half * 1.0 + np.sin(t) * up * 0.85
    head = cv2.convexHull(np.round(np.vstack([p[JAW], skull]) * 4).astype(np.int32))
    down = -up / max(np.linalg.norm(up), 1e-6) * 4 * (height + width)  # to past the image's edge
    neck = np.array([p[5], p[11], p[11] + down + 0.1 * out * np.linalg.norm(span),
                     p[5] + down - 0.1 * out * np.linalg.norm(span)])
    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, head, 255, cv2.LINE_AA, shift=2)
    cv2.fillConvexPoly(mask, np.round(neck * 4).astype(np.int32), 255, cv2.LINE_AA, shift=2)
    return mask


def group_places(n: int, size: int, width_range: tuple, rng, smallest: float | None = None) -> list:
    """Where a group photo's faces go: [(centre x, centre y, face box width)] for `n`
    faces, back row first. The face width is drawn log-uniform in `width_range` (one for
    the photo), then made smaller (by 8% steps, down to `smallest`, by default the range's
    low end, and 16 px at least) until the rows hold all n, as a photographer steps back
    for a bigger group;
    faces sit 1.25-1.6 widths apart in rows 1.25-1.55 widths apart, each row behind 4%
    smaller, shifted half a place, and every face jittered a little. Only when even the
    smallest faces leave no room are fewer than n placed."""
    lo, hi = width_range
    # at most 1/2.6 of the frame: the front row's head and shoulders must fit in it
    w0 = min(math.exp(rng.uniform(math.log(lo), math.log(hi))), size / 2.6)
    fx, fy, ft = rng.uniform(1.25, 1.6), rng.uniform(1.25, 1.55), rng.uniform(0, 1)
    floor = max(16.0, min(lo if smallest is None else smallest, w0))
    while w0 > floor and sum(k for _, k, _ in _row_plan(n, size, w0, fx, fy, ft)) < n:
        w0 = max(floor, w0 * 0.92)
    dx = w0 * fx
    places = []  # rows, the front one first
    for r, (y, k, scale) in enumerate(_row_plan(n, size, w0, fx, fy, ft)):
        x0 = size / 2 - (k - 1) * dx * scale / 2
        places.append([(x0 + j * dx * scale + rng.uniform(-0.08, 0.08) * w0, y + rng.uniform(-0.06, 0.06) * w0,
                        w0 * scale * rng.uniform(0.92, 1.08)) for j in range(k)])
    placed = [p for row in reversed(places) for p in row]  # back row first: the front rows paint over them
    return [(cx, cy, w) for cx, cy, w in placed if w / 2 < cx < size - w / 2 and w / 2 < cy < size - w / 2]


def group_capacity(size: int, width: float) -> int:
    """How many faces of `width` a group photo in a `size` frame holds whatever its draws
    (the widest spacing, the front row highest): a group scene takes no more."""
    return sum(k for _, k, _ in _row_plan(10 ** 4, size, min(width, size / 2.6), 1.6, 1.55, 0.0))


def _row_plan(n: int, size: int, w0: float, fx: float, fy: float, ft: float) -> list:
    """The rows of a group photo with face width w0, front first: [(centre y, faces,
    scale)], as many as n needs and the frame holds (a row whose hair would leave the
    top is not used). The front row sits low enough for shoulders to reach the bottom."""
    dx, dy = w0 * fx, w0 * fy
    per_row = max(1, int(size * 0.94 // dx))
    front = size - (1.6 - 0.7 * ft) * w0
    rows, left, r = [], n, 0
    while left > 0:
        scale = 0.96 ** r
        y = front - r * dy
        if y - 0.9 * w0 * scale < 0:
            break
        k = min(left, max(1, per_row - r % 2))  # staggered rows hold one fewer, centred: half a place along
        rows.append((y, k, scale))
        left, r = left - k, r + 1
    return rows


def clothing_colour(rng) -> tuple:
    """A shirt or jacket's colour: mostly dark or muted, sometimes a team's bright one."""
    if rng.random() < 0.3:
        return tuple(float(v) for v in rng.uniform(40, 230, 3))
    level = rng.uniform(15, 160)
    return tuple(float(np.clip(level + v, 0, 255)) for v in rng.uniform(-25, 25, 3))


def draw_body(scene: np.ndarray, points, colour: tuple, skin: tuple, rng) -> None:
    """A neck in `skin` and shoulders in `colour` under a face whose 68 scene `points` are
    given, down to the scene's bottom edge (anti-aliased; a collar line now and then)."""
    import cv2

    p = np.asarray(points, np.float64)
    width = float(np.linalg.norm(p[16] - p[0]))
    chin = p[CHIN]
    size = scene.shape[0]
    neck_w, neck_h = width * rng.uniform(0.38, 0.5), width * rng.uniform(0.3, 0.5)
    top = chin[1] - 0.15 * width
    cv2.rectangle(scene, (int(chin[0] - neck_w / 2), int(top)), (int(chin[0] + neck_w / 2), int(chin[1] + neck_h)),
                  skin, -1, cv2.LINE_AA)
    shoulders = chin[1] + neck_h + width * 0.35
    axes = (int(width * rng.uniform(0.95, 1.3)), int(width * rng.uniform(0.4, 0.6)))
    cv2.ellipse(scene, (int(chin[0]), int(shoulders)), axes, float(rng.uniform(-4, 4)), 180, 360, color=colour,
                thickness=-1, lineType=cv2.LINE_AA)
    cv2.rectangle(scene, (int(chin[0] - axes[0]), int(shoulders)), (int(chin[0] + axes[0]), size), colour, -1,
                  cv2.LINE_AA)
    if rng.random() < 0.5:  # a collar: a V of a lighter or darker shade
        shade = tuple(float(np.clip(c * rng.uniform(0.5, 1.6), 0, 255)) for c in colour)
        y0 = int(chin[1] + neck_h * 0.6)
        cv2.line(scene, (int(chin[0] - neck_w * 0.7), y0), (int(chin[0]), int(y0 + neck_h)), shade, 2, cv2.LINE_AA)
        cv2.line(scene, (int(chin[0] + neck_w * 0.7), y0), (int(chin[0]), int(y0 + neck_h)), shade, 2, cv2.LINE_AA)


HAIR = np.float32([[25, 18, 12], [50, 34, 22], [90, 62, 38], [135, 100, 62], [200, 170, 120], [160, 158, 152]])
HAIR_ODDS = np.float64([0.3, 0.3, 0.15, 0.1, 0.08, 0.07])


def extend_head(img: np.ndarray, points, rng) -> tuple[np.ndarray, int]:
    """A tight face crop grown by half its size on every side, so the head mask has hair
    and a neck to show: the crop's edge rows stretched outwards and blurred (skin runs
    on into the neck), and above the brows a hair colour (black to blond or grey, drawn
    per face) laid over them with a strand texture. (image, pad): the crop sits at
    (pad, pad) in it."""
    import cv2

    h, w = img.shape[:2]
    pad = max(h, w) // 2
    big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE).astype(np.float32)
    big = cv2.GaussianBlur(big, (0, 0), max(h, w) / 12)
    p = np.asarray(points, np.float64) + pad
    up = p[BROWS].mean(0) - p[CHIN]
    unit = up / max(np.linalg.norm(up), 1e-6)
    yy, xx = np.mgrid[0:h + 2 * pad, 0:w + 2 * pad].astype(np.float32)
    brow = p[BROWS].mean(0)
    height = (xx - brow[0]) * np.float32(unit[0]) + (yy - brow[1]) * np.float32(unit[1])  # along the face's up
    hairness = np.clip(height / np.float32(0.25 * np.linalg.norm(up)), 0, 1)[..., None]
    colour = HAIR[int(rng.choice(len(HAIR), p=HAIR_ODDS))] * np.float32(rng.uniform(0.8, 1.2))
    strands = cv2.GaussianBlur(rng.standard_normal((h + 2 * pad, w + 2 * pad)).astype(np.float32), (0, 0), 1.0)
    hair = colour[None, None, :] * (1 + np.float32(0.25) * strands[..., None])
    big = big * (1 - 0.8 * hairness) + hair * (0.8 * hairness)
    inside = np.zeros(big.shape[:2], np.float32)  # the crop itself as it was, its edge feathered into the rest
    inside[pad:pad + h, pad:pad + w] = 1
    inside = cv2.GaussianBlur(inside, (0, 0), max(h, w) / 25)[..., None]
    inside[pad + h // 8:pad + h - h // 8, pad + w // 8:pad + w - w // 8] = 1
    out = np.pad(img.astype(np.float32), ((pad, pad), (pad, pad), (0, 0))) * inside + big * (1 - inside)
    return np.clip(out, 0, 255).astype(np.uint8), pad
