import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import FACES, processes, run_cli, with_dlib
from synthface.face.annotate import AnnotateConfig, model_path
from synthface.errors import SynthfaceError
from synthface.core.imaging import read_rgb
from synthface.dataset.make import MakeConfig, make_dataset
from synthface.generator.sampling import BLOCK, GeneratorSampler, ReplaySampler, candidates, remake


@pytest.fixture(scope="module")
def replay():
    return ReplaySampler(FACES, 64)


def _make(out, replay, n=20, **kw):
    """The plain pipeline (no augmentation or 3D turn unless asked: these tests check
    pixels and points against dlib and the generator exactly)."""
    annotate = kw.pop("annotate", AnnotateConfig())
    cfg = MakeConfig(n=n, workers=kw.pop("workers", 0), batch_size=kw.pop("batch_size", 8),
                     annotate=annotate, augment=kw.pop("augment", None), rotate3d=kw.pop("rotate3d", None), **kw)
    return make_dataset(out, cfg, replay, progress=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, replay):
    out = tmp_path_factory.mktemp("ds") / "d"
    summary = _make(out, replay, n=20, workers=2, batch_size=8, val_fraction=0.3)
    return out, summary


def _labels(out):
    return pd.read_csv(out / "labels.csv")


def test_dataset_has_n_faces_in_shards(dataset):
    out, summary = dataset
    df = _labels(out)
    assert len(df) == 20 and summary["faces"] == 20
    assert list(df.columns[:9]) == ["file", "split", "seed", "index", "x", "y", "w", "h", "score"]
    assert list(df.columns[9:14]) == ["yaw", "pitch", "roll", "mouth_open", "eye_open"]
    assert list(df.columns[14:]) == [c for i in range(68) for c in (f"x{i}", f"y{i}")]
    assert df["file"].tolist() == [f"images/00000/{k:08d}.png" for k in range(20)]
    assert df["index"].is_monotonic_increasing and df["seed"].is_unique
    assert all(read_rgb(out / f).shape == (64, 64, 3) for f in df["file"])
    assert summary["candidates"] == df["index"].iloc[-1] + 1
    assert summary["candidates"] - 20 == sum(summary["rejected"].values())
    assert not list(out.rglob("*.tmp"))


def test_each_image_is_remade_from_its_seed(dataset, replay):
    out, _ = dataset
    df = _labels(out)
    for _, row in df.iloc[[0, 7, 19]].iterrows():
        assert np.array_equal(remake(replay, 0, int(row["index"])), read_rgb(out / row["file"]))


def test_same_labels_whatever_batch_size_and_workers(dataset, tmp_path, replay):
    out, _ = dataset
    other = tmp_path / "other"
    _make(other, replay, n=20, workers=0, batch_size=3, val_fraction=0.3)
    assert (other / "labels.csv").read_bytes() == (out / "labels.csv").read_bytes()


def test_generator_images_do_not_depend_on_batching(tmp_path):
    """Blocks are aligned: an image is the same from any start point or chunking."""
    import torch

    from synthface.generator.config import load_config
    from synthface.generator.networks import arch_of, build_generator
    from synthface.generator.weights import save_generator

    arch = arch_of(load_config("seed56").model)
    torch.manual_seed(0)
    g = build_generator(arch)
    g.train()(torch.randn(16, arch["z_dim"]))
    save_generator(g.eval(), arch, tmp_path / "g.safetensors")
    sampler = GeneratorSampler(tmp_path / "g.safetensors", device="cpu")
    stream = [img for _, _, img in candidates(sampler, 5, 0, 2 * BLOCK)]
    for j in (0, 1, BLOCK - 1, BLOCK, BLOCK + 17):
        assert np.array_equal(remake(sampler, 5, j), stream[j])
    late = [img for _, _, img in candidates(sampler, 5, BLOCK + 3, 10)]
    assert all(np.array_equal(a, b) for a, b in zip(late, stream[BLOCK + 3:]))
    assert not np.array_equal(stream[0], remake(sampler, 6, 0))  # another seed, another face


