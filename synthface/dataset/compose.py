"""The composition of one scene: its background, its faces pasted on it (or, for a group
photo, on necks and shoulders in rows: groups.py), then the photo-like variation
(photometric.py). Every draw comes from the scene's own seed, in streams of its own
(_STREAM), so a scene is the same whatever the run, its workers or a resume; scenes.py
runs the scenes and labels them.

Per face: the generated square image is scaled so that its face box has the drawn width
(`--face-size`, log-uniform), turned by a small angle, colour-matched to the background
beneath it (channel means moved a quarter of the way), and blended one of five ways,
chosen per face: none (a hard square), gaussian (the square's edge blurred), feather (an
ellipse around the face, blurred), poisson (cv2.seamlessClone, which matches colour
itself) and head (the face's outline from its points with hair and neck grown from the
crop: groups.head_mask, groups.extend_head). A place is accepted when the new face's box overlaps no earlier face box (IoU <
0.1) and the new square covers at most a quarter of any earlier box. Some faces get an occluder (a background patch over 20-45%
of the box, its points flagged occluded); some are cut by the border (up to 30% of the
box outside; such a box is marked truncated: clipped in COCO / YOLO, ignored in dlib.xml).
The box and the 68 points go through the same map as the pixels (pixel centres at
integers).

The procedural background (no --backgrounds): a smooth colour field plus many random
rectangles, ellipses, lines and noise texture at several scales. It gives the detector
edges, blobs and textures to learn "not a face" from (HOG keys on gradients; flat colour
teaches nothing), works offline, and costs no data. `--backgrounds DIR` takes face-free
photos instead (random crops of 40-100% of the shorter side, flips).
"""

from __future__ import annotations

import math

import numpy as np

from synthface.face.geometry import iou
from synthface.core.imagefiles import image_files
from synthface.dataset.photometric import normal_noise, photometric

# a scene seed's draws: [seed, _STREAM] its composition; [seed, _STREAM, k]: k = 1 group photo or not,
# 2 the photometric step, 3 a hard negative's background (negatives.py), 4 its number of faces (scenes.py)
_STREAM = 0x5CE7E


# -- backgrounds --------------------------------------------------------------------------
MIN_BACKGROUND = 16  # px a side: the crop of a smaller photo can be empty


def background_files(folder, out=None) -> list:
    """The background photos under `folder`, leaving out a dataset folder `out` inside it
    (a scenes run's own images are no backgrounds)."""
    return image_files(folder, "--backgrounds", out)


def procedural_background(rng, size: int) -> np.ndarray:
    """A `size` px square face-free background drawn from `rng` (see the module docstring)."""
    import cv2

    from synthface.core.imaging import saturate_uint8

    small = rng.uniform(0, 255, (4, 4, 3)).astype(np.float32)
    # a smooth colour field: cubic to an eighth of the frame, then linear (OpenCV's cubic
    # straight from 4 px to 640 costs 7 ms, the two steps 0.3)
    img = cv2.resize(cv2.resize(small, (size // 8, size // 8), interpolation=cv2.INTER_CUBIC), (size, size),
                     interpolation=cv2.INTER_LINEAR)
    for _ in range(int(rng.integers(20, 60))):
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        kind = rng.integers(3)
        x, y = (int(v) for v in rng.integers(0, size, 2))
        s = int(size * math.exp(rng.uniform(math.log(0.02), math.log(0.4))))
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + s, y + int(s * rng.uniform(0.3, 3))), colour, -1 if rng.random() < 0.7 else 2)
        elif kind == 1:
            cv2.ellipse(img, (x, y), (s // 2 + 1, int(s * rng.uniform(0.2, 1)) // 2 + 1), float(rng.uniform(0, 180)),
                        0, 360, color=colour, thickness=-1 if rng.random() < 0.7 else 2)
        else:
            x2, y2 = (int(v) for v in rng.integers(0, size, 2))
            cv2.line(img, (x, y), (x2, y2), colour, int(rng.integers(1, 6)))
    # texture at several scales (32, 8 and 2 px grains): each coarser layer is carried up
    # to the next one's grid, and only the sum is stretched to the whole frame
    texture = None
    for scale in (32, 8, 2):
        n = size // scale + 1
        layer = normal_noise(rng, (n, n, 3), 12.0)
        texture = layer if texture is None else layer + cv2.resize(texture, (n, n), interpolation=cv2.INTER_LINEAR)
    img += cv2.resize(texture, (size, size), interpolation=cv2.INTER_LINEAR)
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.3, 1.5)))
    # photos are far less saturated than random colours: each pixel moved towards its grey
    k = float(rng.uniform(0.2, 0.6))
    to_grey = np.full((3, 3), (1 - k) / 3, np.float32) + np.eye(3, dtype=np.float32) * k
    return saturate_uint8(cv2.transform(img, to_grey))


