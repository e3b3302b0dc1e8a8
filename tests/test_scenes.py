"""Scenes for face-detector training, and the detector loop's scoring."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import FACES, FACES_300W


def test_pasted_points_land_on_the_face():
    """A real face with human 68-point labels, pasted into a scene: dlib's predictor, run
    on the scene in the placed box, finds the face where the labels say it is."""
    import dlib

    from synthface.face.annotate import load_shape_predictor, shape_to_array
    from synthface.core.imaging import read_rgb
    from synthface.face.geometry import points_box
    from synthface.trainers.landmarks import nme
    from synthface.formats.readers import read_pts
    from synthface.dataset.scenes import SceneConfig, compose_scene

    errors = []
    cfg = SceneConfig(faces_per_image=(1, 1), face_size=(110, 150), image_size=400, blends=("none",), occlude=0,
                      truncate=0, max_angle=8, photometric=0)
    predictor = load_shape_predictor()
    for k, jpg in enumerate(sorted(FACES_300W.glob("*.jpg"))[:4]):
        pts = read_pts(jpg.with_suffix(".pts"))
        x, y, w, h = points_box(pts)
        side = max(w, h)
        box = (x + w / 2 - side / 2, y + h / 2 - side / 2, side, side)
        scene, placed = compose_scene(1000 + k, [(read_rgb(jpg), box, pts)], cfg, None)
        (_, (bx, by, bw, bh), moved, truncated, occluded, blend, angle) = placed[0]
        assert not truncated and not occluded.any() and blend == "none"
        rect = dlib.rectangle(bx, by, bx + bw - 1, by + bh - 1)
        found = shape_to_array(predictor(scene, rect))
        errors.append(nme(found, moved))
        # the box is the face's: the labelled points' extent lies inside it, filling it
        px, py, pw, ph = points_box(moved)
        assert bx - 0.2 * bw <= px and px + pw <= bx + 1.2 * bw and pw > 0.6 * bw
    assert np.mean(errors) < 0.08, errors


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from synthface.generator.sampling import ReplaySampler
    from synthface.dataset.scenes import SceneConfig, make_scenes

    out = tmp_path_factory.mktemp("scenes") / "s"
    cfg = SceneConfig(faces_per_image=(2, 4), face_size=(40, 90), image_size=256)
    summary = make_scenes(out, 20, cfg, ReplaySampler(FACES, 64), workers=0, val_fraction=0.3, progress=False)
    return out, cfg, summary


def test_scenes_labels_in_every_format(scenes):
    import dlib
    from pycocotools.coco import COCO

    from synthface.generator.sampling import candidate_seed
    from synthface.dataset.scenes import is_group

    out, cfg, summary = scenes
    frame = pd.read_csv(out / "labels.csv")
    assert len(frame) == summary["faces"] == 20 - summary["unplaced"] and summary["scenes"] == frame["file"].nunique()
    # a group photo takes cfg.group_faces (as many as are left), any other scene cfg.faces_per_image
    sizes = frame.groupby("scene").size()
    groups = {i for i in range(summary["scenes"]) if is_group(candidate_seed(0, i), cfg)}
    assert sizes.drop(list(groups), errors="ignore").between(1, 4).all() and sizes[list(groups)].le(20).all()
    meta = dlib.image_dataset_metadata.load_image_dataset_metadata(str(out / "dlib.xml"))
    assert sum(len(i.boxes) for i in meta.images) == len(frame) and len(meta.images) == summary["scenes"]
    assert sum(b.ignore for i in meta.images for b in i.boxes) == frame["truncated"].sum()
    coco = COCO(str(out / "coco.json"))
    assert len(coco.getAnnIds()) == len(frame) and len(coco.getImgIds()) == summary["scenes"]
    lines = sum(len((out / "labels" / f.split("/", 1)[1]).with_suffix(".txt").read_text().splitlines())
                for f in frame["file"].unique())
    assert lines == len(frame)
    split = {f: s for f, s in zip(frame["file"], frame["split"])}
    listed = {line[2:] for line in (out / "valset.txt").read_text().split()}
    assert listed == {f for f, s in split.items() if s == "val"}


def test_scenes_are_read_by_each_ecosystem_s_reader(scenes, tmp_path):
    """Scenes get every format plain datasets get, through the same writers: parquet,
    Hugging Face imagefolder (an `objects` column), 300-W NAME_K.pts, COCO visibility 1
    under occluders, the torch Dataset with all faces of a scene, and one preview tile
    a scene."""
    from datasets import load_dataset

    from synthface import FaceLandmarks
    from synthface.dataset.preview import preview
    from synthface.formats.readers import read_labelled
    from synthface.face.scheme68 import POINT_COLS

    out, cfg, summary = scenes
    frame = pd.read_csv(out / "labels.csv")
    assert pd.read_parquet(out / "labels.parquet").equals(frame)
    ds = load_dataset("imagefolder", data_dir=str(out), split="train")
    assert len(ds) == summary["scenes"] and sum(len(r["objects"]["box"]) for r in ds) == len(frame)
    first = frame[frame["file"] == frame["file"].iloc[0]]
    row = next(r for r in ds if r["scene"] == first["scene"].iloc[0])
    assert row["objects"]["box"] == first[["x", "y", "w", "h"]].to_numpy().tolist()
    by_pts = read_labelled(out / "images")  # images/SSSSS/NNNNNNNN_K.pts beside each scene
    assert sum(len(i.faces) for i in by_pts) == len(frame)
    pts = {(str(i.path.relative_to(out)), k): f.landmarks for i in by_pts for k, f in enumerate(i.faces)}
    for (file, k), p in list(pts.items())[:5]:
        rows = frame[frame["file"] == file]
        assert np.allclose(p, rows[POINT_COLS].to_numpy(float)[k].reshape(68, 2), atol=1e-3)
    coco = json.loads((out / "coco.json").read_text())
    vis = np.array([a["keypoints"] for a in coco["annotations"]]).reshape(-1, 68, 3)[:, :, 2]
    occluded = frame["occluded"].to_numpy()  # points under an occluder; those inside the scene: visibility 1
    assert ((vis == 1).sum(1) <= occluded).all() and ((vis == 1).sum() > 0) == (occluded.sum() > 0)
    assert [a["iscrowd"] for a in coco["annotations"]] == frame["truncated"].tolist()
    scenes_ds = FaceLandmarks(out, split="all")
    assert len(scenes_ds) == summary["scenes"]
    sample = scenes_ds[0]
    n0 = len(first)
    assert sample["box"].shape == (n0, 4) and sample["landmarks"].shape == (n0, 68, 2)
    assert np.allclose(sample["landmarks"].numpy(), first[POINT_COLS].to_numpy(float).reshape(n0, 68, 2), atol=1e-3)
    assert sample["ignore"].tolist() == [bool(t) for t in first["truncated"]]
    grid = preview(out, tmp_path / "p.png", n=4)
    from synthface.core.imaging import read_rgb

    assert read_rgb(grid).shape[1] < 4 * cfg.image_size + 64  # one tile a scene, not a tile a face


def test_scenes_write_only_the_formats_asked(tmp_path):
    from synthface.generator.sampling import ReplaySampler
    from synthface.dataset.scenes import SceneConfig, make_scenes

    import cv2

    photos = tmp_path / "my photos"
    photos.mkdir()
    for k in range(2):
        cv2.imwrite(str(photos / f"{k}.jpg"), np.random.default_rng(k).integers(0, 255, (200, 240, 3), np.uint8))
    cfg = SceneConfig(faces_per_image=(2, 2), face_size=(40, 60), image_size=160, backgrounds=str(photos))
    make_scenes(tmp_path / "s", 4, cfg, ReplaySampler(FACES, 64), workers=0, progress=False, formats="coco")
    written = sorted(p.name for p in (tmp_path / "s").iterdir() if not p.name.startswith("."))
    assert written == ["README.md", "coco.json", "dataset.json", "images", "labels.csv"]
    card = json.loads((tmp_path / "s" / "dataset.json").read_text())
    assert card["files"]["formats"] == ["coco", "csv"]
    # the card names its generator (not by a local path) and its licence terms, as face cards do
    from synthface.dataset.card import licence_terms

    text = (tmp_path / "s" / "README.md").read_text()
    terms = licence_terms({"kind": "replay"})  # replayed real faces: not called synthetic
    assert card["generator"]["folder"] == "faces" and card["licence_terms"] == terms
    assert text.startswith("---\nlicense: other\n") and terms in text and str(FACES) not in text
    # its backgrounds by their folder's name and fingerprint; the local path stays in run.json, for --resume
    assert card["scenes"]["backgrounds"]["folder"] == "my photos" and str(tmp_path) not in json.dumps(card)
    assert "- Background: crops of the photos in a folder `my photos` (fingerprint `" in text
    assert str(tmp_path) not in text
    assert "The images are not synthetic: they are real faces replayed" in text
    assert "- Generator: stand-in replay of real faces in a folder `faces`" in text
    assert "`truncated`: 1 when the box reaches past" in text and "`occluded`: how many of its 68 points" in text


def test_scenes_are_the_same_whatever_the_workers_and_after_a_resume(scenes, tmp_path):
    from synthface.generator.sampling import ReplaySampler
    from synthface.dataset.scenes import make_scenes

    out, cfg, _ = scenes
    other = tmp_path / "s"
    make_scenes(other, 20, cfg, ReplaySampler(FACES, 64), workers=2, val_fraction=0.3, progress=False)
    assert (other / "labels.csv").read_bytes() == (out / "labels.csv").read_bytes()
    files = pd.read_csv(out / "labels.csv")["file"].unique()
    assert all((other / f).read_bytes() == (out / f).read_bytes() for f in files)
    (other / files[1]).unlink()  # a scene lost: a resumed run makes it again, the same
    shutil.rmtree(other / "labels")
    make_scenes(other, 20, cfg, ReplaySampler(FACES, 64), workers=0, val_fraction=0.3, resume=True, progress=False)
    assert (other / files[1]).read_bytes() == (out / files[1]).read_bytes()
    assert (other / "labels.csv").read_bytes() == (out / "labels.csv").read_bytes()


def test_average_precision_known_cases():
    from synthface.trainers.detector import average_precision, match

    truth = [(0, 0, 10, 10), (20, 20, 10, 10)]
    perfect = match([(0.9, (0, 0, 10, 10)), (0.8, (20, 20, 10, 10))], truth)
    assert average_precision(perfect, 2)[0] == pytest.approx(1.0)
    assert average_precision(match([], truth), 2)[0] == 0.0
    # ranked: TP (0.9), FP (0.8), TP (0.7) over 2 truths: precision 1, 1/2, 2/3 at recall
    # 1/2, 1/2, 1 -> envelope: 1 up to recall 1/2, 2/3 up to 1 -> AP = 0.5 * 1 + 0.5 * 2/3
    ranked = match([(0.9, (0, 0, 10, 10)), (0.8, (50, 50, 10, 10)), (0.7, (21, 21, 10, 10))], truth)
    assert [t for _, t in ranked] == [1, 0, 1]
    assert average_precision(ranked, 2)[0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # a detection on an ignored box counts neither way; a second one on a matched truth is a FP
    m = match([(0.9, (0, 0, 10, 10)), (0.8, (0, 0, 10, 10)), (0.7, (90, 90, 10, 10))], truth[:1],
              ignored=[(90, 90, 10, 10)])
    assert [t for _, t in m] == [1, 0, None]


def test_a_box_in_another_convention_misses_at_iou_50_and_hits_at_30():
    from synthface.trainers.detector import average_precision, match

    truth = [(0, 0, 10, 10)]
    shifted = [(0.9, (0, 4, 10, 10))]  # the same face, the box drawn 4 px lower: IoU 60/140
    ious = []
    assert average_precision(match(shifted, truth), 1)[0] == 0.0
    assert average_precision(match(shifted, truth, threshold=0.3, ious=ious), 1)[0] == pytest.approx(1.0)
    assert ious == [(0.9, pytest.approx(60 / 140))]


def test_the_300w_photo_reader_groups_name_k_files(tmp_path):
    from synthface.trainers.detector import load_boxes
    from synthface.formats.readers import read_pts

    src = sorted(FACES_300W.glob("*.pts"))[:3]
    for name, pts in (("photo_1.pts", src[0]), ("photo_2.pts", src[1]), ("other_1.pts", src[2])):
        shutil.copy(pts, tmp_path / name)
    for name in ("photo.jpg", "other.jpg"):
        shutil.copy(src[0].with_suffix(".jpg"), tmp_path / name)
    got = {p.name: boxes for p, boxes, _ in load_boxes(tmp_path)}
    assert len(got["photo.jpg"]) == 2 and len(got["other.jpg"]) == 1
    p = read_pts(src[1])
    assert got["photo.jpg"][1] == pytest.approx((p[:, 0].min(), p[:, 1].min(), np.ptp(p[:, 0]), np.ptp(p[:, 1])))
    crops = {p.name: boxes for p, boxes, _ in load_boxes(FACES_300W)}  # 300-W crops: NAME.jpg + NAME.pts
    assert len(crops) == len(list(FACES_300W.glob("*.jpg"))) and all(len(b) == 1 for b in crops.values())


def test_detector_train_and_eval_from_the_cli(scenes, tmp_path):
    from conftest import run_cli

    out, _, _ = scenes
    r = run_cli("detector", "eval", "--model", "dlib", "--data", out, "-o", tmp_path / "r.json", "--pr",
                tmp_path / "pr.png", "--no-progress")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["ap50"] > 0.3 and report["images"] == pd.read_csv(out / "labels.csv")["file"].nunique()
    assert report["ap30"] >= report["ap50"] and 0.5 <= report["mean_iou_at_0"] <= 1.0
    assert (tmp_path / "pr.png").is_file()
    r = run_cli("detector", "train", "--dataset", out, "-o", tmp_path / "det.svm", "--window", "32", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "det.json").read_text())["faces"] > 0
    r = run_cli("detector", "eval", "--model", tmp_path / "det.svm", "--data", out, "--no-progress")
    assert r.returncode == 0 and "AP50" in r.stdout
    r = run_cli("detector", "eval", "--model", tmp_path / "none.svm", "--data", out)
    assert r.returncode == 1 and r.stderr.strip().startswith("synthface: error: detector not found")
    r = run_cli("make-dataset", "--scenes", "-n", "5", "--out", tmp_path / "x", "--faces-per-image", "3:1")
    assert r.returncode == 1 and "--faces-per-image must be MIN:MAX with 1 <= MIN <= MAX" in r.stderr


def test_both_dlib_trainers_take_any_dataset_path(scenes, tmp_path):
    """A dataset under a folder named with ' & < " and spaces trains dlib's detector and
    shape predictor: every imglab attribute is escaped (dlib's XML reader sees the path)."""
    from synthface.trainers.detector import DetectorOptions, train_detector
    from synthface.trainers.landmarks import TrainOptions, train_landmarks

    out, _, summary = scenes
    odd = tmp_path / "we're & <faces> \"here\"" / "scenes 1"
    shutil.copytree(out, odd)
    s = train_detector(odd, tmp_path / "det.svm", DetectorOptions(window=32, num_threads=1), progress=False)
    assert s["images"] == summary["scenes"] and s["faces"] > 0
    s = train_landmarks(odd, tmp_path / "lm.dat", TrainOptions(cascade_depth=2, num_trees_per_cascade_level=10,
                                                                 oversampling_amount=1, num_threads=1), progress=False)
    labels = pd.read_csv(out / "labels.csv")
    train = labels[labels["split"] == "train"]  # a synthface dataset trains on its train split by default
    assert s["faces"] == len(train) - int(train["truncated"].sum()) and s["splits"] == {str(odd): "train"}
    s = train_landmarks(odd / "dlib.xml", tmp_path / "lm2.dat",
                        TrainOptions(cascade_depth=2, num_trees_per_cascade_level=10, oversampling_amount=1,
                                     num_threads=1), progress=False)
    assert s["faces"] > 0


def test_photometric_variation_keeps_the_labels_and_varies_the_photos(tmp_path):
    """--photometric: the same faces at the same places (labels byte for byte), the
    scenes' pixels changed: some grey (all channels equal), some of lower contrast;
    each scene's draw its own (two runs alike); 0 leaves them as composed."""
    from synthface.core.imaging import read_rgb
    from synthface.generator.sampling import ReplaySampler
    from synthface.dataset.photometric import PHOTO_RATES, photometric
    from synthface.dataset.scenes import SceneConfig, make_scenes

    base = dict(faces_per_image=(2, 2), face_size=(40, 60), image_size=160, groups=0.0)
    runs = {}
    for name, amount in (("plain", 0.0), ("photo", 1.0), ("again", 1.0)):
        make_scenes(tmp_path / name, 24, SceneConfig(**base, photometric=amount), ReplaySampler(FACES, 64),
                    workers=0, progress=False, formats="csv")
        runs[name] = tmp_path / name
    labels = (runs["plain"] / "labels.csv").read_bytes()
    assert (runs["photo"] / "labels.csv").read_bytes() == labels
    files = sorted(pd.read_csv(runs["plain"] / "labels.csv")["file"].unique())
    assert len(files) == 12
    plain = [read_rgb(runs["plain"] / f).astype(int) for f in files]
    photo = [read_rgb(runs["photo"] / f).astype(int) for f in files]
    assert all((runs["again"] / f).read_bytes() == (runs["photo"] / f).read_bytes() for f in files)
    changed = [np.abs(a - b).mean() > 2 for a, b in zip(plain, photo)]
    grey = [np.abs(p[..., 0] - p[..., 1]).max() <= 1 and np.abs(p[..., 1] - p[..., 2]).max() <= 1 for p in photo]
    assert sum(changed) >= 6 and 1 <= sum(grey) <= 9 and not any(
        np.abs(p[..., 0] - p[..., 1]).max() <= 1 for p in plain)
    # every transform keeps the size and type, and all of them at once still a photo-like range
    rng = np.random.default_rng(0)
    scene = read_rgb(runs["plain"] / files[0])
    out = photometric(scene, rng, amount=1 / min(PHOTO_RATES.values()))
    assert out.shape == scene.shape and out.dtype == np.uint8 and np.ptp(out) > 20
    card = json.loads((runs["photo"] / "dataset.json").read_text())
    assert card["scenes"]["photometric"] == 1.0 and json.loads(
        (runs["plain"] / "dataset.json").read_text())["scenes"]["photometric"] == 0.0
    assert "grey 30%" in (runs["photo"] / "README.md").read_text() and "halftone 10%" in (
        runs["photo"] / "README.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--photometric", "3"], "--photometric must be from 0 (off) to 2, got 3.0"),
    (["--photometric", "nan"], "--photometric must be from 0 (off) to 2, got nan"),
])
def test_photometric_bad_amounts_are_one_line(tmp_path, args, message):
    from conftest import run_cli

    r = run_cli("make-dataset", "--scenes", "-n", "5", "--out", tmp_path / "x", *args)
    assert r.returncode == 1 and r.stderr.strip() == f"synthface: error: {message}", r.stderr
    assert not (tmp_path / "x").exists()
    r = run_cli("make-dataset", "-n", "5", "--out", tmp_path / "y", "--photometric", "1")
    assert r.returncode == 1 and "--photometric goes with --scenes" in r.stderr and not (tmp_path / "y").exists()


