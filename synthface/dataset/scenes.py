"""Scenes for face-detector training: generated faces pasted on backgrounds.

Copy-paste synthesis (Dwibedi et al. 2017, "Cut, Paste and Learn"): local realism matters
more than global; blending each paste a different way keeps a detector from keying on
paste edges; variety of scale, position, occlusion and truncation matters.

`make_scenes` first makes the faces as a plain dataset in DATASET/.synthface/faces (with
landmarks; resumable, as every make-dataset run), then composes the scenes from them in
order: scene i takes the next faces, as many as its own draw says (`--faces-per-image`),
and everything about it (background, sizes, places, angles, blending, occluders) comes
from its own seed, candidate_seed(seed, i) in a stream of its own. So the same command
gives the same scenes, and a resumed run recomposes only the scenes it lacks.

Per face: the generated square image is scaled so that its face box has the drawn width
(`--face-size`, log-uniform), turned by a small angle, colour-matched to the background
beneath it (channel means moved a quarter of the way), and blended one of four ways, chosen per
face: none (a hard square), gaussian (the square's edge blurred), feather (an ellipse
around the face, blurred) and poisson (cv2.seamlessClone, which matches colour itself).
A place is accepted when the
new face's box overlaps no earlier face box (IoU < 0.1) and the new square covers at most
a quarter of any earlier box. Some faces get an occluder (a background patch over 20-45%
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
import os
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError
from synthface.face.geometry import iou
from synthface.core.imagefiles import image_files
from synthface.dataset.photometric import PHOTO_RATES, normal_noise, photo_line, photometric  # noqa: F401 (public here too)

_STREAM = 0x5CE7E
# the scene recipe's version, part of a run's identity: a folder made by an earlier recipe
# (before group photos, the head blend, prints and halftone) is not resumed with this one
SCENE_RECIPE = 2
BLENDS = ("none", "gaussian", "feather", "poisson", "head")


@dataclass
class SceneConfig:
    faces_per_image: tuple = (1, 6)
    face_size: tuple = (48, 256)  # face box width in scene pixels
    image_size: int = 640
    backgrounds: str | None = None  # folder of face-free photos; None: procedural
    blends: tuple = BLENDS
    max_angle: float = 10.0  # degrees, in-plane
    occlude: float = 0.15  # share of faces with an occluder
    truncate: float = 0.1  # share of faces that may be cut by the border
    photometric: float = 1.0  # how often each photo-like transform hits a scene (x its own rate; 0: never)
    groups: float = 0.15  # share of scenes that are group photos (rows of faces on shoulders; synthface.dataset.groups)
    group_faces: tuple = (6, 20)  # faces a group photo

    def validate(self) -> None:
        lo, hi = self.faces_per_image
        if not 1 <= lo <= hi <= 50:
            raise SynthfaceError(f"--faces-per-image must be MIN:MAX with 1 <= MIN <= MAX <= 50, got {lo}:{hi}")
        if not 64 <= self.image_size <= 4096:
            raise SynthfaceError(f"--image-size must be from 64 to 4096 for scenes, got {self.image_size}")
        a, b = self.face_size
        if not 16 <= a <= b <= self.image_size // 2:
            raise SynthfaceError(f"--face-size must be MIN:MAX with 16 <= MIN <= MAX <= image size / 2 "
                                 f"({self.image_size // 2}), got {a}:{b}")
        unknown = set(self.blends) - set(BLENDS)
        if unknown or not self.blends:
            raise SynthfaceError(f"--blend must be some of {', '.join(BLENDS)}, got {', '.join(self.blends)}")
        if not 0.0 <= self.groups <= 1.0:  # NaN fails too
            raise SynthfaceError(f"--groups must be a share from 0 (no group photos) to 1, got {self.groups}")
        lo, hi = self.group_faces
        if not 1 <= lo <= hi <= 50:
            raise SynthfaceError(f"--group-faces must be MIN:MAX with 1 <= MIN <= MAX <= 50, got {lo}:{hi}")
        if not 0.0 <= self.photometric <= 2.0:  # NaN fails too
            raise SynthfaceError(f"--photometric must be from 0 (off) to 2, got {self.photometric}")
        if self.backgrounds is not None and not background_files(self.backgrounds):
            raise SynthfaceError(f"--backgrounds {self.backgrounds}: no images there")

    def check_backgrounds(self, out=None) -> None:
        """Every background photo decodable and at least MIN_BACKGROUND px a side, checked
        before any face is made (a bad one found late would cost the run)."""
        if self.backgrounds is None:
            return
        import cv2

        from synthface.core.imagefiles import is_incomplete

        for path in background_files(self.backgrounds, out):
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise SynthfaceError(f"--backgrounds: {path} cannot be read ({exc.strerror})") from None
            # libjpeg decodes a cut-off JPEG into a grey-bottomed image without failing
            img = (None if not data or is_incomplete(data)
                   else cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))
            if img is None:
                raise SynthfaceError(f"--backgrounds: {path} is not a readable image (or is cut off); "
                                     "remove or replace it")
            if min(img.shape[:2]) < MIN_BACKGROUND:
                raise SynthfaceError(f"--backgrounds: {path} is {img.shape[1]}x{img.shape[0]} px; backgrounds need "
                                     f"at least {MIN_BACKGROUND} px a side")

    def identity(self, out=None) -> dict:
        d = asdict(self)
        d["faces_per_image"], d["face_size"], d["blends"] = list(self.faces_per_image), list(self.face_size), list(self.blends)
        d["group_faces"] = list(self.group_faces)
        d["recipe"] = SCENE_RECIPE
        if self.backgrounds is not None:
            from synthface.core.imagefiles import ImageSource

            excluded = [Path(out)] if out is not None else []
            d["backgrounds"] = {"folder": str(Path(self.backgrounds).resolve()),
                                "fingerprint": ImageSource(self.backgrounds, exclude=excluded).fingerprint()}
        return d


def parse_pair(text: str, flag: str, kind=int) -> tuple:
    parts = str(text).split(":")
    try:
        lo, hi = (kind(parts[0]), kind(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None:
        raise SynthfaceError(f"{flag} must be MIN:MAX, got '{text}'")
    return lo, hi


MIN_BACKGROUND = 16  # px a side: the crop of a smaller photo can be empty


def background_files(folder, out=None) -> list:
    """The background photos under `folder`, leaving out a dataset folder `out` inside it
    (a scenes run's own images are no backgrounds)."""
    return image_files(folder, "--backgrounds", out)


# -- backgrounds --------------------------------------------------------------------------
def procedural_background(rng, size: int) -> np.ndarray:
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
                        0, 360, colour, -1 if rng.random() < 0.7 else 2)
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


