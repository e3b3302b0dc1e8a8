"""Ultralytics YOLO: labels/SSSSS/NNNNNNNN.txt for images/SSSSS/NNNNNNNN.png (Ultralytics'
rule: an image's label is its path with /images/ replaced by /labels/ and .txt), one
line a face, with trainset.txt / valset.txt (the split's image paths, "./"-relative to
the dataset) and data.yaml. (Not train.txt / val.txt: Hugging Face's imagefolder would
take those names for split files and load no images.) data.yaml has no `path:` line:
Ultralytics then takes data.yaml's own folder as the dataset's root, so the folder may
move. With landmarks it names the 68 points' flip_idx and kpt_oks_sigmas (COCO-WholeBody's
face sigmas, as coco.json), which Ultralytics reads for its OKS metric and pose loss."""

from __future__ import annotations

import json
import os
from pathlib import Path

from synthface.core.files import write_atomic
from synthface.formats.base import FolderWriter, tmp_path
from synthface.face.geometry import clipped_box, keypoint_triplets
from synthface.face.scheme68 import FACE_SIGMAS_68, FLIP_IDX_68


class YoloWriter(FolderWriter):
    key = "yolo"
    needs_attributes = False
    folder = "labels"

    def __init__(self, out, schema):
        super().__init__(out, schema)
        self.lists = {s: open(tmp_path(self.out / f"{s}set.txt"), "w") for s in ("train", "val")}

    def add(self, image):
        w, h = image.width, image.height
        lines = []
        for face in image.faces:
            x0, y0, bw, bh = clipped_box(face.box, w, h)
            vals = [(x0 + bw / 2) / w, (y0 + bh / 2) / h, bw / w, bh / h]
            if self.schema.landmarks:
                kp = keypoint_triplets(face.landmarks.tolist(), w, h, face.visibility)
                for i in range(0, len(kp), 3):
                    vals += [kp[i] / w, kp[i + 1] / h, kp[i + 2]]
            lines.append("0 " + " ".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in vals) + "\n")
        self.file(Path(*Path(image.file).parts[1:]).with_suffix(".txt")).write_text("".join(lines))
        self.lists[image.split].write(f"./{image.file}\n")

    def finish(self):
        for f in self.lists.values():
            f.close()
        has_val = os.path.getsize(self.lists["val"].name) > 0
        kind = "pose" if self.schema.landmarks else "detect"
        lines = [f"# Ultralytics YOLO {kind} labels: yolo {kind} train data=THIS_FILE",
                 "# labels/ mirrors images/; trainset.txt and valset.txt list each split's images.",
                 "# No path line: Ultralytics takes this file's folder as the root, wherever it is moved.",
                 "train: trainset.txt",
                 "val: valset.txt" if has_val else "val: trainset.txt  # no face in the val split (--val-fraction)",
                 "names:", "  0: face"]
        if self.schema.landmarks:
            lines += ["kpt_shape: [68, 3]", f"flip_idx: {json.dumps(FLIP_IDX_68)}",
                      "# the per-point OKS sigmas of coco.json (COCO-WholeBody's face), for the pose metric and loss",
                      f"kpt_oks_sigmas: {json.dumps(list(FACE_SIGMAS_68))}"]
        write_atomic(tmp_path(self.out / "data.yaml"), "\n".join(lines) + "\n")

    def publish(self):
        super().publish()
        for name in ("trainset.txt", "valset.txt", "data.yaml"):
            os.replace(tmp_path(self.out / name), self.out / name)

    def discard(self):
        for f in self.lists.values():
            try:
                f.close()
            except OSError:
                pass
        for name in ("trainset.txt", "valset.txt", "data.yaml"):
            tmp_path(self.out / name).unlink(missing_ok=True)
        super().discard()

    @classmethod
    def files_in(cls, out):
        lists = [Path(out) / name for name in ("data.yaml", "trainset.txt", "valset.txt")]
        return [p for p in lists if p.is_file() or p.is_symlink()] + super().files_in(out)

    @staticmethod
    def describe(schema):
        kind = "pose" if schema.landmarks else "detect"
        return (f"- `data.yaml`, `labels/SSSSS/NNNNNNNN.txt`, `trainset.txt`, `valset.txt`: Ultralytics YOLO {kind} "
                "(labels/ mirrors images/; the two lists are the splits)")

    @staticmethod
    def loading(schema, size, formats):
        kind = "pose" if schema.landmarks else "detect"
        return "Ultralytics", f"""```
yolo {kind} train data=DATASET/data.yaml model=yolov8n{'-pose' if schema.landmarks else ''}.yaml imgsz={size}
```
(Ultralytics needs a torchvision that matches its torch: install it in a virtualenv of its own.)"""
