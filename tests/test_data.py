import json
import logging
import shutil
import zipfile

import cv2
import numpy as np
import pytest

from synthface.generator.data import FaceDataModule, load_faces
from synthface.errors import SynthfaceError


def test_loads_ffhq_nested_layout(faces_dir):
    faces = load_faces(faces_dir, 32, progress=False)
    assert faces.shape == (16, 32, 32, 3) and faces.dtype == np.uint8
    # RGB order: the first fixture's pixels match OpenCV's BGR read reversed
    first = sorted((faces_dir / "00000").glob("*.jpg"))[0]
    ref = cv2.resize(cv2.imread(str(first)), (32, 32), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    assert np.array_equal(faces[0], ref)


def test_loads_a_zip_of_a_folder(faces_dir, tmp_path):
    zpath = tmp_path / "faces.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(faces_dir.rglob("*.jpg")):
            zf.write(f, f"thumbnails128x128/{f.parent.name}/{f.name}")
    from_zip = load_faces(zpath, 32, progress=False)
    assert np.array_equal(from_zip, load_faces(faces_dir, 32, progress=False))


def test_bad_files_are_skipped_or_converted_with_one_warning(faces_dir, caplog):
    d = faces_dir / "00000"
    good = (d / "00000.jpg").read_bytes()
    (d / "corrupt.jpg").write_bytes(b"this is not a jpeg")
    (d / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (d / "notes.txt").write_text("hello")
    img = cv2.imread(str(d / "00001.jpg"))
    cv2.imwrite(str(d / "gray.png"), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(d / "rgba.png"), cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))
    with caplog.at_level(logging.WARNING, logger="synthface"):
        faces = load_faces(faces_dir, 32, progress=False)
    assert faces.shape == (18, 32, 32, 3)  # 16 + gray + rgba, converted to RGB
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 unreadable or truncated image(s) skipped" in warnings[0]
    assert "1 non-image file(s) ignored" in warnings[0]


def test_missing_empty_and_unreadable_folders_are_errors(tmp_path):
    with pytest.raises(SynthfaceError, match="data path not found"):
        load_faces(tmp_path / "nope", 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SynthfaceError, match="no image files"):
        load_faces(tmp_path / "empty", 32)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"garbage")
    with pytest.raises(SynthfaceError, match="none of the 1 image files"):
        load_faces(tmp_path / "bad", 32)
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(SynthfaceError, match="neither a folder nor a zip"):
        load_faces(tmp_path / "file.bin", 32)


def test_disk_cache_decodes_once(faces_dir, tmp_path):
    cache = tmp_path / "cache"
    first = load_faces(faces_dir, 32, cache_dir=str(cache), progress=False)
    assert len(list(cache.glob("*.npy"))) == 1
    # once cached, the images are not decoded again: breaking the decoder changes nothing
    import synthface.generator.data as data

    real = data.decode_face
    data.decode_face = lambda *a: pytest.fail("decoded again")
    try:
        assert np.array_equal(load_faces(faces_dir, 32, cache_dir=str(cache), progress=False), first)
    finally:
        data.decode_face = real
    # a new file changes the fingerprint: the cache is rebuilt
    shutil.copy(faces_dir / "00000" / "00000.jpg", faces_dir / "00000" / "99999.jpg")
    assert len(load_faces(faces_dir, 32, cache_dir=str(cache), progress=False)) == 17


def test_datamodule_gives_fixed_size_uint8_batches(faces_dir):
    dm = FaceDataModule(faces_dir, 32, batch_size=4, batches_per_epoch=5)
    dm.setup()
    batches = list(dm.train_dataloader())
    assert len(batches) == 5 and batches[0].shape == (4, 3, 32, 32) and batches[0].dtype.is_floating_point is False
    one_pass = FaceDataModule(faces_dir, 32, batch_size=4)
    one_pass.setup()
    assert len(list(one_pass.train_dataloader())) == 4  # 16 faces / 4


def test_ffhq_metadata_gives_the_official_split(tmp_path):
    from conftest import FACES
    from synthface.generator.data import load_ffhq_metadata

    root = tmp_path / "ffhq"
    thumbs = root / "thumbnails128x128" / "00000"
    thumbs.mkdir(parents=True)
    meta = {}
    for i, f in enumerate(sorted(FACES.glob("*.jpg"))[:5]):
        cv2.imwrite(str(thumbs / f"{i:05d}.png"), cv2.imread(str(f)))
        meta[str(i)] = {"category": "training" if i < 3 else "validation",
                        "image": {"file_path": f"images1024x1024/00000/{i:05d}.png",
                                  "face_landmarks": [[float(i), 2.0]] * 68},
                        "thumbnail": {"file_path": f"thumbnails128x128/00000/{i:05d}.png"}}
    (root / "ffhq-dataset-v2.json").write_text(json.dumps(meta))
    data = root / "thumbnails128x128"
    assert len(load_faces(data, 32, progress=False)) == 5
    train = load_faces(data, 32, progress=False, split="train")
    assert len(train) == 3 and np.array_equal(train, load_faces(data, 32, progress=False)[:3])
    assert len(load_faces(data, 32, progress=False, split="validation")) == 2
    lm = load_ffhq_metadata(root / "ffhq-dataset-v2.json")["00000/00004.png"]
    assert lm["category"] == "validation" and lm["landmarks"].shape == (68, 2) and lm["landmarks"][0, 0] == 4
    with pytest.raises(SynthfaceError, match="needs FFHQ's ffhq-dataset-v2.json"):
        load_faces(tmp_path / "ffhq" / "thumbnails128x128" / "00000", 32, split="train")