def test_dlib_reads_the_xml_as_labels_csv_says(dataset):
    import dlib

    out, _ = dataset
    df = _labels(out)
    meta = dlib.image_dataset_metadata.load_image_dataset_metadata(str(out / "dlib.xml"))
    assert len(meta.images) == 20
    for img, (_, row) in zip(meta.images, df.iterrows()):
        assert img.filename == row["file"]
        (box,) = img.boxes
        r = box.rect
        assert (r.left(), r.top(), r.width(), r.height()) == (row["x"], row["y"], row["w"], row["h"])
        parts = box.parts
        assert len(parts) == 68
        assert (parts["36"].x, parts["36"].y) == (round(row["x36"]), round(row["y36"]))
    # the 68-point predictor reproduces its own labels from this file: error 0
    assert dlib.test_shape_predictor(str(out / "dlib.xml"), str(model_path("landmarks68"))) == pytest.approx(0, abs=1e-6)


def test_coco_pts_yolo_parquet_match_labels_csv(dataset):
    out, _ = dataset
    df = _labels(out)
    pts = df[[c for i in range(68) for c in (f"x{i}", f"y{i}")]].to_numpy().reshape(-1, 68, 2)
    coco = json.loads((out / "coco.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == df["file"].tolist()
    assert coco["categories"][0]["name"] == "face" and len(coco["categories"][0]["keypoints"]) == 68
    for k, ann in enumerate(coco["annotations"]):
        assert ann["image_id"] == coco["images"][k]["id"]
        x, y, w, h = df.loc[k, ["x", "y", "w", "h"]].tolist()
        assert ann["bbox"] == [max(x, 0), max(y, 0), min(x + w, 64) - max(x, 0), min(y + h, 64) - max(y, 0)]
        kp = np.array(ann["keypoints"]).reshape(68, 3)
        inside = ((pts[k] >= 0) & (pts[k] < 64)).all(1)
        assert np.array_equal(kp[inside, :2], pts[k][inside]) and set(kp[inside, 2]) == {2}
        assert (kp[~inside] == 0).all() and ann["num_keypoints"] == inside.sum()
    from synthface.formats.readers import read_pts

    for k in (0, 19):
        path = out / "images" / "00000" / f"{k:08d}.pts"  # beside the image, where 300-W tools look
        assert np.array_equal(read_pts(path), pts[k])  # read back 1-based: exactly the labels
        text = path.read_text()
        assert text.startswith("version: 1\nn_points: 68\n{\n")
        assert np.array_equal(np.array(text.split("{")[1].split("}")[0].split(), float).reshape(68, 2), pts[k] + 1)
    parquet = pd.read_parquet(out / "labels.parquet")
    assert list(parquet.dtypes) == list(df.dtypes) and parquet.equals(df)
    card = json.loads((out / "dataset.json").read_text())
    assert card["counts"]["faces"] == 20 and card["generator"]["kind"] == "replay"
    assert "non-commercial" in card["licence"] and "Licence" in (out / "README.md").read_text()
    import yaml

    front = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])  # the card's front matter
    assert front["license"] == "other" and front["license_details"] == card["licence_terms"]
    assert card["licence_terms"].startswith("non-commercial research only")
    # replayed real faces (a testing stand-in) are not called synthetic, in the card nor its text
    assert "replayed real photos under their own licence" in card["licence_terms"]
    assert card["licence"].startswith("The images are not synthetic") and "synthetic, made by" not in card["licence"]


def test_flip_idx_is_an_involution():
    from synthface.face.scheme68 import FLIP_IDX_68

    assert sorted(FLIP_IDX_68) == list(range(68))
    assert all(FLIP_IDX_68[FLIP_IDX_68[i]] == i for i in range(68))
    assert FLIP_IDX_68[36] == 45 and FLIP_IDX_68[48] == 54 and FLIP_IDX_68[8] == 8


def test_boxes_only_and_larger_images(tmp_path, replay):
    out = tmp_path / "boxes"
    _make(out, replay, n=5, image_size=128, annotate=AnnotateConfig(landmarks=False),
          formats=("csv", "xml", "coco", "yolo"))
    df = _labels(out)
    assert list(df.columns) == ["file", "split", "seed", "index", "x", "y", "w", "h", "score"]
    assert read_rgb(out / df["file"][0]).shape == (128, 128, 3)
    assert df["w"].min() > 64  # boxes in the 128 px image's pixels
    assert not list(out.rglob("*.pts")) and not (out / "labels.parquet").exists()
    assert "keypoints" not in json.loads((out / "coco.json").read_text())["annotations"][0]
    assert len((out / "labels" / "00000" / "00000000.txt").read_text().split()) == 5
    assert "kpt_shape" not in (out / "data.yaml").read_text()


