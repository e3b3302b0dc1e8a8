"""The output guard, through the CLI: every command names what it writes before any
work, and none replaces an input, another output, or a file it did not write itself.
CASES holds one refused case per command; a new command without a plan and a case
fails test_every_command_declares_its_outputs."""

import hashlib
import shutil
import subprocess
import sys

import pytest

from conftest import FACES, FACES_300W, run_cli
from conftest import one_line_error as _one_line
from synthface.face.annotate import AnnotateConfig
from synthface.dataset.make import MakeConfig, make_dataset
from synthface.generator.sampling import DEFAULT_CHECKPOINT, ReplaySampler


def _tree(root):
    """Every file under root with its sha256: 'nothing changed on disk'."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small world a user may hold: a dataset, real photos, a zip, a generator with its
    description and directions, negatives, backgrounds, a photo of their own."""
    w = tmp_path_factory.mktemp("world")
    make_dataset(w / "ds", MakeConfig(n=6, workers=0, batch_size=8, annotate=AnnotateConfig()),
                 ReplaySampler(FACES, 64), progress=False)
    shutil.copytree(FACES, w / "real")
    shutil.make_archive(str(w / "real"), "zip", FACES)
    (w / "gen").mkdir()
    for suffix in (".safetensors", ".json", ".directions.safetensors", ".directions.json"):
        shutil.copy(DEFAULT_CHECKPOINT.with_name("default64" + suffix), w / "gen" / ("g" + suffix))
    shutil.copytree(FACES, w / "neg")
    shutil.copytree(FACES, w / "bg")
    shutil.copytree(FACES_300W, w / "300w")
    (w / "me.png").write_bytes((FACES / sorted(p.name for p in FACES.iterdir())[0]).read_bytes())
    return w


G = "{w}/gen/g.safetensors"
CASES = {
    "train": (["--data", "{w}/real", "--out", "{w}/real", "--config", "tiny"], "would replace an input"),
    "make-dataset": (["-n", "4", "--out", "{w}/real/out", "--replay-faces", "{w}/real"], "lies inside the input"),
    "preview": (["{w}/ds", "-o", "{w}/ds/images/00000/00000000.png"], "would replace an input's file"),
    "sample": (["-n", "4", "-o", "{w}/me.png"], "exists and was not written by `synthface sample`"),
    "evaluate": (["--real", "{w}/real.zip", "-o", "{w}/real.zip", "-n", "10"], "would replace an input"),
    "directions": (["--checkpoint", G, "-o", "{w}/gen/g.directions.safetensors", "-n", "200"],
                   "would replace an input"),
    "detector train": (["--dataset", "{w}/ds", "--negatives", "{w}/neg", "-o", "{w}/neg/00000.jpg"],
                       "would replace an input's file"),
    "detector mine": (["--model", "dlib", "-n", "2", "--out", "{w}/bg", "--backgrounds", "{w}/bg"],
                      "would replace an input"),
    "detector eval": (["--model", "dlib", "--data", "{w}/ds", "--pr", "{w}/me.png"],
                      "exists and was not written by `synthface detector eval`"),
    "landmarks train": (["--dataset", "{w}/300w", "-o", "{w}/gen/g.dat"], "its summary"),
    "landmarks train-cnn": (["--dataset", "{w}/300w", "-o", "{w}/300w/model.pt"], "lies inside the input"),
    "landmarks eval": (["--model", "dlib68", "--data", "{w}/300w", "--ced", "{w}/300w/100032540_1.jpg"],
                       "would replace an input's file"),
    "merge": (["{w}/ds", "-o", "{w}/ds"], "would replace an input"),
    "align": (["{w}/real", "{w}/real"], "would replace an input"),
}


def _leaf_commands():
    import argparse

    from synthface.cli.main import build_parser

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{prefix} {name}".strip())
                return
        yield prefix, parser

    return dict(walk(build_parser(), ""))


def test_every_command_declares_its_outputs():
    commands = _leaf_commands()
    assert set(commands) == set(CASES)  # a new command needs a plan (cli/plans.py) and a case here
    for name, parser in commands.items():
        assert callable(parser.get_default("plan")), name


