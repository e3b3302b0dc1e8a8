"""Through the CLI: a worker process that dies (killed when memory runs out, a crash) is
one line in every pool, never a hang, and the folder resumes; a closed terminal's SIGHUP
is one line; a damaged align journal is one line naming the line, a damaged evaluate
cache is computed again; an image cut off before its end is one line naming it wherever
it is read, and a name that is not UTF-8 is read like any other."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import FACES, FACES_300W, processes, run_cli, with_dlib
from conftest import one_line_error as _one_line


def _start(*args):
    return subprocess.Popen([sys.executable, "-m", "synthface", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(proc, ready, what, timeout=120):
    """Poll until `ready()` returns something true; that value."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = ready()
        if found:
            return found
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"{what} never came (exit code {proc.poll()}): {proc.communicate()[1]}")


def _children(proc) -> list[str]:
    return processes(lambda f: int(f[1]) == proc.pid)


def _spawned(proc) -> list[str]:
    """proc's worker processes (spawned by multiprocessing; not its resource tracker)."""
    def spawned(pid):
        try:
            return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
    return [p for p in _children(proc) if spawned(p)]


def _ended(proc, timeout=60) -> str:
    """proc's stderr once it ends, which it must within `timeout` seconds (no hang)."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"still running {timeout} s after its worker died: a hang")


def _died(proc, err):
    lines = err.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, err
    assert lines[0].startswith("synthface: error: a worker process died (killed by signal 9, SIGKILL: out of "
                               "memory?); run the same command with --resume to continue"), err


@pytest.fixture
def photos(tmp_path):
    """120 photos (links to the 16 fixture faces): a few seconds of align on one worker."""
    src = tmp_path / "photos"
    src.mkdir()
    faces = sorted(FACES.glob("*.jpg"))
    for i in range(120):
        (src / f"{i:03d}.jpg").symlink_to(faces[i % len(faces)])
    return src


@pytest.mark.slow
def test_align_notices_a_killed_worker_and_resumes(photos, tmp_path):
    dst = tmp_path / "a"
    args = ["align", photos, dst, "--workers", "1", "--size", "32", "--no-progress"]
    proc = _start(*args)
    journal = dst / ".synthface" / "align-journal.jsonl"
    # past its start and into the photos: the chunk it holds would never come back
    worker = _wait_for(proc, lambda: journal.is_file() and journal.stat().st_size and with_dlib(_spawned(proc)),
                       "align's worker at work")[0]
    os.kill(int(worker), signal.SIGKILL)
    _died(proc, _ended(proc))
    assert 0 < len(journal.read_text().splitlines()) < 120
    r = run_cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    faces = json.loads((dst / "alignment.json").read_text())["faces"]
    assert [f["source"] for f in faces] == [f"{i:03d}.jpg" for i in range(120)]
    assert [f["file"] for f in faces] == [f"00000/{k:05d}.png" for k in range(120)]
    assert all(cv2.imread(str(dst / f["file"])).shape == (32, 32, 3) for f in faces)


@pytest.mark.slow
def test_scenes_notice_a_killed_worker_and_resume(tmp_path):
    out = tmp_path / "s"
    # 300 scenes are several seconds of one worker's time: killed in the middle of them, not after
    # (30 once finished before the kill landed on a busy machine, and the run rightly succeeded)
    args = ["make-dataset", "--scenes", "-n", "300", "--faces-per-image", "1:1", "--groups", "0", "--replay-faces", FACES,
            "--workers", "1", "--no-progress", "--format", "csv", "--out", out]
    proc = _start(*args)
    # the faces are made (in this process: one worker is a thread), then a process composes the scenes
    _wait_for(proc, lambda: (out / ".synthface" / "faces" / "dataset.json").is_file(), "the faces")
    worker = _wait_for(proc, lambda: _spawned(proc), "the scenes' worker")[0]
    _wait_for(proc, lambda: any((out / "images").rglob("*.jpg")), "the first scene")
    os.kill(int(worker), signal.SIGKILL)
    _died(proc, _ended(proc))
    assert not (out / "labels.csv").exists()
    assert 0 < len(list((out / "images").rglob("*.jpg"))) < 300
    r = run_cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    rows = (out / "labels.csv").read_text().splitlines()
    assert len(rows) == 301 and len(list((out / "images").rglob("*.jpg"))) == 300


@pytest.mark.slow
def test_make_dataset_notices_a_killed_worker_and_resumes(tmp_path):
    out = tmp_path / "d"
    args = ["make-dataset", "-n", "1000", "--replay-faces", FACES, "--workers", "2", "--no-progress",
            "--format", "csv", "--out", out]
    proc = _start(*args)  # a thread of its own and one process, which joins once it has loaded dlib
    worker = _wait_for(proc, lambda: with_dlib(_spawned(proc)), "make-dataset's worker process")[0]
    os.kill(int(worker), signal.SIGKILL)
    _died(proc, _ended(proc))
    assert not (out / "labels.csv").exists()
    r = run_cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert len((out / "labels.csv").read_text().splitlines()) == 1001


@pytest.mark.slow
@pytest.mark.parametrize("to", ["group", "parent"])
def test_a_closed_terminal_s_sighup_is_one_line(photos, tmp_path, to):
    """A closed terminal hangs up its whole process group; a hang-up of the parent alone
    once left its workers printing tracebacks on a broken pipe."""
    dst = tmp_path / "a"
    proc = _start("align", photos, dst, "--workers", "1", "--size", "32", "--no-progress")
    journal = dst / ".synthface" / "align-journal.jsonl"
    workers = _wait_for(proc, lambda: journal.is_file() and journal.stat().st_size and with_dlib(_spawned(proc)),
                        "align's worker at work")
    (os.killpg if to == "group" else os.kill)(proc.pid, signal.SIGHUP)
    err = _ended(proc)
    assert proc.returncode == 129 and err.strip().splitlines() == ["synthface: terminated (hangup)"], err
    assert not set(workers) & set(processes(lambda f: True))  # ended by the parent, not left behind


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    """A finished align run of the 16 fixture faces."""
    dst = tmp_path_factory.mktemp("align") / "a"
    r = run_cli("align", FACES, dst, "--workers", "0", "--size", "32", "--no-progress")
    assert r.returncode == 0, r.stderr
    return dst


def _snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "lock"}


@pytest.mark.parametrize("edit, message", [
    (lambda lines: lines[:2] + [b"{\"photo\": 2, \"stat"] + lines[3:], "line 3: not a JSON record"),
    (lambda lines: lines[:4] + [b"\x00\xff\xfe garbage"] + lines[5:], "line 5: not a JSON record"),
    (lambda lines: lines[:1] + lines[2:], "line 2: the record of photo 2, not 1"),
    (lambda lines: lines[:3] + [lines[3].replace(b"00003.png", b"00009.png")] + lines[4:],
     "line 4: face 3 is not 00000/00003.png"),
    (lambda lines: lines[:3] + [lines[3].replace(b'"status": ""', b'"status": "fine"')] + lines[4:],
     "line 4: unknown status 'fine'"),
    (lambda lines: lines + [b"[]"], "line 17: not a photo's record"),
])
def test_a_damaged_align_journal_is_one_line_naming_the_line(aligned, tmp_path, edit, message):
    dst = tmp_path / "a"
    shutil.copytree(aligned, dst)
    journal = dst / ".synthface" / "align-journal.jsonl"
    journal.write_bytes(b"\n".join(edit(journal.read_bytes().splitlines())) + b"\n")
    before = _snapshot(dst)
    _one_line(run_cli("align", FACES, dst, "--workers", "0", "--size", "32", "--resume", "--no-progress"),
              f"{journal}, {message}", "the align journal is damaged")
    assert _snapshot(dst) == before


def test_a_torn_last_line_of_the_align_journal_is_dropped_and_made_again(aligned, tmp_path):
    dst = tmp_path / "a"
    shutil.copytree(aligned, dst)
    journal = dst / ".synthface" / "align-journal.jsonl"
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-40])  # killed while writing the last photo's record
    r = run_cli("align", FACES, dst, "--workers", "0", "--size", "32", "--resume", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert journal.read_bytes() == whole
    assert (dst / "alignment.json").read_bytes() == (aligned / "alignment.json").read_bytes()


def test_a_damaged_evaluate_cache_is_computed_again(tmp_path):
    cache = tmp_path / "cache"
    args = ["evaluate", "--real", FACES, "-n", "4", "--workers", "0", "--cache-dir", cache, "--no-progress"]
    r = run_cli(*args, "-o", tmp_path / "r1.json")
    assert r.returncode == 0, r.stderr
    npz, npy = next(cache.glob("descriptors-*.npz")), next(cache.glob("faces-*.npy"))
    whole = {p: p.read_bytes() for p in cache.iterdir()}
    npz.write_bytes(whole[npz][:len(whole[npz]) // 2])  # cut off
    npy.with_suffix(".json").write_text("{")
    r = run_cli(*args, "-o", tmp_path / "r2.json")
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 2 and f"{npz} is damaged" in warnings[0] and \
        f"{npy.with_suffix('.json')} is damaged" in warnings[1], r.stderr
    assert (tmp_path / "r2.json").read_bytes() == (tmp_path / "r1.json").read_bytes()

    def made_again_whole():  # the .npz's zip holds the time it was written
        with np.load(npz) as z, np.load(io.BytesIO(whole[npz])) as before:
            assert all(np.array_equal(z[k], before[k]) for k in ("found", "desc"))
        assert all(p.read_bytes() == whole[p] for p in (npy, npy.with_suffix(".json")))

    made_again_whole()
    npy.write_bytes(b"\x93NUMPY garbage")
    npz.write_bytes(b"")
    r = run_cli(*args)
    assert r.returncode == 0 and r.stderr.count("is damaged") == 2, r.stderr
    made_again_whole()


def test_incomplete_files_are_told_from_whole_ones():
    from synthface.core.imagefiles import is_incomplete

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 160, 3), np.uint8)
    thumb = cv2.imencode(".jpg", img[:40, :40])[1].tobytes()
    exif = b"Exif\x00\x00" + thumb  # an EXIF thumbnail: a whole JPEG, EOI included, inside APP1
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    files = {"jpg": cv2.imencode(".jpg", img)[1].tobytes(),
             "progressive": cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes(),
             "restarts": cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_RST_INTERVAL, 1])[1].tobytes(),
             "png": cv2.imencode(".png", img)[1].tobytes(), "webp": cv2.imencode(".webp", img)[1].tobytes()}
    jpg = files["jpg"]
    files["exif"] = jpg[:2] + app1 + jpg[2:]
    for name, data in files.items():
        assert not is_incomplete(data), name
        assert not is_incomplete(data + b"\x00" * 7), name  # padding
        assert not is_incomplete(data + b"....mp4 of a motion photo" * 50), name
        for cut in range(12, len(data), 211):
            assert is_incomplete(data[:cut]), (name, cut)
    assert not is_incomplete(b"BM bitmaps have no end to check")


@pytest.fixture(scope="module")
def landmark_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "d"
    r = run_cli("make-dataset", "-n", "12", "--landmarks", "--replay-faces", FACES, "--workers", "0",
                "--batch-size", "8", "--format", "csv", "--no-progress", "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def test_a_cut_off_image_is_one_line_in_landmarks_train(landmark_set, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(landmark_set, d)
    png = d / "images" / "00000" / "00000003.png"
    png.write_bytes(png.read_bytes()[:-100])
    _one_line(run_cli("landmarks", "train", "--dataset", d, "-o", tmp_path / "m.dat", "--cascade-depth", "1",
                      "--num-trees-per-cascade-level", "5", "--split", "all", "--no-progress"),
              f"cannot read image {png}: the file is incomplete (cut off before its end)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def _backgrounds(tmp_path) -> tuple[Path, Path]:
    bg = tmp_path / "bg"
    bg.mkdir()
    photo = cv2.imencode(".jpg", np.random.default_rng(1).integers(0, 256, (200, 200, 3), np.uint8))[1].tobytes()
    (bg / "a.jpg").write_bytes(photo)
    (bg / "b.jpg").write_bytes(photo[:len(photo) // 2])  # a copy that stopped half-way
    return bg, bg / "b.jpg"


def test_cut_off_backgrounds_are_found_before_any_work(tmp_path):
    bg, bad = _backgrounds(tmp_path)
    _one_line(run_cli("make-dataset", "--scenes", "-n", "4", "--replay-faces", FACES, "--workers", "0",
                      "--image-size", "128", "--face-size", "30:50", "--backgrounds", bg, "--no-progress",
                      "--out", tmp_path / "s"), str(bad), "cut off")
    _one_line(run_cli("detector", "mine", "--model", "dlib", "-n", "4", "--image-size", "128",
                      "--backgrounds", bg, "--no-progress", "--out", tmp_path / "neg"), str(bad), "cut off")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bg"]


def test_names_that_are_not_utf8_are_read(tmp_path):
    """OpenCV's imread crashes on such a name (a segfault in a worker, or in the command)."""
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/photos/bad\xff"))
    folder.mkdir(parents=True)
    for f in sorted(FACES_300W.glob("1002681492_1.*")):
        shutil.copy(f, folder / f.name)
    r = run_cli("landmarks", "eval", "--model", "dlib68", "--data", folder.parent, "--no-progress")
    assert r.returncode == 0 and "1 of 1 faces scored" in r.stdout, r.stderr
    r = run_cli("align", folder.parent, tmp_path / "a", "--workers", "1", "--size", "32", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "a" / "alignment.json").read_text())["counts"]["faces"] == 1
