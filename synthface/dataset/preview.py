"""A contact sheet of a dataset: its first images with every face's box and landmarks
drawn (a scene once, with all its faces)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from synthface.errors import SynthfaceError
from synthface.core.imaging import make_grid, read_rgb, write_image


def draw_labels(rgb: np.ndarray, faces, scale: int) -> np.ndarray:
    """Upscale by `scale` and draw each (box, points) (box green, points red, eyes blue;
    an ignored face's box grey)."""
    img = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    # pixel-centre coordinates: pixel c spans [c - 0.5, c + 0.5] before scaling
    to_px = lambda v: int(round((v + 0.5) * scale - 0.5))  # noqa: E731
    for box, points, ignore in faces:
        x, y, w, h = box
        cv2.rectangle(img, (to_px(x - 0.5), to_px(y - 0.5)), (to_px(x + w - 0.5), to_px(y + h - 0.5)),
                      (150, 150, 150) if ignore else (40, 220, 40), 1)
        for i, (px, py) in enumerate(points if points is not None else []):
            color = (60, 120, 255) if 36 <= i <= 47 else (255, 50, 50)
            cv2.circle(img, (to_px(px), to_px(py)), max(1, scale // 2), color, -1, cv2.LINE_AA)
    return img


def turn_row(face, yaws, scale: int) -> list:
    """One face (a stage.Face) turned in 3D to each yaw (stage.turned_to), each tile with
    its box and points drawn and the points the turn hid in yellow."""
    from synthface.face.stage import turned_to

    tiles = []
    for yaw in yaws:
        r = turned_to(face, float(yaw))
        tile = draw_labels(r.image, [(r.box, r.points, False)], scale)
        for px, py in r.points[r.hidden]:
            centre = (int(round((px + 0.5) * scale - 0.5)), int(round((py + 0.5) * scale - 0.5)))
            cv2.circle(tile, centre, max(1, scale // 2), (255, 230, 0), -1, cv2.LINE_AA)
        tiles.append(tile)
    return tiles


def preview(dataset, out, *, n: int = 16, scale: int | None = None) -> Path:
    """Draw the first n images of a dataset with their labels into one PNG."""
    from synthface.formats.readers import read_labelled

    dataset = Path(dataset)
    if not (dataset / "labels.csv").is_file():
        raise SynthfaceError(f"{dataset} has no labels.csv: not a finished synthface dataset")
    if not 1 <= n <= 1024:
        raise SynthfaceError(f"-n must be from 1 to 1024, got {n}")
    if scale is not None and not 1 <= scale <= 16:
        raise SynthfaceError(f"--scale must be from 1 to 16, got {scale}")
    images = read_labelled(dataset)[:n]
    if not images:
        raise SynthfaceError(f"{dataset / 'labels.csv'} lists no faces")
    tiles = []
    for image in images:
        rgb = read_rgb(image.file)
        s = scale or max(1, round(192 / rgb.shape[0]))
        tiles.append(draw_labels(rgb, [(f.box, f.landmarks, f.ignore) for f in image.faces], s))
    write_image(out, make_grid(np.stack(tiles)), "preview")
    return Path(out)