@pytest.mark.parametrize("command", sorted(CASES))
def test_no_command_replaces_an_input_or_a_file_it_did_not_write(world, command):
    args, message = CASES[command]
    before = _tree(world)
    _one_line(run_cli(*command.split(), *[a.format(w=world) for a in args]), message)
    assert _tree(world) == before


@pytest.mark.parametrize("args, message", [
    # the report over a real photo, a zip, or the generator's own description
    (["evaluate", "--real", "{w}/real", "-o", "{w}/real/00001.jpg"], "would replace an input's file"),
    (["evaluate", "--real", "{w}/real", "--checkpoint", G, "-o", "{w}/gen/g.json"], "would replace an input"),
    # a trainer's summary X.json beside -o X.dat/.svm is named before training
    (["detector", "train", "--dataset", "{w}/ds", "-o", "{w}/gen/g.svm"], "its summary {w}/gen/g.json"),
    # a model over the user's photo, a summary over a folder
    (["landmarks", "train", "--dataset", "{w}/300w", "-o", "{w}/me.png"],
     "exists and was not written by `synthface landmarks train`"),
    (["detector", "train", "--dataset", "{w}/ds", "-o", "{w}/bg.svm"], "its summary {w}/bg.json is a folder"),
    # the copy directions makes over another generator of the user's
    (["directions", "--checkpoint", G, "-o", "{w}/other.safetensors", "-n", "200"],
     "-o {w}/other.safetensors exists and was not written by `synthface directions`"),
    # mine adds to a folder of its own negatives, not to a face set
    (["detector", "mine", "--model", "dlib", "-n", "2", "--out", "{w}/real"],
     "holds files that `synthface detector mine` did not write"),
    (["merge", "{w}/ds", "-o", "{w}"], "holds the input"),
])
def test_more_outputs_that_would_lose_data(world, args, message):
    (world / "bg.json").mkdir(exist_ok=True)
    if not (world / "other.safetensors").exists():
        (world / "other.safetensors").write_bytes(b"another generator")
    before = _tree(world)
    _one_line(run_cli(*[a.format(w=world) for a in args]), message.format(w=world))
    assert _tree(world) == before


def test_a_command_replaces_its_own_earlier_output(world, tmp_path):
    grid = tmp_path / "grid.png"
    for _ in range(2):  # the second run replaces the first run's grid
        r = run_cli("sample", "-n", "4", "-o", grid)
        assert r.returncode == 0, r.stderr
    from synthface.core.outputs import marked_by

    assert marked_by("sample")(grid) and not marked_by("preview")(grid)
    import cv2

    assert cv2.imread(str(grid)).shape == (134, 134, 3)  # the mark leaves a valid PNG


def test_an_argument_that_is_not_utf8_is_one_line(tmp_path):
    bad = bytes(tmp_path / "o") + b"/bad\xff"
    r = subprocess.run([sys.executable, "-m", "synthface", "make-dataset", "-n", "4", "--out", bad, "--replay-faces",
                        str(FACES), "--workers", "0", "--no-progress"], capture_output=True, text=True, timeout=120)
    _one_line(r, "is not valid UTF-8 text")
    assert not (tmp_path / "o").exists()


def test_an_image_is_ours_only_with_the_mark_of_the_same_command(world, tmp_path):
    grid = tmp_path / "grid.png"
    assert run_cli("sample", "-n", "4", "-o", grid).returncode == 0
    before = grid.read_bytes()
    # another command's image, or any file that merely names synthface, is not preview's
    _one_line(run_cli("preview", world / "ds", "-o", grid), "exists and was not written by `synthface preview`")
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"synthface is my favourite tool")
    _one_line(run_cli("sample", "-n", "4", "-o", notes), "exists and was not written by `synthface sample`")
    _one_line(run_cli("sample", "-n", "4", "-o", tmp_path / "g.webp"), "use one of .png, .jpg, .jpeg")
    assert grid.read_bytes() == before and notes.read_bytes() == b"synthface is my favourite tool"


