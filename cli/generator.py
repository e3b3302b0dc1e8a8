"""The commands that study a trained generator: `synthface evaluate` (detection yield,
Fréchet face distance, memorisation and diversity against real faces) and
`synthface directions` (head-pose and expression directions in its latent space).
"""

from __future__ import annotations

import argparse

from synthface.cli import plans
from synthface.cli.common import add_upsample_flag


def _add_evaluate(sub) -> None:
    """The evaluate command."""
    p = sub.add_parser("evaluate", help="measure a generator against real faces (dlib models, offline)",
                       description="Detection yield, Fréchet face distance (dlib face descriptors), "
                                   "memorisation and diversity of a generator, each next to its real-face baseline.",
                       epilog="example:\n  synthface evaluate --real ~/faces -n 2000 -o report.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", "--real", dest="real", required=True,
                   help="folder (or zip) of real faces: the generator's training data")
    p.add_argument("-n", type=int, default=2000, help="generated faces to measure (default 2000)")
    p.add_argument("-o", "--output", help="write the report as JSON here")
    p.add_argument("--checkpoint", help="generator weights, or a bundled generator's name: celeba64 (the default), default64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="dlib worker processes (default: all cores)")
    add_upsample_flag(p, "detector upsampling, as in make-dataset")
    p.add_argument("--cache-dir", default="~/.cache/synthface", help='real-face cache ("" for none)')
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_evaluate, plan=plans.evaluate)


def _run_evaluate(args) -> int:
    """evaluate: a generator measured against real faces."""
    from synthface.generator.evaluate import evaluate_generator

    evaluate_generator(args.real, checkpoint=args.checkpoint, n=args.n, seed=args.seed, workers=args.workers,
                       upsample=args.upsample, cache_dir=args.cache_dir, device=args.device,
                       progress=not args.no_progress, output=args.output, echo=print)
    return 0


def _add_directions(sub) -> None:
    """The directions command."""
    p = sub.add_parser("directions", help="find head-pose and expression directions in a generator's latent space",
                       description="Sample and label faces, fit a unit direction in z for yaw, pitch, roll, mouth "
                                   "and eye opening (ridge regression, as InterFaceGAN's boundaries), calibrate "
                                   "each (distance -> degrees or ratio, and the share dlib keeps), and save them "
                                   "beside the generator (NAME.directions.safetensors + .json).",
                       epilog="examples:\n  synthface directions --checkpoint runs/mine/generator.safetensors -n 10000   # yours\n"
                              "  synthface directions -o mine/celeba64.safetensors   # the bundled default, anew",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="generator weights, or a bundled generator's name: celeba64 (the default), default64")
    p.add_argument("-o", "--output", metavar="NEW.safetensors",
                   help="copy the generator here and write the directions beside the copy (needed for the bundled "
                        "generator, whose directions ship with synthface)")
    p.add_argument("-n", type=int, default=5000, help="faces to fit on (default 5000)")
    p.add_argument("--calibration-faces", type=int, default=200,
                   help="faces per attribute and distance for the calibration (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="dlib worker processes (default: all cores)")
    add_upsample_flag(p, "detector upsampling, as in make-dataset")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_directions, plan=plans.directions)


def _run_directions(args) -> int:
    """directions: fit and calibrate the latent directions, then print their reach."""
    from synthface.generator.directions import fit_directions, summary_lines
    from synthface.generator.sampling import resolve_checkpoint

    checkpoint = resolve_checkpoint(args.checkpoint)
    s = fit_directions(checkpoint, n=args.n, seed=args.seed, calibration_faces=args.calibration_faces,
                       workers=args.workers, upsample=args.upsample, device=args.device,
                       progress=not args.no_progress, output=args.output)
    for line in summary_lines(s, args.output or checkpoint):
        print(line)
    return 0


def add(sub) -> None:
    """The evaluate and directions commands, in this order."""
    _add_evaluate(sub)
    _add_directions(sub)