def photo_background(rng, files: list, size: int) -> np.ndarray:
    """A `size` px square crop (40-100% of the shorter side, flipped half the time) of one of
    the photos `files`, drawn from `rng`."""
    import cv2

    from synthface.core.imaging import read_rgb

    img = read_rgb(files[int(rng.integers(len(files)))])
    h, w = img.shape[:2]
    side = int(min(h, w) * rng.uniform(0.4, 1.0))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = img[y:y + side, x:x + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=cv2.INTER_LINEAR)


# -- pasting -------------------------------------------------------------------------------
def _covered(box, square) -> float:
    """Share of `box` under the axis-aligned `square`."""
    bx, by, bw, bh = box
    sx, sy, ss, _ = square
    iw = max(0.0, min(bx + bw, sx + ss) - max(bx, sx))
    ih = max(0.0, min(by + bh, sy + ss) - max(by, sy))
    return iw * ih / (bw * bh)


def paste_map(face_box, face_image_size: int, width: float, angle: float, centre) -> np.ndarray:
    """2x3 map from the face image's pixels to the scene's: scale so that the face box is
    `width` wide, turn by `angle` about the box centre, put that centre at `centre`."""
    import cv2

    x, y, w, h = face_box
    k = width / w
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
    m = cv2.getRotationMatrix2D((cx, cy), angle, k)
    m[:, 2] += (centre[0] - cx, centre[1] - cy)
    return m


def is_group(scene_seed: int, cfg) -> bool:
    """Whether the scene of this seed is a group photo (a draw of its own, share cfg.groups)."""
    return bool(np.random.default_rng([int(scene_seed), _STREAM, 1]).random() < cfg.groups)


def compose_scene(scene_seed: int, faces: list, cfg, files: list | None):
    """One scene from (rgb face image, box, landmarks (68, 2)) tuples: (image, placed) with
    placed = [(k, box, points, truncated, occluded point flags, blend, angle)] for the faces that
    found a place (k: index into `faces`); `cfg` a SceneConfig (scenes.py), `files` the
    background photos (None: procedural)."""
    rng = np.random.default_rng([int(scene_seed), _STREAM])
    size = cfg.image_size
    scene = procedural_background(rng, size) if files is None else photo_background(rng, files, size)
    base = scene.copy()  # the background alone: occluders are cut from it
    if is_group(scene_seed, cfg):
        placed = _compose_group(scene, faces, cfg, rng)
        if cfg.photometric:
            scene = photometric(scene, np.random.default_rng([int(scene_seed), _STREAM, 2]), cfg.photometric)
        return scene, placed
    placed, boxes, squares = [], [], []
    for k, (img, box, points) in enumerate(faces):
        lo, hi = cfg.face_size
        width = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        angle = float(rng.uniform(-cfg.max_angle, cfg.max_angle))
        blend = cfg.blends[int(rng.integers(len(cfg.blends)))]
        truncate = rng.random() < cfg.truncate
        occlude = rng.random() < cfg.occlude
        bw = width * box[3] / box[2]
        margin = -0.3 * width if truncate else 0.0
        for _ in range(30):
            cx = rng.uniform(margin + width / 2, size - margin - width / 2)
            cy = rng.uniform(margin + bw / 2, size - margin - bw / 2)
            new_box = (cx - width / 2, cy - bw / 2, width, bw)
            m = paste_map(box, img.shape[0], width, angle, (cx, cy))
            corners = np.array([[0, 0], [img.shape[1], 0], [0, img.shape[0]], [img.shape[1], img.shape[0]]], float)
            cs = corners @ m[:, :2].T + m[:, 2]
            sq = (cs[:, 0].min(), cs[:, 1].min(), cs[:, 0].max() - cs[:, 0].min(), cs[:, 1].max() - cs[:, 1].min())
            if all(iou(new_box, b) < 0.1 for b in boxes) and all(_covered(b, sq) <= 0.25 for b in boxes):
                break
        else:
            continue
        _paste(scene, img, m, blend, rng, points)
        pts = np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]
        occluded = np.zeros(68, bool)
        if occlude:
            occluded = _occlude(scene, base, new_box, pts, rng)
        x0, y0 = new_box[0], new_box[1]
        truncated = x0 < 0 or y0 < 0 or x0 + width > size or y0 + bw > size
        boxes.append(new_box)
        squares.append(sq)
        placed.append((k, tuple(int(round(v)) for v in new_box), pts, truncated, occluded, blend, angle))
    if cfg.photometric:
        scene = photometric(scene, np.random.default_rng([int(scene_seed), _STREAM, 2]), cfg.photometric)
    return scene, placed