def test_mine_adds_only_to_a_folder_of_its_own_negatives(world, tmp_path):
    mined = tmp_path / "mined"
    mined.mkdir()
    photo = (world / "me.png").read_bytes()
    (mined / "neg_0_0000000.jpg").write_bytes(photo)  # a user's photo named like a negative
    _one_line(run_cli("detector", "mine", "--model", "dlib", "-n", "2", "--out", mined, "--image-size", "160"),
              "holds files that `synthface detector mine` did not write")
    assert (mined / "neg_0_0000000.jpg").read_bytes() == photo


def test_directions_never_replace_vectors_they_did_not_write(world, tmp_path):
    gen = tmp_path / "gen"
    shutil.copytree(world / "gen", gen)
    (gen / "g.directions.safetensors").write_bytes(b"the user's own vectors")
    _one_line(run_cli("directions", "--checkpoint", gen / "g.safetensors", "-n", "200"),
              "the directions' vector file")
    _one_line(run_cli("directions", "--checkpoint", gen / "g.safetensors", "-o", gen / "copy.json", "-n", "200"),
              "-o must be a NAME.safetensors")
    assert (gen / "g.directions.safetensors").read_bytes() == b"the user's own vectors"


def test_resuming_a_hard_linked_copy_leaves_the_original_as_it_was(world, tmp_path):
    import os

    original = tmp_path / "orig"
    args = ["--replay-faces", FACES, "--workers", "0", "--batch-size", "8", "--no-progress"]
    assert run_cli("make-dataset", "-n", "6", "--out", original, *args).returncode == 0
    before = _tree(original)
    copy = tmp_path / "copy"
    for src in original.rglob("*"):  # cp -al: every file a second link to the original's
        dst = copy / src.relative_to(original)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
    r = run_cli("make-dataset", "-n", "9", "--out", copy, *args, "--resume")
    assert r.returncode == 0, r.stderr
    assert len((copy / "labels.csv").read_text().splitlines()) == 10
    assert _tree(original) == before


def test_usage_mistakes_are_one_line_too():
    _one_line(run_cli("make-dataset"), "the following arguments are required: -n, -o/--output/--out")
    _one_line(run_cli("make-dataset", "-n", "5", "--out", "x", "--rotate-3d", "-30:30"), "--rotate-3d=-30:30")
    _one_line(run_cli("preview", "ds", "-o", ""), "-o is empty")
    _one_line(run_cli("make-dataset", "-n", "5", "--out", "x", "--predictor", "nope.dat"),
              "--predictor goes with --landmarks")
    _one_line(run_cli(), "give a command: train, make-dataset")
    _one_line(run_cli("sample", "--bogus", "1"), "unrecognized arguments: --bogus 1; see `synthface sample --help`")
    _one_line(run_cli("align", "a", "b", "--predictor", "."), "--predictor . is a folder; give the model file")


def test_a_resume_never_loses_what_a_user_put_where_labels_go(tmp_path):
    d = tmp_path / "d"
    args = ["--replay-faces", FACES, "--workers", "0", "--batch-size", "8", "--no-progress"]
    assert run_cli("make-dataset", "-n", "6", "--out", d, *args).returncode == 0
    (d / "labels" / "notes.txt").write_text("mine")
    before = _tree(d)
    _one_line(run_cli("make-dataset", "-n", "8", "--out", d, *args, "--resume"),
              "holds labels/notes.txt, which synthface did not write")
    assert _tree(d) == before
    (d / "labels" / "notes.txt").unlink()
    (d / "coco.json").unlink()
    (d / "coco.json").mkdir()  # a folder where a label file goes: named before any work, nothing left behind
    before = _tree(d)
    _one_line(run_cli("make-dataset", "-n", "8", "--out", d, *args, "--resume"),
              f"{d / 'coco.json'} is a folder where synthface writes its labels or their card")
    assert _tree(d) == before


@pytest.mark.parametrize("trainer", ["landmarks", "detector"])
def test_an_empty_output_is_one_line(world, trainer):
    _one_line(run_cli(trainer, "train", "--dataset", world / "ds", "-o", ""), "-o is empty")