def test_detector_train_mixes_datasets_by_weight(scenes, tmp_path):
    """`detector train --dataset A --dataset B --weight ...`: every image of each source,
    repeated by its weight (a fractional part: that share once more), the count per
    source in the summary; bad weights one line."""
    from conftest import run_cli

    out, _, summary = scenes
    photos = FACES_300W  # real faces with .pts: boxes from their points
    r = run_cli("detector", "train", "--dataset", out, "--dataset", photos, "--weight", "1", "--weight", "2.5",
                "-o", tmp_path / "mix.svm", "--window", "32", "--threads", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "mix.json").read_text())
    n_photos = len(list(photos.glob("*.jpg")))
    assert s["sources"] == {str(out): summary["scenes"], str(photos): round(2.5 * n_photos)}
    assert s["images"] == summary["scenes"] + round(2.5 * n_photos) and (tmp_path / "mix.svm").is_file()
    assert "images per source" in r.stdout
    r = run_cli("detector", "train", "--dataset", out, "--dataset", photos, "--weight", "1", "-o", tmp_path / "x.svm")
    assert r.returncode == 1 and r.stderr.strip() == (
        "synthface: error: 1 --weight for 2 --data (give one per dataset, or none)"), r.stderr
    r = run_cli("detector", "train", "--dataset", out, "--weight", "0.001", "-o", tmp_path / "x.svm")
    assert r.returncode == 1 and "--weight 0.001 takes no image of a set of" in r.stderr
    assert not (tmp_path / "x.svm").exists()


