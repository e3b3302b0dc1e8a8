"""Make a held-out landmark test set from 300-W files: each face of a folder of photos with
.pts beside them (1-based, with or without the version / n_points header) is cropped to a
square twice its landmark extent around the landmarks' centre (clipped at the photo's
border), downscaled so that the extent is at most 200 px, and written as NAME.jpg +
NAME.pts (1-based, with the header): the same preparation as the afw and helen-train
faces the benches score on, so numbers on the new set compare with theirs.

    # e.g. HELEN's 330 test faces, from a copy of a public repository that holds 300-W's files
    python bench/prepare_300w.py SRC/helen/testset -o runs/300w/helen-test

The faces are non-commercial research data: keep them out of the repository (runs/ is
ignored)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from synthface.face.scheme68 import N_POINTS, parse_pts, pts_text

EXTENT = 200  # px: the most a face's landmark extent is after the resize


def read_points(path: Path) -> np.ndarray:
    """0-based (68, 2) points of a 1-based .pts file, headed or bare."""
    text = path.read_text()
    if "n_points" in text:
        return parse_pts(text)
    try:
        pts = np.array(text.split(), float)
    except ValueError:
        pts = np.array([])
    if pts.size != 2 * N_POINTS or not np.isfinite(pts).all():
        raise ValueError("not 68 finite points")
    return pts.reshape(-1, 2) - 1.0


def prepare(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The crop and its 0-based points (pixel centres at integer coordinates)."""
    lo, hi = points.min(0), points.max(0)
    # placed on the files' 1-based coordinates, as afw's and helen-train's crops were: this
    # makes afw's 337 faces again to 0.001 px (their files' rounding) and the same image sizes
    centre, extent = (lo + hi) / 2 + 1, float((hi - lo).max())
    h, w = image.shape[:2]
    x0, y0 = max(0, math.floor(centre[0] - extent)), max(0, math.floor(centre[1] - extent))
    x1, y1 = min(w, math.ceil(centre[0] + extent)), min(h, math.ceil(centre[1] + extent))
    crop, pts = image[y0:y1, x0:x1], points - (x0, y0)
    scale = min(1.0, EXTENT / extent)
    if scale < 1.0:
        size = (round(crop.shape[1] * scale), round(crop.shape[0] * scale))
        sx, sy = size[0] / crop.shape[1], size[1] / crop.shape[0]
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        pts = (pts + 0.5) * (sx, sy) - 0.5
    return crop, pts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="folder of photos with 300-W .pts files beside them")
    p.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args(argv)
    files = sorted(args.src.glob("*.pts"))
    if not files:
        sys.exit(f"error: no .pts files in {args.src}")
    if args.out.resolve() == args.src.resolve():
        sys.exit(f"error: -o {args.out} is the source folder; its photos would be written over")
    args.out.mkdir(parents=True, exist_ok=True)
    for f in files:
        photo = next((f.with_suffix(s) for s in (".jpg", ".png") if f.with_suffix(s).exists()), None)
        if photo is None:  # HELEN names faces NAME_K.pts after the photo NAME.jpg
            stem = f.stem.rsplit("_", 1)[0]
            photo = next((f.with_name(stem + s) for s in (".jpg", ".png") if f.with_name(stem + s).exists()), None)
        image = cv2.imread(str(photo)) if photo else None
        if image is None:
            sys.exit(f"error: no readable photo for {f}")
        try:
            crop, pts = prepare(image, read_points(f))
        except ValueError as exc:
            sys.exit(f"error: {f}: {exc}")
        cv2.imwrite(str(args.out / (f.stem + ".jpg")), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
        (args.out / f.name).write_text(pts_text(pts))
    print(f"{len(files)} faces -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