# commands that publish a user-named file, each with the file's path: a NAME.tmp already
# beside it (a user's own file, or a link to one of the command's inputs) must be left
# alone, since the temporary a command writes under is a new file of its own
TMP_CASES = {
    "preview": (["{w}/ds", "-o", "{o}/grid.png"], "grid.png"),
    "sample": (["-n", "2", "-o", "{o}/s.png"], "s.png"),
    "landmarks eval": (["--model", "dlib68", "--data", "{w}/300w", "-o", "{o}/r.json", "--ced", "{o}/ced.png"],
                       "r.json"),
}


@pytest.mark.parametrize("command", sorted(TMP_CASES))
def test_a_file_or_link_named_like_the_temporary_is_not_written_through(world, tmp_path, command):
    args, name = TMP_CASES[command]
    o = tmp_path / "o"
    o.mkdir()
    (o / (name + ".tmp")).symlink_to(world / "ds" / "labels.csv")
    (o / "ced.png.tmp").write_text("my notes\n")
    before = _tree(world)
    r = run_cli(*command.split(), *[a.format(w=world, o=o) for a in args])
    assert r.returncode == 0, r.stderr
    assert _tree(world) == before  # the linked input untouched
    assert (o / "ced.png.tmp").read_text() == "my notes\n"
    assert (o / name).is_file() and not (o / name).is_symlink() and (o / name).stat().st_size > 100
    assert sorted(p.name for p in o.iterdir() if p.name.endswith(".tmp")) == sorted({name + ".tmp", "ced.png.tmp"})


def test_a_trainers_summary_is_not_written_through_a_link_named_like_its_temporary(world, tmp_path):
    (tmp_path / "lm.json.tmp").symlink_to(world / "300w" / "100032540_1.pts")
    before = _tree(world)
    r = run_cli("landmarks", "train", "--data", world / "300w", "-o", tmp_path / "lm.dat", "--cascade-depth", "2",
                "--num-trees-per-cascade-level", "5", "--oversampling-amount", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert _tree(world) == before
    assert not (tmp_path / "lm.json").is_symlink() and '"faces"' in (tmp_path / "lm.json").read_text()


def test_an_image_a_label_file_lists_is_an_input_wherever_it_lies(world, tmp_path):
    pr = tmp_path / "plots" / "pr.png"
    assert run_cli("detector", "eval", "--model", "dlib", "--data", world / "ds", "--pr", pr).returncode == 0
    before = pr.read_bytes()  # detector eval's own plot: it may write it again, unless it is now an input
    xml = tmp_path / "labels" / "set.xml"
    xml.parent.mkdir()
    xml.write_text(f"<dataset><images><image file='{pr}'><box top='1' left='1' width='40' height='40'/></image>"
                   "</images></dataset>\n")
    _one_line(run_cli("detector", "eval", "--model", "dlib", "--data", xml, "--pr", pr),
              "would replace an input", "set.xml, which lists it")
    coco = tmp_path / "labels" / "coco.json"
    coco.write_text('{"images": [{"id": 1, "file_name": "../plots/pr.png", "width": 9, "height": 9}], '
                    '"annotations": [], "categories": []}')
    _one_line(run_cli("detector", "eval", "--model", "dlib", "--data", coco, "--pr", pr), "coco.json, which lists it")
    assert pr.read_bytes() == before


def test_written_files_get_the_umask_s_mode_not_a_temporary_s(world, tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        assert run_cli("preview", world / "ds", "-o", tmp_path / "grid.png", in_process=True).returncode == 0
        assert run_cli("make-dataset", "-n", 3, "--replay-faces", FACES, "-o", tmp_path / "d", "--workers", 0,
                       "--no-progress", "--format", "csv,yolo", in_process=True).returncode == 0
    finally:
        os.umask(mask)
    for f in (tmp_path / "grid.png", tmp_path / "d" / "dataset.json", tmp_path / "d" / "data.yaml",
              tmp_path / "d" / "README.md", tmp_path / "d" / "labels.csv"):
        assert f.stat().st_mode & 0o777 == 0o644, f