def _compose_group(scene: np.ndarray, faces: list, cfg, rng) -> list:
    """A group photo (synthface.dataset.groups) of the faces, in place on `scene`: rows back to
    front, each face on a neck and shoulders, pasted with its head's outline (blend
    "head" when it is among cfg.blends, else one drawn as for other scenes); faces a
    little turned (up to 5 degrees), no occluders, none cut by the border. The same
    placements as compose_scene returns."""
    from synthface.dataset.groups import clothing_colour, draw_body, group_places

    lo, hi = cfg.face_size
    # faces the detector's window can learn from, and rows that fit the frame
    low = min(max(lo, 64.0), hi)
    places = group_places(len(faces), cfg.image_size, (low, min(hi, max(low, cfg.image_size / 5.5))), rng,
                          smallest=lo)  # smaller than the window learns, rather than faces left out
    team = clothing_colour(rng) if rng.random() < 0.5 else None  # a team in one colour, or each their own
    placed = []
    for k, ((img, box, points), (cx, cy, width)) in enumerate(zip(faces, places)):
        angle = float(rng.uniform(-1, 1) * min(cfg.max_angle, 5.0))
        blend = "head" if "head" in cfg.blends else cfg.blends[int(rng.integers(len(cfg.blends)))]
        m = paste_map(box, img.shape[0], width, angle, (cx, cy))
        pts = np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]
        lower = img[img.shape[0] * 3 // 5:, img.shape[1] // 3: img.shape[1] * 2 // 3]  # cheeks and chin: the skin
        skin = tuple(float(v) for v in lower.reshape(-1, 3).mean(0))
        draw_body(scene, pts, team or clothing_colour(rng), skin, rng)
        covers = _paste(scene, img, m, blend, rng, points)
        if covers is not None:  # a head in front hides the points of faces behind it that it covers
            for earlier in placed:
                earlier[4][:] |= _under(covers, earlier[2])
        bh = width * box[3] / box[2]
        new_box = (cx - width / 2, cy - bh / 2, width, bh)
        placed.append((k, tuple(int(round(v)) for v in new_box), pts, False, np.zeros(68, bool), blend, angle))
    return placed


def _under(covers, pts) -> np.ndarray:
    """Which of `pts` (scene pixels) lie under a paste's mask ((x0, y0), mask), over half covered."""
    (x0, y0), mask = covers
    h, w = mask.shape
    ix, iy = np.round(pts[:, 0]).astype(int) - x0, np.round(pts[:, 1]).astype(int) - y0
    inside = (ix >= 0) & (iy >= 0) & (ix < w) & (iy < h)
    out = np.zeros(len(pts), bool)
    out[inside] = mask[iy[inside], ix[inside]] > 127
    return out


def _paste(scene: np.ndarray, img: np.ndarray, m: np.ndarray, blend: str, rng, points=None):
    """Paste a face (warped by m) into the scene with a blending ("head": its outline from
    its 68 `points`, synthface.dataset.groups.head_mask, edge blurred). Every step works on
    the face's rectangle of the scene (padded by the blur's reach): outside it the mask,
    hence every blending's weight, is zero. Returns where the paste covers the scene,
    ((x0, y0), mask of that rectangle), or None when it covers nothing."""
    import cv2

    if blend == "head":
        from synthface.dataset.groups import extend_head

        img, grown = extend_head(img, points, rng)  # hair above, the neck below: the mask has them to show
        m = m.copy()
        m[:, 2] -= m[:, :2] @ (grown, grown)
        points = np.asarray(points, np.float64) + grown
    size = scene.shape[0]
    h, w = img.shape[:2]
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float) @ m.T
    pad = int(math.ceil(0.04 * max(w, h) * float(np.sqrt(abs(np.linalg.det(m[:, :2])))) * 4)) + 4
    rx0, ry0 = (max(0, int(math.floor(v)) - pad) for v in corners.min(0))
    rx1, ry1 = (min(size, int(math.ceil(v)) + pad + 1) for v in corners.max(0))
    if rx0 >= rx1 or ry0 >= ry1:
        return None
    roi = (slice(ry0, ry1), slice(rx0, rx1))
    mr = m.copy()
    mr[:, 2] -= (rx0, ry0)
    dsize = (rx1 - rx0, ry1 - ry0)
    warped = cv2.warpAffine(img, mr, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    square = np.full((h, w), 255, np.uint8)
    if blend == "feather" or blend == "poisson":
        square = np.zeros((h, w), np.uint8)
        cv2.ellipse(square, (w // 2, h // 2), (int(w * 0.46), int(h * 0.5)), 0, 0, 360, color=255, thickness=-1)
    elif blend == "head":
        from synthface.dataset.groups import head_mask

        square = head_mask(points, h, w)
    mask = cv2.warpAffine(square, mr, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    covered = cv2.countNonZero(mask)
    if covered == 0:
        return None
    ground = scene[roi]
    if blend != "poisson":  # colour match: the face's channel means moved a quarter of the way to the ground's
        region = (mask > 127).view(np.uint8)
        fm, gm = np.array(cv2.mean(warped, region)[:3]), np.array(cv2.mean(ground, region)[:3])
        warped = cv2.add(warped, tuple(float(v) for v in 0.25 * (gm - fm)) + (0.0,), dtype=cv2.CV_8U)
    if blend == "poisson":
        bx, by, bw, bh = cv2.boundingRect(mask)
        x0, x1, y0, y1 = bx + rx0, bx + bw - 1 + rx0, by + ry0, by + bh - 1 + ry0
        if x0 > 1 and y0 > 1 and x1 < size - 2 and y1 < size - 2:
            centre = (int((x0 + x1 + 1) // 2), int((y0 + y1 + 1) // 2))
            sub = (slice(by, by + bh), slice(bx, bx + bw))
            out = cv2.seamlessClone(np.ascontiguousarray(warped[sub]), scene, np.ascontiguousarray(mask[sub]),
                                    centre, cv2.NORMAL_CLONE)
            scene[...] = out
            return (rx0, ry0), mask
        blend = "feather"
    if blend in ("gaussian", "feather", "head"):
        sigma = max(1.0, 0.04 * math.sqrt(covered))
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    alpha = mask.astype(np.float32) * np.float32(1 / 255)
    scene[roi] = cv2.blendLinear(warped, ground, alpha, 1 - alpha)
    return (rx0, ry0), mask


def _occlude(scene, base, box, pts, rng) -> np.ndarray:
    """A background patch over 20-45% of the face box from one side; the points under
    it, flagged."""
    x, y, w, h = box
    share = rng.uniform(0.2, 0.45)
    side = int(rng.integers(4))
    if side == 0:
        rect = (x, y, w * share, h)
    elif side == 1:
        rect = (x + w * (1 - share), y, w * share, h)
    elif side == 2:
        rect = (x, y + h * (1 - share), w, h * share)
    else:
        rect = (x, y, w, h * share)
    size = scene.shape[0]
    x0, y0 = max(int(rect[0]), 0), max(int(rect[1]), 0)
    x1, y1 = min(int(rect[0] + rect[2]), size), min(int(rect[1] + rect[3]), size)
    if x1 > x0 and y1 > y0:
        dx, dy = int(rng.integers(-size // 4, size // 4)), int(rng.integers(-size // 4, size // 4))
        sx0, sy0 = min(max(x0 + dx, 0), size - (x1 - x0)), min(max(y0 + dy, 0), size - (y1 - y0))
        scene[y0:y1, x0:x1] = base[sy0:sy0 + y1 - y0, sx0:sx0 + x1 - x0]
    return (pts[:, 0] >= rect[0]) & (pts[:, 0] < rect[0] + rect[2]) & (pts[:, 1] >= rect[1]) & (pts[:, 1] < rect[1] + rect[3])
