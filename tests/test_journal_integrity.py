"""Issue 38: the journal protects its values (a check per row, chained), a resume remakes
missing or truncated images, and merge harms neither its output folder nor its shards."""

import os
import shutil
import stat

import pytest

from conftest import FACES, run_cli
from conftest import one_line_error as _one_line
from synthface.dataset.journal import CHECK_COL, row_check

MAKE = ["-n", "12", "--landmarks", "--replay-faces", FACES, "--workers", "0", "--batch-size", "8", "--no-progress",
        "--format", "csv"]
SHARD = ["-n", "20", "--replay-faces", FACES, "--workers", "0", "--batch-size", "8", "--no-progress", "--format", "csv"]


def _files(folder, cards: bool = True) -> dict:
    """Every file's bytes, but the lock (which holds the pid of its last holder) and,
    without `cards`, the dataset cards (which hold the time they were written)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "lock" and (cards or p.name not in ("dataset.json", "README.md"))}


def _rows(journal) -> tuple[list, list]:
    """The journal's header and rows as lists of fields (rows end in \\r\\n, the header in \\n)."""
    lines = journal.read_bytes().decode().split("\n")
    return lines[0].split(","), [line.rstrip("\r").split(",") for line in lines[1:-1]]


def _write_rows(journal, header, rows) -> None:
    journal.write_bytes((",".join(header) + "\n" + "".join(",".join(r) + "\r\n" for r in rows)).encode())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("integrity") / "d"
    r = run_cli("make-dataset", "--out", out, *MAKE)
    assert r.returncode == 0, r.stderr
    return out


def _resume(d):
    return run_cli("make-dataset", "--out", d, *MAKE, "--resume")


def _edit_landmark(header, rows):
    i = header.index("x17")
    rows[3][i] = f"{float(rows[3][i]) + 1:g}"


def _edit_score(header, rows):
    rows[3][header.index("score")] = "9.000000"


def _edit_hidden(header, rows):
    i = header.index("hidden")
    rows[3][i] = format(int(rows[3][i], 16) ^ 1, "x")  # point 0 hidden, or no longer


def _swap_labels(header, rows):
    """Two faces' labels swapped, their index, seed and file left: every field stays valid."""
    a, b = header.index("x"), header.index(CHECK_COL)
    rows[3][a:b], rows[4][a:b] = rows[4][a:b], rows[3][a:b]


def _edit_check(header, rows):
    rows[3][-1] = "0" * 16


@pytest.mark.parametrize("edit", [_edit_landmark, _edit_score, _edit_hidden, _swap_labels, _edit_check])
def test_a_hand_edited_value_is_one_line_naming_the_line(dataset, tmp_path, edit):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    journal = d / ".synthface" / "journal.csv"
    header, rows = _rows(journal)
    edit(header, rows)
    _write_rows(journal, header, rows)
    before = _files(d)
    _one_line(_resume(d), f"{journal}, line 5: the row's values do not match its check", "the journal is damaged")
    assert _files(d) == before


