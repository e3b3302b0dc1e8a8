"""Faces turned in 3D (rotate3d.py, --rotate-3d): the turn, its labels, the CLI."""

import json
import re

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import FACES, run_cli
from synthface.errors import SynthfaceError
from synthface.trainers.landmarks import nme
from synthface.face.pose import fitted_pose, head_pose
from synthface.face.rotate3d import Rotate3DConfig, draw_turn, parse_turns, turn_face


@pytest.fixture(scope="module")
def labelled():
    """The fixture faces at 64 px that dlib keeps, with its box and 68 points."""
    from synthface.face.annotate import AnnotateConfig, Annotator
    from synthface.core.imaging import read_rgb

    annotator = Annotator(AnnotateConfig(landmarks=True))
    out = []
    for path in sorted(FACES.glob("*.jpg")):
        img = cv2.resize(read_rgb(path), (64, 64), interpolation=cv2.INTER_AREA)
        faces = annotator.annotate(img)
        if not annotator.rejection_reason(faces):
            out.append((img, faces[0]["landmarks"], faces[0]["box"]))
    assert len(out) >= 12
    return out


def test_no_turn_is_the_identity(labelled):
    img, pts, box = labelled[0]
    r = turn_face(img, pts, box, 0.0)
    assert np.array_equal(r.image, img)
    assert np.allclose(r.points, pts, atol=1e-9)
    assert not r.hidden.any() and tuple(r.box) == tuple(box)


def test_a_turn_and_its_inverse_come_back(labelled):
    """+20 then -20 degrees (the second fitted on the first's output): the points within
    1% NME, the face's pixels within a few grey levels."""
    for img, pts, box in labelled[:6]:
        if abs(fitted_pose(pts)[0]) > 15:  # already turned: the test is about near-frontal faces
            continue
        there = turn_face(img, pts, box, 20.0)
        back = turn_face(there.image, there.points, there.box, -20.0)
        assert nme(back.points, pts) < 0.01
        x, y, w, h = (int(v) for v in box)
        face = (slice(max(y, 0), y + h), slice(max(x, 0), x + w))
        assert np.abs(back.image[face].astype(float) - img[face]).mean() < 8.0
        assert not np.array_equal(there.image, img)


@pytest.mark.parametrize("turn", [-45, -30, -15, 15, 30, 45])
def test_the_measured_yaw_follows_the_turn(labelled, turn):
    """pose.fitted_pose measures a turned face's yaw within 5 degrees of its own plus the
    turn, up to 45 degrees; pose.head_pose (perspective, six points) moves the same way."""
    for img, pts, box in labelled:
        r = turn_face(img, pts, box, float(turn))
        assert abs(fitted_pose(r.points)[0] - fitted_pose(pts)[0] - turn) < 5.0
        assert np.sign(head_pose(r.points, 64)[0] - head_pose(pts, 64)[0]) == np.sign(turn)


def test_the_far_side_is_hidden_and_the_jaw_marches_to_the_outline(labelled):
    """Turned to the image's right, the image-right jaw (points 9-16) goes behind the
    cheek: flagged hidden and placed on the outline; the near jaw (0-7) stays visible."""
    img, pts, box = labelled[0]
    r = turn_face(img, pts, box, 45.0)
    assert r.hidden[9:17].sum() >= 3 and not r.hidden[0:8].any()
    # on the outline the far jaw keeps its order, chin to temple, upwards
    assert (np.diff(r.points[8:17, 1]) < 0).all()
    mirrored = turn_face(img, pts, box, -45.0)
    assert mirrored.hidden[0:8].sum() >= 3 and not mirrored.hidden[9:17].any()


def test_turns_are_drawn_from_the_seed():
    cfg = Rotate3DConfig((-60.0, 60.0), (-10.0, 20.0))
    draws = [draw_turn(s, cfg) for s in range(200)]
    assert draws[7] == draw_turn(7, cfg)
    yaws, pitches = np.array(draws).T
    assert yaws.min() >= -60 and yaws.max() <= 60 and yaws.std() > 25
    assert pitches.min() >= -10 and pitches.max() <= 20
    # the pitch range does not move the yaw draws
    assert draw_turn(7, Rotate3DConfig((-60.0, 60.0)))[0] == draws[7][0]


