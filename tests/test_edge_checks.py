"""Every reader and option of the trainers, `detector mine` and the generator commands is
checked at the edge: a bad value is one line `synthface: error: ...`, exit 1, before any
work, with nothing written; a full disk while a trainer publishes its model leaves no
temporary and names the real output."""

import csv
import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import FACES, FACES_300W, run_cli
from conftest import one_line_error as _one_line
from synthface.face.annotate import AnnotateConfig
from synthface.errors import SynthfaceError
from synthface.dataset.make import MakeConfig, make_dataset
from synthface.generator.sampling import ReplaySampler

# the smallest landmark model dlib trains: every count at its lowest
TINY_LANDMARKS = ["--cascade-depth", "1", "--tree-depth", "1", "--num-trees-per-cascade-level", "1",
                  "--oversampling-amount", "1", "--feature-pool-size", "2", "--num-test-splits", "1"]


def _tree(folder):
    """Every file under `folder` with its bytes: what "nothing changed" is checked against."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("edge") / "d"
    make_dataset(out, MakeConfig(n=12, workers=0, batch_size=8, pad=0.25, annotate=AnnotateConfig()),
                 ReplaySampler(FACES, 64), progress=False)
    return out


def _edit_labels(folder, row, column, value):
    """labels.csv with one value replaced (row 0 is the file's line 2)."""
    path = folder / "labels.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    rows[row][column] = value
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, rows[0].keys())
        w.writeheader()
        w.writerows(rows)


# -- readers -----------------------------------------------------------------------------
@pytest.mark.parametrize("column, value, message", [
    ("x0", "1e300", "labels.csv, line 4: a landmark beyond +-1,000,000 px (x0 is 1e+300)"),
    ("y5", "inf", "labels.csv, line 4: a landmark that is not a number (y5 is inf)"),
    ("x", "-1e300", "labels.csv, line 4: a box value beyond +-1,000,000 px (x is -1e+300)"),
    ("w", "-20", "labels.csv, line 4: a box of width -20 and height"),  # trained on before
    ("h", "0", "labels.csv, line 4: a box of width"),
])
@pytest.mark.parametrize("command", ["landmarks", "detector"])
def test_a_bad_labels_value_is_one_line_naming_the_line(dataset, tmp_path, command, column, value, message):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    _edit_labels(d, 2, column, value)
    before = _tree(tmp_path)
    r = run_cli(command, "train", "--dataset", d, "-o", tmp_path / "m.model", "--no-progress")
    _one_line(r, message)
    assert str(d / "labels.csv") in r.stderr
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("value, message", [
    (float("nan"), "annotation 2: its point 1 is"),
    ("abc", "annotation 2: its keypoints are not all numbers"),
    (1e300, "annotation 2: its point 1 is"),
])
def test_bad_coco_keypoints_are_one_line_naming_the_annotation(dataset, tmp_path, value, message):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    coco = json.loads((d / "coco.json").read_text())
    assert coco["annotations"][1]["id"] == 2
    coco["annotations"][1]["keypoints"][4] = value  # point 1's y
    (d / "coco.json").write_text(json.dumps(coco))  # NaN as JSON's NaN, as Python writes it
    before = _tree(tmp_path)
    for command in ("landmarks", "detector"):
        r = run_cli(command, "train", "--dataset", d / "coco.json", "-o", tmp_path / "m.model", "--no-progress")
        _one_line(r, message)
        assert str(d / "coco.json") in r.stderr
    assert _tree(tmp_path) == before


def test_coco_and_imglab_boxes_are_checked(dataset, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    coco = json.loads((d / "coco.json").read_text())
    coco["annotations"][0]["bbox"][2] = 0
    (d / "coco.json").write_text(json.dumps(coco))
    xml = (d / "dlib.xml").read_text()
    first = xml.index("<box top=")
    box = xml[first:xml.index(">", first)]
    width = box[box.index("width='"):].split("'")[1]
    (d / "dlib.xml").write_text(xml.replace(box, box.replace(f"width='{width}'", "width='-20'"), 1))
    before = _tree(tmp_path)
    _one_line(run_cli("detector", "train", "--dataset", d / "coco.json", "-o", tmp_path / "m.svm"),
              "coco.json: annotation 1: its bbox has width 0 and height")
    # dlib's reader turns a negative width into an empty box: refused, not trained on
    _one_line(run_cli("landmarks", "train", "--dataset", d / "dlib.xml", "-o", tmp_path / "m.dat"),
              "dlib.xml: image images/00000/00000000.png, box 1: its box has width 0")
    assert _tree(tmp_path) == before


def test_a_pts_point_out_of_range_is_one_line(tmp_path):
    d = tmp_path / "w"
    shutil.copytree(FACES_300W, d)
    pts = sorted(d.rglob("*.pts"))[0]
    lines = pts.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip() == "{") + 1
    lines[first] = "1e300 5"
    pts.write_text("\n".join(lines) + "\n")
    before = _tree(tmp_path)
    _one_line(run_cli("landmarks", "train", "--dataset", d, "-o", tmp_path / "m.dat"),
              f"{pts}: its point 0 is (1e+300, 4), not a pixel position")
    assert _tree(tmp_path) == before


