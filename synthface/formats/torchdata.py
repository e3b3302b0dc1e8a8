"""`FaceLandmarks`: a synthface dataset folder as a torch Dataset.

    from torch.utils.data import DataLoader
    from synthface import FaceLandmarks

    ds = FaceLandmarks("faces", split="train")
    for batch in DataLoader(ds, batch_size=64, shuffle=True, num_workers=2):
        batch["image"]      # (64, 3, H, W) float32 in [0, 1], RGB
        batch["landmarks"]  # (64, 68, 2) float32, pixels, 0-based (iBUG 300-W order)
        batch["box"]        # (64, 4) float32: x, y, w, h

A face dataset gives a sample per face: `image`, `box`, `landmarks` (datasets made with
--landmarks) and every other per-face column of labels.csv (`file`, `split`, `seed`,
`index`, `score`, ...). A scene dataset gives a sample per scene with all its faces:
`box` (N, 4), `landmarks` (N, 68, 2), `ignore` (N,) and each per-face column as a list;
scenes hold different numbers of faces, so batch them with `collate_fn=list`.
`transform`, if given, takes the sample dict and returns one, so that a geometric
transform can move the boxes and the points with the pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch


class FaceLandmarks(torch.utils.data.Dataset):
    """The faces (or scenes) of one split of a synthface dataset (see the module's docstring)."""

    def __init__(self, root, split: str = "train", transform=None):
        from synthface.formats.readers import read_dataset

        self.root = Path(root).expanduser()
        self.transform = transform
        self.images = read_dataset(self.root, split)
        self.multi = any("scene" in im.attributes for im in self.images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        from synthface.core.imaging import read_rgb

        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} of {len(self)}")
        image = self.images[i]
        rgb = read_rgb(image.file)
        sample = {"image": torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0),
                  "file": os.path.relpath(image.file, self.root), "split": image.split, **image.attributes}
        faces = image.faces
        boxes = torch.tensor([f.box for f in faces], dtype=torch.float32).reshape(-1, 4)
        points = (torch.from_numpy(np.stack([f.landmarks for f in faces]).astype(np.float32))
                  if faces and faces[0].landmarks is not None else None)
        fields = {k: [f.attributes[k] for f in faces] for k in (faces[0].attributes if faces else {})}
        fields["score"] = [f.score for f in faces]
        if self.multi:
            sample.update(box=boxes, ignore=torch.tensor([f.ignore for f in faces], dtype=torch.bool), **fields)
            if points is not None:
                sample["landmarks"] = points
        else:
            sample.update(box=boxes[0], **{k: v[0] for k, v in fields.items()})
            if points is not None:
                sample["landmarks"] = points[0]
        return self.transform(sample) if self.transform is not None else sample