def test_hard_negatives_are_mined_and_trained_on(scenes, tmp_path):
    """`detector mine` keeps exactly the face-free scenes where the model fires at score
    >= 0 (checked against dlib on each kept one); `detector train --negatives` adds
    them whole, with no box."""
    import dlib

    from conftest import run_cli
    from synthface.core.imaging import read_rgb

    out, _, _ = scenes
    r = run_cli("detector", "train", "--dataset", out, "-o", tmp_path / "det.svm", "--window", "32", "--threads", "1",
                "--no-progress")
    assert r.returncode == 0, r.stderr
    r = run_cli("detector", "mine", "--model", tmp_path / "det.svm", "-n", "12", "--image-size", "160",
                "--out", tmp_path / "neg", "--no-progress")
    assert r.returncode == 0, r.stderr
    kept = sorted((tmp_path / "neg").glob("*.jpg"))
    assert f"fired on {len(kept)} of 12 face-free scenes" in r.stdout
    det = dlib.fhog_object_detector(str(tmp_path / "det.svm"))
    # kept as JPEG at 95: a window that fired at 0 may sit a little lower once decoded
    assert all(len(det.run(read_rgb(p), 1, -0.3)[0]) > 0 for p in kept)
    if not kept:  # a model that fires nowhere: train on some face-free scenes all the same
        from synthface.dataset.scenes import procedural_background
        from synthface.core.imaging import write_png

        (tmp_path / "neg").mkdir(exist_ok=True)
        for i in range(3):
            write_png(tmp_path / "neg" / f"{i}.png", procedural_background(np.random.default_rng(i), 160))
        kept = sorted((tmp_path / "neg").glob("*.png"))
    r = run_cli("detector", "train", "--dataset", out, "--negatives", tmp_path / "neg", "-o", tmp_path / "det2.svm",
                "--window", "32", "--threads", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "det2.json").read_text())
    assert s["negatives"] == len(kept) and f"and {len(kept)} face-free images" in r.stdout
    r = run_cli("detector", "train", "--dataset", out, "--negatives", tmp_path / "nothing", "-o", tmp_path / "x.svm")
    assert r.returncode == 1 and r.stderr.strip().endswith("nothing: not a folder"), r.stderr


def test_fast_pixel_helpers_round_clip_and_draw_normal_noise():
    """saturate_uint8 rounds and clips like a camera's 8 bits; normal_noise is N(0, sigma)
    to 2.9 sigma, the same for the same seed, shaped as asked."""
    from synthface.core.imaging import saturate_uint8
    from synthface.dataset.photometric import normal_noise

    out = saturate_uint8(np.float32([[-3.2, 255.6, 7.4, 7.6, 300.0]]))
    assert out.dtype == np.uint8 and out.tolist() == [[0, 255, 7, 8, 255]]
    grey = saturate_uint8(np.full((4, 5, 3), 12.4, np.float32))
    assert grey.shape == (4, 5, 3) and (grey == 12).all()
    a = normal_noise(np.random.default_rng(3), (200, 300, 3), 5.0)
    b = normal_noise(np.random.default_rng(3), (200, 300, 3), 5.0)
    assert a.shape == (200, 300, 3) and a.dtype == np.float32 and np.array_equal(a, b)
    assert abs(a.mean()) < 0.05 and 4.9 < a.std() < 5.05 and np.abs(a).max() <= 2.9 * 5
