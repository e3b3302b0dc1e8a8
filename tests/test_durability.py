"""Issue 11: never a broken dataset, every bad input one line, one writer per folder."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import FACES, FACES_300W, one_line_error, processes, run_cli, with_dlib
from synthface.face.annotate import AnnotateConfig
from synthface.errors import SynthfaceError
from synthface.dataset.make import MakeConfig, make_dataset
from synthface.generator.sampling import ReplaySampler


@pytest.fixture(scope="module")
def replay():
    return ReplaySampler(FACES, 64)


def _make(out, replay, n=20, resume=False, **kw):
    cfg = MakeConfig(n=n, workers=kw.pop("workers", 0), batch_size=kw.pop("batch_size", 8), **kw)
    return make_dataset(out, cfg, replay, resume=resume, progress=False)


def _poll(cond, proc, what: str, limit: float = 120):
    deadline = time.time() + limit
    while not cond():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.time() < deadline, f"never saw {what}"
        time.sleep(0.01)


def _rows(path: Path) -> int:
    return path.read_bytes().count(b"\n") - 1 if path.is_file() else -1


MAKE = ["-n", "120", "--landmarks", "--replay-faces", FACES, "--batch-size", "8", "--workers", "1", "--no-progress"]


@pytest.mark.slow
def test_kill_at_any_moment_any_number_of_times_then_resume(tmp_path):
    whole = tmp_path / "whole"
    assert run_cli("make-dataset", "--out", whole, *MAKE).returncode == 0
    out = tmp_path / "killed"
    state, journal = out / ".synthface", out / ".synthface" / "journal.csv"
    stages = [  # the moment, and the signal
        (lambda: state.is_dir(), signal.SIGKILL),  # before its identity is on disk
        (lambda: journal.is_file(), signal.SIGKILL),  # the journal just made: header only
        (lambda: _rows(journal) >= 1, signal.SIGTERM),
        (lambda: _rows(journal) >= 40, signal.SIGKILL),
        (lambda: _rows(journal) >= 80, signal.SIGTERM),
    ]
    for i, (moment, sig) in enumerate(stages):
        proc = subprocess.Popen([sys.executable, "-m", "synthface", "make-dataset", "--out", str(out), *map(str, MAKE),
                                 *(["--resume"] if i else [])], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        _poll(moment, proc, f"stage {i}")
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
        if sig == signal.SIGTERM:
            assert proc.returncode == 143 and err.strip().splitlines() == ["synthface: terminated"], err
        assert not (out / "labels.csv").exists()
        if journal.is_file():  # never empty, never headerless
            assert journal.read_bytes().startswith(b"index,seed,status,faces,file,x,y,w,h,score,hidden,x0,y0")
    resumed = run_cli("make-dataset", "--out", out, *MAKE, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("labels.csv", "labels.parquet", "dlib.xml", "coco.json", ".synthface/journal.csv"):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    images = sorted(p.relative_to(out) for p in (out / "images").rglob("*.png"))
    assert len(images) == 120 and not list(out.rglob("*.tmp"))
    assert all((out / p).read_bytes() == (whole / p).read_bytes() for p in images)


def test_an_empty_or_torn_journal_is_recovered(tmp_path, replay):
    out = tmp_path / "d"
    _make(out, replay, n=20)
    labels = (out / "labels.csv").read_bytes()
    journal = out / ".synthface" / "journal.csv"
    data = journal.read_bytes()
    journal.write_bytes(data[: data.index(b"\n", 2000) + 7])  # a torn row: cut mid-line
    shutil.rmtree(out / "images")
    _make(out, replay, n=20, resume=True)
    assert journal.read_bytes() == data and (out / "labels.csv").read_bytes() == labels
    journal.write_bytes(b"")  # as an older version left it when killed in its first second
    shutil.rmtree(out / "images")
    _make(out, replay, n=20, resume=True)
    assert journal.read_bytes() == data and (out / "labels.csv").read_bytes() == labels
    journal.write_bytes(data.split(b"\n", 1)[1])  # headerless: refused, not misread
    with pytest.raises(SynthfaceError, match="not a synthface journal"):
        _make(out, replay, n=20, resume=True)


@pytest.mark.parametrize("where", ["add", "finish"])
def test_a_failed_export_publishes_nothing(tmp_path, replay, monkeypatch, where):
    """Ctrl-C in the middle of the export (COCO's 5th image), or while the last writer
    finishes, when every other writer has finished: no label file changes."""
    from synthface.formats import CocoWriter, YoloWriter

    out = tmp_path / "d"
    _make(out, replay, n=10)
    before = {p: (out / p).read_bytes() for p in ("labels.csv", "labels.parquet", "dlib.xml", "coco.json",
                                                   "metadata.jsonl", "data.yaml", "labels/00000/00000000.txt")}
    real_add = CocoWriter.add

    def failing_add(self, image):
        if self.images == 4:
            raise KeyboardInterrupt
        real_add(self, image)

    def failing_finish(self):
        raise KeyboardInterrupt

    if where == "add":
        monkeypatch.setattr(CocoWriter, "add", failing_add)
    else:
        monkeypatch.setattr(YoloWriter, "finish", failing_finish)
    with pytest.raises(KeyboardInterrupt):
        _make(out, replay, n=10, resume=True)
    assert {p: (out / p).read_bytes() for p in before} == before  # the earlier files, as they were
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".part"))]
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        _make(fresh, replay, n=10)
    assert not [p.name for p in fresh.iterdir() if p.name not in (".synthface", "images")]  # no label file at all
    monkeypatch.undo()
    _make(fresh, replay, n=10, resume=True)
    assert (fresh / "labels.csv").read_bytes() == before["labels.csv"]


def _label_files(out: Path) -> dict:
    """Every file but the images, the state and the card's time, the folder's own path as OUT."""
    return {p.relative_to(out).as_posix(): p.read_bytes().replace(str(out.resolve()).encode(), b"OUT")
            for p in sorted(out.rglob("*"))
            if p.is_file() and p.suffix != ".png" and ".synthface" not in p.parts and p.name != "dataset.json"}


def test_a_parallel_export_writes_the_same_files(tmp_path, replay, monkeypatch):
    """Large exports run the per-image formats (.pts, YOLO) in a second process: the
    files are byte for byte those of one process; a re-export keeps unchanged .pts."""
    import synthface.dataset.export

    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    _make(serial, replay, n=30, annotate=AnnotateConfig(landmarks=True))
    monkeypatch.setattr(synthface.dataset.export, "PARALLEL_FROM", 1)

    def not_here(self, image):
        raise AssertionError("written in the first process")

    from synthface.formats import PtsWriter, YoloWriter

    monkeypatch.setattr(PtsWriter, "add", not_here)  # the second process is spawned: its own, real classes
    monkeypatch.setattr(YoloWriter, "add", not_here)
    _make(parallel, replay, n=30, annotate=AnnotateConfig(landmarks=True))
    files = _label_files(serial)
    assert len([f for f in files if f.endswith(".pts")]) == 30 and "labels/00000/00000029.txt" in files
    assert _label_files(parallel) == files
    pts = parallel / "images" / "00000" / "00000007.pts"
    stamp = pts.stat().st_mtime_ns
    (parallel / "labels.csv").unlink()
    _make(parallel, replay, n=30, annotate=AnnotateConfig(landmarks=True), resume=True)
    assert _label_files(parallel) == files and pts.stat().st_mtime_ns == stamp


def test_a_failure_in_the_second_export_process_publishes_nothing(tmp_path, replay, monkeypatch):
    """A .pts file that cannot be written (a folder in its place) fails the second
    process: the export raises it, and every label file is as it was."""
    import synthface.dataset.export

    out = tmp_path / "d"
    _make(out, replay, n=12, annotate=AnnotateConfig(landmarks=True))
    before = _label_files(out)
    (out / "labels.csv").unlink()
    del before["labels.csv"]
    pts = out / "images" / "00000" / "00000005.pts"
    pts.unlink()
    del before["images/00000/00000005.pts"]
    pts.mkdir()
    monkeypatch.setattr(synthface.dataset.export, "PARALLEL_FROM", 1)
    from synthface.formats import PtsWriter

    monkeypatch.setattr(PtsWriter, "add", lambda self, image: pytest.fail("written in the first process"))
    from synthface.errors import SynthfaceError

    with pytest.raises(SynthfaceError, match="00000005.pts is a folder where synthface writes a file"):
        _make(out, replay, n=12, annotate=AnnotateConfig(landmarks=True), resume=True)
    assert _label_files(out) == before and not (out / "labels.csv").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    pts.rmdir()
    monkeypatch.undo()
    _make(out, replay, n=12, annotate=AnnotateConfig(landmarks=True), resume=True)
    assert pts.read_text().startswith("version: 1\nn_points: 68\n")


@pytest.mark.slow
def test_a_second_writer_is_refused(tmp_path):
    out = tmp_path / "d"
    args = ["make-dataset", "--out", out, "-n", "3000", "--replay-faces", FACES, "--workers", "1",
            "--format", "csv", "--no-progress"]
    first = subprocess.Popen([sys.executable, "-m", "synthface", *map(str, args)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    _poll(lambda: _rows(out / ".synthface" / "journal.csv") >= 1, first, "the first run's journal")
    second = run_cli(*args, "--resume")
    one_line_error(second, f"{out} is in use by another synthface make-dataset", "pid")
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    df = pd.read_csv(out / "labels.csv")
    assert len(df) == 3000 and df["file"].is_unique and df["index"].is_monotonic_increasing


def test_the_lock_is_the_kernels(tmp_path):
    """Held by a process, refused to others; gone when the holder dies."""
    from synthface.core.files import folder_lock

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom synthface.core.files import folder_lock\n"
        f"with folder_lock({str(tmp_path / 's')!r}, 'F'):\n    print('held', flush=True)\n    time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(SynthfaceError, match=f"F is in use by another synthface run \\(pid {holder.pid}\\)"):
        with folder_lock(tmp_path / "s", "F"):
            pass
    holder.kill()
    holder.wait()
    with folder_lock(tmp_path / "s", "F"):  # no stale lock after a kill -9
        pass


def test_a_pool_whose_models_fail_to_load_ends_in_one_line():
    from synthface.core.workers import Pool

    with pytest.raises(SynthfaceError, match="a worker process could not load its models: RuntimeError: no model"):
        with Pool(2, _failing_init) as pool:
            list(pool.imap(_identity, range(8)))


def _failing_init():
    raise RuntimeError("no model here")


def _identity(context, item):
    return item


def test_align_with_a_file_that_is_not_a_predictor_is_one_line(tmp_path):
    bogus = tmp_path / "bogus.dat"
    bogus.write_bytes(b"not a shape predictor" * 100)
    res = run_cli("align", FACES_300W, tmp_path / "a", "--predictor", bogus, timeout=120)
    one_line_error(res, "is not a dlib shape predictor")
    assert not (tmp_path / "a").exists()


def test_outputs_are_checked_before_the_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    t0 = time.time()
    one_line_error(run_cli("landmarks", "train", "--dataset", FACES_300W, "-o", blocker / "m.dat"),
                    f"{blocker} is a file, not a folder")
    one_line_error(run_cli("evaluate", "--real", FACES, "-n", "10", "-o", blocker / "r.json"),
                    f"{blocker} is a file, not a folder")
    one_line_error(run_cli("sample", "-n", "4", "-o", blocker / "g.png"), f"{blocker} is a file, not a folder")
    one_line_error(run_cli("make-dataset", "-n", "4", "--out", blocker / "d", "--replay-faces", FACES),
                    f"{blocker} is a file, not a folder")
    assert time.time() - t0 < 60  # nothing was trained or evaluated first


def test_merge_takes_the_formats_any_shard_chose(tmp_path, replay):
    from synthface.dataset.merge import merge_shards

    parts = [tmp_path / "p0", tmp_path / "p1"]
    for k, part in enumerate(parts):
        _make(part, replay, n=20, num_shards=2, shard_index=k, formats=("csv", "xml", "coco"))
    for name in ("dataset.json", "labels.csv", "dlib.xml", "coco.json", "README.md"):  # p0 as if killed before export
        (parts[0] / name).unlink()
    merge_shards(parts, tmp_path / "m", progress=False)
    assert {"labels.csv", "dlib.xml", "coco.json"} <= {p.name for p in (tmp_path / "m").iterdir()}
    assert not list((tmp_path / "m").rglob("*.pts")) and not (tmp_path / "m" / "labels").exists()
    (parts[0] / "images" / "00000" / "00000000.png").unlink()  # the merged dataset's first face
    with pytest.raises(SynthfaceError, match="image\\(s\\) listed in the shards' journals are missing"):
        merge_shards(parts, tmp_path / "m2", progress=False)


def test_resume_with_a_smaller_n_leaves_no_unlabelled_images(tmp_path, replay):
    out, small = tmp_path / "d", tmp_path / "small"
    _make(out, replay, n=30)
    _make(out, replay, n=20, resume=True)
    _make(small, replay, n=20)
    assert sorted(p.name for p in (out / "images").rglob("*.png")) == [f"{k:08d}.png" for k in range(20)]
    assert (out / "labels.csv").read_bytes() == (small / "labels.csv").read_bytes()
    _make(out, replay, n=30, resume=True)  # and back up again
    assert len(pd.read_csv(out / "labels.csv")) == 30


def test_a_failed_start_leaves_no_folder(tmp_path):
    one_line_error(run_cli("train", "--data", FACES, "--out", tmp_path / "t", "--config", "tiny", "--seed", "-1"),
                    "--seed) must be from 0")
    one_line_error(run_cli("make-dataset", "-n", "5", "--out", tmp_path / "m", "--replay-faces", FACES, "--seed", "-1"),
                    "--seed must be from 0")
    one_line_error(run_cli("make-dataset", "-n", "5", "--out", tmp_path / "p", "--replay-faces", FACES,
                         "--landmarks", "--predictor", FACES / "utk_00.jpg"), "is not a dlib shape predictor")
    assert not any((tmp_path / name).exists() for name in ("t", "m", "p"))
    assert run_cli("make-dataset", "-n", "5", "--out", tmp_path / "m", "--replay-faces", FACES).returncode == 0


def test_outputs_are_never_read_back_as_inputs(tmp_path, faces_dir):
    from synthface.core.imagefiles import ImageSource

    run = faces_dir / "run"
    (run / "samples").mkdir(parents=True)
    shutil.copy(FACES / "utk_00.jpg", run / "samples" / "epoch_0001.png")
    assert len(ImageSource(faces_dir).names) == 17
    assert len(ImageSource(faces_dir, exclude=[run]).names) == 16
    # another run's folder (config.yaml beside checkpoints/) and a dataset (.synthface/) are
    # synthface's outputs, left out of the data wherever they lie inside it
    (run / "checkpoints").mkdir()
    (run / "config.yaml").write_text("model: {}\n")
    (faces_dir / "sets" / "ds" / ".synthface").mkdir(parents=True)
    shutil.copy(FACES / "utk_01.jpg", faces_dir / "sets" / "ds" / "00000000.png")
    source = ImageSource(faces_dir)
    assert len(source.names) == 16 and source.outputs == ["run", "sets/ds"]
    # align into a folder inside its source, twice: the crops are not aligned again
    src = tmp_path / "photos"
    shutil.copytree(FACES_300W, src)
    first = run_cli("align", src, src / "aligned", "--workers", "0")
    assert first.returncode == 0, first.stderr
    again = run_cli("align", src, src / "aligned", "--workers", "0", "--resume")
    assert again.returncode == 0, again.stderr
    counts = json.loads((src / "aligned" / "alignment.json").read_text())["counts"]
    assert counts["photos"] == 6 and len(list((src / "aligned").rglob("*.png"))) == counts["faces"]
    (src / "extra.jpg").write_bytes((FACES / "utk_01.jpg").read_bytes())
    one_line_error(run_cli("align", src, src / "aligned", "--resume"), "has changed since")


def test_train_refuses_to_resume_on_other_data(tmp_path, faces_dir):
    ok = run_cli("train", "--data", faces_dir, "--out", tmp_path / "run", "--config", "tiny", "--max-epochs", "1",
              "--no-progress", "data.cache_dir=")
    assert ok.returncode == 0, ok.stderr
    one_line_error(run_cli("train", "--data", FACES, "--out", tmp_path / "run", "--config", "tiny", "--max-epochs", "2",
                         "data.cache_dir="), "was trained on", "pass the same --data")
    one_line_error(run_cli("train", "--data", faces_dir, "--out", tmp_path / "run", "--config", "tiny",
                         "--max-epochs", "0", "data.cache_dir="), "must be at least 1")
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # truncated
    one_line_error(run_cli("train", "--data", faces_dir, "--out", tmp_path / "run", "--config", "tiny",
                         "--max-epochs", "2", "data.cache_dir="), "last.ckpt is damaged")


def test_a_damaged_zip_member_is_skipped_and_counted(tmp_path, caplog):
    from synthface.core.imagefiles import load_faces

    zpath = tmp_path / "faces.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(FACES.glob("*.jpg")):
            z.write(f, f.name)
    with zipfile.ZipFile(zpath) as z:
        info = z.getinfo("utk_05.jpg")
    data = bytearray(zpath.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 100: start + 400] = bytes(300)  # the member's compressed bytes, zeroed
    zpath.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="synthface"):
        faces = load_faces(zpath, 32)
    assert faces.shape == (15, 32, 32, 3)
    assert "1 unreadable or truncated image(s) skipped (e.g. utk_05.jpg)" in caplog.text


def test_preview_of_a_labels_file_missing_columns(tmp_path):
    (tmp_path / "labels.csv").write_text("file,x,y\nimages/a.png,1,2\n")
    one_line_error(run_cli("preview", tmp_path, "-o", tmp_path / "p.png"), "lacks the column(s) w, h")


def test_an_output_on_a_read_only_place_is_one_line(tmp_path):
    res = run_cli("sample", "-n", "4", "-o", "/proc/synthface-grid.png")
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "/proc" in res.stderr


def test_silently_wrong_inputs_are_errors_now(tmp_path):
    from synthface.trainers.landmarks import nme
    from synthface.formats.readers import read_pts

    text = (FACES_300W / "100032540_1.pts").read_text()
    lines = text.splitlines()
    lines[3 + 10] = "nan 5"
    (tmp_path / "bad.pts").write_text("\n".join(lines) + "\n")
    with pytest.raises(SynthfaceError, match="bad.pts: a point that is not a number"):
        read_pts(tmp_path / "bad.pts")
    truth = read_pts(FACES_300W / "100032540_1.pts")
    truth[45] = truth[36]
    with pytest.raises(SynthfaceError, match="outer eye corners .* coincide"):
        nme(truth + 1, truth, "face.jpg")
    res = run_cli("sample", "-n", "4", "-o", tmp_path / "g.jpg")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "g.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG, as the name says


@pytest.mark.slow
def test_ctrl_c_during_evaluate_is_one_line(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "synthface", "evaluate", "--real", str(FACES), "-n", "4000",
                             "--workers", "2", "--cache-dir", "", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and len(with_dlib(_children(proc.pid))) < 2:  # both workers loaded dlib
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "synthface: interrupted", err
    assert len(err.strip().splitlines()) == 1, err


def _children(pid: int) -> list:
    return processes(lambda fields: int(fields[1]) == pid)


def test_a_second_training_run_on_one_folder_is_refused(tmp_path, faces_dir):
    args = ["train", "--data", faces_dir, "--out", tmp_path / "run", "--config", "tiny", "--max-epochs", "100000",
            "--no-progress", "data.cache_dir="]
    first = subprocess.Popen([sys.executable, "-m", "synthface", *map(str, args)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        _poll(lambda: (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file(), first, "the first epoch")
        one_line_error(run_cli(*args), f"{tmp_path / 'run'} is in use by another synthface train")
    finally:
        first.kill()
        first.wait()
    again = run_cli(*args, "train.max_minutes=0.02")  # the kill left no stale lock: it resumes, 1 s more
    assert again.returncode == 0, again.stderr
