"""Dataset-time augmentation: label-exact transforms of a labelled face.

Each kept face is transformed with parameters drawn from its own seed (a stream apart
from its noise and its steering targets), so an augmented dataset is as reproducible,
resumable and shardable as a plain one. Geometric: an in-plane rotation (roll), a scale
and a shift of the face in the frame (one affine warp, borders reflected) and a
horizontal flip; the 68 points go through the same affine map exactly (and, flipped,
take their mirror partner's place: scheme68.mirror_points). The box keeps its size times the scale
around the moved centre, the box a detector gives an upright face of that size.
Photometric, on the pixels only: brightness, contrast and saturation, Gaussian blur,
Gaussian noise, JPEG compression.

Coordinates: pixel centres at integers, as everywhere in synthface; the warp maps the
image's centre ((size - 1) / 2) to itself before the shift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from synthface.errors import SynthfaceError
from synthface.face.scheme68 import mirror_points

_STREAM = 0xA06  # the seed's augmentation stream


@dataclass
class AugmentConfig:
    """What `--augment` does (the defaults), each a range or a probability."""

    rotate: float = 15.0  # degrees, uniform in +-rotate
    scale: float = 0.10  # uniform in 1 +- scale
    shift: float = 0.05  # fraction of the side, uniform in +-shift, each axis
    flip: float = 0.5  # probability of a horizontal flip
    colour: float = 0.2  # brightness / contrast / saturation factors uniform in 1 +- colour
    blur: float = 0.2  # probability of a Gaussian blur, sigma uniform in 0.4 .. 1.2 px
    noise: float = 0.2  # probability of Gaussian noise, sigma uniform in 2 .. 8 (0-255 scale)
    jpeg: float = 0.2  # probability of JPEG compression at quality 30 .. 90

    def validate(self) -> None:
        if not (0 <= self.rotate <= 90 and 0 <= self.scale < 1 and 0 <= self.shift <= 0.5 and 0 <= self.colour < 1):
            raise SynthfaceError("augment: rotate must be in [0, 90], scale in [0, 1), shift in [0, 0.5], "
                                 "colour in [0, 1)")
        for name in ("flip", "blur", "noise", "jpeg"):
            if not 0 <= getattr(self, name) <= 1:
                raise SynthfaceError(f"augment: {name} is a probability, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Params:
    """One face's drawn transform."""

    angle: float
    scale: float
    dx: float
    dy: float
    flip: bool
    brightness: float
    contrast: float
    saturation: float
    blur: float  # sigma, 0 = none
    noise: float  # sigma, 0 = none
    jpeg: int  # quality, 0 = none


def draw_params(seed: int, cfg: AugmentConfig, size: int) -> Params:
    """Every draw is taken whatever the config, so one setting does not move the others."""
    rng = np.random.default_rng([int(seed), _STREAM])
    u = rng.random(14)
    return Params(angle=(2 * u[0] - 1) * cfg.rotate, scale=1 + (2 * u[1] - 1) * cfg.scale,
                  dx=(2 * u[2] - 1) * cfg.shift * size, dy=(2 * u[3] - 1) * cfg.shift * size,
                  flip=bool(u[4] < cfg.flip),
                  brightness=1 + (2 * u[5] - 1) * cfg.colour, contrast=1 + (2 * u[6] - 1) * cfg.colour,
                  saturation=1 + (2 * u[7] - 1) * cfg.colour,
                  blur=0.4 + 0.8 * u[9] if u[8] < cfg.blur else 0.0,
                  noise=2 + 6 * u[11] if u[10] < cfg.noise else 0.0,
                  jpeg=int(30 + 60 * u[13]) if u[12] < cfg.jpeg else 0)


def flipped(seed: int, cfg: AugmentConfig) -> bool:
    """Whether a face's draw mirrors it (its per-point flags then swap like its points)."""
    return draw_params(seed, cfg, 1).flip


def affine(p: Params, size: int) -> np.ndarray:
    """The 2x3 map of image coordinates (before the flip)."""
    import cv2

    c = (size - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), p.angle, p.scale)
    m[:, 2] += (p.dx, p.dy)
    return m


def transform_points(points: np.ndarray, p: Params, size: int) -> np.ndarray:
    pts = np.asarray(points, np.float64) @ affine(p, size)[:, :2].T + affine(p, size)[:, 2]
    return mirror_points(pts, size).astype(np.float64) if p.flip else pts


def invert_points(points: np.ndarray, p: Params, size: int) -> np.ndarray:
    """The original points of transformed ones (for tests and for reading labels back)."""
    import cv2

    pts = mirror_points(points, size).astype(np.float64) if p.flip else np.asarray(points, np.float64)
    inv = cv2.invertAffineTransform(affine(p, size))
    return pts @ inv[:, :2].T + inv[:, 2]


def transform_box(box, p: Params, size: int) -> tuple:
    x, y, w, h = box
    centre = transform_points(np.array([[x + (w - 1) / 2, y + (h - 1) / 2]]), _no_flip(p), size)[0]
    if p.flip:
        centre[0] = size - 1 - centre[0]
    nw, nh = w * p.scale, h * p.scale
    return (int(round(centre[0] - (nw - 1) / 2)), int(round(centre[1] - (nh - 1) / 2)), int(round(nw)), int(round(nh)))


def _no_flip(p: Params) -> Params:
    return Params(**{**asdict(p), "flip": False})


def augment_face(img: np.ndarray, points, box, seed: int, cfg: AugmentConfig):
    """(image, points or None, box) of one kept face, transformed by its seed's draw."""
    import cv2

    size = img.shape[0]
    p = draw_params(seed, cfg, size)
    out = cv2.warpAffine(img, affine(p, size), (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    if p.flip:
        out = np.ascontiguousarray(out[:, ::-1])
    out = out.astype(np.float32)
    mean = out.mean()
    out = (out - mean) * p.contrast + mean * p.brightness
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * p.saturation
    if p.blur:
        out = cv2.GaussianBlur(out, (0, 0), p.blur)
    if p.noise:
        out = out + np.random.default_rng([int(seed), _STREAM, 1]).normal(0, p.noise, out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if p.jpeg:
        ok, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, p.jpeg])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    new_points = None if points is None else transform_points(points, p, size).astype(np.float32)
    return out, new_points, transform_box(box, p, size)
