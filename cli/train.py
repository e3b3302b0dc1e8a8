"""`synthface train`: the GAN trained on a folder (or zip) of aligned faces. The flags
become config overrides (section.key=value) on a preset or YAML file; the run folder
is resumed when it holds a run.
"""

from __future__ import annotations

import argparse

from synthface.cli import plans


TRAIN_EXAMPLES = """\
examples:
  # the default preset (dcgan64) on a folder of aligned faces
  synthface train --data ~/ffhq/thumbnails128x128 -o runs/ffhq64

  # the article's 56x56 design, 100 batches an epoch, for 300 epochs
  synthface train --data faces.zip -o runs/seed56 --config seed56 --max-epochs 300

  # any config key as section.key=value
  synthface train --data faces/ -o runs/x train.save_every=10 model.g_width=32

  # run the same command again to resume an interrupted run (or add --resume)
"""


# config keys (section.key) with a flag of their own (--key), and what the help adds
SHORTCUTS = {"train.max_epochs": "", "data.batch_size": "", "train.seed": "",
             "train.accelerator": "auto, cpu, gpu", "train.devices": "auto, a count, or a list such as 0,1",
             "train.num_nodes": "", "train.strategy": "auto, ddp, ...",
             "train.precision": "auto, 32-true, bf16-mixed, 16-mixed"}


def _type_of(key: str):
    """A flag's type: that of the config field's default (text where the field takes several kinds)."""
    from synthface.generator.config import Config

    section, name = key.split(".")
    default = getattr(Config(), section).__dict__[name]
    return type(default) if isinstance(default, (int, float)) and not isinstance(default, bool) else str


def add(sub) -> None:
    p = sub.add_parser(
        "train", help="train the GAN on a folder (or zip) of aligned face images",
        description="Train a DCGAN on aligned face images and write a run folder "
                    "(loss.csv, loss.png, samples/, weights/, generator.safetensors, checkpoints/).",
        epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of face images (searched recursively) or a .zip of one")
    p.add_argument("-o", "--output", "--out", dest="out", required=True,
                   help="run folder to write (resumed if it holds a run)")
    p.add_argument("--config", default="dcgan64",
                   help="preset name (dcgan64, seed56, tiny) or a YAML file (default: dcgan64)")
    p.add_argument("--resume", action="store_true",
                   help="require a checkpoint in -o to continue from (the default resumes when there is one)")
    for key, help in SHORTCUTS.items():  # flags for the config keys most runs set; the preset's value stays
        name = key.split(".")[1]
        p.add_argument("--" + name.replace("_", "-"), dest=key, type=_type_of(key), metavar=name.upper(),
                       help=f"sets {key}{': ' + help if help else ''} (default: the preset's)")
    p.add_argument("--fast-dev-run", action="store_true", help="one batch, to check that everything runs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="any other config value")
    p.set_defaults(func=_run_train, plan=plans.train)


def _run_train(args) -> int:
    """train: the flags as config overrides, then one training run."""
    from synthface.generator.config import load_config

    flags = {key: getattr(args, key) for key in SHORTCUTS}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)
    cfg = load_config(args.config, overrides)
    from synthface.generator.train import train

    path = train(args.data, args.out, cfg, resume=True if args.resume else None,
                 progress=not args.no_progress, fast_dev_run=args.fast_dev_run)
    import os

    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
        print(f"generator weights: {path}")  # once, not once per DDP process
    return 0
