"""The commands that draw pictures: `synthface preview` (a dataset's faces with their
boxes and landmarks) and `synthface sample` (a grid of generated faces, optionally
steered along one attribute or turned in 3D).
"""

from __future__ import annotations

import argparse

from synthface.cli import plans
from synthface.cli.common import add_path, add_steering_flags, steering_targets
from synthface.errors import SynthfaceError


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
    print(f"preview: {preview(args.dataset, args.output, args.n, args.scale)}")
    return 0


def _add_sample(sub) -> None:
    """The sample command."""
    p = sub.add_parser("sample", help="a grid of generated faces",
                       description="Draw faces from a generator (the bundled default unless --checkpoint) "
                                   "into one grid image. Face j is make-dataset's candidate j for the same --seed.",
                       epilog="examples:\n  synthface sample -n 64 -o grid.png\n"
                              "  synthface sample -n 16 -o grid.png --checkpoint runs/x/generator.safetensors --seed 3\n"
                              "  synthface sample -n 4 --rotate-3d=-60:60 --steps 7 -o turns.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=64, help="number of faces (default 64)")
    p.add_argument("-o", "--output", default="grid.png", help="PNG to write (default grid.png)")
    p.add_argument("--checkpoint", help="generator weights, or a bundled generator's name: default64 (the default), celeba64")
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
    import cv2
    import numpy as np

    from synthface.core.imaging import check_image_path, make_grid, write_image
    from synthface.generator.sampling import candidates, check_seed, open_sampler

    if not 1 <= args.n <= 4096:
        raise SynthfaceError(f"-n must be from 1 to 4096, got {args.n}")
    if args.scale is None:
        args.scale = 3 if args.rotate_3d is not None else 1
    if not 1 <= args.scale <= 16:
        raise SynthfaceError(f"--scale must be from 1 to 16, got {args.scale}")
    check_seed(args.seed)
    check_image_path(args.output)
    targets = steering_targets(args)
    if args.rotate_3d is not None:
        return _sample_turns(args, targets)
    if args.steps is not None:
        walked = [t for t in targets if t.std is None]
        if len(walked) != 1 or args.pose_mix or not 2 <= args.steps <= 64:
            raise SynthfaceError("--steps walks one attribute: give exactly one of --yaw, --pitch, --mouth-open "
                                 "(MIN:MAX), without --pose-mix, and 2 to 64 steps")
    sampler = open_sampler(args.checkpoint, device=args.device, targets=targets)
    cells = args.n * (args.steps or 1)
    if cells * (sampler.resolution * args.scale) ** 2 * 3 > 2 ** 30:
        raise SynthfaceError(f"a grid of {cells} faces of {sampler.resolution * args.scale} px is over 1 GB; "
                             "lower -n or --scale")
    if args.steps is None:
        faces = np.stack([img for _, _, img in candidates(sampler, args.seed, 0, args.n)])
        ncol = None
    else:
        from synthface.generator.sampling import candidate_seed, noise

        t = walked[0]
        steering = sampler.steering
        z = noise([candidate_seed(args.seed, j) for j in range(args.n)], sampler.z_dim)
        values = np.linspace(t.low, t.high, args.steps)
        table = steering.tables[t.name]
        grid = np.stack([sampler.images_from_codes(steering.at_distances(z, t.name, float(np.interp(v, *table))))
                         for v in values], 1)  # (n, steps, H, W, 3)
        faces = grid.reshape(-1, *grid.shape[2:])
        ncol = args.steps
    if args.scale > 1:
        faces = np.stack([cv2.resize(f, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_NEAREST)
                          for f in faces])
    write_image(args.output, make_grid(faces, ncol), "sample")
    print(f"{len(faces)} faces: {args.output}")
    return 0


def _sample_turns(args, targets) -> int:
    """sample --rotate-3d --steps: each of the first n faces dlib keeps, turned from MIN
    to MAX degrees, with its labels drawn."""
    import numpy as np

    from synthface.face.annotate import AnnotateConfig, Annotator
    from synthface.core.imaging import make_grid, write_image
    from synthface.dataset.preview import turn_row
    from synthface.face.rotate3d import parse_turns
    from synthface.generator.sampling import candidates, open_sampler

    turns = parse_turns(args.rotate_3d)
    if args.steps is None or not 2 <= args.steps <= 64:
        raise SynthfaceError("--rotate-3d in sample needs --steps (2 to 64): the turn walks MIN to MAX along each row")
    sampler = open_sampler(args.checkpoint, device=args.device, targets=targets)
    size = sampler.resolution * args.scale
    if args.n * args.steps * size * size * 3 > 2 ** 30:
        raise SynthfaceError(f"a grid of {args.n * args.steps} faces of {size} px is over 1 GB; lower -n or --scale")
    annotator = Annotator(AnnotateConfig(landmarks=True))
    tiles, rows = [], 0
    for j, _, img in candidates(sampler, args.seed, 0, 20 * args.n + 100):
        faces = annotator.annotate(img)
        if annotator.rejection_reason(faces):
            continue
        face = faces[0]
        tiles += turn_row(img, face["landmarks"], face["box"], np.linspace(*turns.yaw, args.steps), args.scale)
        rows += 1
        if rows == args.n:
            break
    if not tiles:
        raise SynthfaceError("dlib kept none of the faces drawn; the generator may be untrained")
    write_image(args.output, make_grid(np.stack(tiles), args.steps), "sample")
    print(f"{rows} faces turned {turns.yaw[0]:g} to {turns.yaw[1]:g} degrees in {args.steps} steps: {args.output}")
    return 0


def add(sub) -> None:
    """The preview and sample commands, in this order."""
    _add_preview(sub)
    _add_sample(sub)
