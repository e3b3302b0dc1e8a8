"""Each label format read by its own ecosystem's reader: Ultralytics' path rule, Hugging
Face datasets (imagefolder), the torch Dataset through a DataLoader, dlib's trainers,
300-W folders; and the train/val split that all of them share."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import FACES
from synthface.face.annotate import AnnotateConfig
from synthface.errors import SynthfaceError
from synthface.face.scheme68 import FLIP_IDX_68
from synthface.dataset.journal import split_of
from synthface.face.scheme68 import POINT_COLS
from synthface.dataset.make import MakeConfig, make_dataset
from synthface.generator.sampling import ReplaySampler


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """20 faces with landmarks, a 0.3 val split, in 96 px images (pad 0.25): the boxes lie
    inside the image, as dlib's detector trainer needs; unturned, so every point is
    visible (turned faces' hidden points: test_rotate3d)."""
    out = tmp_path_factory.mktemp("formats") / "faces"
    cfg = MakeConfig(n=20, workers=0, batch_size=8, pad=0.25, val_fraction=0.3, annotate=AnnotateConfig(),
                     rotate3d=None)
    make_dataset(out, cfg, ReplaySampler(FACES, 64), progress=False)
    return out


def _points(frame):
    return frame[POINT_COLS].to_numpy().reshape(-1, 68, 2)


def test_the_split_comes_from_each_face_s_seed(faces):
    seeds = np.random.default_rng(0).integers(0, 2 ** 63 - 1, 20000, dtype=np.int64).tolist()
    share = np.mean([split_of(s, 0.1) == "val" for s in seeds])
    assert 0.09 < share < 0.11
    assert {split_of(s, 0.0) for s in seeds[:1000]} == {"train"}
    assert [split_of(s, 0.1) for s in seeds[:50]] == [split_of(s, 0.1) for s in seeds[:50]]
    frame = pd.read_csv(faces / "labels.csv")
    assert frame["split"].tolist() == [split_of(s, 0.3) for s in frame["seed"]]
    assert set(frame["split"]) == {"train", "val"}
    card = json.loads((faces / "dataset.json").read_text())
    assert card["counts"]["train"] + card["counts"]["val"] == 20
    assert card["counts"]["val"] == (frame["split"] == "val").sum() and card["split"]["val_fraction"] == 0.3
    with pytest.raises(SynthfaceError, match=r"--val-fraction must be in \[0, 1\), got 1.0"):
        MakeConfig(n=5, val_fraction=1.0).validate()


def _ultralytics_label_paths(img_paths):
    """Ultralytics' own rule (ultralytics/data/utils.py, img2label_paths): the last
    /images/ becomes /labels/ and the extension .txt."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return [sb.join(os.fspath(x).rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt" for x in img_paths]


def _ultralytics_image_list(list_file: Path):
    """Ultralytics' reading of a .txt image list (data/base.py, get_img_files): "./"
    means the list's own folder."""
    parent = str(list_file.parent) + os.sep
    lines = list_file.read_text(encoding="utf-8-sig").strip().splitlines()
    return [x.replace("./", parent, 1) if x.startswith("./") else x for x in lines]


def test_ultralytics_finds_every_label_by_its_own_rule(faces):
    import yaml

    data = yaml.safe_load((faces / "data.yaml").read_text())
    assert "path" not in data  # Ultralytics then roots the dataset at data.yaml's folder: it may move
    data["path"] = str(faces.resolve())
    assert data["kpt_shape"] == [68, 3] and data["flip_idx"] == FLIP_IDX_68 and data["names"] == {0: "face"}
    coco = json.loads((faces / "coco.json").read_text())["categories"][0]
    assert data["kpt_oks_sigmas"] == coco["sigmas"] and len(data["kpt_oks_sigmas"]) == 68
    frame = pd.read_csv(faces / "labels.csv").set_index("file")
    size = 96
    seen = {}
    for split in ("train", "val"):
        images = _ultralytics_image_list(Path(data["path"]) / data[split])
        for image, label in zip(images, _ultralytics_label_paths(images)):
            rel = Path(image).relative_to(faces.resolve()).as_posix()
            assert Path(image).is_file() and rel not in seen
            seen[rel] = split
            row = frame.loc[rel]
            assert row["split"] == split
            values = np.array(Path(label).read_text().split(), float)
            assert values.shape == (5 + 68 * 3,) and values[0] == 0
            x, y, w, h = row[["x", "y", "w", "h"]]
            assert 0 <= x and x + w <= size and 0 <= y and y + h <= size  # inside: not clipped
            assert np.allclose(values[1:5] * size, [x + w / 2, y + h / 2, w, h], atol=1e-3)
            kp = values[5:].reshape(68, 3)
            assert set(kp[:, 2]) == {2}
            assert np.allclose(kp[:, :2] * size, row[POINT_COLS].to_numpy(float).reshape(68, 2), atol=1e-3)
    assert sorted(seen) == sorted(frame.index)  # every face in exactly one split


def test_hugging_face_imagefolder_loads_images_with_their_labels(faces, tmp_path, monkeypatch):
    import datasets
    from PIL import Image

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = datasets.load_dataset("imagefolder", data_dir=str(faces), cache_dir=str(tmp_path / "hf"))["train"]
    frame = pd.read_csv(faces / "labels.csv")
    assert len(ds) == 20
    assert {"image", "split", "seed", "index", "box", "score", "landmarks"} <= set(ds.column_names)
    for k in (0, 13):
        row = ds[k]
        truth = frame[frame["index"] == row["index"]].iloc[0]
        assert row["image"].size == (96, 96)
        assert np.array_equal(np.asarray(row["image"]), np.asarray(Image.open(faces / truth["file"])))
        assert row["box"] == truth[["x", "y", "w", "h"]].tolist() and row["seed"] == truth["seed"]
        assert np.array_equal(np.array(row["landmarks"]), _points(frame[frame["index"] == row["index"]])[0])
    assert sorted(ds.filter(lambda r: r["split"] == "val")["index"]) == \
        sorted(frame.loc[frame["split"] == "val", "index"])


def test_torch_dataset_through_a_dataloader(faces):
    from torch.utils.data import DataLoader

    from synthface import FaceLandmarks
    from synthface.core.imaging import read_rgb

    frame = pd.read_csv(faces / "labels.csv")
    train = FaceLandmarks(faces, split="train")
    val = FaceLandmarks(faces, split="val")
    assert len(train) == (frame["split"] == "train").sum() and len(train) + len(val) == 20
    batch = next(iter(DataLoader(train, batch_size=4, shuffle=False)))
    assert batch["image"].shape == (4, 3, 96, 96) and batch["landmarks"].shape == (4, 68, 2)
    first = frame[frame["split"] == "train"].iloc[0]
    assert np.allclose(batch["image"][0].permute(1, 2, 0).numpy() * 255, read_rgb(faces / first["file"]), atol=1e-3)
    assert batch["box"][0].tolist() == first[["x", "y", "w", "h"]].tolist()
    assert np.allclose(batch["landmarks"][0].numpy(), first[POINT_COLS].to_numpy(float).reshape(68, 2))
    assert batch["seed"][0].item() == first["seed"] and batch["file"][0] == first["file"]
    assert set(batch["split"]) == {"train"} and batch["score"].dtype.is_floating_point

    def flip(sample):  # a transform sees the whole sample and may move the points
        sample["image"] = sample["image"].flip(-1)
        sample["landmarks"][:, 0] = 95 - sample["landmarks"][:, 0]
        return sample

    flipped = FaceLandmarks(faces, split="train", transform=flip)[0]
    assert np.allclose(flipped["landmarks"][:, 0].numpy(), 95 - first[POINT_COLS[0::2]].to_numpy(float))
    with pytest.raises(SynthfaceError, match="split must be one of train, val, all, got 'test'"):
        FaceLandmarks(faces, split="test")
    with pytest.raises(SynthfaceError, match="is not a synthface dataset"):
        FaceLandmarks(faces / "images")


def test_dlib_trains_both_models_from_dlib_xml(faces, tmp_path):
    import dlib

    meta = dlib.image_dataset_metadata.load_image_dataset_metadata(str(faces / "dlib.xml"))
    assert len(meta.images) == 20 and all(len(img.boxes[0].parts) == 68 for img in meta.images)
    xml = str(faces / "dlib.xml")  # its image paths are relative to its folder, wherever dlib runs
    opts = dlib.simple_object_detector_training_options()
    opts.add_left_right_image_flips, opts.C, opts.detection_window_size = True, 5, 40 * 40
    dlib.train_simple_object_detector(xml, str(tmp_path / "det.svm"), opts)
    assert dlib.test_simple_object_detector(xml, str(tmp_path / "det.svm")).recall > 0.8
    sp = dlib.shape_predictor_training_options()
    sp.cascade_depth, sp.tree_depth, sp.num_trees_per_cascade_level, sp.oversampling_amount = 4, 3, 50, 5
    dlib.train_shape_predictor(xml, str(tmp_path / "sp.dat"), sp)
    assert dlib.test_shape_predictor(xml, str(tmp_path / "sp.dat")) < 3.0  # pixels, on its training faces


def test_landmarks_read_the_dataset_or_its_images_folder(faces):
    from synthface.trainers.landmarks import load_face_set

    frame = pd.read_csv(faces / "labels.csv")
    by_labels = load_face_set(faces)
    by_pts = load_face_set(faces / "images")  # a 300-W folder: NAME.png with NAME.pts beside it
    assert [f.image for f in by_labels] == [f.image for f in by_pts] == [faces / f for f in frame["file"]]
    # .pts are 1-based: x + 1 - 1 may differ from x in its last bit
    assert np.allclose(np.stack([f.points for f in by_labels]), np.stack([f.points for f in by_pts]), rtol=0, atol=1e-9)
    assert np.array_equal(np.stack([f.points for f in by_labels]), _points(frame))
    assert len(load_face_set(faces, split="val")) == (frame["split"] == "val").sum()
    with pytest.raises(SynthfaceError, match="--split val needs a synthface dataset folder"):
        load_face_set(faces / "images", split="val")


def test_a_new_val_fraction_on_resume_resplits_without_remaking_a_face(tmp_path):
    out = tmp_path / "d"
    replay = ReplaySampler(FACES, 64)
    make_dataset(out, MakeConfig(n=12, workers=0, val_fraction=0.0), replay, progress=False)
    before = pd.read_csv(out / "labels.csv")
    images = {f: (out / f).read_bytes() for f in before["file"]}
    assert set(before["split"]) == {"train"} and "val: trainset.txt" in (out / "data.yaml").read_text()
    make_dataset(out, MakeConfig(n=12, workers=0, val_fraction=0.5), replay, resume=True, progress=False)
    after = pd.read_csv(out / "labels.csv")
    assert after.drop(columns="split").equals(before.drop(columns="split"))
    assert after["split"].tolist() == [split_of(s, 0.5) for s in after["seed"]] and "val" in set(after["split"])
    assert {f: (out / f).read_bytes() for f in after["file"]} == images
    assert len((out / "valset.txt").read_text().split()) == (after["split"] == "val").sum()


def test_the_readme_loading_snippet_runs_as_written(faces, tmp_path):
    """README.md's "Load it" code, with DATASET replaced by a dataset's folder."""
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Load it", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1).replace("DATASET", str(faces))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own snippet
    assert len(scope["ds"]) == 20  # HF's one split: every face
    train = len(scope["loader"].dataset)  # the snippet's train split, in each loader, is synthface's
    assert scope["points"].shape == (train, 68, 2) and len(scope["train"]) == train
    assert len(scope["gt"].getAnnIds()) == 20 and 0 < len(scope["loader"].dataset) < 20  # the train split
    batch = next(iter(scope["loader"]))
    assert batch["landmarks"].shape[1:] == (68, 2)
