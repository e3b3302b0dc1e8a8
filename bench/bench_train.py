"""Training speed (images/s) of the Lightning training step, per preset, on this machine.

    python bench/bench_train.py                       # seed56 and dcgan64, 20 batches of 64
    python bench/bench_train.py --presets tiny --batches 50
    python bench/bench_train.py --presets dcgan64 dcgan128 --batch-size 128 --no-plain \
        --modes 32-true bf16-mixed bf16-mixed+cl          # a GPU: precision and channels_last

Runs the real `DCGAN` LightningModule under a real `pl.Trainer` on the fixture faces
(decoded once, like training does), then the same networks, batch and step in a plain
PyTorch loop, and reports Lightning's overhead; the first epoch of each is a warm-up.
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

from synthface.generator.config import load_config  # noqa: E402
from synthface.generator.data import FaceDataModule  # noqa: E402
from synthface.generator.gan import DCGAN  # noqa: E402
from synthface.generator.networks import arch_of  # noqa: E402


class EpochTimer(pl.Callback):
    def __init__(self):
        self.times = []

    def on_train_epoch_start(self, trainer, module):
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.times.append(time.perf_counter() - self._t)


def bench(preset: str, batches: int, batch_size: int, epochs: int, mode: str = "32-true") -> float:
    """Images/s of the real training step; mode: a Lightning precision, "+cl" for
    channels_last. The preset's own recipe (DiffAugment, EMA, loss) is what is timed."""
    cfg = load_config(preset, [f"data.batch_size={batch_size}", f"train.batches_per_epoch={batches}"])
    precision, _, cl = mode.partition("+")
    dm = FaceDataModule(ROOT / "tests" / "fixtures" / "faces", cfg.model.resolution, batch_size, batches)
    t = cfg.train
    module = DCGAN(arch_of(cfg.model), loss=t.loss, diffaugment=t.diffaugment,
                   ema_halflife_kimg=t.ema_halflife_kimg, spectral_norm=cfg.model.spectral_norm,
                   channels_last=cl == "cl")
    timer = EpochTimer()
    trainer = pl.Trainer(max_epochs=epochs + 1, accelerator="auto", devices=1, logger=False, precision=precision,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[timer])
    trainer.fit(module, datamodule=dm)
    seconds = sum(timer.times[1:])
    return epochs * batches * batch_size / seconds


def bench_plain(preset: str, batches: int, batch_size: int, epochs: int) -> float:
    """The same networks, batch and step as DCGAN.training_step, in a plain PyTorch loop."""
    import torch.nn.functional as F

    from synthface.generator.gan import to_unit_range
    from synthface.generator.networks import build_discriminator, build_generator

    cfg = load_config(preset, [f"data.batch_size={batch_size}", f"train.batches_per_epoch={batches}"])
    dm = FaceDataModule(ROOT / "tests" / "fixtures" / "faces", cfg.model.resolution, batch_size, batches,
                        progress=False)
    dm.setup()
    arch = arch_of(cfg.model)
    g, d = build_generator(arch), build_discriminator(arch)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    times = []
    for _ in range(epochs + 1):
        t = time.perf_counter()
        for batch in dm.train_dataloader():
            real = to_unit_range(batch)
            flip = torch.rand(real.shape[0], 1, 1, 1) < 0.5
            real = torch.where(flip, real.flip(3), real)
            fake = g(torch.randn(real.shape[0], arch["z_dim"]))
            lr_, lf = d(real), d(fake.detach())
            d_loss = (F.binary_cross_entropy_with_logits(lr_, torch.ones_like(lr_))
                      + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf)))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            for p_ in d.parameters():
                p_.requires_grad_(False)
            logits = d(fake)
            g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            for p_ in d.parameters():
                p_.requires_grad_(True)
            float(d_loss.detach()), float(g_loss.detach())  # what logging costs the Lightning step
        times.append(time.perf_counter() - t)
    return epochs * batches * batch_size / sum(times[1:])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["seed56", "dcgan64"])
    p.add_argument("--batches", type=int, default=20, help="batches per timed epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up)")
    p.add_argument("--modes", nargs="+", default=["32-true"],
                   help="Lightning precisions to time, each optionally +cl for channels_last")
    p.add_argument("--no-plain", action="store_true", help="skip the plain-PyTorch comparison")
    args = p.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cuda={torch.cuda.is_available()}")
    print("preset,mode,batch_size,lightning_images_per_s,plain_images_per_s,lightning_overhead")
    for preset in args.presets:
        for mode in args.modes:
            rate = bench(preset, args.batches, args.batch_size, args.epochs, mode)
            if args.no_plain:
                print(f"{preset},{mode},{args.batch_size},{rate:.1f},,", flush=True)
                continue
            plain = bench_plain(preset, args.batches, args.batch_size, args.epochs)
            print(f"{preset},{mode},{args.batch_size},{rate:.1f},{plain:.1f},{plain / rate - 1:+.1%}", flush=True)


if __name__ == "__main__":
    main()
