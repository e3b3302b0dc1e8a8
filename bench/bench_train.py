"""Training speed (images/s) of the Lightning training step, per preset, on this machine.

    python bench/bench_train.py                       # seed56 and dcgan64, 20 batches of 64
    python bench/bench_train.py --presets tiny --batches 50

Runs the real `DCGAN` LightningModule under a real `pl.Trainer` on the fixture faces
(decoded once, like training does); the first epoch is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthface.config import load_config  # noqa: E402
from synthface.data import FaceDataModule  # noqa: E402
from synthface.gan import DCGAN  # noqa: E402
from synthface.networks import arch_of  # noqa: E402


class EpochTimer(pl.Callback):
    def __init__(self):
        self.times = []

    def on_train_epoch_start(self, trainer, module):
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.times.append(time.perf_counter() - self._t)


def bench(preset: str, batches: int, batch_size: int, epochs: int) -> float:
    cfg = load_config(preset, [f"data.batch_size={batch_size}", f"train.batches_per_epoch={batches}"])
    dm = FaceDataModule(ROOT / "tests" / "fixtures" / "faces", cfg.model.resolution, batch_size, batches)
    module = DCGAN(arch_of(cfg.model))
    timer = EpochTimer()
    trainer = pl.Trainer(max_epochs=epochs + 1, accelerator="auto", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[timer])
    trainer.fit(module, datamodule=dm)
    seconds = sum(timer.times[1:])
    return epochs * batches * batch_size / seconds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["seed56", "dcgan64"])
    p.add_argument("--batches", type=int, default=20, help="batches per timed epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up)")
    args = p.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cuda={torch.cuda.is_available()}")
    print("preset,batch_size,images_per_s")
    for preset in args.presets:
        rate = bench(preset, args.batches, args.batch_size, args.epochs)
        print(f"{preset},{args.batch_size},{rate:.1f}", flush=True)


if __name__ == "__main__":
    main()
