"""Face box conventions (`make-dataset --box`): the geometry on known points, and the
labels of face and scene datasets through the CLI."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import FACES, FACES_300W, run_cli
from synthface.face.geometry import clipped_box, convention_box
from synthface.face.scheme68 import POINT_COLS


def fixture_points() -> list:
    from synthface.formats.readers import read_pts

    return [read_pts(p) for p in sorted(FACES_300W.glob("*.pts"))]


def frontal_mean_face() -> np.ndarray:
    """synthface.face.pose's mean face seen from the front (its y grows downwards), in pixels."""
    from synthface.face.pose import MEAN_FACE_68

    return MEAN_FACE_68[:, :2] * 1.5 + 200


def test_points_box_is_the_square_around_the_points():
    for pts in fixture_points() + [frontal_mean_face()]:
        x, y, w, h = convention_box(pts, None, "points")
        assert all(isinstance(v, int) for v in (x, y, w, h))
        # the pixels x .. x + w - 1 hold every point's pixel, and the wider way just so
        assert x <= round(pts[:, 0].min()) and round(pts[:, 0].max()) <= x + w - 1
        assert y <= round(pts[:, 1].min()) and round(pts[:, 1].max()) <= y + h - 1
        assert w == h == max(round(pts[:, i].max()) - round(pts[:, i].min()) + 1 for i in (0, 1))
        centre = (pts.min(0) + pts.max(0)) / 2
        assert np.allclose([x + (w - 1) / 2, y + (h - 1) / 2], centre, atol=0.75)


def test_head_box_reaches_a_facial_third_above_the_brows_and_ends_at_the_chin():
    for k, pts in enumerate(fixture_points() + [frontal_mean_face()]):
        x, y, w, h = convention_box(pts, None, "head")
        brows = pts[17:27, 1].min()  # the brows' top
        third = pts[33, 1] - pts[17:27, 1].mean()  # brows -> nose base
        assert third > 20
        # the thirds of real faces differ (an open mouth lengthens the lowest): the mean
        # face's within 10%, the photos' within 30%
        assert abs((brows - y) - third) < (0.1 if k == 6 else 0.3) * third, (brows - y, third)
        assert y + h - 1 == round(pts[:, 1].max())  # the chin (one of points 7-9) is the lowest point
        assert pts[:, 1].argmax() in (7, 8, 9)
        # ear to ear: the points' own width, and (a face leaning a little) the forehead's
        x0, x1 = round(pts[:, 0].min()), round(pts[:, 0].max())
        assert x <= x0 and x1 <= x + w - 1 and w <= 1.15 * (x1 - x0 + 1)
        if k == 6:  # upright
            assert (x, x + w - 1) == (x0, x1)
        assert 1.2 < h / w < 1.7  # taller than wide, as WIDER FACE's boxes


