"""Training batches: the decoded faces (imagefiles.py) as a LightningDataModule.

Scaling to [-1, 1] and the random flip happen on the batch, on the training device.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from synthface.core.imagefiles import (FFHQ_JSON, FFHQ_SPLITS, IMAGE_EXTS, ImageSource,  # noqa: F401 (re-exported)
                                  decode_face, find_ffhq_metadata, load_faces, load_ffhq_metadata)


class _Faces(Dataset):
    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


class FaceDataModule(pl.LightningDataModule):
    """Batches of uint8 (B, 3, H, W) faces: `batches_per_epoch` random batches an epoch
    (the article's 100), or one shuffled pass over the data when it is 0."""

    def __init__(self, path, size: int, batch_size: int, batches_per_epoch: int = 0, *,
                 cache_dir: str = "", seed: int = 0, progress: bool = True, split: str = "all", exclude=()):
        super().__init__()
        self.exclude = exclude
        self.progress, self.split = progress, split
        self.path, self.size, self.batch_size = path, size, batch_size
        self.batches_per_epoch, self.cache_dir, self.seed = batches_per_epoch, cache_dir, seed
        self.images: torch.Tensor | None = None

    def setup(self, stage=None):
        if self.images is None:
            faces = load_faces(self.path, self.size, self.cache_dir, self.progress, self.split, self.exclude)
            self.images = torch.from_numpy(faces).permute(0, 3, 1, 2).contiguous()

    def train_dataloader(self):
        n = len(self.images)
        per_epoch = self.batches_per_epoch or max(n // self.batch_size, 1)
        faces = _Faces(self.images)
        # num_samples may exceed n: RandomSampler then chains several permutations.
        sampler = RandomSampler(faces, num_samples=per_epoch * self.batch_size,
                                generator=torch.Generator().manual_seed(self.seed))
        return DataLoader(faces, batch_size=self.batch_size, sampler=sampler,
                          drop_last=True, num_workers=0)