@pytest.mark.parametrize("yaw,pitch,message", [
    ("a:b", None, r"--rotate-3d must be MIN:MAX degrees \(e.g. --rotate-3d=-60:60\), got 'a:b'"),
    ("-80:60", None, r"--rotate-3d must be MIN:MAX degrees with -75 <= MIN <= MAX <= 75, got -80:60"),
    ("30:10", None, r"got 30:10"),
    ("-60:60", "nan:1", r"--rotate-3d-pitch must be MIN:MAX degrees with -40"),
])
def test_bad_turn_ranges_are_one_line(yaw, pitch, message):
    with pytest.raises(SynthfaceError, match=message):
        parse_turns(yaw, pitch)


def _labels(folder):
    return pd.read_csv(folder / "labels.csv")


def test_make_dataset_turns_faces_and_their_labels(tmp_path):
    """A --rotate-3d dataset: turns per face in range and from its seed, the hidden
    points in COCO's visibility, the measured yaw following the turn (the augmentation's
    flip included); a resumed run is the same dataset as one run through."""
    out = tmp_path / "turned"
    r = run_cli("make-dataset", "-n", "24", "--landmarks", "--rotate-3d=-50:50", "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "turned in 3D: yaw -50 to 50 degrees" in r.stdout
    first = r.stdout.splitlines()[0]
    # the wall time from start to published labels, and where it went (the export timed apart)
    wall = float(re.search(r"24 faces in .*, (\d+\.\d) s from start to published labels", first).group(1))
    parts = re.search(r"sampled in (\d+\.\d) s .*; then labels (\d+\.\d) s", r.stdout)
    assert wall >= float(parts.group(1)) + float(parts.group(2)) - 0.2
    df = _labels(out)
    assert len(df) == 24 and {"turn_yaw", "turn_pitch", "hidden"} <= set(df.columns)
    assert df["turn_yaw"].between(-50, 50).all() and (df["turn_pitch"] == 0).all()
    assert df["turn_yaw"].std() > 15 and df["hidden"].sum() > 0
    points = df[[f"{a}{i}" for i in range(68) for a in "xy"]].to_numpy().reshape(-1, 68, 2)
    fitted = np.array([fitted_pose(p)[0] for p in points])
    assert np.corrcoef(fitted, df["turn_yaw"])[0, 1] > 0.8
    coco = json.loads((out / "coco.json").read_text())
    for ann, hidden in zip(coco["annotations"], df["hidden"]):
        v = np.array(ann["keypoints"][2::3])
        assert (v == 1).sum() <= hidden  # hidden points inside the image are visibility 1
    assert sum((np.array(a["keypoints"][2::3]) == 1).sum() for a in coco["annotations"]) > 0
    card = json.loads((out / "dataset.json").read_text())
    assert card["rotate_3d"] == {"yaw": [-50.0, 50.0], "pitch": [0.0, 0.0]}
    grid = cv2.imread(str(out / "turns.jpg"))  # the first face turned in 7 steps, for the card
    assert grid.shape[1] >= 7 * 64 * 3 and "`turns.jpg`" in (out / "README.md").read_text()

    part = tmp_path / "resumed"
    assert run_cli("make-dataset", "-n", "10", "--landmarks", "--rotate-3d=-50:50", "--out", part,
                   "--no-progress").returncode == 0
    r = run_cli("make-dataset", "-n", "24", "--landmarks", "--rotate-3d=-50:50", "--out", part, "--resume",
                "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (part / "labels.csv").read_bytes() == (out / "labels.csv").read_bytes()
    assert (part / "images/00000/00000023.png").read_bytes() == (out / "images/00000/00000023.png").read_bytes()
    other = run_cli("make-dataset", "-n", "24", "--landmarks", "--rotate-3d=-30:30", "--out", part, "--resume")
    assert other.returncode == 1 and "rotate_3d differ" in other.stderr


def test_rotate_3d_needs_landmarks_and_sample_draws_the_turns(tmp_path):
    r = run_cli("make-dataset", "-n", "5", "--rotate-3d=-60:60", "--out", tmp_path / "x")
    assert r.returncode == 1
    assert r.stderr.strip() == ("synthface: error: --rotate-3d needs --landmarks (the turn is fitted to the "
                                "face's 68 points)")
    assert not (tmp_path / "x").exists()
    grid = tmp_path / "turns.png"
    r = run_cli("sample", "-n", "2", "--rotate-3d=-60:60", "--steps", "3", "-o", grid)
    assert r.returncode == 0, r.stderr
    img = cv2.imread(str(grid))
    assert img.shape[0] >= 2 * 64 * 3 and img.shape[1] >= 3 * 64 * 3
    r = run_cli("sample", "-n", "2", "--rotate-3d=-60:60", "-o", grid)
    assert r.returncode == 1 and "--rotate-3d in sample needs --steps" in r.stderr


def test_scenes_carry_the_hidden_points(tmp_path):
    out = tmp_path / "scenes"
    r = run_cli("make-dataset", "--scenes", "-n", "12", "--rotate-3d=-60:60", "--out", out, "--no-progress",
                "--image-size", "320", "--face-size", "48:120", "--format", "coco")
    assert r.returncode == 0, r.stderr
    df = _labels(out)
    assert {"turn_yaw", "hidden", "occluded"} <= set(df.columns) and df["hidden"].sum() > 0
    coco = json.loads((out / "coco.json").read_text())
    assert sum((np.array(a["keypoints"][2::3]) == 1).sum() for a in coco["annotations"]) >= 1


def test_landmarks_are_turned_by_default_and_no_rotate_3d_keeps_the_faces_as_drawn(tmp_path):
    """--landmarks turns faces by -30:30 unless --no-rotate-3d (scenes and box-only
    datasets stay unturned); a folder made without the turn says how to resume it."""
    from synthface.face.annotate import AnnotateConfig
    from synthface.dataset.make import MakeConfig

    assert MakeConfig(n=1, annotate=AnnotateConfig(landmarks=True)).rotate3d == Rotate3DConfig((-30.0, 30.0))
    assert MakeConfig(n=1, annotate=AnnotateConfig(landmarks=False)).rotate3d is None
    assert parse_turns(None, "-10:10") == Rotate3DConfig((-30.0, 30.0), (-10.0, 10.0))  # a pitch keeps the yaw
    turned, plain = tmp_path / "turned", tmp_path / "plain"
    r = run_cli("make-dataset", "-n", "8", "--landmarks", "--format", "csv", "--out", turned, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "turned in 3D: yaw -30 to 30 degrees" in r.stdout and "--no-rotate-3d turns it off" in r.stdout
    df = _labels(turned)
    assert df["turn_yaw"].between(-30, 30).all() and df["turn_yaw"].abs().max() > 5
    assert json.loads((turned / "dataset.json").read_text())["rotate_3d"] == {"yaw": [-30.0, 30.0],
                                                                              "pitch": [0.0, 0.0]}
    labels = (turned / "labels.csv").read_bytes()
    (turned / "turns.jpg").unlink()
    (turned / "turns.jpg").mkdir()  # a folder where the card's picture goes: named before any work
    (turned / "turns.jpg" / "x").write_text("")
    r = run_cli("make-dataset", "-n", "8", "--landmarks", "--format", "csv", "--out", turned, "--resume",
                "--no-progress")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"synthface: error: {turned / 'turns.jpg'} is a folder where synthface writes")
    assert (turned / "labels.csv").read_bytes() == labels
    r = run_cli("make-dataset", "-n", "4", "--landmarks", "--no-rotate-3d", "--format", "csv", "--out", plain,
                "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "turned in 3D" not in r.stdout and "turn_yaw" not in _labels(plain).columns
    assert json.loads((plain / "dataset.json").read_text())["rotate_3d"] is None
    r = run_cli("make-dataset", "-n", "6", "--landmarks", "--format", "csv", "--out", plain, "--resume")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "rotate_3d differ (it was made without a 3D turn: add --no-rotate-3d)" in r.stderr
    assert len(_labels(plain)) == 4  # nothing lost
    r = run_cli("make-dataset", "-n", "4", "--landmarks", "--rotate-3d=-10:10", "--no-rotate-3d", "--out",
                tmp_path / "both")
    assert r.returncode == 1
    assert r.stderr.strip() == "synthface: error: give --rotate-3d (or --rotate-3d-pitch) or --no-rotate-3d, not both"
    assert not (tmp_path / "both").exists()
