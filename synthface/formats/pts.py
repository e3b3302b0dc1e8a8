"""images/SSSSS/NNNNNNNN.pts beside each image, where 300-W tools look: iBUG 300-W
point files, 1-based like 300-W's own; an image of several faces gets NAME_1.pts,
NAME_2.pts ... (HELEN's whole-photo convention). Each file is written whole (temporary
name, then rename) unless the same text is there already; face k's labels are the same in every export of a run, so a
partial export leaves only correct files."""

from __future__ import annotations

import re
from pathlib import Path

from synthface.core.files import write_atomic
from synthface.formats.base import Writer
from synthface.face.scheme68 import pts_text

_FOLDER = re.compile(r"\d{5}")  # images/SSSSS
_NAME = re.compile(r"\d{8}(_\d+)?\.pts")  # NNNNNNNN.pts, NNNNNNNN_K.pts


class PtsWriter(Writer):
    key = "pts"
    needs_attributes = False
    needs_landmarks = True

    def add(self, image):
        stem = self.out / Path(image.file).with_suffix("")
        for k, face in enumerate(image.faces):
            name = f"{stem}_{k + 1}.pts" if self.schema.multi else f"{stem}.pts"
            text = pts_text(face.landmarks)
            try:  # the same file from an earlier export: kept (a rename over a file costs a disk flush)
                if Path(name).read_text() == text:
                    continue
            except OSError:
                pass
            write_atomic(Path(name), text)

    @classmethod
    def files_in(cls, out):
        """images/SSSSS/NNNNNNNN.pts and NNNNNNNN_K.pts: the names this writer gives, no other."""
        images = Path(out) / "images"
        if not images.is_dir():
            return []
        return [f for folder in sorted(images.iterdir()) if _FOLDER.fullmatch(folder.name) and folder.is_dir()
                for f in sorted(folder.iterdir()) if _NAME.fullmatch(f.name)]

    @staticmethod
    def describe(schema):
        names = "NNNNNNNN_K.pts (face K of the image, from 1)" if schema.multi else "NNNNNNNN.pts"
        return (f"- `images/SSSSS/{names}`: iBUG 300-W point files beside the images, 1-based as in 300-W "
                "(0-based point + 1)")

    @staticmethod
    def loading(schema, size, formats):
        if schema.multi:
            return "300-W tools and synthface", """```
synthface detector train --dataset DATASET/images -o faces.svm   # photos with NAME_K.pts
```"""
        return "300-W tools and synthface", """```
synthface landmarks train --dataset DATASET --split train -o landmarks.dat   # DATASET/images (.pts) holds val too
synthface landmarks eval --model landmarks.dat --data DATASET --split val
```"""
