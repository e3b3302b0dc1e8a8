"""The promises every command keeps, through the CLI: no output replaces an input,
damaged journals are one line, Ctrl-C stops dlib's trainers and train at once with
`synthface: interrupted` (130), numeric options are bounded, the bundled generator's
directions are never overwritten, a merge can be run again."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import FACES, processes, run_cli, with_dlib
from synthface.face.annotate import AnnotateConfig
from synthface.dataset.make import MakeConfig, make_dataset
from synthface.generator.sampling import ReplaySampler


def _one_line(r, message):
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthface: error: ") and message in lines[0], r.stderr


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("promises") / "d"
    make_dataset(out, MakeConfig(n=12, workers=0, batch_size=8, pad=0.25, annotate=AnnotateConfig()),
                 ReplaySampler(FACES, 64), progress=False)
    return out


def test_no_output_replaces_an_input(dataset, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    before = {p: (d / p).read_bytes() for p in ("coco.json", "dlib.xml", "labels.csv")}
    _one_line(run_cli("detector", "train", "--dataset", d / "coco.json", "-o", d / "coco.svm", "--window", "32"),
              "its summary")  # coco.json would be the summary of coco.svm
    _one_line(run_cli("detector", "train", "--dataset", d / "dlib.xml", "-o", d / "dlib.xml"), "would replace an input")
    _one_line(run_cli("detector", "train", "--dataset", d, "-o", tmp_path / "model.json"), "are the same file")
    _one_line(run_cli("landmarks", "train", "--dataset", d, "-o", d / "labels.csv"), "would replace an input")
    _one_line(run_cli("landmarks", "eval", "--model", "dlib68", "--data", d, "-o", d / "labels.csv"),
              "would replace an input")
    _one_line(run_cli("detector", "eval", "--model", "dlib", "--data", d, "-o", tmp_path / "r.png", "--pr",
                      tmp_path / "r.png"), "are the same file")
    assert {p: (d / p).read_bytes() for p in before} == before


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows[:3] + rows[4:], "follows candidate"),  # a row deleted
    (lambda rows: rows[:3] + [rows[2]] + rows[3:], "follows candidate"),  # a row twice
    (lambda rows: rows[:2] + [rows[2].replace(",,", ",no_face,", 1)] + rows[3:], "kept face"),  # kept -> rejected
    (lambda rows: rows[:2] + [rows[2].replace(",", ",x", 1)] + rows[3:], "unreadable row"),
])
def test_a_damaged_journal_is_one_line_naming_the_line(dataset, tmp_path, edit, message):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    journal = d / ".synthface" / "journal.csv"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text(lines[0] + "".join(edit(lines[1:])))
    labels = (d / "labels.csv").read_bytes()
    r = run_cli("make-dataset", "-n", "14", "--landmarks", "--out", d, "--resume", "--pad", "0.25", "--replay-faces", FACES,
                "--workers", "0", "--batch-size", "8", "--no-progress")
    _one_line(r, "journal.csv, line ")
    assert message in r.stderr and "the journal is damaged" in r.stderr
    assert (d / "labels.csv").read_bytes() == labels


def test_binary_garbage_in_a_journal(dataset, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    journal = d / ".synthface" / "journal.csv"
    journal.write_bytes(journal.read_bytes() + b"\xff\xfe\x00garbage\n")
    r = run_cli("make-dataset", "-n", "14", "--landmarks", "--out", d, "--resume", "--pad", "0.25", "--replay-faces", FACES,
                "--workers", "0", "--no-progress")
    _one_line(r, "not text; the journal is damaged")


@pytest.mark.parametrize("args, message", [
    (["--threads", "100000"], "--workers must be from 0 (all cores) to 1024, got 100000"),
    (["--workers", "-1"], "--workers must be from 0 (all cores) to 1024, got -1"),
    (["--max-runtime", "nan"], "--max-runtime must be seconds"),
    (["--C", "inf"], "--C must be a number above 0, got inf"),
    (["--C", "nan"], "--C must be a number above 0, got nan"),
])
def test_detector_options_are_bounded(dataset, tmp_path, args, message):
    _one_line(run_cli("detector", "train", "--dataset", dataset, "-o", tmp_path / "d.svm", *args), message)


def test_landmarks_weights_and_empty_sets(dataset, tmp_path):
    _one_line(run_cli("landmarks", "train", "--dataset", dataset, "--weight", "0.01", "-o", tmp_path / "m.dat",
                      "--no-progress"),
              "--weight 0.01 takes no face")


def test_the_bundled_generator_s_directions_are_never_overwritten(tmp_path):
    from synthface.generator.sampling import DEFAULT_CHECKPOINT

    directions = DEFAULT_CHECKPOINT.with_name("default64.directions.json")
    before = directions.read_bytes()
    _one_line(run_cli("directions", "-n", "200"), "ships inside synthface with its directions; to fit new ones give -o")
    _one_line(run_cli("directions", "-n", "200", "-o", DEFAULT_CHECKPOINT.with_name("x.safetensors")),
              "outside the installed package")
    assert directions.read_bytes() == before


def _started(proc, ready, what, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    assert proc.poll() is None and ready(), f"{what} never started"


def _interrupt(proc) -> float:
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "synthface: interrupted", err
    return time.time() - t0


def _popen(*args):
    return subprocess.Popen([sys.executable, "-m", "synthface", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
def test_ctrl_c_stops_dlib_s_landmark_trainer_at_once(dataset, tmp_path):
    """dlib's trainer runs in a child process: Ctrl-C ends it within 2 s (it would run
    to the end otherwise), exit 130, no model written."""
    proc = _popen("landmarks", "train", "--dataset", dataset, "--dataset", dataset, "--weight", "1", "--weight", "100",
                  "--cascade-depth", "20", "--num-trees-per-cascade-level", "2000", "--oversampling-amount", "50",
                  "-o", tmp_path / "m.dat", "--no-progress")
    children = lambda: with_dlib(processes(lambda f: int(f[1]) == proc.pid))  # noqa: E731
    # the parent first reads the faces 101 times over: minutes on a loaded 2-core machine
    _started(proc, lambda: len(children()) >= 1, "the trainer's child process", timeout=400)
    time.sleep(0.5)  # well inside dlib's training
    assert _interrupt(proc) < 2.0
    assert not (tmp_path / "m.dat").exists() and not children()


@pytest.mark.slow
def test_ctrl_c_stops_train_with_one_line(tmp_path):
    from conftest import FACES as faces

    proc = _popen("train", "--data", faces, "--out", tmp_path / "run", "--config", "tiny", "--max-epochs", "100000",
                  "--no-progress", "data.cache_dir=")
    _started(proc, lambda: (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file(), "training")
    _interrupt(proc)


def test_merge_can_be_run_again_and_names_what_differs(tmp_path):
    base = ["make-dataset", "-n", "20", "--replay-faces", FACES, "--workers", "0", "--num-shards", "2",
            "--batch-size", "8", "--no-progress", "--format", "csv,coco"]
    for k in (0, 1):
        assert run_cli(*base, "--shard-index", k, "--out", tmp_path / f"p{k}").returncode == 0
    parts = [tmp_path / "p0", tmp_path / "p1"]
    assert run_cli("merge", *parts, "-o", tmp_path / "m", "--no-progress").returncode == 0
    labels = (tmp_path / "m" / "labels.csv").read_bytes()
    (tmp_path / "m" / "labels.csv").unlink()  # as an interrupted merge leaves it
    (tmp_path / "m" / "coco.json").write_text("{")
    r = run_cli("merge", *parts, "-o", tmp_path / "m", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m" / "labels.csv").read_bytes() == labels and (tmp_path / "m" / "coco.json").stat().st_size > 2
    other = tmp_path / "other"
    assert run_cli(*base[:-2], "--seed", "3", "--shard-index", 1, "--out", other).returncode == 0
    _one_line(run_cli("merge", parts[0], other, "-o", tmp_path / "m2"), "(seed differ)")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "mine.txt").write_text("keep")
    _one_line(run_cli("merge", *parts, "-o", tmp_path / "x"), "holds no merge of these shards")


def test_bad_backgrounds_are_found_before_any_face_is_made(tmp_path):
    import cv2
    import numpy as np

    bg = tmp_path / "bg"
    bg.mkdir()
    cv2.imwrite(str(bg / "ok.png"), np.full((64, 64, 3), 90, np.uint8))
    cv2.imwrite(str(bg / "tiny.png"), np.zeros((1, 1, 3), np.uint8))
    args = ["make-dataset", "--scenes", "-n", "4", "--replay-faces", FACES, "--workers", "0", "--no-progress",
            "--image-size", "128", "--face-size", "30:50", "--backgrounds", bg, "--out", tmp_path / "s"]
    _one_line(run_cli(*args), "tiny.png is 1x1 px")
    assert not (tmp_path / "s").exists()
    (bg / "tiny.png").write_bytes(b"\x89PNG garbage")
    _one_line(run_cli(*args), "tiny.png is not a readable image")
    (bg / "tiny.png").unlink()
    assert run_cli(*args).returncode == 0
    inside = bg / "out"  # a dataset inside the backgrounds folder: its own scenes are no backgrounds
    r = run_cli(*args[:-1], inside)
    assert r.returncode == 0, r.stderr
    assert run_cli(*args[:-1], inside, "--resume").returncode == 0


def test_align_that_aligns_nothing_fails(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "broken.jpg").write_bytes(b"not a jpeg")
    _one_line(run_cli("align", tmp_path / "p", tmp_path / "a", "--workers", "0", "--no-progress"),
              "no face aligned from")


def test_a_damaged_loss_csv_is_remade_on_resume(tmp_path):
    args = ["train", "--data", FACES, "--out", tmp_path / "run", "--config", "tiny", "--no-progress",
            "data.cache_dir="]
    assert run_cli(*args).returncode == 0
    (tmp_path / "run" / "loss.csv").write_text("epoch,d_loss,g_loss\ngarbage\n1,0.5\n\x00\n")
    r = run_cli(*args, "--max-epochs", "3")
    assert r.returncode == 0, r.stderr
    rows = [line.split(",") for line in (tmp_path / "run" / "loss.csv").read_text().splitlines()]
    assert rows[0] == ["epoch", "d_loss", "g_loss"] and rows[-1][0] == "3" and all(len(r) == 3 for r in rows)
    assert "3 unreadable row(s) dropped" in r.stderr


def _can_mount_tmpfs() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs a private mount namespace (unshare -m) to mount a tmpfs")
def test_a_full_disk_during_export_leaves_the_previous_labels(tmp_path):
    """A 40-face dataset on a small tmpfs, the disk then filled, and the same run asked
    to re-split (an export, no new image): one line, a non-zero exit, every label file
    as it was, no temporary left; freed again, the rerun works."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    make = (f"{sys.executable} -m synthface make-dataset -n 40 --landmarks --replay-faces {FACES} --workers 0 "
            f"--no-progress --out {mnt}/d")
    script = f"""set -e
mount -t tmpfs -o size=6m tmpfs {mnt}
{make} > /dev/null
cd {mnt}/d && md5sum labels.csv labels.parquet metadata.jsonl dlib.xml coco.json data.yaml dataset.json > {mnt}/before
dd if=/dev/zero of={mnt}/fill bs=4k 2> /dev/null || true
truncate -s -24K {mnt}/fill  # room for the small state files, not for the labels
set +e
{make} --resume --val-fraction 0.3 2> {tmp_path}/err
echo "rc=$?"
cat {tmp_path}/err
echo ---
md5sum -c --quiet {mnt}/before && echo same
find {mnt}/d -name '*.tmp' -o -name '*.part' -o -name '*.old'
echo ---
rm {mnt}/fill
{make} --resume --val-fraction 0.3 > /dev/null && echo rerun-ok
"""
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    head, checks, rerun = r.stdout.split("---\n")
    lines = head.strip().splitlines()
    assert lines[0] == "rc=1" and len(lines) == 2, r.stdout + r.stderr
    assert lines[1].startswith(f"synthface: error: writing the labels in {mnt}/d: No space left on device"), lines[1]
    assert checks.strip() == "same", checks  # no label file changed, no temporary left
    assert rerun.strip() == "rerun-ok", r.stdout + r.stderr


