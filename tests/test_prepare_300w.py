"""bench/prepare_300w.py: the crop that makes a held-out landmark test set like afw's."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import FACES_300W
from synthface.face.scheme68 import parse_pts, pts_text
from synthface.trainers.landmarks import read_pts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import prepare_300w  # noqa: E402


def _photo(tmp_path, zoom: int, bare: bool):
    """A fixture face zoomed into a larger noisy photo NAME.jpg, its points as NAME_1.pts
    (HELEN's naming) in 300-W's 1-based coordinates, bare or headed."""
    face = sorted(FACES_300W.glob("*.pts"))[0]
    img, pts = cv2.imread(str(face.with_suffix(".jpg"))), read_pts(face)
    big = cv2.resize(img, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    photo = np.random.default_rng(0).integers(0, 255, (big.shape[0] + 300, big.shape[1] + 400, 3), np.uint8)
    photo[100:100 + big.shape[0], 150:150 + big.shape[1]] = big
    pts = (pts + 0.5) * zoom - 0.5 + (150, 100)
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "photo.png"), photo)
    text = "\n".join(f"{x + 1} {y + 1}" for x, y in pts) if bare else pts_text(pts)
    (src / "photo_1.pts").write_text(text)
    return src, photo, pts


def _prepared(out):
    return cv2.imread(str(out / "photo_1.jpg")), parse_pts((out / "photo_1.pts").read_text())


@pytest.mark.parametrize("bare", [True, False])
def test_a_small_face_is_cropped_without_resizing(tmp_path, bare):
    src, photo, pts = _photo(tmp_path, 1, bare)
    assert prepare_300w.main([str(src), "-o", str(tmp_path / "out")]) == 0
    crop, out = _prepared(tmp_path / "out")
    shift = pts[0] - out[0]  # a whole-pixel crop: every point moves by the same integer offset
    assert np.allclose(pts - out, shift, atol=1e-6) and np.allclose(shift, np.round(shift))
    extent = (pts.max(0) - pts.min(0)).max()
    assert max(crop.shape[:2]) == pytest.approx(2 * extent, abs=2)  # twice the extent, square
    x0, y0 = (int(v) for v in np.round(shift))
    region = photo[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]].astype(int)
    assert np.abs(region - crop).mean() < 3  # the same pixels (JPEG's loss aside)


def test_a_large_face_is_downscaled_to_an_extent_of_200_px(tmp_path):
    src, photo, pts = _photo(tmp_path, 3, True)
    assert (pts.max(0) - pts.min(0)).max() > 300
    prepare_300w.main([str(src), "-o", str(tmp_path / "out")])
    crop, out = _prepared(tmp_path / "out")
    assert (out.max(0) - out.min(0)).max() == pytest.approx(200, abs=0.5)
    assert crop.shape[0] == pytest.approx(400, abs=2) and crop.shape[1] == pytest.approx(400, abs=2)
    # each point sits on the same picture as before: its mean colour over a few pixels agrees
    def around(image, p):
        x, y = (int(round(v)) for v in p)
        return image[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).mean(0)
    scale = 200 / (pts.max(0) - pts.min(0)).max()
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    diffs = [np.abs(around(crop, q) - around(small, (p + 0.5) * scale - 0.5)).mean() for p, q in zip(pts, out)]
    assert np.median(diffs) < 12


def test_no_points_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no .pts files"):
        prepare_300w.main([str(tmp_path), "-o", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_bad_points_or_writing_over_the_source_is_one_line(tmp_path):
    src, photo, pts = _photo(tmp_path, 1, True)
    before = (src / "photo.png").read_bytes()
    with pytest.raises(SystemExit, match="source folder"):
        prepare_300w.main([str(src), "-o", str(src)])
    (src / "photo_1.pts").write_text("1 2 3")
    with pytest.raises(SystemExit, match="photo_1.pts: not 68 finite points"):
        prepare_300w.main([str(src), "-o", str(tmp_path / "out")])
    assert (src / "photo.png").read_bytes() == before
