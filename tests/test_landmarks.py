import json
import shutil

import numpy as np
import pytest

from conftest import FACES_300W
from synthface.errors import SynthfaceError
from synthface.trainers.landmarks import (TrainOptions, evaluate_landmarks, load_face_set, load_predictor, nme,
                                 plot_ced, read_pts, summarize_nme, train_landmarks)

SMALL = TrainOptions(cascade_depth=3, num_trees_per_cascade_level=50, oversampling_amount=10, num_threads=1)


def test_perfect_prediction_has_zero_nme():
    truth = read_pts(sorted(FACES_300W.glob("*.pts"))[0])
    assert nme(truth, truth) == 0.0
    iod = np.linalg.norm(truth[36] - truth[45])
    assert nme(truth + [iod * 0.05, 0], truth) == pytest.approx(0.05)  # every point 5% off
    r = summarize_nme(np.array([0.0, 0.0, 0.1]), 4, 1)
    assert (r["nme_median"], r["failure_rate"], r["missed_by_detector"]) == (0.0, pytest.approx(1 / 3), 1)
    assert r["auc_at_8pct"] == pytest.approx(2 / 3, abs=0.01)


def test_pts_are_read_one_based():
    first = sorted(FACES_300W.glob("*.pts"))[0]
    raw = np.array(first.read_text().split("{")[1].split("}")[0].split(), float).reshape(68, 2)
    assert np.array_equal(read_pts(first), raw - 1) and np.array_equal(read_pts(first, 0), raw)


def test_dlib_model_on_fixture_faces_gives_the_known_nme():
    r = evaluate_landmarks("dlib68", FACES_300W, progress=False)
    assert (r["faces"], r["scored"], r["missed_by_detector"]) == (6, 6, 0)
    assert r["nme_mean"] == pytest.approx(0.0299, abs=0.001)  # measured: 2.99%
    truth_boxes = evaluate_landmarks("dlib68", FACES_300W, boxes="truth", progress=False)
    assert truth_boxes["nme_mean"] == pytest.approx(0.0321, abs=0.001)
    # the regions' errors, weighted by their points (17 jaw, 10 brows, 9 nose, 12 eyes, 20
    # mouth), are the NME; the jaw, where dlib follows the silhouette, is the worst
    regions = r["nme_by_region"]
    assert list(regions) == ["jaw", "brows", "nose", "eyes", "mouth"]
    sizes = {"jaw": 17, "brows": 10, "nose": 9, "eyes": 12, "mouth": 20}
    assert sum(regions[k] * n for k, n in sizes.items()) / 68 == pytest.approx(r["nme_mean"], abs=1e-5)
    assert max(regions, key=regions.get) == "jaw"


def test_cli_eval_reports_each_region_in_its_line_and_its_report(tmp_path):
    from conftest import run_cli

    res = run_cli("landmarks", "eval", "--model", "dlib68", "--data", FACES_300W, "-o", tmp_path / "r.json",
                  "--no-progress")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    line = next(x for x in res.stdout.splitlines() if "NME mean" in x)
    assert line.endswith("by region: " + ", ".join(f"{k} {v:.2%}" for k, v in report["nme_by_region"].items()))
    assert line.startswith("6 of 6 faces scored") and "jaw 4.53%" in line  # measured


def test_eval_names_the_faces_it_failed_on_worst_first(tmp_path):
    from conftest import run_cli
    from synthface.face.scheme68 import pts_text

    faces = tmp_path / "faces"
    shutil.copytree(FACES_300W, faces)
    names = sorted(p.name for p in faces.glob("*.jpg"))
    ok = run_cli("landmarks", "eval", "--model", "dlib68", "--data", faces, "-o", tmp_path / "ok.json", "--no-progress")
    assert ok.returncode == 0 and "worst faces" not in ok.stdout  # dlib's model: no face above 8%
    report = json.loads((tmp_path / "ok.json").read_text())
    assert report["images"] == names and len(report["errors"]) == 6
    # two faces' true points moved sideways by 20% and 12% of the eye distance: dlib's points now miss them by about as much
    for name, off in ((names[3], 0.20), (names[1], 0.12)):
        pts = read_pts(faces / name.replace(".jpg", ".pts"))
        pts[:, 0] += off * np.linalg.norm(pts[36] - pts[45])
        (faces / name.replace(".jpg", ".pts")).write_text(pts_text(pts))  # written 1-based, as read
    bad = run_cli("landmarks", "eval", "--model", "dlib68", "--data", faces, "-o", tmp_path / "bad.json", "--no-progress")
    assert bad.returncode == 0, bad.stderr
    line = next(x for x in bad.stdout.splitlines() if x.startswith("worst faces"))
    report = json.loads((tmp_path / "bad.json").read_text())
    err = dict(zip(report["images"], report["errors"]))
    assert err[names[3]] > err[names[1]] > 0.08 and max(e for n, e in err.items() if n not in names[1:4:2]) < 0.08
    assert line.startswith(f"worst faces (NME above 8%, worst first): {names[3]} {err[names[3]]:.2%}, "
                           f"{names[1]} {err[names[1]]:.2%};")


