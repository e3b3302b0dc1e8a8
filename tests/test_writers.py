"""Every registered label format, one test: a 1-face image (a face dataset) and a 3-face
image (a scene) written by the writer, then read back by the format's own reader, with
the same boxes, points, visibility and ignore flags; a failed export leaves nothing."""

import json

import numpy as np
import pandas as pd
import pytest

from synthface.formats import ALL_FORMATS, FORMATS, parse_formats, write_labels
from synthface.face.labels import Face, LabelledImage, LabelSchema
from synthface.errors import SynthfaceError

W, H = 80, 60


def _faces(k: int) -> list:
    rng = np.random.default_rng(k)
    out = []
    for i in range(k):
        pts = np.round(rng.uniform(5, 50, (68, 2)), 3)
        pts[0] = (W + 3, 10)  # outside the image: not labelled in COCO / YOLO
        vis = np.full(68, 2)
        vis[5:9] = 1 if k > 1 else 2  # a scene's occluded points
        out.append(Face((3 + 20 * i, 4, 18, 22), 0.5 + i, pts, vis if k > 1 else None, ignore=(k > 1 and i == 2),
                        attributes={"face": i, "seed": 100 + i, "yaw": 1.5 * i}))
    return out


def _write(tmp_path, key: str, k: int):
    multi = k > 1
    schema = LabelSchema(landmarks=True, image_cols=["scene"] if multi else ["seed", "index"],
                         face_cols=["face"] if multi else [], attr_cols=["yaw"], multi=multi,
                         kind="scenes" if multi else "faces")
    attrs = {"scene": 7} if multi else {"seed": 100, "index": 0}
    image = LabelledImage("images/00000/00000000.png", W, H, "train", attrs, _faces(k))
    (tmp_path / "images/00000").mkdir(parents=True)
    import cv2

    cv2.imwrite(str(tmp_path / image.file), np.zeros((H, W, 3), np.uint8))
    assert write_labels(tmp_path, schema, [image], [key]) == [key]
    return image


def _check(got_boxes, got_points, image, atol=1e-6):
    assert np.allclose(np.array(got_boxes, float), [f.box for f in image.faces], atol=atol)
    if got_points is not None:
        assert np.allclose(np.array(got_points, float), [f.landmarks for f in image.faces], atol=atol)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("key", ALL_FORMATS)
def test_each_format_reads_back(tmp_path, key, k):
    from synthface.formats.readers import read_labelled

    image = _write(tmp_path, key, k)
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    if key in ("csv", "parquet"):
        frame = pd.read_csv(tmp_path / "labels.csv") if key == "csv" else pd.read_parquet(tmp_path / "labels.parquet")
        assert len(frame) == k and frame["yaw"].tolist() == [f.attributes["yaw"] for f in image.faces]
        _check(frame[["x", "y", "w", "h"]], frame.filter(regex=r"^[xy]\d+$").to_numpy().reshape(k, 68, 2), image)
        if key == "csv":
            read = read_labelled(tmp_path)[0]
            assert len(read.faces) == k and read.attributes == ({"scene": 7} if k > 1 else {"seed": 100, "index": 0})
            _check([f.box for f in read.faces], [f.landmarks for f in read.faces], image)
    elif key == "hf":
        row = json.loads((tmp_path / "metadata.jsonl").read_text())
        assert row["file_name"] == image.file and row["split"] == "train"
        faces = row["objects"] if k > 1 else {c: [v] for c, v in row.items()}
        _check(faces["box"], faces["landmarks"], image)
    elif key == "xml":
        read = read_labelled(tmp_path / "dlib.xml")[0]  # dlib's own reader
        assert [f.ignore for f in read.faces] == [f.ignore for f in image.faces]
        _check([f.box for f in read.faces], [f.landmarks for f in read.faces], image, atol=0.5)
    elif key == "pts":
        read = read_labelled(tmp_path / "images")[0]  # NAME.pts, or NAME_1.pts .. NAME_3.pts
        assert [f.attributes["pts"] for f in read.faces] == (["00000000.pts"] if k == 1 else
                                                              [f"00000000_{i}.pts" for i in (1, 2, 3)])
        assert np.allclose([f.landmarks for f in read.faces], [f.landmarks for f in image.faces], atol=1e-6)
    elif key == "coco":
        from pycocotools.coco import COCO

        gt = COCO(str(tmp_path / "coco.json"))
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[1]))
        assert len(anns) == k and [a["iscrowd"] for a in anns] == [int(f.ignore) for f in image.faces]
        kp = np.array([a["keypoints"] for a in anns]).reshape(k, 68, 3)
        assert (kp[:, 0] == 0).all()  # outside the image: (0, 0, 0)
        assert kp[:, 5:9, 2].tolist() == [[1] * 4 if k > 1 else [2] * 4] * k
        assert np.allclose(kp[:, 1:, :2], [f.landmarks[1:] for f in image.faces])
        read = read_labelled(tmp_path / "coco.json")[0]
        _check([f.box for f in read.faces], None, image)
    elif key == "yolo":
        lines = (tmp_path / "labels/00000/00000000.txt").read_text().splitlines()
        vals = np.array([line.split() for line in lines], float)
        assert len(lines) == k and (vals[:, 0] == 0).all()
        x0, y0, w, h = image.faces[0].box
        assert np.allclose(vals[0, 1:5], [(x0 + w / 2) / W, (y0 + h / 2) / H, w / W, h / H], atol=1e-6)
        kp = vals[:, 5:].reshape(k, 68, 3)
        assert np.allclose(kp[:, 1:, 0] * W, [f.landmarks[1:, 0] for f in image.faces], atol=1e-4)
        assert (tmp_path / "trainset.txt").read_text() == f"./{image.file}\n"
        assert "kpt_shape: [68, 3]" in (tmp_path / "data.yaml").read_text()
    assert FORMATS[key].describe(LabelSchema(landmarks=True)).startswith("- `")


def test_format_names_are_checked_against_the_registry():
    assert parse_formats("coco, yolo") == ("csv", "coco", "yolo")  # csv always
    assert parse_formats("all") == ALL_FORMATS
    with pytest.raises(SynthfaceError, match="unknown --format jsonl \\(known: csv, parquet, hf, xml, pts, coco, yolo\\)"):
        parse_formats("csv,jsonl")
