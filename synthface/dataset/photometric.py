"""Photo-like variation of a whole scene: what a camera, a print or a scanner does to a
photo, drawn per scene after compositing. No pixel moves, so the labels stand.

Each transform hits a scene independently with its PHOTO_RATES rate x the amount
(`--photometric`), in this order: greyscale; low contrast; gamma; a print's low dynamic
range on paper grain; a newspaper's halftone screen (dots at an angle, seen through a
scanner's blur); low resolution; blur; sensor noise; vignetting; JPEG. A detector trained
on such scenes cannot key on colour, contrast or sharpness, and has seen faces in prints
and scans, not only in camera photos.
"""

from __future__ import annotations

import functools

import numpy as np

# each transform: its rate at --photometric 1 (a scene gets each independently)
PHOTO_RATES = {"grey": 0.3, "contrast": 0.35, "gamma": 0.3, "print": 0.15, "halftone": 0.1, "lowres": 0.3,
               "blur": 0.25, "noise": 0.25, "vignette": 0.2, "jpeg": 0.3}


def photo_line(amount: float) -> str:
    if not amount:
        return "none (`--photometric 0`)"
    return (f"`--photometric {amount:g}`: each scene independently " +
            ", ".join(f"{name} {min(1.0, rate * amount):.0%}" for name, rate in PHOTO_RATES.items()) +
            " (synthface.dataset.photometric)")


def photometric(scene: np.ndarray, rng, amount: float = 1.0) -> np.ndarray:
    """The whole scene as photos vary (see the module docstring), each transform with its
    PHOTO_RATES rate x `amount`. A grey scene (and every halftoned one: newsprint is
    grey) is worked on as one channel; gamma and the noise's normal draws are table
    look-ups."""
    import cv2

    from synthface.core.imaging import LUMA, saturate_uint8

    hit = {name: rng.random() < min(1.0, rate * amount) for name, rate in PHOTO_RATES.items()}
    if not any(hit.values()):
        return np.ascontiguousarray(scene)
    img = scene.astype(np.float32)
    size = scene.shape[0]
    if hit["grey"] or hit["halftone"]:
        img = img @ LUMA  # one channel until the end
    if hit["contrast"]:
        k = rng.uniform(0.35, 0.8)
        shift = rng.uniform(-30, 30)
        mean = float(img.mean())
        img *= np.float32(k)
        img += np.float32(mean * (1 - k) + shift)
    if hit["gamma"]:  # on the nearest of 256 levels, as an 8-bit camera would
        levels = saturate_uint8(img)
        table = (255.0 * (np.arange(256) / 255.0) ** rng.uniform(0.6, 1.7)).astype(np.float32)
        img = cv2.LUT(levels, table)
    if hit["print"]:
        img = _print(img, rng)
    if hit["halftone"]:
        img = _halftone(img, rng)
    if hit["lowres"]:
        small = max(8, int(round(size * rng.uniform(0.25, 0.6))))
        img = cv2.resize(cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                         interpolation=cv2.INTER_LINEAR)
    if hit["blur"]:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 2.0))
    if hit["noise"]:
        sigma = np.float32(rng.uniform(3, 12))
        img = img + normal_noise(rng, img.shape, sigma)
    if hit["vignette"]:
        fall = 1 - np.float32(rng.uniform(0.3, 0.7)) * _radius2(size)
        img = img * (fall if img.ndim == 2 else fall[..., None])
    out = saturate_uint8(img)
    if hit["jpeg"]:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 61))])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    return np.ascontiguousarray(out)


def _print(img: np.ndarray, rng) -> np.ndarray:
    """A print's low dynamic range: ink never quite black, paper never white (black
    level 20-70, white 165-235 of 255), on paper grain (smooth noise of 2-6 px, sigma
    3-9), sometimes warm-tinted as old paper is (a colour scene)."""
    import cv2

    black, white = rng.uniform(20, 70), rng.uniform(165, 235)
    out = img * np.float32((white - black) / 255) + np.float32(black)
    size = img.shape[0]
    grain = max(2, int(rng.integers(2, 7)))
    n = size // grain + 1
    paper = cv2.resize(normal_noise(rng, (n, n), float(rng.uniform(3, 9))), (size, size),
                       interpolation=cv2.INTER_LINEAR)
    out = out + (paper if out.ndim == 2 else paper[..., None])
    if out.ndim == 3 and rng.random() < 0.5:  # RGB: yellowed paper, a little less blue
        out = out * np.float32([1.0, 0.97, rng.uniform(0.8, 0.93)])
    return out


def _halftone(img: np.ndarray, rng) -> np.ndarray:
    """A newspaper's halftone screen: the grey image thresholded against a screen of round
    dots (period 3-6 px, at 15-75 degrees), then the scanner's blur (a third of the
    period), which leaves the dots as the texture a scan of newsprint shows."""
    import cv2

    period = rng.uniform(3.0, 6.0)
    theta = np.deg2rad(rng.uniform(15, 75))
    size = img.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u = (xx * np.float32(np.cos(theta)) + yy * np.float32(np.sin(theta))) * np.float32(2 * np.pi / period)
    v = (yy * np.float32(np.cos(theta)) - xx * np.float32(np.sin(theta))) * np.float32(2 * np.pi / period)
    screen = (np.cos(u) + np.cos(v)) * np.float32(0.25 * 255) + np.float32(127.5)  # 0 .. 255
    dots = np.where(img > screen, np.float32(255), np.float32(0))
    return cv2.GaussianBlur(dots, (0, 0), period / 3)


def normal_noise(rng, shape, sigma: float) -> np.ndarray:
    """float32 normal noise (to 2.9 sigma): uniform bytes through a table of 256 normal
    quantiles, five times faster than numpy's normal draws."""
    import cv2

    draws = np.frombuffer(rng.bytes(int(np.prod(shape))), np.uint8).reshape(shape)
    return cv2.LUT(draws, _normal_quantiles() * np.float32(sigma))


@functools.lru_cache(maxsize=1)
def _normal_quantiles() -> np.ndarray:
    """256 quantiles of the standard normal: indexed by uniform byte draws, normal noise
    (to 2.9 sigma)."""
    from statistics import NormalDist

    inv = NormalDist().inv_cdf
    return np.array([inv((i + 0.5) / 256) for i in range(256)], np.float32)


@functools.lru_cache(maxsize=4)
def _radius2(size: int) -> np.ndarray:
    """Squared distance from the centre over its corner value (0 .. 1), for vignetting."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1) - 0.5
    return (xx ** 2 + yy ** 2) / np.float32(0.5)