# -- landmarks train options -------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--tree-depth", "30"], "--tree-depth must be from 1 to 16, got 30"),  # dlib: bad_alloc
    (["--tree-depth", "12"], "makes a model of about 11 GiB"),  # with 10 levels of 500 trees
    (["--feature-pool-size", "1"], "--feature-pool-size must be from 2 to 100000, got 1"),
    (["--num-test-splits", "0"], "--num-test-splits must be from 1"),
    (["--lambda-param", "inf"], "--lambda-param must be a number above 0, got inf"),
    (["--lambda-param", "nan"], "--lambda-param must be a number above 0, got nan"),
    (["--nu", "0"], "--nu must be in (0, 1], got 0.0"),
    (["--random-seed", "\udcff"], "UTF-8"),  # the byte 0xff from argv: not text
])
def test_landmark_options_are_checked_before_any_work(dataset, tmp_path, args, message):
    r = run_cli("landmarks", "train", "--dataset", dataset, "-o", tmp_path / "m.dat", *args)
    _one_line(r, message)
    assert list(tmp_path.iterdir()) == []


def test_every_count_is_checked_at_dlibs_bounds():
    """Each count's lowest is dlib's (one below it dlib refuses), and a non-UTF-8 seed is
    refused by the options themselves, whoever builds them."""
    from synthface.trainers.landmarks import COUNT_RANGES, TrainOptions

    for name, (lo, hi) in COUNT_RANGES.items():
        for bad in (lo - 1, hi + 1, 2.5, True):
            if name == "oversampling_amount" and bad == 0:
                continue  # 0: automatic
            with pytest.raises(SynthfaceError, match=f"--{name.replace('_', '-')} must be from"):
                TrainOptions(**{name: bad}).validate()
    with pytest.raises(SynthfaceError, match="--random-seed must be text"):
        TrainOptions(random_seed="seed\udcff").validate()
    TrainOptions(random_seed="any text, ünïcode too").validate()


def test_the_lowest_options_train(dataset, tmp_path):
    """The lower bounds are dlib's own: a model trains at every one of them."""
    r = run_cli("landmarks", "train", "--dataset", dataset, "-o", tmp_path / "m.dat", *TINY_LANDMARKS,
                "--num-threads", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m.dat").stat().st_size > 0
    assert json.loads((tmp_path / "m.json").read_text())["options"]["feature_pool_size"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.dat", "m.json"]


# -- a full disk while a trainer publishes -------------------------------------------------
def _full_disk(monkeypatch):
    """shutil.move as on a full disk: part of the file written, then ENOSPC."""
    def move(src, dst):
        with open(dst, "wb") as f:
            f.write(b"part of a model")
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))
    monkeypatch.setattr(shutil, "move", move)


def _train(kind, dataset, output):
    if kind == "landmarks":
        from synthface.trainers.landmarks import TrainOptions, train_landmarks

        return train_landmarks(dataset, output, TrainOptions(cascade_depth=1, tree_depth=1,
                                                             num_trees_per_cascade_level=1, oversampling_amount=1,
                                                             num_threads=1), progress=False)
    from synthface.trainers.detector import DetectorOptions, train_detector

    return train_detector(dataset, output, DetectorOptions(window=32, num_threads=1), progress=False)


@pytest.mark.parametrize("kind, name", [("landmarks", "m.dat"), ("detector", "m.svm")])
def test_a_full_disk_leaves_no_temporary_and_names_the_output(dataset, tmp_path, monkeypatch, kind, name):
    out = tmp_path / "models"
    out.mkdir()
    (out / name).write_bytes(b"an older model")
    _full_disk(monkeypatch)
    with pytest.raises(SynthfaceError) as e:
        _train(kind, dataset, out / name)
    assert str(e.value) == f"-o {out / name}: cannot be written (No space left on device); nothing was written there"
    assert _tree(out) == {Path(name): b"an older model"}  # as it was: no m.*.tmp, no summary


def test_a_full_disk_at_the_summary_names_it(dataset, tmp_path, monkeypatch):
    import synthface.core.files

    def write_atomic(path, data, durable=False):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(synthface.core.files, "write_atomic", write_atomic)
    with pytest.raises(SynthfaceError, match=r"m\.svm was written but not its summary .*m\.json \(No space left"):
        _train("detector", dataset, tmp_path / "m.svm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.svm"]