class _Blank:
    resolution = 64
    identity = {"kind": "blank"}

    def images(self, seeds):
        return np.zeros((len(seeds), 64, 64, 3), np.uint8)


def test_a_generator_that_makes_no_faces_gives_up(tmp_path):
    with pytest.raises(SynthfaceError, match=r"gave up after 200 samples: only 0 of 5 faces passed the filter \(no_face 200\)"):
        _make(tmp_path / "d", _Blank(), n=5, max_tries=200, batch_size=50)


def test_bad_inputs(tmp_path, replay):
    with pytest.raises(SynthfaceError, match="-n must be at least 1"):
        _make(tmp_path / "a", replay, n=0)
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SynthfaceError, match="is not empty; add --resume"):
        _make(out, replay, n=2)
    with pytest.raises(SynthfaceError, match="not a synthface dataset folder"):
        make_dataset(out, MakeConfig(n=2, workers=0), replay, resume=True, progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(SynthfaceError, match="dlib model file not found"):
        _make(tmp_path / "b", replay, n=2, annotate=AnnotateConfig(predictor_path=str(tmp_path / "no.dat")))
    done = tmp_path / "done"
    _make(done, replay, n=2)
    with pytest.raises(SynthfaceError, match=r"made with other settings \(seed differ"):
        make_dataset(done, MakeConfig(n=2, seed=1, workers=0, augment=None, rotate3d=None), replay, resume=True,
                     progress=False)


def test_cli_mismatched_checkpoint_is_one_line(tmp_path):
    from synthface.generator.config import load_config
    from synthface.generator.networks import arch_of, build_generator
    from synthface.generator.weights import save_generator

    arch = arch_of(load_config("tiny").model)
    save_generator(build_generator(arch), arch, tmp_path / "g.safetensors")
    (tmp_path / "g.json").write_text(json.dumps({"arch": {**arch, "z_dim": 99}}))
    res = run_cli("make-dataset", "-n", "5", "--out", str(tmp_path / "a"), "--checkpoint", str(tmp_path / "g.safetensors"))
    assert res.returncode == 1 and "do not match the architecture" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_kill_9_and_resume_gives_the_same_dataset(tmp_path):
    args = ["-n", "150", "--landmarks", "--replay-faces", str(FACES), "--batch-size", "4",
            "--workers", "1", "--no-progress"]
    whole = run_cli("make-dataset", "--out", str(tmp_path / "whole"), *args)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "synthface", "make-dataset", "--out", str(out), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = out / ".synthface" / "journal.csv"
    deadline = time.time() + 60
    while time.time() < deadline and (not journal.is_file() or journal.read_text().count("\n") < 30):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "labels.csv").exists()  # killed mid-run
    again = run_cli("make-dataset", "--out", str(out), *args)
    assert again.returncode == 1 and "add --resume" in again.stderr
    resumed = run_cli("make-dataset", "--out", str(out), *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("labels.csv", "dlib.xml", "coco.json"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    images = sorted(p.relative_to(out) for p in (out / "images").rglob("*.png"))
    assert len(images) == 150 and not list(out.rglob("*.tmp"))
    assert all((out / p).read_bytes() == (tmp_path / "whole" / p).read_bytes() for p in images)


def _live_processes_in_group(pgid: int) -> list[str]:
    return processes(lambda fields: int(fields[2]) == pgid)


@pytest.mark.slow
def test_ctrl_c_is_one_line_and_ends_the_workers(tmp_path):
    """A Ctrl-C reaches the whole process group: the worker processes ignore it, the
    main process ends them and says so in one line; the run resumes."""
    out = tmp_path / "d"
    args = ["make-dataset", "-n", "5000", "--replay-faces", str(FACES), "--workers", "2", "--batch-size", "64",
            "--out", str(out), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "synthface", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    journal = out / ".synthface" / "journal.csv"
    deadline = time.time() + 60
    while time.time() < deadline and (not journal.is_file() or journal.read_text().count("\n") < 200):
        time.sleep(0.05)
    while time.time() < deadline and not with_dlib(p for p in _live_processes_in_group(proc.pid) if p != str(proc.pid)):
        time.sleep(0.05)  # until the worker process has loaded its models
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err.strip().splitlines() == ["synthface: interrupted"], err
    deadline = time.time() + 10
    while time.time() < deadline and _live_processes_in_group(proc.pid):
        time.sleep(0.05)
    assert _live_processes_in_group(proc.pid) == []  # no worker is left running
    res = run_cli(*args[:-1], "--resume", "--no-progress", "--format", "csv")
    assert res.returncode == 0, res.stderr
    assert len(pd.read_csv(out / "labels.csv")) == 5000


def test_preview_draws_a_grid(dataset, tmp_path):
    from synthface.dataset.preview import preview

    path = preview(dataset[0], tmp_path / "p.png", n=6, scale=3)
    grid = read_rgb(path)
    assert grid.shape == (2 + 2 * (192 + 2), 2 + 3 * (192 + 2), 3)
    assert ((grid[..., 1] > 200) & (grid[..., 0] < 80)).any()  # green box pixels drawn


def test_shards_merge_into_the_single_run(tmp_path, replay):
    from synthface.dataset.make import shard_quota
    from synthface.dataset.merge import merge_shards

    single = tmp_path / "single"
    _make(single, replay, n=40, batch_size=16)
    parts = []
    for k in range(3):
        parts.append(tmp_path / f"part{k}")
        _make(parts[-1], replay, n=40, batch_size=16, num_shards=3, shard_index=k)
        part = _labels(parts[-1])
        assert len(part) == shard_quota(40, 3)
        assert all((j // 64) % 3 == k for j in part["index"])  # its own blocks only
    merged = tmp_path / "merged"
    summary = merge_shards(list(reversed(parts)), merged, progress=False)
    assert summary["faces"] == 40
    for name in ("labels.csv", "dlib.xml", "coco.json", "metadata.jsonl", "trainset.txt", "valset.txt"):
        assert (merged / name).read_bytes() == (single / name).read_bytes(), name  # the same split too
    df = _labels(merged)
    assert all((merged / f).read_bytes() == (single / f).read_bytes() for f in df["file"])


def test_merge_refuses_incomplete_or_mixed_shards(tmp_path, replay):
    from synthface.dataset.merge import merge_shards

    a, b = tmp_path / "a", tmp_path / "b"
    _make(a, replay, n=20, num_shards=2, shard_index=0)
    with pytest.raises(SynthfaceError, match="shards 1 of 2 are missing"):
        merge_shards([a], tmp_path / "m1", progress=False)
    _make(b, replay, n=20, num_shards=2, shard_index=0, seed=9)
    with pytest.raises(SynthfaceError, match="belongs to another run"):
        merge_shards([a, b], tmp_path / "m2", progress=False)
    with pytest.raises(SynthfaceError, match="--shard-index must be in"):
        _make(tmp_path / "c", replay, n=20, num_shards=2, shard_index=2)


def test_pad_adds_a_reflected_border_and_moves_the_labels(tmp_path, replay):
    plain, padded = tmp_path / "plain", tmp_path / "padded"
    _make(plain, replay, n=4, formats=("csv",))
    _make(padded, replay, n=4, pad=0.25, formats=("csv",))
    a, b = _labels(plain), _labels(padded)
    img = read_rgb(padded / b["file"][0])
    assert img.shape == (96, 96, 3)  # 64 + 2 x 16
    assert np.array_equal(img[16:80, 16:80], read_rgb(plain / a["file"][0]))
    assert np.array_equal(img[15, 16:80], img[17, 16:80])  # reflected about the edge row
    same = a["index"].iloc[0] == b["index"].iloc[0]
    assert same and abs(b["x36"][0] - 16 - a["x36"][0]) <= 2 and abs(b["y36"][0] - 16 - a["y36"][0]) <= 2
    assert json.loads((padded / "dataset.json").read_text())["image_size"] == 96


def test_worker_generation_uses_the_same_blocks(tmp_path):
    """Workers generate chunks from candidate indices alone: same images as the stream."""
    import torch

    from synthface.generator.config import load_config
    from synthface.generator.networks import arch_of, build_generator
    from synthface.generator.sampling import candidate_seeds, images_for, sampler_from_spec
    from synthface.generator.weights import save_generator

    arch = arch_of(load_config("tiny").model)
    torch.manual_seed(0)
    save_generator(build_generator(arch).eval(), arch, tmp_path / "g.safetensors")
    main = GeneratorSampler(tmp_path / "g.safetensors", device="cpu")
    worker = sampler_from_spec(main.spec())
    stream = [img for _, _, img in candidates(main, 3, 60, 200, num_shards=2, shard_index=1)]
    js = [j for j, _ in zip((j for j, _ in candidate_seeds(3, 60, 2, 1)), range(len(stream)))]
    assert js[:5] == [64, 65, 66, 67, 68] and all((j // 64) % 2 == 1 for j in js)
    assert np.array_equal(images_for(worker, 3, js[:70]), np.stack(stream[:70]))


class _NoSpec:
    """The replay sampler without spec(): the main thread generates and the worker
    processes only annotate, as on a GPU."""

    def __init__(self, sampler):
        self.sampler, self.resolution, self.identity = sampler, sampler.resolution, sampler.identity

    def images(self, seeds):
        return self.sampler.images(seeds)


@pytest.mark.parametrize("gpu_style", [False, True])
def test_worker_processes_label_as_the_thread_does(tmp_path, replay, gpu_style):
    """Processes that join a run load their own models and give the same dataset as
    one thread alone; whether they generate (CPU) or only annotate (GPU style)."""
    sampler = _NoSpec(replay) if gpu_style else replay
    alone = _make(tmp_path / "alone", sampler, n=1500, workers=0, batch_size=64, formats=("csv",))
    both = _make(tmp_path / "both", sampler, n=1500, workers=2, batch_size=64, formats=("csv",))
    assert both["this_run"]["process_chunks"] > 0  # the process did part of the work
    assert alone["this_run"]["process_chunks"] == 0
    assert (tmp_path / "both" / "labels.csv").read_bytes() == (tmp_path / "alone" / "labels.csv").read_bytes()
    df = _labels(tmp_path / "both")
    for f in df["file"].iloc[[0, 700, 1499]]:
        assert (tmp_path / "both" / f).read_bytes() == (tmp_path / "alone" / f).read_bytes()


def test_cocoeval_runs_on_the_coco_file_with_its_own_sigmas(dataset):
    """COCO's own reader and keypoint evaluation, with the sigmas read from the file:
    the annotations against themselves score AP 1, moved points score less."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out, _ = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(out / "coco.json"))
    cat = gt.loadCats(1)[0]
    assert cat["keypoints"][36] == "right_eye_1" and cat["keypoints"][45] == "left_eye_4"
    assert len(cat["sigmas"]) == 68 and [37, 38] in cat["skeleton"] and [42, 37] in cat["skeleton"]

    def ap(shift):
        dets = []
        for ann in gt.loadAnns(gt.getAnnIds()):
            kp = np.array(ann["keypoints"], float).reshape(68, 3)
            kp[:, :2] += shift
            dets.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
                         "score": 1.0})
        with contextlib.redirect_stdout(io.StringIO()):
            e = COCOeval(gt, gt.loadRes(dets), "keypoints")
            e.params.kpt_oks_sigmas = np.array(cat["sigmas"])
            e.evaluate()
            e.accumulate()
            e.summarize()
        return e.stats[0]

    assert ap(0.0) == pytest.approx(1.0)
    assert ap(1.5) < 0.9


def test_points_outside_the_image_are_not_visible(tmp_path, replay):
    """A border crop pushes jaw points off the image: COCO and YOLO mark them 0 0 0 and
    clip the box, by one rule."""
    from synthface.face.geometry import clipped_box, keypoint_triplets

    assert clipped_box((-3, 5, 20, 70), 64) == [0, 5, 17, 59]
    assert keypoint_triplets([(1.0, 2.0), (-1.0, 3.0), (10.0, 64.0)], 64) == [1.0, 2.0, 2, 0, 0, 0, 0, 0, 0]


def test_python_dash_m_synthface_is_the_command():
    res = subprocess.run([sys.executable, "-m", "synthface", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "synthface 0.1.0"


def test_resume_removes_the_temporaries_a_kill_left(tmp_path):
    out = tmp_path / "d"
    args = ["make-dataset", "-n", 4, "--replay-faces", FACES, "--workers", 0, "--no-progress", "--format", "csv",
            "-o", out]
    assert run_cli(*args).returncode == 0
    folder = out / "images" / "00000"
    # a kill while image 1 or a state file was written: their temporaries (.NAME.XXXX.tmp) stay behind
    (folder / ".00000001.png.k1ll3d.tmp").write_bytes(b"\x89PNG cut")
    for name in ("run.json", "journal.csv", "options.json"):
        (out / ".synthface" / f".{name}.k1ll3d.tmp").write_text("{")
    assert run_cli(*args, "--resume").returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"0000000{k}.png" for k in range(4)]
    assert not list(out.rglob("*.tmp"))
