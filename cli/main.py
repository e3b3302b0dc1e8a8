"""`synthface` command line: flags in, one library call, one line per error out.

Library modules are imported inside each command, so `synthface --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys

from synthface import __version__
from synthface.errors import SynthfaceError

TRAIN_EXAMPLES = """\
examples:
  # the default preset (dcgan64) on a folder of aligned faces
  synthface train --data ~/ffhq/thumbnails128x128 --out runs/ffhq64

  # the article's 56x56 design, 100 batches an epoch, for 300 epochs
  synthface train --data faces.zip --out runs/seed56 --config seed56 --max-epochs 300

  # any config key as section.key=value
  synthface train --data faces/ --out runs/x train.save_every=10 model.g_width=32

  # run the same command again to resume an interrupted run (or add --resume)
"""


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train the GAN on a folder (or zip) of aligned face images",
        description="Train a DCGAN on aligned face images and write a run folder "
                    "(loss.csv, loss.png, samples/, weights/, generator.safetensors, checkpoints/).",
        epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of face images (searched recursively) or a .zip of one")
    p.add_argument("--out", required=True, help="run folder to write (resumed if it holds a run)")
    p.add_argument("--config", default="dcgan64",
                   help="preset name (dcgan64, seed56, tiny) or a YAML file (default: dcgan64)")
    p.add_argument("--resume", action="store_true",
                   help="require a checkpoint in --out to continue from (the default resumes when there is one)")
    p.add_argument("--max-epochs", type=int, help="train.max_epochs")
    p.add_argument("--batch-size", type=int, help="data.batch_size")
    p.add_argument("--seed", type=int, help="train.seed")
    p.add_argument("--accelerator", help="train.accelerator: auto, cpu, gpu")
    p.add_argument("--devices", help="train.devices: auto, a count, or a list such as 0,1")
    p.add_argument("--num-nodes", type=int, help="train.num_nodes")
    p.add_argument("--strategy", help="train.strategy: auto, ddp, ...")
    p.add_argument("--precision", help="train.precision: auto, 32-true, bf16-mixed, 16-mixed")
    p.add_argument("--fast-dev-run", action="store_true", help="one batch, to check that everything runs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="any other config value")
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from synthface.config import load_config

    flags = {"train.max_epochs": args.max_epochs, "data.batch_size": args.batch_size,
             "train.seed": args.seed, "train.accelerator": args.accelerator,
             "train.devices": args.devices, "train.num_nodes": args.num_nodes,
             "train.strategy": args.strategy, "train.precision": args.precision}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)
    cfg = load_config(args.config, overrides)
    from synthface.train import train

    path = train(args.data, args.out, cfg, resume=True if args.resume else None,
                 progress=not args.no_progress, fast_dev_run=args.fast_dev_run)
    print(f"generator weights: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthface",
        description="Synthetic face datasets: train a DCGAN on aligned faces, then sample "
                    "faces labelled by dlib (boxes and 68 landmarks).",
        epilog="examples:\n  synthface train --data faces/ --out runs/faces64\n"
               "  synthface train --help",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"synthface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("synthface: %(levelname)s: %(message)s"))
    logger = logging.getLogger("synthface")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        return args.func(args)
    except SynthfaceError as exc:
        print(f"synthface: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("synthface: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
