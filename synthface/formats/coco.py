"""coco.json: COCO keypoints (68 named iBUG points; the category holds the 68-point
skeleton and COCO-WholeBody's face OKS sigmas for COCOeval) or boxes. Images are
written as they come and annotations go to a side file, appended when finishing, so
memory does not grow with the dataset. A face to ignore is `iscrowd` 1, COCO's own
"neither matched nor missed"."""

from __future__ import annotations

import json
import os
import shutil

from synthface import __version__
from synthface.formats.base import FileWriter, tmp_path
from synthface.face.geometry import clipped_box, keypoint_triplets
from synthface.face.scheme68 import FACE_SIGMAS_68, IBUG68_NAMES, SKELETON_68


class CocoWriter(FileWriter):
    key = "coco"
    filename = "coco.json"

    def __init__(self, out, schema):
        super().__init__(out, schema)
        self.f.write('{"info": ' + json.dumps({"description": f"synthface synthetic {schema.kind}",
                                               "version": __version__}) + ', "images": [')
        self.anns = open(tmp_path(self.path).with_suffix(".annotations.tmp"), "w")
        self.images = self.n_anns = 0

    def add(self, image):
        s = self.schema
        self.images += 1
        self.f.write((", " if self.images > 1 else "") + json.dumps(
            {"id": self.images, "file_name": image.file, "width": image.width, "height": image.height,
             "split": image.split}))
        for face in image.faces:
            self.n_anns += 1
            box = clipped_box(face.box, image.width, image.height)
            ann = {"id": self.n_anns, "image_id": self.images, "category_id": 1, "bbox": box,
                   "area": box[2] * box[3], "iscrowd": int(face.ignore),
                   "score": None if face.score is None else round(face.score, 6)}
            if s.face_cols or s.attr_cols:
                ann["attributes"] = {c: face.attributes[c] for c in (*s.face_cols, *s.attr_cols)}
            if s.landmarks:
                ann["keypoints"] = keypoint_triplets(face.landmarks.tolist(), image.width, image.height,
                                                     face.visibility)
                ann["num_keypoints"] = sum(v > 0 for v in ann["keypoints"][2::3])
            self.anns.write((", " if self.n_anns > 1 else "") + json.dumps(ann))

    def finish(self):
        self.anns.close()
        self.f.write('], "annotations": [')
        with open(self.anns.name) as part:
            shutil.copyfileobj(part, self.f)
        os.unlink(self.anns.name)
        category = {"id": 1, "name": "face", "supercategory": "face"}
        if self.schema.landmarks:
            category["keypoints"] = IBUG68_NAMES
            category["skeleton"] = [[a + 1, b + 1] for a, b in SKELETON_68]  # COCO: 1-based
            category["sigmas"] = list(FACE_SIGMAS_68)  # COCOeval: params.kpt_oks_sigmas
        self.f.write('], "categories": [' + json.dumps(category) + "]}\n")
        super().finish()

    def discard(self):
        try:
            self.anns.close()
        except OSError:
            pass
        if os.path.exists(self.anns.name):
            os.unlink(self.anns.name)
        super().discard()

    @staticmethod
    def describe(schema):
        what = ("keypoints (68 named iBUG points; the category holds the 68-point skeleton and the COCO-WholeBody "
                "face OKS sigmas for COCOeval)" if schema.landmarks else "boxes")
        extra = "; visibility 2 visible, 1 under an occluder, 0 outside; truncated faces iscrowd 1" if schema.multi \
            else ""
        return f"- `coco.json`: COCO {what}, category \"face\", each image's split in `split`{extra}"

    @staticmethod
    def loading(schema, size, formats):
        text = """```python
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
gt = COCO("DATASET/coco.json")
""" + ("""e = COCOeval(gt, gt.loadRes("your_detections.json"), "keypoints")
e.params.kpt_oks_sigmas = np.array(gt.loadCats(1)[0]["sigmas"])  # the 68 face sigmas
e.evaluate(); e.accumulate(); e.summarize()
""" if schema.landmarks else "") + "```"
        return "pycocotools (`pip install pycocotools`)", text