def test_eval_names_a_face_by_its_place_in_data_and_in_its_image(tmp_path):
    from conftest import run_cli
    from synthface.face.scheme68 import pts_text

    first = sorted(FACES_300W.glob("*.jpg"))[0]
    truth = read_pts(first.with_suffix(".pts"))
    moved = truth + [0.3 * np.linalg.norm(truth[36] - truth[45]), 0]
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    (data / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(first, data / "sub" / "group.jpg")  # one image, two labelled faces: the second one off
    (data / "sub" / "group_1.pts").write_text(pts_text(truth))
    (data / "sub" / "group_2.pts").write_text(pts_text(moved))
    shutil.copy(first, elsewhere / "real.jpg")  # a link in --data is named as --data holds it, not by its target
    (data / "link.jpg").symlink_to(elsewhere / "real.jpg")
    (data / "link.pts").write_text(pts_text(moved))
    r = run_cli("landmarks", "eval", "--model", "dlib68", "--data", data, "-o", tmp_path / "r.json", "--no-progress")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert sorted(report["images"]) == ["link.jpg", "sub/group.jpg (face 1)", "sub/group.jpg (face 2)"]
    err = dict(zip(report["images"], report["errors"]))
    assert err["link.jpg"] == err["sub/group.jpg (face 2)"] > 0.2 > 0.08 > err["sub/group.jpg (face 1)"]
    line = next(x for x in r.stdout.splitlines() if x.startswith("worst faces"))
    assert f"worst first): link.jpg {err['link.jpg']:.2%}, sub/group.jpg (face 2) " in line  # a tie: in --data's order


def test_training_on_fixture_faces_makes_a_model_that_loads(tmp_path):
    s = train_landmarks(FACES_300W, tmp_path / "m.dat", SMALL, progress=False)
    assert s["faces"] == 6 and (tmp_path / "m.dat").stat().st_size > 10000 and s["options"]["oversampling_amount"] == 10
    auto = train_landmarks(FACES_300W, tmp_path / "auto.dat", TrainOptions(cascade_depth=2, num_trees_per_cascade_level=5,
                                                                         num_threads=1), progress=False)
    assert auto["options"]["oversampling_amount"] == 35  # 6 faces: the most
    assert json.loads((tmp_path / "m.json").read_text())["options"]["cascade_depth"] == 3
    load_predictor(str(tmp_path / "m.dat"))
    r = evaluate_landmarks(str(tmp_path / "m.dat"), FACES_300W, progress=False)
    assert r["nme_mean"] < 0.02  # it has seen these very faces
    plot_ced({"fixtures": r}, tmp_path / "ced.png")
    assert (tmp_path / "ced.png").stat().st_size > 1000


def test_random_seed_makes_the_same_model_and_another_seed_another(tmp_path):
    """Training is reproducible: the same --random-seed, the same bytes; another seed, another
    model of the same faces (the run-to-run spread bench_mixing measures)."""
    from conftest import run_cli

    tiny = ["--cascade-depth", "2", "--num-trees-per-cascade-level", "5", "--oversampling-amount", "3",
            "--num-threads", "2", "--no-progress"]
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        r = run_cli("landmarks", "train", "--dataset", FACES_300W, "-o", tmp_path / f"{name}.dat", "--random-seed", seed,
                    *tiny)
        assert r.returncode == 0, r.stderr
    a, b, c = ((tmp_path / f"{n}.dat").read_bytes() for n in "abc")
    assert a == b and a != c
    assert json.loads((tmp_path / "c.json").read_text())["options"]["random_seed"] == "8"
    # scored on its own training faces, eval says the number is no test score; on others, not
    r = run_cli("landmarks", "eval", "--model", tmp_path / "c.dat", "--data", FACES_300W, "--no-progress")
    assert r.returncode == 0 and "c.dat was trained on these faces" in r.stderr and "NME mean" in r.stdout
    shutil.copytree(FACES_300W, tmp_path / "other")
    r = run_cli("landmarks", "eval", "--model", tmp_path / "c.dat", "--data", tmp_path / "other", "--no-progress")
    assert r.returncode == 0 and "trained on these faces" not in r.stderr


def test_training_reads_a_synthface_dataset(tmp_path):
    from conftest import FACES
    from synthface.face.annotate import AnnotateConfig
    from synthface.dataset.make import MakeConfig, make_dataset
    from synthface.generator.sampling import ReplaySampler

    make_dataset(tmp_path / "d", MakeConfig(n=10, workers=0, formats=("csv", "xml"),
                                            annotate=AnnotateConfig()), ReplaySampler(FACES, 64), progress=False)
    faces = load_face_set(tmp_path / "d")
    assert len(faces) == 10 and faces[0].points.shape == (68, 2) and faces[0].box is not None
    s = train_landmarks(tmp_path / "d", tmp_path / "syn.dat", SMALL, progress=False)
    # a synthface dataset trains on its train split by default (its val faces are for eval)
    train = load_face_set(tmp_path / "d", split="train")
    assert s["faces"] == len(train) == 9 and s["splits"] == {str(tmp_path / "d"): "train"}
    assert evaluate_landmarks(str(tmp_path / "syn.dat"), tmp_path / "d", boxes="truth", progress=False)["faces"] == 1
    s = train_landmarks(tmp_path / "d", tmp_path / "syn.dat", SMALL, progress=False, split="all")
    assert s["faces"] == 10
    load_predictor(str(tmp_path / "syn.dat"))


def test_bad_point_files(tmp_path):
    d = tmp_path / "faces"
    shutil.copytree(FACES_300W, d)
    first = sorted(d.glob("*.pts"))[0]
    first.unlink()
    with pytest.raises(SynthfaceError, match=f"has no {first.name} beside it"):
        load_face_set(d)
    shutil.copy(sorted(d.glob("*.pts"))[0], first)
    lines = first.read_text().splitlines()
    first.write_text("\n".join(lines[:3] + lines[4:]) + "\n")  # 67 points, header says 68
    with pytest.raises(SynthfaceError, match="n_points says 68 but 67 points follow"):
        load_face_set(d)
    first.write_text("version: 1\nn_points: 5\n{\n" + "1 1\n" * 5 + "}\n")
    with pytest.raises(SynthfaceError, match="5 points; the 68-point iBUG scheme is needed"):
        load_face_set(d)


def test_real_and_synthetic_sources_are_mixed_by_the_rule(tmp_path):
    """Without --weight, real faces beside a synthface dataset are weighted so that they
    make up REAL_SHARE of the training faces, and the summary says so; --weight
    overrides; two real sets (or two synthetic) get no rule."""
    from conftest import FACES, run_cli
    from synthface.face.annotate import AnnotateConfig
    from synthface.trainers.landmarks import REAL_SHARE, is_synthetic, mixing_rule
    from synthface.dataset.make import MakeConfig, make_dataset
    from synthface.generator.sampling import ReplaySampler

    syn = tmp_path / "syn"
    make_dataset(syn, MakeConfig(n=30, workers=0, formats=("csv",), annotate=AnnotateConfig(landmarks=True)),
                 ReplaySampler(FACES, 64), progress=False)
    assert is_synthetic(syn) and is_synthetic(syn / "labels.csv") and not is_synthetic(FACES_300W)
    w = round(REAL_SHARE / (1 - REAL_SHARE) * 30 / 6, 2)
    assert mixing_rule([FACES_300W, syn], [6, 30]) == [w, 1.0] and mixing_rule([FACES_300W, FACES_300W], [6, 6]) is None
    assert mixing_rule([FACES_300W, syn], [600, 30]) == [1.0, 1.0]  # real faces are never thinned
    # 870 real + 2,000 synthetic: half would be weight 2.3 at oversampling 8 (18 starts a real
    # face); the real faces keep the 35 starts they get alone: weight 7 at 5 (75% of the faces)
    assert mixing_rule([FACES_300W, syn], [870, 2000]) == [7.0, 1.0]
    assert mixing_rule([FACES_300W, syn], [870, 2000], oversampling=5) == [2.3, 1.0]  # a given oversampling: half
    assert mixing_rule([FACES_300W, syn], [870, 100000]) == [100.0, 1.0]  # at most --weight's 100
    small = ["--split", "all", "--cascade-depth", "2", "--num-trees-per-cascade-level", "10",
             "--oversampling-amount", "1", "--num-threads", "1", "--no-progress"]
    r = run_cli("landmarks", "train", "--dataset", FACES_300W, "--dataset", syn, "-o", tmp_path / "m.dat", *small)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "m.json").read_text())
    assert s["sources"] == {str(FACES_300W): round(w * 6), str(syn): 30} and s["weights"] == [w, 1.0]
    assert f"real faces weighted {w:g}: {REAL_SHARE:.0%} of the training faces (the rule: at least" in r.stdout
    r = run_cli("landmarks", "train", "--dataset", FACES_300W, "--dataset", syn, "--weight", "1", "--weight", "1",
                "-o", tmp_path / "m2.dat", *small)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "m2.json").read_text())
    assert s["sources"] == {str(FACES_300W): 6, str(syn): 30} and s["mixing_rule"] is None
    assert "weighted" not in r.stdout


