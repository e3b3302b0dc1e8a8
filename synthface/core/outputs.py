"""What a command writes, named and checked before it does any work.

Every command of the CLI declares its plan (`Plan`: the outputs it will write, every
side file included, and the inputs it reads); `check_plan` refuses, in one line and
before anything is made:
- an output that is an input, a file an input folder is made of (a dataset's labels, an
  image, a .pts), or a folder inside an input folder (or holding one), through symlinks;
- two outputs that are the same file;
- an existing file that this command did not write itself. Each output says how to
  recognise its own earlier file (`ours`): a JSON file by its "format" field, an image
  by the synthface mark that `mark_image` puts in it, a model by the sha256 its summary
  records, a copy by its bytes. Anything else (a photo, a generator's description, a
  README) is the user's and is never replaced;
- a place that cannot be written (a file where its folder should be, no permission).
Nothing is created by the check itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from synthface.errors import SynthfaceError

MARK_FORMATS = (".png", ".jpg", ".jpeg")  # image outputs that can carry the mark (mark_image)

# The "format" field of each JSON file a command writes, by which it knows its own.
LANDMARKS_MODEL = "synthface-landmarks-model/1"  # landmarks train's summary beside its .dat
DETECTOR_MODEL = "synthface-detector-model/1"  # detector train's summary beside its .svm
LANDMARKS_REPORT = "synthface-landmarks-report/1"  # landmarks eval -o
DETECTOR_REPORT = "synthface-detector-report/1"  # detector eval -o
GENERATOR_REPORT = "synthface-generator-report/1"  # evaluate -o
DIRECTIONS = "synthface-directions/1"  # directions' NAME.directions.json


@dataclass(frozen=True)
class Output:
    """One path a command writes. `what` names it in messages ("-o", "its summary");
    `ours(path)` says whether an existing file there is one this command wrote (then it
    may be replaced; None: never replace). `folder`: a folder the command fills, whose
    own checks (new, empty, or a run to resume) decide what may already be in it;
    `ours` then, when given, must accept an existing non-empty folder.
    `nested_in`: input folders this folder may lie inside (the command leaves it out of
    what it reads there)."""

    path: object
    what: str
    ours: Callable[[Path], bool] | None = None
    folder: bool = False
    nested_in: tuple = ()


@dataclass
class Plan:
    """A command's outputs and the files or folders it reads (None entries are skipped)."""

    outputs: list = field(default_factory=list)
    inputs: list = field(default_factory=list)


# What an input folder is made of (a dataset, a folder of photos): never an output.
# Anything else there (a model trained earlier, its summary) may be written again.
DATASET_FILES = {"labels.csv", "labels.parquet", "metadata.jsonl", "dlib.xml", "coco.json", "data.yaml",
                 "dataset.json", "README.md", "trainset.txt", "valset.txt", "alignment.json", "turns.jpg",
                 "pose.png", "loss.csv", "loss.png", "config.yaml", "generator.safetensors", "generator.json"}
DATASET_DIRS = {"images", "labels", ".synthface", "checkpoints", "weights", "samples"}
PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".pts", ".zip"}


def check_utf8(args) -> None:
    """Every command-line argument must be valid UTF-8 text: a file name with other bytes
    cannot be written into the labels (UTF-8 files) and crashes OpenCV's readers."""
    for a in args:
        try:
            str(a).encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(str(a)).decode("utf-8", "backslashreplace")
            raise SynthfaceError(f"argument '{shown}' is not valid UTF-8 text; give every value and path in "
                                 "UTF-8 (rename such a file or folder: labels are UTF-8 files)") from None


