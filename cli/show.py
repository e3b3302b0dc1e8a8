"""The commands that draw pictures: `synthface preview` (a dataset's faces with their
boxes and landmarks) and `synthface sample` (a grid of generated faces, optionally
steered along one attribute or turned in 3D).
"""

from __future__ import annotations

import argparse

from synthface.cli import plans
from synthface.cli.common import add_path, add_steering_flags


def _add_preview(sub) -> None:
    """The preview command."""
    p = sub.add_parser("preview", help="draw a dataset's faces with their boxes and landmarks",
                       description="A grid of a dataset's first faces with their labels drawn.",
                       epilog="example:\n  synthface preview data/faces100k -o preview.png -n 36",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_path(p, "dataset", "a folder made by make-dataset")
    p.add_argument("-o", "--output", default="preview.png", help="PNG to write (default preview.png)")
    p.add_argument("-n", type=int, default=16, help="number of faces (default 16)")
    p.add_argument("--scale", type=int, help="magnification (default: to about 192 px a face)")
    p.set_defaults(func=_run_preview, plan=plans.preview)


def _run_preview(args) -> int:
    """preview: a grid of a dataset's faces with their labels drawn."""
    from synthface.core.imaging import check_image_path
    from synthface.dataset.preview import preview

    check_image_path(args.output)
    print(f"preview: {preview(args.dataset, args.output, n=args.n, scale=args.scale)}")
    return 0


def _add_sample(sub) -> None:
    """The sample command."""
    p = sub.add_parser("sample", help="a grid of generated faces",
                       description="Draw faces from a generator (the bundled default unless --checkpoint) "
                                   "into one grid image. Face j is make-dataset's candidate j for the same --seed.",
                       epilog="examples:\n  synthface sample -n 64 -o grid.png\n"
                              "  synthface sample -n 16 -o grid.png --checkpoint celeba64 --seed 3\n"
                              "  synthface sample -n 4 --rotate-3d=-45:45 --steps 7 -o turns.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=64, help="number of faces (default 64)")
    p.add_argument("-o", "--output", default="grid.png", help="PNG to write (default grid.png)")
    p.add_argument("--checkpoint", help="generator weights, or a bundled generator's name: celeba64 (the default), default64")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--scale", type=int, help="magnify each face (default 1; 3 with --rotate-3d)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    add_steering_flags(p)
    p.add_argument("--rotate-3d", metavar="MIN:MAX",
                   help="with --steps: turn each face dlib keeps in 3D from MIN to MAX degrees of yaw, its landmarks "
                        "drawn (hidden points yellow), as make-dataset --rotate-3d does")
    p.add_argument("--steps", type=int, help="walk one steered attribute (or the --rotate-3d turn) from MIN to MAX "
                                             "in this many columns (one row per face)")
    p.set_defaults(func=_run_sample, plan=plans.sample)


def _run_sample(args) -> int:
    """sample: a grid of generated faces (or one steered attribute walked along each row)."""
    from synthface.generator.samples import sample_grid

    print(sample_grid(args.output, n=args.n, checkpoint=args.checkpoint, seed=args.seed, scale=args.scale,
                      device=args.device, yaw=args.yaw, pitch=args.pitch, mouth_open=args.mouth_open,
                      pose_mix=args.pose_mix, rotate_3d=args.rotate_3d, steps=args.steps))
    return 0


def add(sub) -> None:
    """The preview and sample commands, in this order."""
    _add_preview(sub)
    _add_sample(sub)
