"""`landmarks train-cnn`: a PyTorch Lightning landmark model (cnn_net.py) trained on any
face set the dlib trainer reads, exported as TorchScript that `landmarks eval` scores
with the same report as a dlib model.

The faces are read as landmarks.py reads them (a synthface dataset's train split by
default; 300-W faces get the detector's box, as at test time), mixed by the same rule
(real faces beside a synthface dataset make up half of the training faces unless
`weights` say otherwise), and cropped once (cnn_net's crop, with room around it). Each
step then draws a random roll, scale, shift and mirror per face (mirrored points swap
places by scheme68.mirror_points, the one mirror rule) and a brightness / contrast
jitter, from `seed`. Points the 3D turn hid are trained like the others: their place is
300-W's convention for self-occluded points (on the outline), which is what test sets
label. Checkpoints go to OUTPUT's `.checkpoints/` folder each epoch; the same command
resumes from its last one. bf16 on a GPU, 32-bit on CPU; a bar on a terminal only.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError
from synthface.trainers.cnn_net import META, apply_map, build_network, crop_map, warp
from synthface.trainers.cnn_state import check_resume, checkpoints_of, start_weights

log = logging.getLogger("synthface")

CONTEXT = 1.4  # the stored crop is this much wider than the model's, for the random moves
LOSSES = ("l1", "wing")
WING_W, WING_EPS, WING_PX = 10.0, 2.0, 64  # the Wing loss's w and epsilon, on errors in 1/64 of the crop side


@dataclass
class CNNOptions:
    size: int = 96  # the model's input side, px (10,000 faces, 80 epochs: afw 5.49%; 64 px 5.66% in half the time)
    margin: float = 1.25  # crop side = margin x the box's larger side
    width: int = 32  # channels of the first stage (then x2, x4, x8)
    epochs: int = 80  # on 10,000 faces: about 40 min on 2 CPU cores at 96 px; 20 and 40 trained worse models
    batch_size: int = 64
    lr: float = 2e-3  # AdamW, cosine decay to 0
    weight_decay: float = 1e-4
    rotate: float = 15.0  # degrees, uniform in +-rotate
    scale: float = 0.1  # uniform in 1 +- scale
    shift: float = 0.05  # of the crop side
    flip: float = 0.5
    colour: float = 0.0  # strength of the colour changes beyond brightness/contrast: saturation, grey, channel gains
    loss: str = "l1"  # l1, or wing (Feng et al. 2018: w 10, epsilon 2, on errors in 1/64 of the crop side)
    seed: int = 0
    device: str = "auto"  # auto (cuda when there is one), cpu, cuda

    def validate(self) -> None:
        rules = [("size", 16 <= self.size <= 512, "from 16 to 512"), ("margin", 1 <= self.margin <= 3, "from 1 to 3"),
                 ("width", 4 <= self.width <= 256, "from 4 to 256"),
                 ("epochs", 1 <= self.epochs <= 10_000, "from 1 to 10000"),
                 ("batch_size", 2 <= self.batch_size <= 4096, "from 2 to 4096"), ("lr", 0 < self.lr < 1, "in (0, 1)"),
                 ("weight_decay", 0 <= self.weight_decay < 1, "in [0, 1)"),
                 ("rotate", 0 <= self.rotate <= 90, "from 0 to 90"),
                 ("scale", 0 <= self.scale < 1, "in [0, 1)"), ("shift", 0 <= self.shift <= 0.5, "in [0, 0.5]"),
                 ("flip", 0 <= self.flip <= 1, "in [0, 1]"), ("colour", 0 <= self.colour <= 1, "in [0, 1]"),
                 ("loss", self.loss in LOSSES, "l1 or wing"),
                 ("seed", 0 <= self.seed < 2 ** 31, "from 0 to 2^31 - 1"),
                 ("device", self.device in ("auto", "cpu", "cuda"), "auto, cpu or cuda")]
        for name, ok, rule in rules:
            if not ok:  # NaN fails every comparison, so it lands here too
                value = getattr(self, name)
                shown = repr(value) if isinstance(value, str) and (not value or value.strip() != value) else value
                raise SynthfaceError(f"--{name.replace('_', '-')} must be {rule}, got {shown}")


def prepare_crops(faces: list, options: CNNOptions, progress: bool = True):
    """Each face's crop (CONTEXT times the model's, uint8) and its points in that crop."""
    from synthface.core.imaging import read_rgb
    from synthface.core.progress import progress_bar

    big = int(round(options.size * CONTEXT))
    crops = np.empty((len(faces), big, big, 3), np.uint8)
    points = np.empty((len(faces), 68, 2), np.float32)
    cache: dict = {}
    for k, face in enumerate(progress_bar(faces, desc="crops", unit="face", disable=not progress, leave=False)):
        if face.image not in cache:
            cache = {face.image: read_rgb(face.image)}  # faces of one image come together
        m = crop_map(face.box, big, options.margin * CONTEXT)
        crops[k] = warp(cache[face.image], m, big)
        points[k] = apply_map(m, face.points)
    return crops, points


def _moved(crop: np.ndarray, points: np.ndarray, rng, options: CNNOptions):
    """One training sample: the stored crop moved by a random roll / scale / shift /
    mirror into the model's crop, colour-jittered; its points moved with it (0..1 units)."""
    import cv2

    from synthface.face.scheme68 import mirror_points

    big, size = crop.shape[0], options.size
    scale, rotate, shift = options.scale + 0.0, options.rotate + 0.0, options.shift + 0.0  # -0.0 -> 0.0
    k = size / big * CONTEXT * (1 + rng.uniform(-scale, scale))
    angle = rng.uniform(-rotate, rotate)
    m = cv2.getRotationMatrix2D(((big - 1) / 2, (big - 1) / 2), angle, k)
    m[:, 2] += (size - big) / 2 + rng.uniform(-shift, shift, 2) * size
    img = cv2.warpAffine(crop, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    pts = apply_map(m, points)
    if rng.random() < options.flip:
        img, pts = img[:, ::-1], mirror_points(pts, size)
    img = img.astype(np.float32)
    if options.colour > 0:  # drawn only then, so that a run without it keeps its old samples
        img = recoloured(img, rng, options.colour)
    img = img * rng.uniform(0.75, 1.25) + rng.uniform(-20, 20)
    return np.clip(img, 0, 255).transpose(2, 0, 1) / 255.0, np.asarray(pts, np.float32) / (size - 1)


def recoloured(img: np.ndarray, rng, strength: float) -> np.ndarray:
    """An RGB float crop with its saturation drawn from 1 - 0.7 s .. 1 + 0.5 s (grey outright
    1 time in 10 s) and then each channel's gain from 1 +- 0.15 s (a grey crop tinted too),
    s = `strength` in (0, 1]: real photos' colour casts and faded or grey prints, which the
    synthetic faces lack."""
    from synthface.core.imaging import LUMA

    grey = img @ LUMA
    sat = 0.0 if rng.random() < 0.1 * strength else rng.uniform(1 - 0.7 * strength, 1 + 0.5 * strength)
    img = grey[..., None] + sat * (img - grey[..., None])
    return img * rng.uniform(1 - 0.15 * strength, 1 + 0.15 * strength, 3).astype(np.float32)


class _Samples:
    """The torch Dataset of the training crops: a fresh random move each time a face is drawn."""

    def __init__(self, crops, points, taken: list, options: CNNOptions):
        self.crops, self.points, self.taken, self.options = crops, points, taken, options
        self.rng = np.random.default_rng(options.seed)

    def __len__(self):
        return len(self.taken)

    def __getitem__(self, k):
        import torch

        j = self.taken[k]  # a face oversampled by its weight is drawn as often
        img, pts = _moved(self.crops[j], self.points[j], self.rng, self.options)
        return torch.from_numpy(np.ascontiguousarray(img, np.float32)), torch.from_numpy(pts)


def _module(options: CNNOptions, mean_shape, steps: int):
    import pytorch_lightning as pl
    import torch

    class LandmarkCNN(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = build_network(options.width, mean_shape)

        def training_step(self, batch, _):
            x, y = batch
            loss = point_loss(self.net(x).float(), y, options.loss)
            self.log("loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=options.lr, weight_decay=options.weight_decay)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1))))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return LandmarkCNN()


def point_loss(pred, target, kind: str = "l1"):
    """The training loss of predicted points against true ones (both in crop units, 0..1):
    the mean absolute error (l1), or the Wing loss (Feng et al., CVPR 2018), which is
    logarithmic below WING_W (errors in 1/WING_PX of the crop side: about a 64 px crop's pixels)
    and so weighs the small and middle errors that decide NME more than L1 does, linear
    (as L1) above it."""
    import torch

    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}: {' or '.join(LOSSES)}")
    d = (pred - target).abs()
    if kind == "l1":
        return d.mean()
    d = d * WING_PX
    c = WING_W - WING_W * math.log(1 + WING_W / WING_EPS)
    return torch.where(d < WING_W, WING_W * torch.log1p(d / WING_EPS), d - c).mean()


class _EpochLog:
    """Off a terminal: one line an epoch (loss, time left)."""

    def __new__(cls, epochs: int):
        import pytorch_lightning as pl

        class EpochLog(pl.Callback):
            def on_train_start(self, trainer, module):
                self.t0, self.first = time.monotonic(), trainer.current_epoch

            def on_train_epoch_end(self, trainer, module):
                done = trainer.current_epoch + 1
                spent = time.monotonic() - self.t0
                left = spent / max(done - self.first, 1) * (epochs - done)
                loss = float(trainer.callback_metrics.get("loss", float("nan")))
                log.info("landmarks train-cnn: epoch %d of %d, loss %.4f, %.0f s, about %.0f s left",
                         done, epochs, loss, spent, left)

        return EpochLog()


def train_cnn(dataset, output, options: CNNOptions | None = None, *, upsample: int = 1, progress: bool = True,
              pts_origin: int = 1, split: str | None = None, weights=None, init=None) -> dict:
    """Train the CNN landmark model on a face set, or on several (mixed as the dlib
    trainer mixes them), and export it to `output` (TorchScript) with a JSON summary
    beside it; resumes from OUTPUT's checkpoints folder. `init`: a model train-cnn
    exported (of the same size, margin and width) whose weights training starts from
    instead of random ones, as when a model trained on synthetic faces is fine-tuned on
    real ones. Returns the summary."""
    import pytorch_lightning as pl
    import torch

    from synthface.core.files import check_writable_file, publish_file, temp_beside, write_summary
    from synthface.core.outputs import LANDMARKS_MODEL, sha256_of
    from synthface.formats.readers import split_for
    from synthface.trainers.landmarks import (boxes_for_training, check_dlib_boxes, load_face_set, mix_face_sets,
                                              mixing_rule, rule_line, trained_path)

    from synthface.face.annotate import check_upsample

    options = options or CNNOptions()
    options.validate()
    check_upsample(upsample)
    if Path(output).suffix != ".pt":
        raise SynthfaceError(f"-o {output}: a CNN landmark model is TorchScript, named NAME.pt")
    if options.device == "cuda" and not torch.cuda.is_available():
        raise SynthfaceError("--device cuda: no CUDA GPU is available")
    start = start_weights(init, options) if init is not None else None
    datasets = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    sets, splits = [], []
    for d in datasets:
        check_dlib_boxes(d)
        splits.append(split_for(d, split, "train"))
        faces = load_face_set(d, pts_origin, splits[-1])
        if not faces:
            where = f" in its {splits[-1]} split (--split)" if splits[-1] != "all" else ""
            raise SynthfaceError(f"{d}: no faces with landmarks{where}")
        sets.append(faces)
    rule = None
    if not weights and len(sets) > 1:
        weights = rule = mixing_rule(datasets, [len(s) for s in sets], oversampling=1)
    mix_face_sets(sets, weights)  # the weights checked before the detector runs
    output = check_writable_file(output, "-o")  # makes its folder: only once the inputs passed
    boxed = [boxes_for_training(s, upsample, progress) for s in sets]
    unique = [f for s in boxed for f in s]
    crops, points = prepare_crops(unique, options, progress)
    index = {id(f): k for k, f in enumerate(unique)}
    taken, counts = mix_face_sets([[index[id(f)] for f in s] for s in boxed], weights, seed=options.seed)
    pl.seed_everything(options.seed, verbose=False)
    big = crops.shape[1]
    mean_shape = (apply_map(_centre_map(big, options.size), points.reshape(-1, 2)).reshape(-1, 68, 2).mean(0)
                  / (options.size - 1))
    data = _Samples(crops, points, taken, options)
    loader = torch.utils.data.DataLoader(data, batch_size=options.batch_size, shuffle=True,
                                         drop_last=len(data) > options.batch_size,
                                         generator=torch.Generator().manual_seed(options.seed))
    steps = options.epochs * max(len(loader), 1)
    module = _module(options, mean_shape, steps)
    if start is not None:
        module.net.load_state_dict(start[0])  # its mean shape too: the offsets it learned are from that one
    gpu = options.device == "cuda" or (options.device == "auto" and torch.cuda.is_available())
    ckpt_dir = checkpoints_of(output)
    bar = progress and sys.stderr.isatty()
    last = ckpt_dir / "last.ckpt"
    check_resume(ckpt_dir, {**asdict(options), "data": [str(Path(d).expanduser().resolve()) for d in datasets],
                            "splits": splits, "weights": list(weights) if weights else None,
                            "upsample": upsample, "pts_origin": pts_origin,
                            "init": start[1] if start else None}, module.state_dict())
    t0 = time.perf_counter()
    with _quiet_lightning():
        trainer = pl.Trainer(max_epochs=options.epochs, accelerator="gpu" if gpu else "cpu", devices=1,
                             precision="bf16-mixed" if gpu else "32-true", logger=False, enable_model_summary=False,
                             enable_progress_bar=bar, num_sanity_val_steps=0,
                             callbacks=[pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="epoch", save_last=True,
                                                                    save_top_k=1, enable_version_counter=False),
                                        *([_EpochLog(options.epochs)] if progress and not bar else [])])
        try:
            trainer.fit(module, loader, ckpt_path=str(last) if last.is_file() else None)
        except SystemExit:  # Lightning answers Ctrl-C with sys.exit(1): make it an interruption again
            raise KeyboardInterrupt from None
    if trainer.interrupted:  # or it ends the fit quietly: no half-trained model is published
        raise KeyboardInterrupt
    tmp = temp_beside(output)
    try:
        export(module.net.cpu().float().eval(), tmp, options)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish_file(tmp, output)
    summary = {"format": LANDMARKS_MODEL, "kind": "cnn", "model_sha256": sha256_of(output), "faces": len(taken),
               "sources": {str(d): c for d, c in zip(datasets, counts)},
               "splits": {str(d): s for d, s in zip(datasets, splits)},
               # the same sets by their absolute paths: what `landmarks eval` compares with its --data
               "trained_on": {trained_path(d): s for d, s in zip(datasets, splits)},
               "weights": list(weights) if weights else [1.0] * len(datasets),
               "mixing_rule": rule_line(datasets, rule, [len(s) for s in sets], "drawn as often as the synthetic ones")
               if rule else None,
               "init": {"model": str(Path(init).expanduser().resolve()), "model_sha256": start[1]} if start else None,
               "seconds": round(time.perf_counter() - t0, 1), "model": str(output), "device": "cuda" if gpu else "cpu",
               "options": asdict(options)}
    write_summary(output, summary)
    return summary


@contextmanager
def _quiet_lightning():
    """Lightning's start-up notes (accelerators, tips) and a deprecation warning of its
    own are not the user's business; its warnings and errors still show."""
    import warnings

    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning.pytorch")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
            warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _centre_map(big: int, size: int) -> np.ndarray:
    """The stored crop -> the model's crop, unmoved."""
    k = size / big * CONTEXT
    c = (big - 1) / 2
    return np.array([[k, 0, (size - 1) / 2 - k * c], [0, k, (size - 1) / 2 - k * c]])


def export(net, path: Path, options: CNNOptions) -> None:
    """TorchScript of the network with its crop settings: input (N, 3, S, S) RGB in
    [0, 1], output (N, 68, 2) points in crop pixels. A network trained on mirrored faces
    too (--flip above 0) gives the mean of its points on the crop and, mirrored back, on
    the crop's mirror image (on afw it cut the NME by 4-5%)."""
    import torch

    from synthface.face.scheme68 import FLIP_IDX_68

    mirror = options.flip > 0  # a network that never saw a mirrored face: its own points only

    class Pixels(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.register_buffer("partner", torch.tensor(FLIP_IDX_68, dtype=torch.long))

        def forward(self, x):
            if not mirror:
                return self.net(x) * (options.size - 1)
            both = self.net(torch.cat([x, torch.flip(x, dims=[3])]))
            plain, mirrored = both[: x.shape[0]], both[x.shape[0]:][:, self.partner]
            mirrored = torch.stack([1 - mirrored[..., 0], mirrored[..., 1]], dim=-1)  # x -> (size - 1) - x
            return (plain + mirrored) / 2 * (options.size - 1)

    example = torch.zeros(1, 3, options.size, options.size)
    traced = torch.jit.trace(Pixels().eval(), example)
    meta = {"size": options.size, "margin": options.margin, "points": "68 iBUG 300-W, crop pixels",
            "test_time": "the mean of the crop's points and its mirror's, mirrored back" if mirror else "the crop's",
            "input": "RGB float in [0, 1], (N, 3, size, size): the square of side margin x the box's larger side, "
                     "centred on the face box"}
    torch.jit.save(traced, str(path), _extra_files={META: json.dumps(meta)})
