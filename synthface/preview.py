"""A contact sheet of a dataset: faces with their boxes and landmarks drawn."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from synthface.errors import SynthfaceError
from synthface.imaging import make_grid, read_rgb, write_image


def draw_labels(rgb: np.ndarray, box, points, scale: int) -> np.ndarray:
    """Upscale by `scale` and draw the box (green) and landmarks (red, eyes blue)."""
    img = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    x, y, w, h = box
    # pixel-centre coordinates: pixel c spans [c - 0.5, c + 0.5] before scaling
    to_px = lambda v: int(round((v + 0.5) * scale - 0.5))  # noqa: E731
    cv2.rectangle(img, (to_px(x - 0.5), to_px(y - 0.5)), (to_px(x + w - 0.5), to_px(y + h - 0.5)),
                  (40, 220, 40), 1)
    for i, (px, py) in enumerate(points):
        color = (60, 120, 255) if 36 <= i <= 47 else (255, 50, 50)
        cv2.circle(img, (to_px(px), to_px(py)), max(1, scale // 2), color, -1, cv2.LINE_AA)
    return img


def preview(dataset, out, n: int = 16, scale: int | None = None) -> Path:
    """Draw the first n faces of a dataset with their labels into one PNG."""
    dataset = Path(dataset)
    labels = dataset / "labels.csv"
    if not labels.is_file():
        raise SynthfaceError(f"{dataset} has no labels.csv: not a finished synthface dataset")
    if not 1 <= n <= 1024:
        raise SynthfaceError(f"-n must be from 1 to 1024, got {n}")
    if scale is not None and not 1 <= scale <= 16:
        raise SynthfaceError(f"--scale must be from 1 to 16, got {scale}")
    tiles = []
    with open(labels, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("file", "x", "y", "w", "h") if c not in (reader.fieldnames or [])]
        if missing:
            raise SynthfaceError(f"{labels} lacks the column(s) {', '.join(missing)}: not a synthface labels file")
        for line, row in enumerate(reader, start=2):
            if len(tiles) == n:
                break
            try:
                box = [float(row[c]) for c in ("x", "y", "w", "h")]
                pts = [(float(row[f"x{i}"]), float(row[f"y{i}"])) for i in range(68)] if "x0" in row else []
            except (TypeError, ValueError):
                raise SynthfaceError(f"{labels}, line {line}: a box or point that is not a number") from None
            rgb = read_rgb(dataset / row["file"])
            s = scale or max(1, round(192 / rgb.shape[0]))
            tiles.append(draw_labels(rgb, box, pts, s))
    if not tiles:
        raise SynthfaceError(f"{labels} lists no faces")
    write_image(out, make_grid(np.stack(tiles)))
    return Path(out)