def test_a_torn_last_row_is_still_recovered(dataset, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    journal = d / ".synthface" / "journal.csv"
    whole = journal.read_bytes()
    journal.write_bytes(whole + whole.split(b"\n")[3][:100])  # a kill in the middle of an append
    r = _resume(d)
    assert r.returncode == 0, r.stderr
    assert journal.read_bytes() == whole


def test_a_journal_written_before_checks_gets_them_on_resume(dataset, tmp_path):
    """Its values are read unverified (nothing to verify them against); the resume gives
    it the checks a new run writes, byte for byte, and the same labels."""
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    journal = d / ".synthface" / "journal.csv"
    header, rows = _rows(journal)
    assert header[-1] == CHECK_COL
    _write_rows(journal, header[:-1], [r[:-1] for r in rows])
    r = _resume(d)
    assert r.returncode == 0, r.stderr
    assert _files(d, cards=False) == _files(dataset, cards=False)


def test_a_resume_remakes_missing_and_truncated_images(dataset, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    images = d / "images" / "00000"
    (images / "00000003.png").unlink()
    data = (images / "00000007.png").read_bytes()
    (images / "00000007.png").write_bytes(data[:len(data) // 2])
    (images / "00000009.png").write_bytes(b"")
    r = _resume(d)
    assert r.returncode == 0, r.stderr
    assert "3 image(s) of the journal missing or damaged (e.g. images/00000/00000003.png): made again" in r.stderr
    assert _files(d, cards=False) == _files(dataset, cards=False)


def test_an_image_that_remakes_otherwise_than_journaled_is_one_line(dataset, tmp_path):
    """A journal whose checks were made again over an edited box (a hand-written tool):
    the missing image, made again, is another face than the row labels: refused, and no
    image is written under labels it does not match."""
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    journal = d / ".synthface" / "journal.csv"
    header, rows = _rows(journal)
    rows[2][header.index("w")] = str(int(rows[2][header.index("w")]) + 3)
    check = ""
    for row in rows:
        check = row[-1] = row_check(check, row[:-1])
    _write_rows(journal, header, rows)
    (d / "images" / "00000" / "00000002.png").unlink()
    before = _files(d)
    _one_line(_resume(d), f"{d / 'images/00000/00000002.png'} is missing or damaged, and made again it is not the "
              "face the journal labels")
    assert _files(d) == before


# -- merge ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two shards of a 20-face run, the single run of the same settings, and their merge."""
    root = tmp_path_factory.mktemp("shards")
    for k in (0, 1):
        r = run_cli("make-dataset", *SHARD, "--num-shards", "2", "--shard-index", k, "--out", root / f"p{k}")
        assert r.returncode == 0, r.stderr
    r = run_cli("make-dataset", *SHARD, "--out", root / "single")
    assert r.returncode == 0, r.stderr
    r = run_cli("merge", root / "p0", root / "p1", "-o", root / "merged", "--no-progress")
    assert r.returncode == 0, r.stderr
    return root


def _copy_shards(shards, tmp_path):
    parts = [tmp_path / "p0", tmp_path / "p1"]
    for p in parts:
        shutil.copytree(shards / p.name, p)
    return parts


def test_merge_into_a_finished_run_is_refused(shards, tmp_path):
    single = tmp_path / "single"
    shutil.copytree(shards / "single", single)
    before = _files(single)
    _one_line(run_cli("merge", shards / "p0", shards / "p1", "-o", single),
              f"{single} holds a make-dataset run, not a merge")
    assert _files(single) == before


def test_a_merge_run_again_leaves_no_temporaries(shards, tmp_path):
    m = tmp_path / "m"
    shutil.copytree(shards / "merged", m, copy_function=lambda src, dst: (os.link if src.endswith(".png")
                                                                          else shutil.copy2)(src, dst))
    # its images linked to the shards', as merge made them
    r = run_cli("merge", shards / "p0", shards / "p1", "-o", m, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert not [p for p in m.rglob("*") if p.name.endswith((".tmp", ".part"))]
    assert _files(m)["labels.csv"] == (shards / "single" / "labels.csv").read_bytes()
    mark = m / ".synthface" / "merge.json"
    (mark).write_text('{"num": 2, "n": 30}\n')
    before = _files(m)
    _one_line(run_cli("merge", shards / "p0", shards / "p1", "-o", m), f"{m} holds a merge of other shards")
    assert _files(m) == before
    mark.unlink()  # a merge made before merges were marked: its card says it is one
    r = run_cli("merge", shards / "p0", shards / "p1", "-o", m, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert mark.read_text() == '{"num": 2, "n": 20}\n'


def test_merge_refuses_a_truncated_shard_image(shards, tmp_path):
    parts = _copy_shards(shards, tmp_path)
    image = parts[0] / "images" / "00000" / "00000000.png"  # the first face of all: p0 makes candidates 0-63
    image.write_bytes(image.read_bytes()[:-20])
    _one_line(run_cli("merge", *parts, "-o", tmp_path / "m"), "1 image(s) of the shards are not whole PNG files",
              str(image))
    assert not (tmp_path / "m").exists()
    r = run_cli("make-dataset", *SHARD, "--num-shards", "2", "--shard-index", "0", "--out", parts[0], "--resume")
    assert r.returncode == 0, r.stderr  # as the message says: the resume makes it again
    assert image.read_bytes() == (shards / "p0" / image.relative_to(parts[0])).read_bytes()


def test_merge_verifies_the_shards_journals(shards, tmp_path):
    parts = _copy_shards(shards, tmp_path)
    journal = parts[0] / ".synthface" / "journal.csv"
    header, rows = _rows(journal)
    rows[3][header.index("score")] = "9.000000"
    _write_rows(journal, header, rows)
    _one_line(run_cli("merge", *parts, "-o", tmp_path / "m"),
              f"{journal}, line 5: the row's values do not match its check")
    assert not (tmp_path / "m").exists()


def _stamps(folder) -> dict:
    return {p: (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def test_merge_reads_shards_without_writing_them(shards, tmp_path):
    """Shards on read-only storage (and, as root, where permissions do not bind: a torn
    last row that a writer would cut) are read and never written."""
    parts = _copy_shards(shards, tmp_path)
    journal = parts[1] / ".synthface" / "journal.csv"
    journal.write_bytes(journal.read_bytes() + b"2000,123,,1,images/000")  # a shard killed mid-append
    before = {p: _stamps(p) for p in parts}
    for p in parts:
        for f in [p, *p.rglob("*")]:
            f.chmod(f.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        r = run_cli("merge", *parts, "-o", tmp_path / "m", "--no-progress")
    finally:
        for p in parts:
            for f in [p, *p.rglob("*")]:
                f.chmod(f.stat().st_mode | stat.S_IWUSR)
    assert r.returncode == 0, r.stderr
    assert {p: _stamps(p) for p in parts} == before
    assert (tmp_path / "m" / "labels.csv").read_bytes() == (shards / "merged" / "labels.csv").read_bytes()


# -- scenes --------------------------------------------------------------------------
def test_scenes_remake_damaged_images_and_verify_the_faces_journal(tmp_path):
    import cv2
    import numpy as np

    bg = tmp_path / "bg"
    bg.mkdir()
    cv2.imwrite(str(bg / "grey.png"), np.full((64, 64, 3), 90, np.uint8))
    out = tmp_path / "s"
    args = ["make-dataset", "--scenes", "-n", "4", "--replay-faces", FACES, "--workers", "0", "--no-progress",
            "--image-size", "128", "--face-size", "30:50", "--backgrounds", bg, "--format", "csv", "--out", out]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    made = _files(out, cards=False)
    scene, face = out / "images" / "00000" / "00000000.jpg", out / ".synthface" / "faces" / "images" / "00000" / \
        "00000001.png"
    scene.write_bytes(scene.read_bytes()[:-100])
    face.unlink()
    r = run_cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert _files(out, cards=False) == made
    journal = out / ".synthface" / "faces" / ".synthface" / "journal.csv"
    header, rows = _rows(journal)
    _edit_landmark(header, rows)
    _write_rows(journal, header, rows)
    before = _files(out)
    _one_line(run_cli(*args, "--resume"), f"{journal}, line 5: the row's values do not match its check")
    assert _files(out) == before