def _real(path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _part_of(folder: Path, p: Path) -> bool:
    """Is `p` (inside `folder`) one of the files such a folder is made of? A dataset or
    run folder is made of its labels, state and images/; any other folder read as input
    (photos, faces, backgrounds) of every image and .pts in it, at any depth. Other
    files there (a model trained beside the dataset, a preview) are not the input."""
    rel = p.relative_to(folder)
    if (p.name in DATASET_FILES and len(rel.parts) == 1) or rel.parts[0] in DATASET_DIRS:
        return True
    made = any((folder / name).exists() for name in ("labels.csv", "dataset.json", ".synthface", "config.yaml"))
    return not made and p.suffix.lower() in PHOTO_SUFFIXES


def _writable_place(path: Path, what: str, folder: bool) -> None:
    """The nearest existing folder above `path` is a folder we may write in."""
    if path.exists() and not folder and path.is_dir():
        raise SynthfaceError(f"{what} {path} is a folder; give a file name")
    if path.exists() and folder and not path.is_dir():
        raise SynthfaceError(f"{what} {path} is a file, not a folder")
    for p in path.parents:
        if p.exists():
            if not p.is_dir():
                raise SynthfaceError(f"{what} {path}: {p} is a file, not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise SynthfaceError(f"{what} {path}: cannot write in {p} (permission denied)")
            return


def check_plan(plan: Plan, command: str) -> None:
    """Refuse the plan (one SynthfaceError line) when an output would replace an input,
    another output, or a file this command did not write; see the module's text."""
    inputs = []
    for src in plan.inputs:
        if src is None or str(src) == "":
            continue
        s = _real(src)
        inputs.append((src, s, s.is_dir()))
        inputs += [(f"{src}, which lists it", f, False) for f in _listed_images(s, plan.outputs)]
    seen: dict = {}
    for out in plan.outputs:
        if out.path is None:
            continue
        if not str(out.path).strip():
            raise SynthfaceError(f"{out.what} is empty; give a {'folder' if out.folder else 'file'} name")
        given = Path(out.path).expanduser()
        p = _real(given)
        if p in seen:
            raise SynthfaceError(f"{out.what} and {seen[p]} are the same file ({out.path}); give another name")
        seen[p] = out.what
        for src, s, is_dir in inputs:
            if p == s:
                raise SynthfaceError(f"{out.what} {out.path} would replace an input ({src}); write it elsewhere")
            if is_dir and s in p.parents and not out.folder and _part_of(s, p):
                raise SynthfaceError(f"{out.what} {out.path} would replace an input's file (the folder {src} "
                                     "holds it); write it elsewhere")
            if is_dir and s in p.parents and out.folder and s not in {_real(n) for n in out.nested_in if n}:
                raise SynthfaceError(f"{out.what} {out.path} lies inside the input {src}; write it elsewhere")
            if out.folder and p in s.parents and is_dir:
                raise SynthfaceError(f"{out.what} {out.path} holds the input {src}; write it elsewhere")
        _writable_place(given, out.what, out.folder)
        if out.folder:
            if out.ours is not None and p.is_dir() and any(p.iterdir()) and not out.ours(p):
                raise SynthfaceError(f"{out.what} {out.path} holds files that `synthface {command}` did not "
                                     "write; choose a new or empty folder")
        elif p.exists() and not (out.ours is not None and _safely(out.ours, p)):
            raise SynthfaceError(f"{out.what} {out.path} exists and was not written by `synthface {command}`; "
                                 "remove it or give another name")


def _listed_images(label_file: Path, outputs: list) -> list:
    """The images an imglab XML or COCO json input names, where one of them may be an
    output (its name is in the file's text): inputs too, though they lie elsewhere."""
    import json
    import re

    if label_file.suffix.lower() not in (".xml", ".json") or not label_file.is_file():
        return []
    try:
        text = label_file.read_text(errors="replace")
    except OSError:
        return []
    names = {Path(o.path).name for o in outputs if o.path is not None and not o.folder and str(o.path).strip()}
    if not any(n and n in text for n in names):
        return []
    if label_file.suffix.lower() == ".xml":
        listed = re.findall(r"""<image\b[^>]*?\bfile\s*=\s*['"]([^'"]+)['"]""", text)
    else:
        try:
            listed = [im.get("file_name", "") for im in json.loads(text).get("images", []) if isinstance(im, dict)]
        except (ValueError, AttributeError):
            return []
    return [_real(label_file.parent / str(f)) for f in listed if str(f) and Path(str(f)).name in names]


def _safely(test, path: Path) -> bool:
    try:
        return bool(test(path))
    except (OSError, ValueError, UnicodeDecodeError):
        return False


# -- how a command recognises its own earlier files ----------------------------------------
def json_with_format(*formats: str) -> Callable[[Path], bool]:
    """A JSON object whose "format" field is one of `formats`."""
    def ours(path: Path) -> bool:
        if path.stat().st_size > 256 << 20:
            return False
        obj = json.loads(path.read_text(encoding="utf-8"))
        return isinstance(obj, dict) and obj.get("format") in formats
    return ours


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # a PNG's last chunk: always these 12 bytes


def _png_mark(command: str) -> bytes:
    text = b"Software\x00synthface " + command.encode()
    return struct.pack(">I", len(text)) + b"tEXt" + text + struct.pack(">I", zlib.crc32(b"tEXt" + text))


def _jpeg_mark(command: str) -> bytes:
    text = b"synthface " + command.encode()
    return b"\xff\xd8\xff\xfe" + struct.pack(">H", len(text) + 2) + text


def mark_image(data: bytes, command: str) -> bytes:
    """Encoded PNG or JPEG bytes with the mark of the command that wrote them ("sample",
    "detector eval"): a PNG tEXt chunk "Software" just before IEND, a JPEG comment just
    after SOI. By it a later run of the same command knows the file for its own (and may
    replace it) and every other file for not its own. Other formats cannot be marked."""
    if data[:8] == PNG_SIGNATURE and data[-12:] == PNG_END:
        return data[:-12] + _png_mark(command) + PNG_END
    if data[:2] == b"\xff\xd8":
        return _jpeg_mark(command) + data[2:]
    raise ValueError("only PNG and JPEG images carry synthface's mark")


def marked_by(command: str) -> Callable[[Path], bool]:
    """An image `command` wrote: its mark exactly where mark_image puts it."""
    png, jpeg = _png_mark(command) + PNG_END, _jpeg_mark(command)

    def ours(path: Path) -> bool:
        with open(path, "rb") as f:
            head = f.read(max(len(jpeg), 8))
            f.seek(max(0, path.stat().st_size - len(png)))
            tail = f.read()
        return (head[:8] == PNG_SIGNATURE and tail == png) or head == jpeg
    return ours


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def summary_of(model: Path, *formats: str) -> Callable[[Path], bool]:
    """A trainer's JSON summary (one of `formats`) of a model of this file name: `lt.json`
    beside `lt.dat` is not train-cnn's to replace for `lt.pt`."""
    def ours(path: Path) -> bool:
        if not json_with_format(*formats)(path):
            return False
        named = json.loads(path.read_text()).get("model")
        return isinstance(named, str) and Path(named).name == Path(model).name
    return ours


def recorded_in(record: Path, key: str, *formats: str) -> Callable[[Path], bool]:
    """A file whose sha256 the JSON file `record` (one of `formats`, written by the same
    command) holds under `key`: a trained model and its summary, directions' vectors and
    their description."""
    def ours(path: Path) -> bool:
        if not record.is_file() or not json_with_format(*formats)(record):
            return False
        return json.loads(record.read_text()).get(key) == sha256_of(path)
    return ours


def copy_of(src) -> Callable[[Path], bool]:
    """The same bytes as `src` (a copy made earlier)."""
    def ours(path: Path) -> bool:
        return Path(src).is_file() and path.stat().st_size == Path(src).stat().st_size \
            and sha256_of(path) == sha256_of(src)
    return ours


def only_images_by(command: str, prefix: str, suffix: str) -> Callable[[Path], bool]:
    """A folder that holds nothing but PREFIX*SUFFIX images marked by `command` (a folder
    the command adds to, such as detector mine's negatives)."""
    marked = marked_by(command)

    def ours(folder: Path) -> bool:
        return all(e.is_file() and not e.is_symlink() and e.name.startswith(prefix) and e.name.endswith(suffix)
                   and marked(e) for e in folder.iterdir())
    return ours


def generator_files(checkpoint) -> list:
    """A generator checkpoint and every file that belongs to it (its description, its
    directions): inputs none of a command's outputs may replace."""
    if checkpoint is None or str(checkpoint) == "":
        return []
    p = Path(checkpoint).expanduser()
    stem = p.name.removesuffix(".safetensors")
    return [p, p.with_name(stem + ".json"), p.with_name(stem + ".directions.safetensors"),
            p.with_name(stem + ".directions.json")]
