"""Group photos in scenes (synthface.dataset.groups), the head blend and the print / halftone
photometric steps: layouts that fit the frame without overlap, masks that hold the
head, crops kept as they were, and the flags' one-line refusals."""

import numpy as np
import pandas as pd
import pytest

from conftest import FACES, FACES_300W, one_line_error, run_cli


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


# -- group_places ------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_group_places_fit_the_frame_without_overlap_back_row_first(seed):
    """Each place's face box (centre +- width / 2) inside the frame, widths from the drawn
    range shrunk 4% a row behind and jittered 8%, no two boxes overlapping (IoU < 0.1),
    rows back (top) to front (bottom), never more places than faces asked for."""
    from synthface.dataset.groups import group_places

    rng = np.random.default_rng(seed)
    size = int(rng.choice([256, 320, 640]))
    lo = float(rng.uniform(30, size / 8))
    hi = float(rng.uniform(lo, size / 5))
    n = int(rng.integers(1, 25))
    places = group_places(n, size, (lo, hi), np.random.default_rng(100 + seed))
    assert 1 <= len(places) <= n, (n, len(places))
    rows = int(np.ceil(n / 2)) + 1  # no more rows than that can hold one face each
    for cx, cy, w in places:
        assert w / 2 < cx < size - w / 2 and w / 2 < cy < size - w / 2, (cx, cy, w, size)
        assert lo * 0.96 ** rows * 0.92 - 1e-9 <= w <= hi * 1.08 + 1e-9, (w, lo, hi)
    boxes = [(cx - w / 2, cy - w / 2, w, w) for cx, cy, w in places]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert _iou(boxes[i], boxes[j]) < 0.1, (boxes[i], boxes[j])
    # back row first: y goes down the list, up to a row's jitter (+-6% of the width each)
    ys, widest = [cy for _, cy, _ in places], max(w for *_, w in places)
    assert all(b >= a - 0.13 * widest for a, b in zip(ys, ys[1:])), ys
    # and a row behind is no wider than the one in front (4% smaller, +-8% jitter)
    assert places[0][2] <= places[-1][2] * 1.08 / 0.92 + 1e-9


def test_group_places_give_fewer_places_when_the_rows_run_out():
    from synthface.dataset.groups import group_places

    for seed in range(5):
        places = group_places(200, 320, (60, 70), np.random.default_rng(seed))
        assert 3 <= len(places) < 200
        # several rows: the places' heights spread over more than a face width
        ys = [cy for _, cy, _ in places]
        assert max(ys) - min(ys) > 60
    assert len(group_places(1, 320, (60, 70), np.random.default_rng(0))) == 1


@pytest.mark.parametrize("n, size, widths, smallest", [(20, 640, (64, 116), 48), (20, 320, (64, 64), 32),
                                                       (12, 256, (64, 64), 24)])
def test_a_group_photo_shrinks_its_faces_to_hold_everyone(n, size, widths, smallest):
    """A big group in a small frame: the faces get smaller (not below `smallest`) until
    the rows hold all n, rather than leaving people out."""
    from synthface.dataset.groups import group_places

    for seed in range(10):
        places = group_places(n, size, widths, np.random.default_rng(seed), smallest=smallest)
        assert len(places) == n, (seed, len(places))
        assert min(w for *_, w in places) >= smallest * 0.96 ** 6 * 0.92 - 1e-9


def test_a_group_photo_of_big_faces_still_places_one():
    """--face-size 150:160 in 320 px scenes is valid (up to half the frame); _compose_group
    then asks for widths (150, 150), and a group photo must still show a face."""
    from synthface.dataset.groups import group_places

    empty = [s for s in range(50) if not group_places(6, 320, (150, 150), np.random.default_rng(s))]
    assert not empty, f"{len(empty)} of 50 group photos place no face"


