"""Defects a hostile tester found (issue 38), each through the CLI with small n: stale
label files after a resume with fewer formats, align's resume and journal, damaged
journals and run records, COCO files that crashed the reader, and options that were
silently taken. Each refusal is one line, exit 1, nothing changed on disk."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import FACES, FACES_300W, run_cli
from conftest import one_line_error as _one_line

FORMAT_FILES = ["coco.json", "dlib.xml", "metadata.jsonl", "labels.parquet", "data.yaml", "trainset.txt",
                "valset.txt", "labels"]


def _tree(root):
    """Every file under root with its sha256: 'nothing changed on disk' (but the lock
    file, which holds the pid of the last run that took it)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*")) if p.relative_to(root) != Path(".synthface/lock")}


def _make(out, *extra):
    return run_cli("make-dataset", "--landmarks", "--replay-faces", FACES, "--workers", "0", "--no-progress",
                   "--out", out, *extra)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """10 faces with landmarks, every format."""
    out = tmp_path_factory.mktemp("made") / "ds"
    r = _make(out, "-n", "10")
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture
def copy(dataset, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(dataset, out)
    return out


# -- 1. a resume with a narrower --format ------------------------------------------------
def test_a_resume_with_fewer_formats_removes_the_labels_it_no_longer_writes(copy):
    (copy / "images" / "00000" / "notes.pts").write_text("the user's own")  # not a name the writer gives
    (copy / "coco.json.bak").write_text("the user's own")
    assert all((copy / name).exists() for name in FORMAT_FILES) and len(list(copy.rglob("0*.pts"))) == 10
    r = _make(copy, "-n", "12", "--resume", "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert "removed the parquet, hf, xml, pts, coco, yolo labels of an earlier export" in r.stderr
    assert not [name for name in FORMAT_FILES if (copy / name).exists()]
    assert not list(copy.rglob("0*.pts"))
    assert (copy / "images" / "00000" / "notes.pts").read_text() == "the user's own"
    assert (copy / "coco.json.bak").read_text() == "the user's own"
    assert len((copy / "labels.csv").read_text().splitlines()) == 13
    assert len(list((copy / "images").rglob("*.png"))) == 12
    assert json.loads((copy / "dataset.json").read_text())["files"]["formats"] == ["csv"]
    # and all of them again when asked for
    r = _make(copy, "-n", "12", "--resume")
    assert r.returncode == 0 and "removed" not in r.stderr, r.stderr
    assert all((copy / name).exists() for name in FORMAT_FILES) and len(list(copy.rglob("0*.pts"))) == 12


def test_a_failed_export_leaves_the_previous_labels_of_every_format(copy):
    from synthface.dataset.export import face_schema
    from synthface.formats import write_labels

    def failing():
        raise RuntimeError("the disk went away")
        yield

    before = _tree(copy)
    with pytest.raises(RuntimeError):
        write_labels(copy, face_schema(True), failing(), ("csv",))
    assert _tree(copy) == before


# -- 2. align ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    src = tmp_path_factory.mktemp("photos") / "src"
    src.mkdir()
    for f in sorted(FACES_300W.glob("*.jpg"))[:3]:
        shutil.copy(f, src)
    import cv2

    cv2.imwrite(str(src / "wall.png"), np.full((120, 120, 3), 128, np.uint8))
    return src


@pytest.fixture(scope="module")
def aligned(photos, tmp_path_factory):
    dst = tmp_path_factory.mktemp("aligned") / "dst"
    r = run_cli("align", photos, dst, "--size", "64", "--workers", "0", "--no-progress")
    assert r.returncode == 0, r.stderr
    return dst


def _align(photos, dst, *extra):
    return run_cli("align", photos, dst, "--size", "64", "--workers", "0", "--no-progress", *extra)


def test_align_resume_remakes_a_deleted_or_cut_off_image(photos, aligned, tmp_path):
    dst = tmp_path / "dst"
    shutil.copytree(aligned, dst)
    before = _tree(dst)
    (dst / "00000" / "00000.png").unlink()
    cut = dst / "00000" / "00002.png"
    cut.write_bytes(cut.read_bytes()[:200])
    r = _align(photos, dst, "--resume")
    assert r.returncode == 0, r.stderr
    assert "2 aligned image(s) missing or damaged" in r.stderr
    assert _tree(dst) == before  # the same crops, under the same names


def _sign_align_journal(journal):
    """Give every record of an align journal the check a run that wrote these values
    would have given it (a journal edited here, to stand for another dlib's output)."""
    from synthface.generator.align import record_check

    check, lines = "", []
    for text in journal.read_text().splitlines():
        rec = json.loads(text)
        rec["check"] = check = record_check(check, rec)
        lines.append(json.dumps(rec))
    journal.write_text("\n".join(lines) + "\n")


def test_align_resume_refuses_an_image_it_cannot_make_again(photos, aligned, tmp_path):
    dst = tmp_path / "dst"
    shutil.copytree(aligned, dst)
    journal = dst / ".synthface" / "align-journal.jsonl"
    lines = journal.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["faces"][0]["landmarks"][0][0] += 1.0  # the journal says another face than dlib finds there
    journal.write_text("\n".join([lines[0], json.dumps(rec), *lines[2:]]) + "\n")
    _sign_align_journal(journal)  # as that other dlib's run would have written it
    (dst / "00000" / "00001.png").unlink()
    before = _tree(dst)
    _one_line(_align(photos, dst, "--resume"), "00000/00001.png is missing or damaged", "aligned again",
              "restore the image")
    assert _tree(dst) == before


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400", "1e300", '"97"'])
def test_a_number_in_the_align_journal_that_is_not_a_sane_number_is_refused(photos, aligned, tmp_path, value):
    dst = tmp_path / "dst"
    shutil.copytree(aligned, dst)
    journal = dst / ".synthface" / "align-journal.jsonl"
    lines = journal.read_text().splitlines()
    lines[1] = re.sub(r'"box": \[[^,]+', f'"box": [{value}', lines[1], count=1)  # the box's x
    journal.write_text("\n".join(lines) + "\n")
    before = _tree(dst)
    _one_line(_align(photos, dst, "--resume"), f"{journal}, line 2: face 1's box is not 4 numbers")
    assert _tree(dst) == before


def test_align_that_finds_no_face_leaves_no_folder(photos, tmp_path):
    wall = photos / "wall.png"
    _one_line(_align(wall, tmp_path / "new"), "no face aligned")
    assert not (tmp_path / "new").exists()
    _one_line(_align(wall, tmp_path / "a" / "b"), "no face aligned")  # nor the folders above it it made
    assert not (tmp_path / "a").exists()
    (tmp_path / "empty").mkdir()
    _one_line(_align(wall, tmp_path / "empty"), "no face aligned")  # the same line again, not "not empty"
    _one_line(_align(wall, tmp_path / "empty"), "no face aligned")
    assert list((tmp_path / "empty").iterdir()) == []


# -- 3. a journal of random bytes is refused, never cut -----------------------------------
RANDOM = np.random.default_rng(38).bytes(3000)


@pytest.mark.parametrize("how", ["replaced", "appended", "appended without a newline"])
def test_random_bytes_in_the_journal_are_refused_and_left_as_they_are(copy, how):
    journal = copy / ".synthface" / "journal.csv"
    garbage = RANDOM.replace(b"\n", b"") if how == "appended without a newline" else RANDOM
    journal.write_bytes(garbage if how == "replaced" else journal.read_bytes() + garbage)
    before = _tree(copy)
    line = 1 if how == "replaced" else 12
    _one_line(_make(copy, "-n", "10", "--resume"), f"journal.csv, line {line}: not text")
    assert _tree(copy) == before


def test_random_bytes_in_the_align_journal_are_refused_and_left_as_they_are(photos, aligned, tmp_path):
    dst = tmp_path / "dst"
    shutil.copytree(aligned, dst)
    journal = dst / ".synthface" / "align-journal.jsonl"
    journal.write_bytes(journal.read_bytes() + RANDOM)
    before = _tree(dst)
    _one_line(_align(photos, dst, "--resume"), "align-journal.jsonl, line 5: not a JSON record")
    assert _tree(dst) == before


def test_a_torn_text_row_is_still_cut(copy):
    journal = copy / ".synthface" / "journal.csv"
    whole = journal.read_bytes()
    journal.write_bytes(whole + b"10,12345,no_fa")  # a kill in the middle of a row
    r = _make(copy, "-n", "10", "--resume")
    assert r.returncode == 0, r.stderr
    assert journal.read_bytes() == whole


# -- 4. run.json that is JSON but no run record -------------------------------------------
@pytest.mark.parametrize("text", ["[1, 2]", "null", '"a run"', "7"])
def test_run_json_that_is_not_an_object_is_one_line(copy, text):
    (copy / ".synthface" / "run.json").write_text(text + "\n")
    before = _tree(copy)
    _one_line(_make(copy, "-n", "10", "--resume"), "run.json is damaged (not a run record)")
    assert _tree(copy) == before


# -- 5. readers' messages -------------------------------------------------------------------
IMAGE = {"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}
ANN = {"id": 1, "image_id": 1, "bbox": [1, 2, 30, 30]}


def _coco(images, anns="[]"):
    return f'{{"images": {images}, "annotations": {anns}}}'


@pytest.mark.parametrize("text, words", [
    (_coco('[{"id": 1, "file_name": "a.jpg", "width": 1e400, "height": 100}]'),
     "image 1: its width Infinity is not a whole number of pixels from 1 to 100,000"),
    (_coco('[{"id": 1, "file_name": "a.jpg", "width": 100, "height": NaN}]'), "image 1: its height NaN is not"),
    (_coco('[{"id": 1, "file_name": "a.jpg", "width": -5, "height": 100}]'), "image 1: its width -5 is not"),
    (_coco('[{"id": 1, "file_name": "a.jpg", "width": "wide", "height": 100}]'), 'image 1: its width "wide" is not'),
    (_coco('[{"id": 1, "file_name": 5}]'), "image 1: its file_name 5 is not a file name (text)"),
    (_coco(json.dumps([IMAGE]), json.dumps([{"image_id": 1, "bbox": [1, 2, 3]}])),
     'annotation 1 of "annotations" (it has no id): its bbox [1, 2, 3] is not x, y, w, h'),
    (_coco(json.dumps([IMAGE]), json.dumps([ANN, {**ANN, "id": 2, "score": "high"}])),
     'annotation 2: its score "high" is not a number'),
    ("[1, 2]", 'not a COCO json file (no "images" and "annotations" lists)'),
])
def test_a_damaged_coco_file_is_one_line_in_plain_words(tmp_path, text, words):
    coco = tmp_path / "coco.json"
    coco.write_text(text)
    before = _tree(tmp_path)
    line = _one_line(run_cli("detector", "eval", "--model", "dlib", "--data", coco, "--no-progress"),
                     f"{coco}: {words}")
    assert "Error" not in line and "annotation ?" not in line and "PosixPath" not in line
    assert _tree(tmp_path) == before


def test_a_stray_line_break_in_the_journal_is_named(copy):
    journal = copy / ".synthface" / "journal.csv"
    journal.write_bytes(journal.read_bytes() + b"10,1\r2,no_face,0,\r\n")
    before = _tree(copy)
    _one_line(_make(copy, "-n", "10", "--resume"), "journal.csv, line 12: not a journal row (a stray line break)")
    assert _tree(copy) == before


def test_a_cut_off_shape_predictor_is_one_closed_line(photos, tmp_path):
    from synthface.face.annotate import model_path

    dat = tmp_path / "cut.dat"
    dat.write_bytes(model_path("landmarks68").read_bytes()[:100_000])
    line = _one_line(_align(photos, tmp_path / "dst", "--predictor", dat), f"{dat} is not a dlib shape predictor")
    assert line.endswith(")") and line.count("(") == line.count(")")
    assert not (tmp_path / "dst").exists()


def test_align_refuses_an_empty_predictor(photos, tmp_path):
    _one_line(_align(photos, tmp_path / "dst", "--predictor", ""), "--predictor '' is empty")
    assert not (tmp_path / "dst").exists()


# -- align's journal: each record's check (chained, as make-dataset's rows) -----------------------
def _source_of_photo_0(lines, n):
    """Line n's source made photo 0's (another photo's name)."""
    source = json.loads(lines[0])["faces"][0]["source"]
    return re.sub(r'"source": "[^"]+"', f'"source": "{source}"', lines[n - 1], count=1)


@pytest.mark.parametrize("line, edit", [
    (3, lambda lines, n: re.sub(r'"landmarks": \[\[[^,]+', '"landmarks": [[-5.0', lines[n - 1], count=1)),
    (2, lambda lines, n: re.sub(r'"box": \[[^]]+\]', '"box": [1, 2, 3, 4]', lines[n - 1], count=1)),
    (2, _source_of_photo_0),
], ids=["landmark", "box", "source"])
def test_a_hand_edited_value_in_the_align_journal_is_refused_by_its_check(photos, aligned, tmp_path, line, edit):
    dst = tmp_path / "dst"
    shutil.copytree(aligned, dst)
    journal = dst / ".synthface" / "align-journal.jsonl"
    lines = journal.read_text().splitlines()
    edited = edit(lines, line)
    assert edited != lines[line - 1] and json.loads(edited)["check"] == json.loads(lines[line - 1])["check"]
    lines[line - 1] = edited
    journal.write_text("\n".join(lines) + "\n")
    before = _tree(dst)
    _one_line(_align(photos, dst, "--resume"), f"{journal}, line {line}: the record's values do not match its "
              "check (edited by hand", "the align journal is damaged")
    assert _tree(dst) == before


def test_a_removed_check_in_the_align_journal_is_refused(photos, aligned, tmp_path):
    dst = tmp_path / "dst"
    shutil.copytree(aligned, dst)
    journal = dst / ".synthface" / "align-journal.jsonl"
    lines = journal.read_text().splitlines()
    rec = json.loads(lines[2])
    del rec["check"]  # a record after checked ones: its edits would go unchecked
    lines[2] = json.dumps(rec)
    journal.write_text("\n".join(lines) + "\n")
    before = _tree(dst)
    _one_line(_align(photos, dst, "--resume"), f"{journal}, line 3: the record has no check")
    assert _tree(dst) == before


def test_an_align_journal_from_before_checks_resumes_and_its_new_records_are_checked(photos, aligned, tmp_path):
    dst = tmp_path / "dst"
    shutil.copytree(aligned, dst)
    journal = dst / ".synthface" / "align-journal.jsonl"
    records = [json.loads(text) for text in journal.read_text().splitlines()]
    assert all(len(rec.pop("check")) == 16 for rec in records)
    journal.write_text("".join(json.dumps(rec) + "\n" for rec in records[:2]))  # two photos done, no checks
    (dst / "alignment.json").unlink()
    r = _align(photos, dst, "--resume")
    assert r.returncode == 0, r.stderr
    assert (dst / "alignment.json").read_bytes() == (aligned / "alignment.json").read_bytes()
    lines = journal.read_text().splitlines()
    assert [json.loads(text) for text in lines[:2]] == records[:2]  # read as they were, not rewritten
    assert "check" in json.loads(lines[2]) and "check" in json.loads(lines[3])  # the chain starts at photo 2
    lines[2] = re.sub(r'"box": \[[^]]+\]', '"box": [1, 2, 3, 4]', lines[2], count=1)
    journal.write_text("\n".join(lines) + "\n")
    before = _tree(dst)
    _one_line(_align(photos, dst, "--resume"), f"{journal}, line 3: the record's values do not match its check")
    assert _tree(dst) == before
