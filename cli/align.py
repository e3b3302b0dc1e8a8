"""`synthface align`: FFHQ-style aligned face crops cut from a folder of photos (every
face dlib finds, oriented by its 68 landmarks), the training data for `synthface train`.
"""

from __future__ import annotations

import argparse

from synthface.cli import plans
from synthface.cli.common import add_upsample_flag, add_path


def add(sub) -> None:
    """The align command."""
    p = sub.add_parser("align", help="FFHQ-style aligned face crops from a folder of photos",
                       description="Find every face in each photo (dlib), get its 68 landmarks and cut FFHQ's "
                                   "oriented crop; writes DST/00000/00000.png ... and DST/alignment.json.",
                       epilog="examples:\n  synthface align photos/ aligned/ --size 128\n"
                              "  synthface train --data aligned/ -o runs/mine",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_path(p, "src", "a folder of photos (searched recursively) or one photo")
    add_path(p, "dst", "output folder (new or empty, unless --resume)", flags=("-o", "--output"))
    p.add_argument("--size", type=int, default=128, help="side of the aligned images (default 128)")
    add_upsample_flag(p, "detector upsampling, for small faces")
    p.add_argument("--workers", type=int, help="processes (default: all cores)")
    p.add_argument("--predictor", help="path of shape_predictor_68_face_landmarks.dat")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in DST")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_align, plan=plans.align)


def _run_align(args) -> int:
    """align: FFHQ-style crops of every face in a folder of photos."""
    from synthface.generator.align import align_folder

    c = align_folder(args.src, args.dst, size=args.size, upsample=args.upsample, workers=args.workers,
                     resume=args.resume, predictor_path=args.predictor, progress=not args.no_progress)
    print(f"{c['faces']} faces from {c['photos']} photos in {args.dst} "
          f"({c['no_face']} without a face, {c['unreadable']} unreadable)")
    return 0
