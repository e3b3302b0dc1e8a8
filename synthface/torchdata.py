"""`FaceLandmarks`: a synthface dataset folder as a torch Dataset.

    from torch.utils.data import DataLoader
    from synthface import FaceLandmarks

    ds = FaceLandmarks("faces", split="train")
    for batch in DataLoader(ds, batch_size=64, shuffle=True, num_workers=2):
        batch["image"]      # (64, 3, H, W) float32 in [0, 1], RGB
        batch["landmarks"]  # (64, 68, 2) float32, pixels, 0-based (iBUG 300-W order)
        batch["box"]        # (64, 4) float32: x, y, w, h

Each sample is a dict: `image`, `box`, `landmarks` (datasets made with --landmarks) and
every other per-face column of labels.csv (`file`, `split`, `seed`, `index`, `score`,
...). `transform`, if given, takes the sample dict and returns one, so that a geometric
transform can move the box and the points with the pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synthface.export import read_labels
from synthface.journal import POINT_COLS

class FaceLandmarks(torch.utils.data.Dataset):
    """The faces of one split of a synthface dataset (see the module's docstring)."""

    def __init__(self, root, split: str = "train", transform=None):
        self.root = Path(root).expanduser()
        frame = read_labels(self.root, split)
        self.transform = transform
        self.boxes = frame[["x", "y", "w", "h"]].to_numpy(np.float32)
        self.points = (frame[POINT_COLS].to_numpy(np.float32).reshape(-1, 68, 2)
                       if set(POINT_COLS) <= set(frame.columns) else None)
        skip = set(POINT_COLS) | {"x", "y", "w", "h"}
        self.fields = {c: frame[c].tolist() for c in frame.columns if c not in skip}

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, i: int) -> dict:
        from synthface.imaging import read_rgb

        if not -len(self) <= i < len(self):
            raise IndexError(f"face {i} of {len(self)}")
        rgb = read_rgb(self.root / self.fields["file"][i])
        sample = {"image": torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0),
                  "box": torch.from_numpy(self.boxes[i])}
        if self.points is not None:
            sample["landmarks"] = torch.from_numpy(self.points[i])
        sample.update({c: values[i] for c, values in self.fields.items()})
        return self.transform(sample) if self.transform is not None else sample
