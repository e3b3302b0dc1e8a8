"""The three face box conventions (`make-dataset --box`) drawn on generated faces: the
picture in docs/dataset.md.

    python bench/draw_boxes.py docs/box_conventions.jpg     # a few seconds on CPU

Faces of the bundled generator that dlib keeps (as make-dataset keeps them), each on a
grey margin so that boxes reaching past the 64 px crop show: upright ones, one rolled by
20 degrees (the image and its points turned together, dlib's box found again on it) and
one turned 35 degrees in 3D (rotate3d.turn_face, which carries the box). Green: dlib's
box; blue: points; red: head (geometry.convention_box); the 68 points in grey.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLOURS = {"dlib": (40, 200, 40), "points": (50, 110, 255), "head": (230, 40, 40)}  # RGB
MARGIN = 20  # grey pixels around each 64 px face: a head box reaches up to about 20 above it
SCALE = 3


def draw(img: np.ndarray, points, dlib_box) -> np.ndarray:
    """One tile: the face on a grey margin, upscaled, its three boxes and its points."""
    import cv2

    from synthface.face.geometry import convention_box

    canvas = cv2.copyMakeBorder(img, MARGIN, MARGIN, MARGIN, MARGIN, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    canvas = cv2.resize(canvas, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)
    to_px = lambda v: int(round((v + MARGIN + 0.5) * SCALE - 0.5))  # noqa: E731 (pixel centres at integers)
    for px, py in points:
        cv2.circle(canvas, (to_px(px), to_px(py)), 2, (200, 200, 200), -1, cv2.LINE_AA)
    for name, colour in COLOURS.items():
        x, y, w, h = convention_box(points, dlib_box, name)
        # an inclusive box's outer edges: x - 0.5 .. x + w - 0.5
        cv2.rectangle(canvas, (to_px(x - 0.5), to_px(y - 0.5)), (to_px(x + w - 0.5), to_px(y + h - 0.5)), colour, 2)
    return canvas


def rolled(img: np.ndarray, angle: float):
    """The image turned by `angle` degrees about its centre, on a grey ground."""
    import cv2

    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def legend(width: int) -> np.ndarray:
    import cv2

    strip = np.full((36, width, 3), 255, np.uint8)
    x = 10
    for name, colour in COLOURS.items():
        cv2.rectangle(strip, (x, 10), (x + 24, 26), colour, 2)
        cv2.putText(strip, name, (x + 32, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        x += 140
    return strip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", default=str(ROOT / "docs" / "box_conventions.jpg"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--upright", type=int, default=3, help="upright faces (default 3)")
    args = p.parse_args()

    from synthface.face.annotate import AnnotateConfig, Annotator
    from synthface.core.imaging import make_grid, write_image
    from synthface.face.rotate3d import turn_face
    from synthface.generator.sampling import candidates, open_sampler

    annotator = Annotator(AnnotateConfig(landmarks=True))
    kept = []
    for _, _, img in candidates(open_sampler(device="cpu"), args.seed, 0, None):
        faces = annotator.annotate(img)
        if not annotator.rejection_reason(faces):
            kept.append((img, faces[0]))
        if len(kept) == args.upright + 2:
            break
    tiles = [draw(img, face["landmarks"], face["box"]) for img, face in kept[:args.upright]]
    img, _ = kept[args.upright]
    for angle in (20, 15, 10):  # the most roll dlib's frontal detector still finds
        found = annotator.annotate(rolled(img, angle))
        if found:
            tiles.append(draw(rolled(img, angle), found[0]["landmarks"], found[0]["box"]))
            break
    img, face = kept[args.upright + 1]
    t = turn_face(img, face["landmarks"], face["box"], 35.0)
    tiles.append(draw(t.image, t.points, t.box))
    grid = make_grid(np.stack(tiles), ncol=len(tiles), pad=4)
    write_image(args.out, np.vstack([grid, legend(grid.shape[1])]))
    print(f"{len(tiles)} faces -> {args.out}")


if __name__ == "__main__":
    main()