def rolled(pts, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c = pts.mean(0)
    return (pts - c) @ rot.T + c


def test_a_rolled_face_head_box_holds_its_forehead():
    """The forehead is found along the face's own up axis: a face rolled by 40 degrees
    keeps its forehead (the upright face's, turned with it) inside its box, where a
    forehead put straight up in the image would leave it out."""
    for pts in [frontal_mean_face()] + fixture_points():
        brows = pts[17:27]
        forehead = brows + 0.5 * (brows.mean(0) - pts[8])  # a facial third above the brows, on the face's axis
        for degrees in (-40, 40):
            turned = rolled(np.vstack([pts, forehead]), degrees)
            face, top = turned[:68], turned[68:]
            x, y, w, h = convention_box(face, None, "head")
            assert (top[:, 0] >= x - 1).all() and (top[:, 0] <= x + w).all(), degrees
            assert (top[:, 1] >= y - 1).all() and (top[:, 1] <= y + h).all(), degrees
            # a forehead put straight up in the image would not reach as far across
            naive = np.vstack([face, face[17:27] + [0.0, 0.5 * (face[17:27].mean(0) - face[8])[1]]])
            nx0, nx1 = np.round(naive[:, 0].min()), np.round(naive[:, 0].max())
            assert top[:, 0].min() < nx0 - 2 or top[:, 0].max() > nx1 + 2


def test_dlib_convention_is_dlibs_box_and_unknown_ones_are_refused():
    pts = fixture_points()[0]
    assert convention_box(pts, (3, 4, 50, 50), "dlib") == (3, 4, 50, 50)
    assert convention_box(None, (3, 4, 50, 50), "dlib") == (3, 4, 50, 50)
    with pytest.raises(ValueError):
        convention_box(pts, (3, 4, 50, 50), "wider")


# -- through the CLI ---------------------------------------------------------------------
def make(out, *args):
    r = run_cli("make-dataset", "--out", out, "--replay-faces", FACES, "--workers", 0, "--no-progress", *args)
    assert r.returncode == 0, r.stderr
    return out


def boxes_and_points(folder):
    labels = pd.read_csv(folder / "labels.csv")
    return labels, labels[["x", "y", "w", "h"]].to_numpy(), labels[POINT_COLS].to_numpy().reshape(-1, 68, 2)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """The same 8 faces labelled with dlib's boxes (the default) and with head boxes."""
    root = tmp_path_factory.mktemp("boxes")
    return make(root / "dlib", "-n", 8, "--landmarks"), make(root / "head", "-n", 8, "--landmarks", "--box", "head")


def test_head_boxes_in_every_format(faces):
    from synthface.formats.readers import read_coco, read_imglab

    plain, head = faces
    labels, boxes, points = boxes_and_points(head)
    want = np.array([convention_box(p, None, "head") for p in points])
    assert (boxes == want).all()
    assert (want[:, 1] < points[:, 17:27, 1].min(1) - 5).all()  # above the brows, unlike dlib's
    by_file = dict(zip(labels.file, map(tuple, want)))
    coco = read_coco(head / "coco.json")
    assert {im.path.name: tuple(im.faces[0].box) for im in coco} == {
        f.split("/")[-1]: tuple(clipped_box(b, 64, 64)) for f, b in by_file.items()}
    xml = read_imglab(head / "dlib.xml")
    assert {im.path.name: tuple(im.faces[0].box) for im in xml} == {f.split("/")[-1]: b for f, b in by_file.items()}
    rows = [json.loads(line) for line in (head / "metadata.jsonl").read_text().splitlines()]
    assert [tuple(r["box"]) for r in rows] == [tuple(b) for b in want]
    # the card says which convention
    card = json.loads((head / "dataset.json").read_text())
    assert card["conventions"]["box_convention"] == "head"
    assert "`--box head`): forehead to chin" in (head / "README.md").read_text()
    # a label setting: the same images and journal as the default run
    assert (head / ".synthface" / "journal.csv").read_bytes() == (plain / ".synthface" / "journal.csv").read_bytes()
    for f in labels.file:
        assert (head / f).read_bytes() == (plain / f).read_bytes()


def test_the_default_box_is_dlibs_as_journaled(faces):
    from synthface.dataset.journal import iter_records

    plain, head = faces
    labels, boxes, points = boxes_and_points(plain)
    journal = [r.box for r in iter_records(plain / ".synthface" / "journal.csv") if r.kept]
    assert [tuple(b) for b in boxes] == journal
    assert json.loads((plain / "dataset.json").read_text())["conventions"]["box_convention"] == "dlib"
    # the same points in both runs, only the boxes differ
    assert np.array_equal(points, boxes_and_points(head)[2])
    assert not np.array_equal(boxes, boxes_and_points(head)[1])


def test_resume_with_another_box_relabels_in_it(faces, tmp_path):
    plain, head = faces
    again = tmp_path / "again"
    shutil.copytree(head, again)
    journal = (again / ".synthface" / "journal.csv").read_bytes()
    make(again, "-n", 8, "--landmarks", "--box", "points", "--resume")
    _, boxes, points = boxes_and_points(again)
    assert (boxes == [convention_box(p, None, "points") for p in points]).all()
    assert (boxes[:, 2] == boxes[:, 3]).all()
    assert (again / ".synthface" / "journal.csv").read_bytes() == journal
    assert json.loads((again / ".synthface" / "options.json").read_text())["box"] == "points"
    assert json.loads((again / "dataset.json").read_text())["conventions"]["box_convention"] == "points"


def test_landmark_training_refuses_boxes_it_will_not_be_given(faces, tmp_path):
    plain, head = faces
    r = run_cli("landmarks", "train", "--dataset", head, "-o", tmp_path / "m.dat", "--no-progress")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "labels faces with --box head; landmark models are trained on dlib's boxes" in r.stderr
    assert "--resume --box dlib" in r.stderr and not (tmp_path / "m.dat").exists()


@pytest.mark.parametrize("box", ["points", "head"])
def test_a_box_from_the_points_needs_landmarks(tmp_path, box):
    out = tmp_path / "d"
    r = run_cli("make-dataset", "-n", 4, "--box", box, "--out", out, "--replay-faces", FACES, "--workers", 0,
                "--no-progress")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthface: error: ")
    assert f"--box {box} needs --landmarks" in lines[0]
    assert not out.exists()


def test_scene_boxes_in_the_convention(tmp_path):
    from synthface.formats.readers import read_imglab

    scene_args = ("--scenes", "-n", 12, "--image-size", 192, "--face-size", "40:80", "--faces-per-image", "3:5")
    plain = make(tmp_path / "plain", *scene_args)
    head = make(tmp_path / "head", *scene_args, "--box", "head")
    labels, boxes, points = boxes_and_points(head)
    assert len(labels) > 5
    want = np.array([convention_box(p, None, "head") for p in points])
    assert (boxes == want).all()
    past = (want[:, 0] < 0) | (want[:, 1] < 0) | (want[:, :2] + want[:, 2:] > 192).any(1)
    assert (labels.truncated.to_numpy() == past).all()
    ignored = [f.ignore for im in read_imglab(head / "dlib.xml") for f in im.faces]
    assert ignored == list(past)
    assert json.loads((head / "dataset.json").read_text())["conventions"]["box_convention"] == "head"
    # the same scenes and points; dlib's boxes in the default run
    plain_labels, plain_boxes, plain_points = boxes_and_points(plain)
    assert np.array_equal(points, plain_points)
    for f in sorted(set(labels.file)):
        assert (head / f).read_bytes() == (plain / f).read_bytes()
    assert not np.array_equal(boxes, plain_boxes)
    assert json.loads((plain / "dataset.json").read_text())["conventions"]["box_convention"] == "dlib"


def test_merge_keeps_the_shards_box_and_refuses_a_mix(tmp_path):
    common = ("-n", 8, "--landmarks", "--num-shards", 2)
    a = make(tmp_path / "a", *common, "--shard-index", 0, "--box", "points")
    b = make(tmp_path / "b", *common, "--shard-index", 1, "--box", "head")
    out = tmp_path / "merged"
    r = run_cli("merge", a, b, "-o", out, "--no-progress")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthface: error: ") and "different --box" in lines[0]
    assert not out.exists() or not any(out.iterdir())
    make(b, *common, "--shard-index", 1, "--box", "points", "--resume")
    r = run_cli("merge", a, b, "-o", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    _, boxes, points = boxes_and_points(out)
    assert len(boxes) == 8
    assert (boxes == [convention_box(p, None, "points") for p in points]).all()
    assert json.loads((out / "dataset.json").read_text())["conventions"]["box_convention"] == "points"


def test_detector_training_reshapes_a_box_about_its_centre():
    """`detector train` gives each box the dataset's aspect ratio (dlib's trainer needs
    one): the convention's centre and area stay, only the shape changes."""
    from synthface.face.geometry import reshape, square

    for pts in fixture_points():
        for convention in ("points", "head"):
            x, y, w, h = convention_box(pts, None, convention)
            for aspect in (1.0, 1.35, 0.8):
                rx, ry, rw, rh = reshape((x, y, w, h), aspect)
                assert np.allclose([rx + rw / 2, ry + rh / 2], [x + w / 2, y + h / 2])
                assert np.isclose(rw * rh, w * h) and np.isclose(rh / rw, aspect)
            if convention == "head":  # taller than wide: its square is another box
                assert not np.allclose(reshape((x, y, w, h), 1.0), square((x, y, w, h)))
    assert reshape((10, 20, 40, 40), 1.0) == square((10, 20, 40, 40)) == (10, 20, 40, 40)
    assert np.allclose(reshape((0, 0, 40, 90), 2.25), (0, 0, 40, 90))
    assert np.allclose(reshape((0, 0, 40, 90), 1.0), (-10, 15, 60, 60))


def test_a_detector_trained_on_head_boxes_draws_head_boxes(tmp_path):
    """`detector train` learns its dataset's box convention: on head boxes (taller than
    wide) its window and the boxes it finds on its own training scenes are as tall as
    the dataset's median h / w (the summary's aspect), and they sit on the head boxes;
    the same scenes with dlib's (square) boxes train a square window."""
    import dlib

    from synthface.face.geometry import iou
    from synthface.core.imaging import read_rgb

    scene_args = ("--scenes", "-n", 30, "--image-size", 224, "--face-size", "50:80", "--faces-per-image", "1:2")
    windows = {}
    for box in ("head", "dlib"):
        data = make(tmp_path / box, *scene_args, "--box", box)
        model = tmp_path / f"{box}.svm"
        r = run_cli("detector", "train", "--dataset", data, "-o", model, "--window", 48, "--threads", 1,
                    "--no-progress")
        assert r.returncode == 0, r.stderr
        summary = json.loads(model.with_suffix(".json").read_text())
        labels = pd.read_csv(data / "labels.csv")
        taught = labels[~labels.truncated.astype(bool)]  # a scene's truncated faces are ignored
        assert summary["aspect"] == round(float((taught.h / taught.w).median()), 2)
        assert summary["faces"] >= 10
        det = dlib.fhog_object_detector(str(model))
        windows[box] = det.detection_window_height / det.detection_window_width
        assert abs(windows[box] - summary["aspect"]) < 0.1, (windows[box], summary["aspect"])
    assert json.loads((tmp_path / "dlib.json").read_text())["aspect"] == 1.0
    aspect = json.loads((tmp_path / "head.json").read_text())["aspect"]
    assert aspect > 1.1 and windows["head"] > 1.1
    # its boxes on its own training scenes: taller than wide, on the head boxes
    det = dlib.fhog_object_detector(str(tmp_path / "head.svm"))
    labels = pd.read_csv(tmp_path / "head" / "labels.csv")
    found = []
    for f, rows in labels.groupby("file"):
        truth = rows[["x", "y", "w", "h"]].to_numpy()
        for rect in det(read_rgb(tmp_path / "head" / f)):
            box = (rect.left(), rect.top(), rect.width(), rect.height())
            found.append((box[3] / box[2], max(iou(box, t) for t in truth)))
    assert len(found) >= 5, found
    assert all(abs(ratio - aspect) < 0.15 for ratio, _ in found), found
    assert np.mean([o for _, o in found]) > 0.6 and np.mean([o >= 0.5 for _, o in found]) >= 0.8, found