def test_bad_values_in_inputs_are_one_line_naming_the_file(dataset, tmp_path):
    import json

    import pandas as pd

    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    frame = pd.read_csv(d / "labels.csv")
    frame.loc[3, "w"] = float("nan")
    frame.to_csv(d / "labels.csv", index=False)
    _one_line(run_cli("landmarks", "train", "--dataset", d, "-o", tmp_path / "m.dat", "--no-progress"),
              f"{d / 'labels.csv'}, line 5: a box value that is not a number")
    frame.loc[3, "w"] = 40
    frame.loc[2, "x7"] = float("nan")
    frame.to_csv(d / "labels.csv", index=False)
    _one_line(run_cli("landmarks", "eval", "--model", "dlib68", "--data", d, "--no-progress"),
              "line 4: a landmark that is not a number")
    coco = json.loads((dataset / "coco.json").read_text())
    coco["annotations"][1]["bbox"] = [1, 2, 3]
    (d / "coco.json").write_text(json.dumps(coco))
    _one_line(run_cli("detector", "eval", "--model", "dlib", "--data", d / "coco.json", "--no-progress"),
              "annotation 2: its bbox [1, 2, 3] is not x, y, w, h")
    coco["annotations"][1]["bbox"] = "box"
    (d / "coco.json").write_text(json.dumps(coco))
    _one_line(run_cli("detector", "eval", "--model", "dlib", "--data", d / "coco.json", "--no-progress"),
              "annotation 2: no bbox of four numbers")
    png = d / frame.loc[0, "file"]
    png.write_bytes(png.read_bytes()[:60])  # a truncated PNG
    shutil.copy(dataset / "labels.csv", d / "labels.csv")
    _one_line(run_cli("landmarks", "eval", "--model", "dlib68", "--data", d, "--split", "train", "--no-progress"),
              f"cannot read image {png}")


def test_a_model_may_be_trained_again_into_the_dataset_folder(dataset, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    for _ in range(2):  # the second run replaces the model and its summary, not the dataset
        r = run_cli("landmarks", "train", "--dataset", d, "-o", d / "lm.dat", "--cascade-depth", "1",
                    "--num-trees-per-cascade-level", "5", "--no-progress")
        assert r.returncode == 0, r.stderr
    _one_line(run_cli("landmarks", "train", "--dataset", d, "-o", d / "images" / "lm.dat"), "would replace an input")