def test_is_group_draws_the_share_asked():
    from synthface.generator.sampling import candidate_seed
    from synthface.dataset.scenes import SceneConfig, faces_per_scene, is_group

    seeds = [candidate_seed(0, i) for i in range(3000)]
    for share in (0.0, 0.15, 0.5, 1.0):
        cfg = SceneConfig(groups=share)
        got = np.mean([is_group(s, cfg) for s in seeds])
        assert abs(got - share) < 0.03, (share, got)
    # a group scene takes group_faces, any other faces_per_image
    cfg = SceneConfig(groups=0.5, faces_per_image=(1, 2), group_faces=(30, 31))
    for i in range(200):
        n = faces_per_scene(0, i, cfg)
        assert n in ((30, 31) if is_group(candidate_seed(0, i), cfg) else (1, 2)), (i, n)


# -- head_mask ---------------------------------------------------------------------------
def _fixture_faces():
    from synthface.core.imaging import read_rgb
    from synthface.formats.readers import read_pts

    return [(read_rgb(j), read_pts(j.with_suffix(".pts"))) for j in sorted(FACES_300W.glob("*.jpg"))]


def test_head_mask_covers_face_forehead_and_neck_not_the_top_corners():
    """Real 300-W points: every point's pixel inside the mask, some of the forehead above
    the brows and the neck below the chin down to the bottom edge, and neither top
    corner (the background beside the head)."""
    from synthface.dataset.groups import head_mask

    for img, pts in _fixture_faces():
        h, w = img.shape[:2]
        mask = head_mask(pts, h, w)
        assert mask.shape == (h, w) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= set(range(256)) and mask.max() == 255
        px = np.round(pts).astype(int)
        assert (mask[px[:, 1], px[:, 0]] > 0).all()
        assert (mask[px[27:, 1], px[27:, 0]] == 255).all()  # nose, eyes and mouth wholly inside
        brow = pts[17:27].mean(0)
        chin = pts[8]
        gap = chin[1] - brow[1]
        forehead = (int(round(brow[0])), int(round(brow[1] - 0.4 * gap)))
        assert mask[forehead[1], forehead[0]] == 255, forehead
        neck_x = int(round(chin[0]))
        below = mask[int(chin[1]) + 2:, neck_x]
        assert len(below) > 0 and (below == 255).all()  # the neck runs down past the bottom edge
        assert mask[0, 0] == 0 and mask[0, w - 1] == 0
        # the head is not the whole image: the sides at the eyes' height are background
        eye_y = int(round(pts[36:48, 1].mean()))
        assert mask[eye_y, 0] == 0 and mask[eye_y, w - 1] == 0