def test_oversampling_follows_the_number_of_faces():
    """TrainOptions' oversampling 0 (the default): about 30,000 samples within 5..35 per
    face; a given value stands; 0 passes validation, -1 does not."""
    from synthface.trainers.landmarks import auto_oversampling

    assert [auto_oversampling(n) for n in (6, 432, 870, 1000, 2000, 10000, 100000)] == [35, 35, 35, 30, 15, 5, 5]
    TrainOptions().validate()
    with pytest.raises(SynthfaceError, match="--oversampling-amount must be from 1 to 100000, got -1"):
        TrainOptions(oversampling_amount=-1).validate()


def test_a_ced_plot_s_values_axis_runs_from_0_to_1(tmp_path):
    """A CED curve is a share of faces: its axis is 0..1 whatever the curve reaches, so a
    curve at 0.75 is drawn three quarters up, not in the middle of its own range."""
    from synthface.core.imaging import read_rgb

    plot_ced({"m": {"errors": [0.0] * 3 + [0.5]}}, tmp_path / "ced.png")  # 75% within 8%, from 0 NME on
    img = read_rgb(tmp_path / "ced.png").astype(int)
    red = (img[..., 0] > 150) & (img[..., 1] < 100) & (img[..., 2] < 100)  # the first series' colour
    rows = np.nonzero(red[:, 100:650].any(axis=1))[0]
    top, bottom = 46, 360  # the plot's value axis, 1.0 .. 0.0
    assert abs(np.median(rows) - (bottom - 0.75 * (bottom - top))) < 4


