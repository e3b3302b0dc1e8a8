"""The label model: what every producer of labels yields and every writer and reader
takes. An image holds 0..N faces; a plain face dataset is the case N = 1, a scene is
N faces (as torchvision's WIDERFace, Ultralytics' `Instances` and Hugging Face's
`objects` column model it).

Conventions: pixels of the saved image, pixel centres at integers; box = x, y, w, h
with (x, y) the top-left pixel of dlib's inclusive rectangle; landmarks (68, 2) in the
iBUG 300-W order, 0-based.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthface.face.scheme68 import POINT_COLS

BOX_COLS = ["x", "y", "w", "h"]
# Column dtypes of the tables (labels.csv, labels.parquet): integers and strings; every
# other column is a float.
INT_COLS = {"seed", "index", "scene", "face", "x", "y", "w", "h", "truncated", "occluded"}
STR_COLS = {"file", "split", "blend"}


@dataclass
class Face:
    """One labelled face in an image."""

    box: tuple  # x, y, w, h
    score: float | None = None  # the detector's
    landmarks: np.ndarray | None = None  # (68, 2) float
    # per point: 2 visible, 1 labelled but hidden (under an occluder); None: all visible
    visibility: np.ndarray | None = None
    # a face a detector should neither learn nor be charged for (cut by the border):
    # ignore='1' in imglab, iscrowd 1 in COCO
    ignore: bool = False
    attributes: dict = field(default_factory=dict)  # per-face columns (pose, blend, its seed, ...)


@dataclass
class LabelledImage:
    """One image and its faces. `file` is relative to the dataset folder when written,
    any path when read."""

    file: str
    width: int = 0  # 0: not known (readers that do not open the image)
    height: int = 0
    split: str = ""  # "train" / "val"; "" when the source has none
    attributes: dict = field(default_factory=dict)  # per-image columns (seed and index, or scene)
    faces: list = field(default_factory=list)

    @property
    def path(self) -> Path:
        return Path(self.file)


@dataclass
class LabelSchema:
    """What a dataset's tables hold, the same for every image of it: the columns of
    labels.csv are file, split, `image_cols`, `face_cols`, x, y, w, h, score,
    `attr_cols`, then the 68 points when `landmarks`."""

    landmarks: bool
    image_cols: list = field(default_factory=list)  # from LabelledImage.attributes
    face_cols: list = field(default_factory=list)  # from Face.attributes, before the box
    attr_cols: list = field(default_factory=list)  # from Face.attributes, after the score
    multi: bool = False  # images hold several faces (scenes)
    kind: str = "faces"  # "faces" or "scenes", for the card's words

    def columns(self) -> list[str]:
        return (["file", "split", *self.image_cols, *self.face_cols, *BOX_COLS, "score", *self.attr_cols]
                + (POINT_COLS if self.landmarks else []))

    def rows(self, image: LabelledImage):
        """The table rows of an image, one per face, as plain Python values."""
        for face in image.faces:
            row = [image.file, image.split, *(image.attributes[c] for c in self.image_cols),
                   *(face.attributes[c] for c in self.face_cols), *face.box,
                   None if face.score is None else round(face.score, 6),
                   *(face.attributes[c] for c in self.attr_cols)]
            if self.landmarks:
                row += [float(v) for v in np.asarray(face.landmarks).reshape(-1)]
            yield row
