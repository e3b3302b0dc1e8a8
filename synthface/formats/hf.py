"""metadata.jsonl: Hugging Face imagefolder's labels, one JSON object per image
(`file_name` relative to the dataset), read by
`datasets.load_dataset("imagefolder", data_dir=DATASET)`. A face image's labels are
fields of its row; a scene's faces are an `objects` dict of lists (HF's detection form)."""

from __future__ import annotations

import json

from synthface.formats.base import FileWriter


class HfWriter(FileWriter):
    key = "hf"
    filename = "metadata.jsonl"

    def add(self, image):
        s = self.schema
        row = {"file_name": image.file, "split": image.split, **{c: image.attributes[c] for c in s.image_cols}}
        faces = [self._face(face) for face in image.faces]
        if s.multi:
            keys = list(faces[0]) if faces else self._face_keys()
            row["objects"] = {k: [f[k] for f in faces] for k in keys}
        elif faces:
            row.update(faces[0])
        self.f.write(json.dumps(row) + "\n")

    def _face(self, face) -> dict:
        s = self.schema
        out = {c: face.attributes[c] for c in s.face_cols}
        out.update({"box": [int(v) for v in face.box], "score": None if face.score is None else round(face.score, 6)})
        out.update({c: face.attributes[c] for c in s.attr_cols})
        if s.landmarks:
            out["landmarks"] = [[float(x), float(y)] for x, y in face.landmarks]
        return out

    def _face_keys(self) -> list:
        s = self.schema
        return [*s.face_cols, "box", "score", *s.attr_cols] + (["landmarks"] if s.landmarks else [])

    @staticmethod
    def describe(schema):
        fields = ", ".join(["box", "score", *schema.face_cols, *schema.attr_cols]
                           + (["landmarks (68 [x, y] lists)"] if schema.landmarks else []))
        where = f"`objects`: lists, one entry per face, of {fields}" if schema.multi else fields
        return ("- `metadata.jsonl`: Hugging Face imagefolder labels: file_name, split, "
                + ", ".join(schema.image_cols) + f", {where}")

    @staticmethod
    def loading(schema, size, formats):
        return "Hugging Face datasets (`pip install datasets`)", """```python
from datasets import load_dataset
ds = load_dataset("imagefolder", data_dir="DATASET")["train"]  # HF's one split: every image, val too
train = ds.filter(lambda r: r["split"] == "train")              # synthface's split is the `split` column
val = ds.filter(lambda r: r["split"] == "val")
```"""