def test_the_trained_on_warning_knows_a_set_by_its_place_not_its_name(tmp_path):
    """A model trained on `faces` in one folder and scored on another folder's `faces`: no
    warning; on its own `faces` from elsewhere (an absolute path): the warning. A summary
    that is damaged in any way is no warning and no error."""
    from conftest import run_cli

    tiny = ["--cascade-depth", "2", "--num-trees-per-cascade-level", "5", "--oversampling-amount", "3", "--no-progress"]
    for where in ("a", "b"):
        shutil.copytree(FACES_300W, tmp_path / where / "faces")
    r = run_cli("landmarks", "train", "--data", "faces", "-o", tmp_path / "m.dat", *tiny, cwd=tmp_path / "a")
    assert r.returncode == 0, r.stderr
    other = run_cli("landmarks", "eval", "--model", tmp_path / "m.dat", "--data", "faces", "--no-progress",
                    cwd=tmp_path / "b")
    own = run_cli("landmarks", "eval", "--model", tmp_path / "m.dat", "--data", tmp_path / "a" / "faces",
                  "--no-progress")
    assert other.returncode == own.returncode == 0
    assert "trained on these faces" not in other.stderr and "trained on these faces" in own.stderr
    for text in ("{", "[" * 100000, '{"trained_on": {"~nosuchuser/x": "all"}}', '{"trained_on": [1]}'):
        (tmp_path / "m.json").write_text(text)
        r = run_cli("landmarks", "eval", "--model", tmp_path / "m.dat", "--data", tmp_path / "a" / "faces",
                    "--no-progress")
        assert r.returncode == 0 and "trained on" not in r.stderr and "NME mean" in r.stdout, (text[:20], r.stderr)