def compose_scene(scene_seed: int, faces: list, cfg: SceneConfig, files: list | None):
    """One scene from (rgb face image, box, landmarks (68, 2)) tuples: (image, placed) with
    placed = [(k, box, points, truncated, occluded point flags, blend, angle)] for the faces that
    found a place (k: index into `faces`)."""
    import cv2

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


def _compose_group(scene: np.ndarray, faces: list, cfg: SceneConfig, rng) -> list:
    """A group photo (synthface.dataset.groups) of the faces, in place on `scene`: rows back to
    front, each face on a neck and shoulders, pasted with its head's outline (blend
    "head" when it is among cfg.blends, else one drawn as for other scenes); faces a
    little turned (up to 5 degrees), no occluders, none cut by the border. The same
    placements as compose_scene returns."""
    from synthface.dataset.groups import clothing_colour, draw_body, group_places

    lo, hi = cfg.face_size
    # faces the detector's window can learn from, and rows that fit the frame
    low = min(max(lo, 64.0), hi)
    places = group_places(len(faces), cfg.image_size, (low, min(hi, max(low, cfg.image_size / 5.5))), rng)
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
        cv2.ellipse(square, (w // 2, h // 2), (int(w * 0.46), int(h * 0.5)), 0, 0, 360, 255, -1)
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


# -- hard negatives -----------------------------------------------------------------------
def mine_negatives(model: str, out, n: int, cfg: SceneConfig, seed: int = 0, upsample: int = 1,
                   progress: bool = True) -> dict:
    """Hard negatives for a detector: `n` face-free scenes drawn as the scenes' own
    backgrounds are (procedural, or crops of cfg.backgrounds; cfg.photometric applied),
    run through `model` as `detector eval` runs it; those where it fires (score >= 0)
    are written to `out` as JPEGs, for `detector train --negatives out`. The draws come
    from (seed, i), so rounds with other seeds see other backgrounds."""
    import cv2
    from tqdm.auto import tqdm

    from synthface.trainers.detector import open_detector
    from synthface.core.files import check_output_folder, write_atomic
    from synthface.core.outputs import mark_image
    from synthface.generator.sampling import candidate_seed, check_seed

    cfg.validate()
    check_seed(seed)
    if n < 1:
        raise SynthfaceError(f"-n must be at least 1, got {n}")
    out = Path(out).expanduser()
    check_output_folder(out, "--out")
    cfg.check_backgrounds()  # every one now: a bad photo drawn late would cost the run
    detector = open_detector(model)
    files = background_files(cfg.backgrounds) if cfg.backgrounds is not None else None
    kept = detections = 0
    for i in tqdm(range(n), desc="negatives", unit="image", disable=not progress, leave=False):
        rng = np.random.default_rng([candidate_seed(seed, i), _STREAM, 3])
        size = cfg.image_size
        img = procedural_background(rng, size) if files is None else photo_background(rng, files, size)
        if cfg.photometric:
            img = photometric(img, rng, cfg.photometric)
        rects, scores, _ = detector.run(img, upsample, 0.0)
        if len(rects):
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
            # marked: a later round may add to the folder, whose files are all mine's (cli/plans.py);
            # write_atomic makes --out with the first image, so a run that keeps none leaves none
            write_atomic(out / f"neg_{seed}_{i:07d}.jpg", mark_image(buf.tobytes(), "detector mine"))
            kept += 1
            detections += len(rects)
    return {"drawn": n, "kept": kept, "false_positives": detections, "folder": str(out)}


# -- the run ------------------------------------------------------------------------------
def scene_name(i: int) -> str:
    return f"images/{i // 1000:05d}/{i:08d}.jpg"


def is_group(scene_seed: int, cfg: SceneConfig) -> bool:
    """Whether the scene of this seed is a group photo (a draw of its own, share cfg.groups)."""
    return bool(np.random.default_rng([int(scene_seed), _STREAM, 1]).random() < cfg.groups)


def faces_per_scene(seed: int, i: int, cfg: SceneConfig) -> int:
    """How many faces scene i takes: cfg.group_faces for a group photo, else cfg.faces_per_image."""
    from synthface.generator.sampling import candidate_seed

    scene_seed = candidate_seed(seed, i)
    lo, hi = cfg.group_faces if is_group(scene_seed, cfg) else cfg.faces_per_image
    return int(np.random.default_rng([scene_seed, _STREAM, 4]).integers(lo, hi + 1))


def _scene_init(out: str, faces_dir: str, cfg: SceneConfig):
    files = background_files(cfg.backgrounds, out) if cfg.backgrounds is not None else None
    return Path(out), Path(faces_dir), cfg, files


def _scene_task(context, item):
    """Compose scene i (written unless its image is already there, whole) and return its placements."""
    import cv2

    from synthface.core.files import write_atomic
    from synthface.core.imaging import read_rgb
    from synthface.dataset.journal import image_complete

    out, faces_dir, cfg, files = context
    i, scene_seed, faces = item
    loaded = [(read_rgb(faces_dir / f), box, pts) for f, box, pts in faces]
    img, placed = compose_scene(scene_seed, loaded, cfg, files)
    path = out / scene_name(i)
    if not image_complete(path):  # new, or deleted or truncated since: written (again)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
        write_atomic(path, buf.tobytes())
    return i, placed


def scene_schema(turned: bool = False):
    """A scene dataset's columns: the scene per image; per face its index and seed in the
    faces it was cut from, then truncated, occluded (points under an occluder), blend,
    pose and expression, and (faces turned in 3D) the turn and the points it hid."""
    from synthface.dataset.export import TURN_COLS
    from synthface.face.labels import LabelSchema
    from synthface.face.pose import POSE_COLS

    return LabelSchema(landmarks=True, image_cols=["scene"], face_cols=["face", "seed"],
                       attr_cols=["truncated", "occluded", "blend", *POSE_COLS, *(TURN_COLS if turned else [])],
                       multi=True, kind="scenes")


def make_scenes(out, n: int, cfg: SceneConfig, sampler, seed: int = 0, workers: int | None = None,
                val_fraction: float = 0.1, annotate=None, resume: bool = False, progress: bool = True,
                command: str = "", formats="all", max_tries: int | None = None, rotate3d=None,
                box: str = "dlib") -> dict:
    """`-n` generated faces pasted into scenes in `out` (see the module docstring); `box`:
    the face boxes' convention (geometry.BOX_CONVENTIONS), a label setting like `formats`."""
    from tqdm.auto import tqdm

    from synthface.face.annotate import AnnotateConfig
    from synthface.core.files import folder_lock
    from synthface.formats import parse_formats, write_labels
    from synthface.dataset.journal import STATE_DIR, check_identity, iter_records, prepare_folder, read_identity
    from synthface.dataset.make import MakeConfig, check_box, make_dataset
    from synthface.generator.sampling import candidate_seed
    from synthface.core.workers import RESUME_HINT, Pool

    cfg.validate()
    out = Path(out)
    formats = parse_formats(formats)
    check_box(box, True)
    workers = os.cpu_count() or 1 if workers is None else workers
    # scenes always carry landmarks and place and scale each face themselves (no
    # augmentation); the caller's config is left as it was
    annotate = replace(annotate or AnnotateConfig(), landmarks=True)
    faces_cfg = MakeConfig(n=n, seed=seed, workers=workers, formats=("csv",), val_fraction=0.0, annotate=annotate,
                           augment=None, max_tries=max_tries, rotate3d=rotate3d)
    faces_cfg.validate()
    if not 0.0 <= val_fraction < 1.0:
        raise SynthfaceError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    cfg.check_backgrounds(out)
    prepare_folder(out, resume)
    identity = {"kind": "scenes", "seed": seed, "n": n, "scenes": cfg.identity(out), "generator": sampler.identity,
                **({"rotate_3d": rotate3d.to_dict()} if rotate3d is not None else {})}
    with folder_lock(out / STATE_DIR, out, "make-dataset --scenes"):
        check_identity(out, identity)
        faces_dir = out / STATE_DIR / "faces"
        faces = make_dataset(faces_dir, faces_cfg, sampler, resume=faces_dir.exists(), progress=progress)
        face_size = read_identity(faces_dir)["image_size"]
        records = [r for r in iter_records(faces_dir / STATE_DIR / "journal.csv") if r.kept][:n]
        items, k, i = [], 0, 0
        while k < len(records):
            m = faces_per_scene(seed, i, cfg)
            chunk = records[k:k + m]
            items.append((i, candidate_seed(seed, i), [(r.file, r.box, r.landmarks) for r in chunk]))
            k, i = k + m, i + 1
        counts = {"faces": 0, "blends": Counter(), "splits": Counter()}
        with tqdm(total=len(items), desc="scenes", unit="scene", disable=not progress, leave=False) as bar, \
                Pool(workers, _scene_init, (str(out), str(faces_dir), cfg), RESUME_HINT) as pool:
            from synthface.dataset.export import turn_labels

            turn = turn_labels(read_identity(faces_dir))
            scenes = _labelled_scenes(pool.imap(_scene_task, items, chunksize=4), items, records, cfg, face_size,
                                      val_fraction, counts, bar, turn, box)
            written = write_labels(out, scene_schema(turn is not None), scenes, formats)
        summary = {"faces": counts["faces"], "scenes": len(items), "unplaced": len(records) - counts["faces"],
                   "train_scenes": counts["splits"]["train"], "val_scenes": counts["splits"]["val"],
                   "blends": dict(counts["blends"])}
        _write_scene_card(out, cfg, identity, summary, command, written, box)
        summary["faces_made"] = faces
    return summary


def _labelled_scenes(placements, items, records, cfg: SceneConfig, face_size: int, val_fraction: float,
                     counts: dict, bar, turn=None, convention: str = "dlib"):
    """Each composed scene as a LabelledImage (in scene order, as the pool returns them),
    its face boxes in `convention` (computed from the placed points; a box reaching past
    the border is truncated)."""
    from synthface.face.geometry import convention_box
    from synthface.dataset.journal import split_of
    from synthface.face.labels import Face, LabelledImage
    from synthface.face.pose import face_attributes

    offsets = np.cumsum([0] + [len(faces) for _, _, faces in items])
    for i, placed in placements:
        _, scene_seed, _ = items[i]
        split = split_of(scene_seed, val_fraction)
        faces = []
        for k, box, pts, truncated, occluded, blend, angle in placed:
            rec = records[offsets[i] + k]
            pose = face_attributes(rec.landmarks, face_size)
            pose["roll"] = round(pose["roll"] - angle, 4)  # the paste turned the face by `angle`
            if turn is not None:
                pose.update(turn(rec.seed), hidden=int(rec.hidden.sum()))
            hidden = occluded if rec.hidden is None else occluded | rec.hidden
            pts = np.round(pts, 3)  # as the labels hold them, so the box is theirs exactly
            if convention != "dlib":
                box = convention_box(pts, box, convention)
                x, y, w, h = box
                truncated = x < 0 or y < 0 or x + w > cfg.image_size or y + h > cfg.image_size
            faces.append(Face(box, rec.score, pts, np.where(hidden, 1, 2), ignore=bool(truncated),
                              attributes={"face": rec.index, "seed": rec.seed, "truncated": int(truncated),
                                          "occluded": int(occluded.sum()), "blend": blend, **pose}))
            counts["blends"][blend] += 1
        counts["faces"] += len(faces)
        counts["splits"][split] += 1
        bar.update()
        yield LabelledImage(scene_name(i), cfg.image_size, cfg.image_size, split, {"scene": i}, faces)


def _write_scene_card(out: Path, cfg: SceneConfig, identity: dict, summary: dict, command: str, formats,
                      box: str = "dlib") -> None:
    from synthface.dataset.card import (CONVENTIONS, LICENCE_NOTE, box_card, box_line, files_section, keypoints_card,
                                loading_section, write_card)

    schema, size = scene_schema(), cfg.image_size
    card = {"format": "synthface-scenes/1", "command": command, **identity, "counts": summary,
            "files": {"images": "images/SSSSS/NNNNNNNN.jpg, 1,000 a folder", "formats": sorted(formats)},
            "conventions": {"box": "x, y, w, h in scene pixels (" + ("dlib's HOG convention, scaled with the face"
                                                                     if box == "dlib" else f"--box {box}") + "); "
                                   "truncated boxes reach past the border (clipped in COCO / YOLO, ignore='1' "
                                   "in dlib.xml, iscrowd 1 in COCO)",
                            "landmarks": "68 iBUG points, 0-based, scene pixels; COCO / YOLO visibility 2 "
                                         "visible, 1 under an occluder, 0 outside the image", **box_card(box)},
            "keypoints": keypoints_card()}
    blends = ", ".join(f"{k} {v}" for k, v in sorted(summary["blends"].items()))
    background = f"photos from {cfg.backgrounds}" if cfg.backgrounds else \
        "procedural (colour field, shapes, lines, multi-scale texture)"
    write_card(out, card, f"""# Synthetic face scenes (synthface)

{summary['faces']} generated faces pasted into {summary['scenes']} scenes of {size}x{size} pixels
({summary['train_scenes']} train, {summary['val_scenes']} val scenes; split by scene seed).

- Command: `{command}`
- Background: {background}
- Faces per scene {cfg.faces_per_image[0]}-{cfg.faces_per_image[1]}, face box width {cfg.face_size[0]}-{cfg.face_size[1]} px,
  angle +-{cfg.max_angle:g} degrees; blends: {blends}
- Group photos: {cfg.groups:.0%} of scenes (rows of {cfg.group_faces[0]}-{cfg.group_faces[1]} faces on necks and shoulders,
  pasted with their heads' outlines; synthface.dataset.groups)
- Photo-like variation after compositing: {photo_line(cfg.photometric)}
{box_line(box)}
- {summary['unplaced']} faces found no place without overlap and were left out.

## Files
- `images/SSSSS/NNNNNNNN.jpg`: the scenes
{files_section(schema, formats)}
- `dataset.json`: this card as data (counts, conventions, keypoint names, skeleton, sigmas, flip_idx)
- `.synthface/faces/`: the single faces they were cut from (a plain synthface dataset)

## Loading it
DATASET is this folder.

```
synthface detector train --dataset DATASET -o faces.svm
synthface detector eval --model faces.svm --data PHOTOS --pr pr.png
```

{loading_section(schema, size, formats)}

{CONVENTIONS}
## Licence
{LICENCE_NOTE}
""")