# -- extend_head -------------------------------------------------------------------------
def test_extend_head_grows_the_crop_and_keeps_its_centre():
    from synthface.dataset.groups import extend_head

    for k, (img, pts) in enumerate(_fixture_faces()[:4]):
        crop = np.ascontiguousarray(img[: img.shape[0] - 7 * k, : img.shape[1] - 3 * k])  # not always square
        h, w = crop.shape[:2]
        big, pad = extend_head(crop, pts, np.random.default_rng(k))
        assert pad == max(h, w) // 2
        assert big.shape == (h + 2 * pad, w + 2 * pad, 3) and big.dtype == np.uint8
        inner = (slice(pad + h // 8, pad + h - h // 8), slice(pad + w // 8, pad + w - w // 8))
        assert np.array_equal(big[inner], crop[h // 8: h - h // 8, w // 8: w - w // 8])
        # the same draw, the same pixels; another draw, other hair
        again, _ = extend_head(crop, pts, np.random.default_rng(k))
        assert np.array_equal(again, big)
        # above the crop: hair (not the crop's edge row repeated unchanged)
        top = big[: pad // 2, pad: pad + w].astype(float)
        assert top.std() > 1.0


# -- group scenes --------------------------------------------------------------------------
def _make(out, n=20, **kw):
    from synthface.generator.sampling import ReplaySampler
    from synthface.dataset.scenes import SceneConfig, make_scenes

    cfg = SceneConfig(**{"face_size": (40, 90), "image_size": 320, **kw})
    summary = make_scenes(out, n, cfg, ReplaySampler(FACES, 64), workers=0, progress=False)
    return cfg, summary, pd.read_csv(out / "labels.csv")


@pytest.fixture(scope="module")
def group_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("groups") / "g"
    return (out, *_make(out, groups=1.0, group_faces=(6, 10)))


def test_group_scenes_place_faces_in_rows_inside_the_frame(group_run):
    from synthface.face.scheme68 import POINT_COLS

    out, cfg, summary, frame = group_run
    assert summary["faces"] == len(frame) > 0 and summary["faces"] + summary["unplaced"] == 20
    assert summary["scenes"] >= 2
    assert (frame["blend"] == "head").all()
    assert frame.groupby("scene").size().between(1, 10).all()
    assert (frame["truncated"] == 0).all()
    # nothing is pasted in front of the front row: its faces' points are all visible (a head in
    # front may hide some points of the faces behind it, which are then flagged occluded)
    for _, scene in frame.groupby("scene"):
        front = scene[scene["y"] >= scene["y"].max() - 0.3 * scene["w"].max()]
        assert (front["occluded"] == 0).all(), front[["y", "w", "occluded"]]
    size = cfg.image_size
    for _, scene in frame.groupby("scene"):
        boxes = scene[["x", "y", "w", "h"]].to_numpy(float)
        for x, y, w, h in boxes:
            assert x >= 0 and y >= 0 and x + w <= size and y + h <= size, (x, y, w, h)
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                assert _iou(boxes[i], boxes[j]) < 0.1, (boxes[i], boxes[j])
        for (bx, by, bw, bh), pts in zip(boxes, scene[POINT_COLS].to_numpy(float).reshape(-1, 68, 2)):
            px, py = pts.min(0)
            pw, ph = pts.max(0) - pts.min(0)
            assert bx - 0.2 * bw <= px and px + pw <= bx + 1.2 * bw and pw > 0.6 * bw
            assert by - 0.5 * bh <= py and py + ph <= by + 1.3 * bh
        # rows: the scene's faces spread over more than one height when there are many
        if len(boxes) >= 6:
            assert np.ptp(boxes[:, 1]) > boxes[:, 3].mean() * 0.5


def test_group_scenes_are_reproducible_from_the_seed(group_run, tmp_path):
    out = group_run[0]
    _make(tmp_path / "g2", groups=1.0, group_faces=(6, 10))
    assert (tmp_path / "g2" / "labels.csv").read_bytes() == (out / "labels.csv").read_bytes()
    files = pd.read_csv(out / "labels.csv")["file"].unique()
    assert all((tmp_path / "g2" / f).read_bytes() == (out / f).read_bytes() for f in files)
    # another share of group photos is another run: not resumed into this folder
    from synthface.errors import SynthfaceError
    from synthface.generator.sampling import ReplaySampler
    from synthface.dataset.scenes import SceneConfig, make_scenes

    cfg = SceneConfig(face_size=(40, 90), image_size=320, groups=0.5, group_faces=(6, 10))
    with pytest.raises(SynthfaceError, match="made with other settings"):
        make_scenes(tmp_path / "g2", 20, cfg, ReplaySampler(FACES, 64), workers=0, resume=True, progress=False)


def test_groups_zero_and_blends_without_head(tmp_path):
    """groups 0: no scene takes a group's faces; a group photo whose blends leave out
    "head" draws one of those given instead."""
    cfg, summary, frame = _make(tmp_path / "a", n=12, groups=0.0, faces_per_image=(2, 3),
                                blends=("none", "gaussian"))
    assert frame.groupby("scene").size().le(3).all() and set(frame["blend"]) <= {"none", "gaussian"}
    cfg, summary, frame = _make(tmp_path / "b", n=12, groups=1.0, group_faces=(6, 6), blends=("none", "feather"))
    assert set(frame["blend"]) <= {"none", "feather"} and "head" not in set(frame["blend"])
    assert summary["scenes"] == 2 and frame.groupby("scene").size().max() > 3


# -- the CLI -----------------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["--groups", "0.5"], ["--groups goes with --scenes"]),
    (["--group-faces", "2:4"], ["--group-faces goes with --scenes"]),
    (["--blend", "bogus"], ["--blend goes with --scenes"]),
    (["--face-size", "1:2"], ["--face-size goes with --scenes"]),
    (["--faces-per-image", "2:3", "--groups", "1"], ["--groups and --faces-per-image go with --scenes"]),
])
def test_group_flags_without_scenes_are_refused(tmp_path, args, words):
    r = run_cli("make-dataset", "-n", "3", "--replay-faces", FACES, "--out", tmp_path / "x", "--no-progress", *args)
    one_line_error(r, *words)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, message", [
    (["--groups", "2"], "--groups must be a share from 0 (no group photos) to 1, got 2.0"),
    (["--groups", "nan"], "--groups must be a share from 0 (no group photos) to 1, got nan"),
    (["--group-faces", "5:3"], "--group-faces must be MIN:MAX with 1 <= MIN <= MAX <= 50, got 5:3"),
    (["--group-faces", "x"], "--group-faces must be MIN:MAX, got 'x'"),
    (["--group-faces="], "--group-faces must be MIN:MAX, got ''"),
])
def test_bad_group_flags_are_one_line(tmp_path, args, message):
    r = run_cli("make-dataset", "--scenes", "-n", "3", "--replay-faces", FACES, "--out", tmp_path / "x",
                "--no-progress", *args)
    assert one_line_error(r) == f"synthface: error: {message}", r.stderr
    assert not (tmp_path / "x").exists()


# -- photometric ---------------------------------------------------------------------------
def test_every_photometric_transform_at_once_gives_a_grey_scene():
    """amount 10 makes every PHOTO_RATES rate 1: all transforms hit, halftone among them,
    so the scene comes back grey (three equal channels), its shape and dtype kept."""
    from synthface.dataset.photometric import PHOTO_RATES, photometric
    from synthface.dataset.scenes import procedural_background

    assert min(PHOTO_RATES.values()) * 10 >= 1
    for seed in range(3):
        scene = procedural_background(np.random.default_rng(seed), 160)
        out = photometric(scene, np.random.default_rng(seed), 10.0)
        assert out.shape == scene.shape and out.dtype == np.uint8 and out.flags.c_contiguous
        assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
        assert not np.array_equal(out, scene)
    assert np.array_equal(photometric(scene, np.random.default_rng(0), 0.0), scene)


@pytest.mark.parametrize("level", [64.0, 128.0, 190.0])
def test_halftone_keeps_the_tone_and_shows_dots(level):
    from synthface.dataset.photometric import _halftone

    for seed in range(3):
        img = np.full((128, 128), level, np.float32)
        out = _halftone(img, np.random.default_rng(seed))
        assert out.shape == img.shape
        assert abs(float(out.mean()) - level) < 25, (level, out.mean())
        assert float(out.std()) > 5


def test_scenes_place_all_faces_and_take_default_sizes_in_a_small_frame(tmp_path):
    """Group photos in a 256 px frame hold every face asked for, and the default
    --face-size (48:256) is brought within half the frame rather than refused."""
    out = tmp_path / "small"
    r = run_cli("make-dataset", "--scenes", "-n", "60", "--groups", "1", "--image-size", "256", "--replay-faces",
                FACES, "-o", out, "--no-progress", "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert "60 faces in" in r.stdout and "(0 left out: no room)" in r.stdout
    frame = pd.read_csv(out / "labels.csv")
    assert len(frame) == 60 and frame["w"].max() <= 128 + 1


def test_detector_train_refuses_sets_of_two_box_conventions(tmp_path):
    made = {}
    for box in ("dlib", "head"):
        made[box] = tmp_path / box
        r = run_cli("make-dataset", "--scenes", "-n", "8", "--image-size", "256", "--box", box, "--replay-faces",
                    FACES, "-o", made[box], "--no-progress", "--format", "csv")
        assert r.returncode == 0, r.stderr
    r = run_cli("detector", "train", "--data", made["dlib"], "--data", made["head"], "-o", tmp_path / "m.svm")
    one_line_error(r, f"{made['dlib']}: dlib", f"{made['head']}: head", "--resume --box")
    assert not (tmp_path / "m.svm").exists()
