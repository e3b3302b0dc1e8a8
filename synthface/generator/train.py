"""`train(data, out, cfg)`: fit the DCGAN and write a run folder.

The run folder holds what the article wrote, plus what resuming needs:

    config.yaml                 the resolved config (and the data path)
    loss.csv, loss.png          epoch,d_loss,g_loss every `log_every` epochs, plotted
    samples/epoch_NNNN.png      the fixed noise batch every `sample_every` epochs
    weights/epoch_NNNN.*        generator .safetensors + .json every `save_every` epochs
    generator.safetensors/.json the final generator (what `make-dataset` reads)
    checkpoints/last.ckpt       Lightning's full state, for resuming

Running the same command on an interrupted run folder resumes from last.ckpt.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import TQDMProgressBar

from synthface.generator.config import Config, config_from_dict
from synthface.generator.data import FaceDataModule
from synthface.errors import SynthfaceError
from synthface.core.files import atomic_open, check_output_folder, folder_lock, write_atomic
from synthface.generator.gan import DCGAN
from synthface.core.imaging import make_grid, plot_curves, to_uint8, write_png
from synthface.generator.networks import arch_of
from synthface.generator.weights import save_generator

log = logging.getLogger("synthface")

LOSS_HEADER = ["epoch", "d_loss", "g_loss"]
# Options that may change between the first run and a resume: where and how long it
# trains, not what it trains.
RESUMABLE_CHANGES = {"train.max_epochs", "train.accelerator", "train.devices", "train.num_nodes",
                     "train.strategy", "train.precision", "data.cache_dir", "train.max_minutes",
                     "train.channels_last", "train.eval_every", "train.eval_samples"}
METRICS_HEADER = ["epoch", "yield", "ffd"]
LOCK_DIR = ".synthface"  # holds the run folder's lock file


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _check_run_folder(out: Path, cfg: Config, resume: bool | None, data_path: str = "") -> Path | None:
    """Refuse a foreign or mismatched folder; return the checkpoint to resume from."""
    ckpt = out / "checkpoints" / "last.ckpt"
    check_output_folder(out, "--out")
    if not out.exists() or not any(e.name != LOCK_DIR for e in out.iterdir()):
        if resume:
            raise SynthfaceError(f"nothing to resume: {out} holds no run")
        return None
    saved_file = out / "config.yaml"
    if not saved_file.is_file():
        raise SynthfaceError(f"{out} is not empty and is not a synthface run folder; choose a new --out")
    try:
        saved = yaml.safe_load(saved_file.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        raise SynthfaceError(f"{saved_file} is damaged (not YAML)") from None
    if not isinstance(saved, dict):
        raise SynthfaceError(f"{saved_file} is damaged (not a run's settings)")
    saved_data = saved.pop("data_path", None)
    if data_path and saved_data and saved_data != data_path:
        raise SynthfaceError(f"{out} was trained on {saved_data}, not {data_path}; pass the same --data "
                             "to resume, or choose a new --out")
    old, new = _flatten(config_from_dict(saved).to_dict()), _flatten(cfg.to_dict())
    diffs = [f"{k}: {old[k]!r} -> {new[k]!r}" for k in new
             if k not in RESUMABLE_CHANGES and old.get(k) != new[k]]
    if diffs:
        raise SynthfaceError(f"{out} was trained with another config ({'; '.join(diffs[:3])}); "
                             "use the same options to resume, or a new --out")
    if ckpt.is_file():
        try:
            done = torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"]
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged file
            raise SynthfaceError(f"{ckpt} is damaged ({type(exc).__name__}); delete it to start the run over, "
                                 "or restore it") from None
        if cfg.train.max_epochs < done:
            raise SynthfaceError(f"{out} has already trained {done} epochs; --max-epochs {cfg.train.max_epochs} "
                                 f"is fewer (use {done} or more, or a new --out)")
        return ckpt
    if resume:
        raise SynthfaceError(f"nothing to resume: {ckpt} does not exist")
    return None  # stopped before its first epoch ended: start over in place


def _strategy(name: str) -> str:
    """Each GAN backward touches one network only: DDP must expect unused parameters."""
    return f"{name}_find_unused_parameters_true" if name in ("ddp", "ddp_spawn") else name


def _precision(cfg: Config) -> str:
    if cfg.train.precision != "auto":
        return cfg.train.precision
    on_gpu = torch.cuda.is_available() and cfg.train.accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if on_gpu else "32-true"


class RunOutputs(pl.Callback):
    """Writes loss.csv / loss.png, sample grids and generator weights (rank zero only)."""

    def __init__(self, out: Path, cfg: Config, data_path: str, announce: bool = False):
        self.out, self.cfg, self.data_path = out, cfg, data_path
        self.announce = announce  # a log line per epoch, for runs without a progress bar
        self.rows: list[list] = []
        self._sums: dict[str, float] = {}
        self._count = 0

    # -- loss bookkeeping ------------------------------------------------------------
    def on_train_start(self, trainer, module):  # after a checkpoint is restored
        if not trainer.is_global_zero:
            return
        done = trainer.current_epoch  # epochs completed (restored from a checkpoint)
        path = self.out / "loss.csv"
        self.rows = []
        if done and path.is_file():
            # rows written after the checkpoint was taken are dropped: they get re-made
            self.rows = [r for r in _read_rows(path) if int(r[0]) <= done]
        self._write_losses()

    def on_train_epoch_start(self, trainer, module):
        self._sums, self._count = {"d_loss": 0.0, "g_loss": 0.0}, 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        m = trainer.callback_metrics
        if "d_loss_step" in m:
            self._sums["d_loss"] += float(m["d_loss_step"])
            self._sums["g_loss"] += float(m["g_loss_step"])
            self._count += 1

    def on_train_epoch_end(self, trainer, module):
        if not trainer.is_global_zero:
            return
        t = self.cfg.train
        epoch = trainer.current_epoch + 1
        last = epoch == trainer.max_epochs
        if self._count and (epoch % t.log_every == 0 or last):
            n = self._count
            self.rows.append([epoch, f"{self._sums['d_loss'] / n:.6f}", f"{self._sums['g_loss'] / n:.6f}"])
            self._write_losses()
            if self.announce:
                log.info("epoch %d/%d: d_loss %s, g_loss %s", epoch, trainer.max_epochs, *self.rows[-1][1:])
        if epoch % t.sample_every == 0 or last:
            self.write_samples(module, self.out / "samples" / f"epoch_{epoch:04d}.png")
        if epoch % t.save_every == 0:
            self.write_generator(module, self.out / "weights" / f"epoch_{epoch:04d}.safetensors", epoch)
        if t.eval_every and (epoch % t.eval_every == 0 or last):
            self.write_metrics(module, epoch)


    def on_train_end(self, trainer, module):
        if trainer.is_global_zero:
            # a run stopped by train.max_minutes ends between the sample epochs: its grid too
            grid = self.out / "samples" / f"epoch_{trainer.current_epoch:04d}.png"
            if trainer.current_epoch and not grid.is_file():
                self.write_samples(module, grid)
            self.write_generator(module, self.out / "generator.safetensors", trainer.current_epoch)

    # -- writers -----------------------------------------------------------------------
    def _write_losses(self):
        path = self.out / "loss.csv"
        with atomic_open(path, newline="") as f:
            w = csv.writer(f)
            w.writerow(LOSS_HEADER)
            w.writerows(self.rows)
        if self.rows:
            epochs = [int(r[0]) for r in self.rows]
            plot_curves(epochs, {"d_loss": [float(r[1]) for r in self.rows],
                                 "g_loss": [float(r[2]) for r in self.rows]}, self.out / "loss.png",
                        y_label="loss (mean over the epoch)")

    def write_metrics(self, module: DCGAN, epoch: int):
        """metrics.csv (epoch, yield, ffd) and metrics.png: quality as training goes."""
        from synthface.generator.evaluate import quick_scores

        t = self.cfg.train
        generator = module.sampling_generator()
        was_training = generator.training
        generator.eval()
        g = torch.Generator().manual_seed(t.seed + 2)
        with torch.no_grad():
            z = torch.randn(t.eval_samples, self.cfg.model.z_dim, generator=g).to(module.device)
            images = np.concatenate([to_uint8(generator(z[i:i + 256])) for i in range(0, len(z), 256)])
        generator.train(was_training)
        scores = quick_scores(images, self.data_path, self.cfg.data.cache_dir, exclude=[self.out])
        path = self.out / "metrics.csv"
        rows = []
        if path.is_file():
            rows = [r for r in _read_rows(path) if int(r[0]) < epoch]
        rows.append([epoch, f"{scores['yield']:.4f}", f"{scores['ffd']:.6f}"])
        with atomic_open(path, newline="") as f:
            w = csv.writer(f)
            w.writerow(METRICS_HEADER)
            w.writerows(rows)
        epochs = [int(r[0]) for r in rows]
        plot_curves(epochs, {"detection yield": [float(r[1]) for r in rows],
                             "FFD x 10": [10 * float(r[2]) for r in rows]}, self.out / "metrics.png",
                    y_label="yield (share) / FFD x 10")
        if self.announce:
            log.info("epoch %d: yield %.1f%%, FFD %.4f", epoch, 100 * scores["yield"], scores["ffd"])

    def write_samples(self, module: DCGAN, path: Path):
        faces = to_uint8(module.sample_fixed())
        write_png(path, make_grid(faces, ncol=self.cfg.train.grid))

    def write_generator(self, module: DCGAN, path: Path, epoch: int):
        generator = module.sampling_generator()  # the EMA when there is one
        save_generator(generator, arch_of(self.cfg.model), path,
                       extra={"epoch": int(epoch), "config": self.cfg.to_dict(),
                              "data_path": self.data_path})


def _read_rows(path: Path, width: int = 3) -> list:
    """The rows of loss.csv / metrics.csv (epoch, then numbers) this run wrote before; a
    row that is not that (a hand edit, a damaged file) is dropped, with one warning: the
    file is remade from the rows kept and the epochs to come."""
    rows, bad = [], 0
    try:
        with open(path, newline="", errors="replace") as f:
            for r in list(csv.reader(f))[1:]:
                try:
                    ok = len(r) == width and int(r[0]) >= 0 and all(math.isfinite(float(v)) for v in r[1:])
                except ValueError:
                    ok = False
                if ok:
                    rows.append(r)
                else:
                    bad += 1
    except (OSError, csv.Error):
        bad += 1
    if bad:
        log.warning("%s: %d unreadable row(s) dropped; the file is written again", path, bad)
    return rows


class LastCheckpoint(pl.Callback):
    """checkpoints/last.ckpt after every epoch, written to a temporary name and renamed,
    so a run killed at any moment resumes from its last whole epoch. (Lightning 2.6's
    ModelCheckpoint writes `save_last` only alongside a top-k checkpoint.)"""

    def __init__(self, path: Path):
        self.path = path

    def on_train_epoch_end(self, trainer, module):
        tmp = self.path.with_name(self.path.name + ".tmp")
        # collective under DDP; rank zero writes. The full state (optimisers, callbacks),
        # said explicitly: Lightning logs its default every epoch otherwise
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            os.replace(tmp, self.path)


def train(data, out, cfg: Config, resume: bool | None = None, progress: bool = True,
          fast_dev_run: bool = False) -> Path:
    """Train on the faces under `data` (folder or zip); returns the final weights' path.

    resume: None resumes when `out` holds a checkpoint; True requires one.
    """
    # Lightning 2.6 on torch 2.13 warns about its own use of a torch API on every fit.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    out = Path(out)
    data_path = str(Path(data).expanduser().resolve())
    t = cfg.train
    if t.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise SynthfaceError(f"--accelerator {t.accelerator}: no CUDA GPU is available here (use auto or cpu)")
    ckpt = _check_run_folder(out, cfg, resume, data_path)
    trainer = _trainer(cfg, out, progress, fast_dev_run)  # bad Trainer options fail before any folder is made
    # the run folder is left out of the data when it lies inside it: never train on loss.png
    datamodule = FaceDataModule(data, cfg.model.resolution, cfg.data.batch_size, cfg.train.batches_per_epoch,
                                cache_dir=cfg.data.cache_dir, seed=cfg.train.seed, progress=progress,
                                split=cfg.data.split, exclude=[out])
    datamodule.setup("fit")  # decode before the trainer starts: a bad folder fails fast
    out.mkdir(parents=True, exist_ok=True)
    # one training run per folder (DDP's other ranks, started by rank zero, do not lock)
    first_rank = os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"
    with folder_lock(out / LOCK_DIR, out, "train") if first_rank else contextlib.nullcontext():
        return _fit(out, cfg, data_path=data_path, ckpt=ckpt, trainer=trainer, datamodule=datamodule,
                    progress=progress)


def _fit(out: Path, cfg: Config, *, data_path: str, ckpt, trainer, datamodule, progress: bool) -> Path:
    """Write the run's config.yaml, build the GAN and fit it (resuming from `ckpt`);
    returns the final weights' path."""
    t = cfg.train
    write_atomic(out / "config.yaml", yaml.safe_dump({**cfg.to_dict(), "data_path": data_path}, sort_keys=False))
    if ckpt is not None:
        log.info("resuming %s from %s", out, ckpt)

    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    module = DCGAN(arch_of(cfg.model), lr_g=t.lr_g, lr_d=t.lr_d, beta1=t.beta1, beta2=t.beta2,
                   flip=cfg.data.flip, grid=t.grid, seed=t.seed, loss=t.loss, diffaugment=t.diffaugment,
                   ema_halflife_kimg=t.ema_halflife_kimg, ema_rampup=t.ema_rampup,
                   spectral_norm=cfg.model.spectral_norm, channels_last=t.channels_last)
    outputs = RunOutputs(out, cfg, data_path, announce=not progress)
    (out / "checkpoints").mkdir(exist_ok=True)
    trainer.callbacks[:0] = [outputs, LastCheckpoint(out / "checkpoints" / "last.ckpt")]
    for cb in trainer.callbacks:
        if isinstance(cb, TQDMProgressBar):
            cb._refresh_rate = max(1, math.ceil(len(datamodule.images) / 2000))
    # Lightning turns Ctrl-C into a message and sys.exit(1); synthface's is one line and 130
    logging.getLogger("pytorch_lightning.trainer.call").setLevel(logging.WARNING)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt) if ckpt else None)
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    return out / "generator.safetensors"


