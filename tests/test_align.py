import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import FACES_300W
from synthface.generator.align import align_face, align_folder, ffhq_quad, quad_transform
from synthface.errors import SynthfaceError
from synthface.core.imaging import read_rgb
from synthface.formats.readers import read_pts

SIZE = 128


def _canonical(points, size=SIZE):
    """Eye centres and mouth centre of a face's points, mapped into its aligned image."""
    quad, _ = ffhq_quad(points)
    m = quad_transform(quad, size)
    key = np.stack([points[36:42].mean(0), points[42:48].mean(0), (points[48] + points[54]) / 2])
    return key @ m[:, :2].T + m[:, 2]


def test_eyes_and_mouth_land_on_the_same_spots_in_every_output():
    faces = sorted(FACES_300W.glob("*.jpg"))
    spots = np.stack([_canonical(read_pts(f.with_suffix(".pts"))) for f in faces])
    # eyes level and symmetric about the centre line, mouth below them, in every face
    assert np.abs(spots[:, 0, 1] - spots[:, 1, 1]).max() < 0.02 * SIZE
    assert np.abs(spots[:, :2, 0].mean(1) - SIZE / 2).max() < 0.02 * SIZE
    assert np.abs(spots - spots.mean(0)).max() < 0.06 * SIZE
    assert (spots[:, 2, 1] > spots[:, 0, 1] + 0.15 * SIZE).all()
    # and the pixels follow: dlib's landmarks on the aligned images find the eyes there
    import dlib

    from synthface.face.annotate import model_path, shape_to_array

    det, sp = dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model_path("landmarks68")))
    for f, spot in zip(faces, spots):
        out, _ = align_face(read_rgb(f), read_pts(f.with_suffix(".pts")), SIZE)
        assert out.shape == (SIZE, SIZE, 3)
        rect = det(out, 1)[0]
        lm = shape_to_array(sp(out, rect))
        found = np.stack([lm[36:42].mean(0), lm[42:48].mean(0)])
        assert np.abs(found - spot[:2]).max() < 0.04 * SIZE, f.name


@pytest.fixture
def photos(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    jpgs = sorted(FACES_300W.glob("*.jpg"))
    a, b = read_rgb(jpgs[0]), read_rgb(jpgs[2])
    h = max(a.shape[0], b.shape[0])
    pad = lambda im: cv2.copyMakeBorder(im, 0, h - im.shape[0], 0, 0, cv2.BORDER_CONSTANT)  # noqa: E731
    cv2.imwrite(str(src / "two.png"), np.hstack([pad(a), pad(b)])[:, :, ::-1])
    shutil.copy(jpgs[3], src / "one.jpg")
    (src / "broken.jpg").write_bytes(b"not a photo")
    cv2.imwrite(str(src / "wall.png"), np.full((200, 200, 3), 128, np.uint8))
    return src


def test_folder_alignment_counts_and_layout(photos, tmp_path):
    dst = tmp_path / "aligned"
    counts = align_folder(photos, dst, size=SIZE, workers=0, progress=False)
    assert counts == {"photos": 4, "faces": 3, "unreadable": 1, "no_face": 1}
    meta = json.loads((dst / "alignment.json").read_text())
    assert [f["file"] for f in meta["faces"]] == ["00000/00000.png", "00000/00001.png", "00000/00002.png"]
    two = [f for f in meta["faces"] if f["source"] == "two.png"]
    assert [f["face_index"] for f in two] == [0, 1]
    assert all(len(f["landmarks"]) == 68 and len(f["quad"]) == 4 and len(f["box"]) == 4 for f in meta["faces"])
    # the output trains as it is
    from synthface.generator.data import load_faces

    assert load_faces(dst, 32, progress=False).shape == (3, 32, 32, 3)


def test_resume_and_refusals(photos, tmp_path):
    dst = tmp_path / "aligned"
    align_folder(photos, dst, size=SIZE, workers=0, progress=False)
    whole = json.loads((dst / "alignment.json").read_text())["faces"]
    journal = dst / ".synthface" / "align-journal.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])  # killed mid-write
    with pytest.raises(SynthfaceError, match="is not empty; add --resume"):
        align_folder(photos, dst, size=SIZE, workers=0, progress=False)
    with pytest.raises(SynthfaceError, match="another alignment run"):
        align_folder(photos, dst, size=64, workers=0, resume=True, progress=False)
    align_folder(photos, dst, size=SIZE, workers=0, resume=True, progress=False)
    assert json.loads((dst / "alignment.json").read_text())["faces"] == whole
    with pytest.raises(SynthfaceError, match="source not found"):
        align_folder(tmp_path / "nope", tmp_path / "x", progress=False)


def test_align_then_train_from_the_cli(tmp_path):
    """The CelebA recipe end to end on fixture photos: `align` writes the training set
    (FFHQ layout + alignment.json, streamed), `train` fits a generator on it, and the
    generator's JSON names the data it was trained on."""
    from conftest import run_cli

    r = run_cli("align", FACES_300W, tmp_path / "aligned", "--size", "64", "--workers", "0", "--no-progress")
    assert r.returncode == 0, r.stderr
    n = len(list(FACES_300W.glob("*.jpg")))
    meta = json.loads((tmp_path / "aligned" / "alignment.json").read_text())
    assert meta["counts"]["faces"] == len(meta["faces"]) == n and len(list((tmp_path / "aligned").rglob("*.png"))) == n
    r = run_cli("train", "--data", tmp_path / "aligned", "--out", tmp_path / "run", "--config", "tiny", "--no-progress")
    assert r.returncode == 0, r.stderr
    gen = json.loads((tmp_path / "run" / "generator.json").read_text())
    assert gen["data_path"] == str((tmp_path / "aligned").resolve())
    from synthface.dataset.card import trained_on

    assert trained_on(tmp_path / "run" / "generator.safetensors") == "`aligned`"
