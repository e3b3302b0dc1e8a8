"""The CNN landmark model's network, its crop, and the predictor that runs an exported one.

Why direct regression from a small ResNet: on 2 CPU cores a 96 px input and a
four-stage residual network (about 2.8 M weights at width 32) train on 10,000 faces in
minutes, where heatmaps need a decoder at a quarter of the input's resolution or more
(several times the compute) for a gain that shows mostly at larger inputs. The network
predicts each point as an offset from the mean face of its training set, in units of
the crop's side.

The crop: a square around the face box, `margin` times the box's larger side, centred on
the box, resized to `size` px (reflected borders where it leaves the image). The same
crop serves training, scoring and the exported model. An exported model is TorchScript
(`torch.jit.load` runs it without synthface): input (N, 3, size, size) float RGB in
[0, 1], output (N, 68, 2) points in crop pixels; its `synthface.json` extra file holds
size and margin.
"""

from __future__ import annotations

import json

import numpy as np

META = "synthface.json"  # the TorchScript file's extra file: how to crop a face for it


def crop_map(box, size: int, margin: float) -> np.ndarray:
    """The 2x3 map from image pixels to a face's crop (pixel centres at integers)."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * margin
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
    k = size / side
    return np.array([[k, 0, (size - 1) / 2 - k * cx], [0, k, (size - 1) / 2 - k * cy]], np.float64)


def warp(rgb: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def apply_map(m: np.ndarray, points) -> np.ndarray:
    p = np.asarray(points, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def invert_map(m: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.invertAffineTransform(m)


def build_network(width: int = 32, mean_shape=None):
    """A ResNet-like regressor: stem, four stages of two residual blocks (the first of a
    stage halves the resolution), global average pooling, one linear layer to 136
    values added to `mean_shape` (68 x 2, in crop units: 0..1)."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                      nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(cout))
            self.skip = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.act(self.body(x) + self.skip(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            cin = width
            for k in range(4):
                cout = width * 2 ** k
                layers += [Block(cin, cout, 2), Block(cout, cout, 1)]
                cin = cout
            self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(cin, 136)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
            mean = torch.full((68, 2), 0.5) if mean_shape is None else torch.as_tensor(mean_shape, dtype=torch.float32)
            self.register_buffer("mean_shape", mean.reshape(1, 68, 2).clone())

        def forward(self, x):
            """(N, 3, S, S) RGB in [0, 1] -> (N, 68, 2) points in crop units (0..1 across the crop)."""
            return self.mean_shape + self.head(self.features(x)).view(-1, 68, 2)

    return Net()


class Exported:
    """An exported CNN landmark model (TorchScript), used as a dlib shape predictor is:
    `points(rgb, box)` -> (68, 2) image pixels."""

    def __init__(self, path):
        import torch

        from synthface.errors import SynthfaceError

        extra = {META: ""}
        what = f"{path} is not a synthface CNN landmark model (TorchScript with {META})"
        try:
            self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except (RuntimeError, ValueError, OSError) as exc:
            raise SynthfaceError(f"{what}: {' '.join(str(exc).split())[:120]}") from None
        try:
            meta = json.loads(extra[META])
            size, margin = meta["size"], float(meta["margin"])
        except (ValueError, TypeError, KeyError):
            raise SynthfaceError(f"{what}: its {META} is missing or lacks size and margin") from None
        if not (isinstance(size, int) and 16 <= size <= 512 and 1.0 <= margin <= 3.0):  # NaN fails too
            raise SynthfaceError(f"{what}: size {str(size)[:20]} / margin {str(margin)[:20]} out of range "
                                 "(16-512 px, 1-3)")
        self.size, self.margin, self.path = size, margin, path
        self.module.eval()
        with torch.no_grad():
            shape = tuple(self.module(torch.zeros(1, 3, self.size, self.size)).shape)
        if shape != (1, 68, 2):
            raise SynthfaceError(f"{what}: it outputs {shape}, not (N, 68, 2) points")

    def points(self, rgb: np.ndarray, box) -> np.ndarray:
        import torch

        m = crop_map(box, self.size, self.margin)
        crop = warp(rgb, m, self.size)
        x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float().div(255).unsqueeze(0)
        with torch.no_grad():
            out = self.module(x)[0].numpy().astype(np.float64)
        if not np.isfinite(out).all():
            from synthface.errors import SynthfaceError

            raise SynthfaceError(f"{self.path} predicted points that are not numbers (NaN or inf): the model is "
                                 "damaged or diverged in training")
        return apply_map(invert_map(m), out).astype(np.float32)