def _trainer(cfg: Config, out: Path, progress: bool, fast_dev_run: bool) -> pl.Trainer:
    """Lightning's Trainer for this config; its own complaints (devices that are not
    there, an unknown strategy) become one line."""
    t = cfg.train
    strategy = _strategy(t.strategy)
    # Lightning's banner lines ("GPU available: ...", a tip) would come before an error's
    # one line; they are quiet while the Trainer is made.
    quiet = [logging.getLogger(n) for n in ("pytorch_lightning.utilities.rank_zero",
                                             "lightning.pytorch.utilities.rank_zero", "lightning_fabric")]
    levels = [q.level for q in quiet]
    try:
        for q in quiet:
            q.setLevel(logging.WARNING)
        trainer = _make_trainer(cfg, out, progress, fast_dev_run, strategy)
        if t.strategy == "auto" and trainer.world_size > 1:  # several devices: DDP, as "ddp" would be
            trainer = _make_trainer(cfg, out, progress, fast_dev_run, _strategy("ddp"))
    except Exception as exc:  # noqa: BLE001 - MisconfigurationException, ValueError, ... from Lightning
        raise SynthfaceError(f"training options: {' '.join(str(exc).split())}") from None
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)
    cores = os.cpu_count() or 1
    if trainer.accelerator.__class__.__name__ == "CPUAccelerator" and trainer.num_devices > cores:
        raise SynthfaceError(f"--devices {t.devices} on CPU: this machine has {cores} cores")
    return trainer


def _make_trainer(cfg: Config, out: Path, progress: bool, fast_dev_run: bool, strategy: str) -> pl.Trainer:
    t = cfg.train
    return pl.Trainer(
        max_epochs=t.max_epochs, accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=strategy, precision=_precision(cfg),
        callbacks=[TQDMProgressBar()] if progress else [], logger=False, default_root_dir=str(out),
        enable_progress_bar=progress, enable_model_summary=False, enable_checkpointing=False,
        log_every_n_steps=1, fast_dev_run=fast_dev_run,
        max_time={"seconds": t.max_minutes * 60} if t.max_minutes else None,
    )