# -- detector mine -------------------------------------------------------------------------
def _background(path, side, truncate=False):
    import cv2

    img = np.random.default_rng(side).integers(0, 255, (side, side, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(path.suffix, img)
    data = buf.tobytes()
    path.write_bytes(data[:len(data) // 2] if truncate else data)


@pytest.mark.parametrize("setup, args, message", [
    (None, ["--seed", "-1"], "--seed must be from 0 to 2**63 - 1, got -1"),
    (None, ["--seed", str(2**63)], f"--seed must be from 0 to 2**63 - 1, got {2**63}"),
    (lambda bg: _background(bg / "tiny.png", 1), ["--backgrounds", "{bg}"], "tiny.png is 1x1 px"),
    (lambda bg: _background(bg / "cut.jpg", 200, truncate=True), ["--backgrounds", "{bg}"],
     "cut.jpg is not a readable image (or is cut off)"),
    (lambda bg: (bg / "text.jpg").write_text("not an image"), ["--backgrounds", "{bg}"],
     "text.jpg is not a readable image"),
])
def test_mine_checks_its_options_and_every_background_first(tmp_path, setup, args, message):
    bg = tmp_path / "bg"
    bg.mkdir()
    for i in range(3):  # good ones, sorted first: a bad one is found before any is drawn, not when drawn
        _background(bg / f"a{i}.png", 64)
    if setup:
        setup(bg)
    before = _tree(tmp_path)
    r = run_cli("detector", "mine", "--model", "dlib", "-n", "3", "--image-size", "64", "--out", tmp_path / "neg",
                *[a.format(bg=bg) for a in args])
    _one_line(r, message)
    assert _tree(tmp_path) == before and not (tmp_path / "neg").exists()


def test_mine_makes_no_folder_for_no_negatives(tmp_path):
    r = run_cli("detector", "mine", "--model", "dlib", "-n", "2", "--image-size", "64", "--out",
                tmp_path / "a" / "neg", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "fired on 0 of 2 face-free scenes" in r.stdout
    assert list(tmp_path.iterdir()) == []


# -- --checkpoint "", --format "" ---------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["make-dataset", "-n", "4", "--out", "{tmp}/o", "--checkpoint", ""],
    ["make-dataset", "-n", "4", "--out", "{tmp}/o", "--checkpoint", "", "--replay-faces", str(FACES)],
    ["sample", "-o", "{tmp}/o/s.png", "--checkpoint", ""],
    ["evaluate", "--checkpoint", "", "--real", str(FACES), "-n", "4", "-o", "{tmp}/o/r.json"],
    ["directions", "--checkpoint", "", "-o", "{tmp}/o/d.safetensors"],
])
def test_an_empty_checkpoint_is_one_line(tmp_path, args):
    r = run_cli(*[a.format(tmp=tmp_path) for a in args])
    _one_line(r, "--checkpoint '' is empty: give a generator's weights file (.safetensors) or a bundled generator")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["", " , "])
@pytest.mark.parametrize("scenes", [[], ["--scenes"]])
def test_an_empty_format_is_one_line(tmp_path, fmt, scenes):
    r = run_cli("make-dataset", *scenes, "-n", "4", "--out", tmp_path / "o", "--replay-faces", FACES, "--format", fmt,
                "--workers", "0")
    _one_line(r, f"--format {fmt!r} names no format: give all, or some of csv,")
    assert list(tmp_path.iterdir()) == []


# -- detector train --negatives ------------------------------------------------------------
@pytest.mark.parametrize("negatives, sign", [
    (lambda d: d, "it holds labels.csv"),
    (lambda d: d / "images", "it is inside the dataset"),
    (lambda d: d / "images" / "00000", "it is inside the dataset"),
    (lambda d: FACES_300W, "it holds face points"),
])
def test_negatives_that_are_faces_are_refused(dataset, tmp_path, negatives, sign):
    folder = negatives(dataset)
    r = run_cli("detector", "train", "--dataset", dataset, "--negatives", folder, "-o", tmp_path / "m.svm",
                "--window", "32")
    _one_line(r, f"--negatives {folder} is a face set ({sign}")
    assert list(tmp_path.iterdir()) == []


def test_face_free_images_are_negatives(tmp_path):
    from synthface.trainers.detector import face_set_sign

    for i in range(2):
        _background(tmp_path / f"neg_0_{i:07d}.jpg", 64)
    assert face_set_sign(tmp_path) is None
    (tmp_path / "x.pts").write_text("")
    assert face_set_sign(tmp_path) == "it holds face points (x.pts)"
