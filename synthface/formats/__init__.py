"""The label formats: one writer class per format, one file each, registered here.

`FORMATS` maps each --format name to its writer (formats/base.py has the interface);
make-dataset, scenes, merge and the trainers' imglab files all write through it, and
the dataset card asks each writer for its own lines. A new format is one class in one
file, added to `FORMATS`.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from synthface.errors import SynthfaceError
from synthface.formats.coco import CocoWriter  # noqa: F401 (the writers: public here too)
from synthface.formats.hf import HfWriter  # noqa: F401
from synthface.formats.imglab import ImglabWriter  # noqa: F401
from synthface.formats.parquet import ParquetWriter  # noqa: F401
from synthface.formats.pts import PtsWriter  # noqa: F401
from synthface.formats.table import CsvWriter  # noqa: F401
from synthface.formats.yolo import YoloWriter
from synthface.formats.registry import (ALL_FORMATS, ALWAYS, FORMATS, applicable, open_writers,  # noqa: F401
                                        parse_formats)

log = logging.getLogger("synthface")


def write_labels(out, schema, images, formats, side=None) -> list:
    """Every image to every writer; all finished before any is published (so a failure
    leaves the previous labels); returns the formats written.

    side: (fn, args), a picklable way to make the images again; with it, the writers
    that need no per-face attributes (`needs_attributes = False`: a file per image)
    run in a second process over `fn(*args)` while this one runs the rest, and both
    finish before either publishes."""
    written = applicable(schema, formats)
    side_keys = [k for k in written if side and not FORMATS[k].needs_attributes]
    writers = open_writers(out, schema, [k for k in written if k not in side_keys])
    try:
        helper = _SideWriters(out, schema, side_keys, side) if side_keys else None
    except BaseException:
        for w in writers:
            w.discard()
        raise
    try:
        for image in images:
            for w in writers:
                w.add(image)
        for w in writers:
            w.finish()
        if helper:
            helper.finished()
    except BaseException as exc:
        for w in writers:
            w.discard()
        if helper:
            helper.discard()
        if isinstance(exc, OSError) and not exc.filename:  # a full disk: say where, and what is kept
            raise SynthfaceError(f"writing the labels in {out}: {exc.strerror or exc}; the label files there "
                                 "are as they were before this export") from None
        raise
    if helper:
        try:
            helper.publish()
        except BaseException:
            for w in writers:
                w.discard()
            raise
    for w in writers:
        w.publish()
    stale = remove_formats(out, written)
    if stale:
        log.info("removed the %s labels of an earlier export from %s: this export does not write them (--format)",
                 ", ".join(stale), out)
    return written


# What else a dataset's export writes at its top: the YOLO writer's side files, the card.
SIDE_FILES = ("data.yaml", "trainset.txt", "valset.txt", "dataset.json", "README.md", "pose.png", "turns.jpg")


def check_label_places(out) -> None:
    """Before a run writes labels into the dataset folder `out` (make-dataset, --resume,
    merge): no folder where a label or card file goes, and labels/ holds only what the
    YOLO writer writes there (labels/SSSSS/NAME.txt), which an export replaces whole:
    anything else would be lost with it."""
    out = Path(out).expanduser()
    if not out.is_dir():
        return
    for name in [w.filename for w in FORMATS.values() if getattr(w, "filename", "")] + list(SIDE_FILES):
        if (out / name).is_dir() and not (out / name).is_symlink():
            raise SynthfaceError(f"{out / name} is a folder where synthface writes its labels or their card; "
                                 "move it away")
    labels = out / YoloWriter.folder
    if labels.exists() and (labels.is_symlink() or not labels.is_dir()):
        raise SynthfaceError(f"{labels} is not a folder, and synthface writes its YOLO labels there; move it away")
    if labels.is_dir():
        for p in labels.rglob("*"):
            depth = len(p.relative_to(labels).parts)
            if p.is_symlink() or (p.is_dir() and depth != 1) or (not p.is_dir() and (depth != 2 or p.suffix != ".txt")):
                raise SynthfaceError(f"{labels} holds {p.relative_to(out)}, which synthface did not write (its YOLO "
                                     "labels are labels/SSSSS/NAME.txt, replaced at every export); move it away")


def remove_formats(out, keep) -> list:
    """Remove from the dataset folder `out` the files of every format not in `keep` (left
    by an earlier export, e.g. before a resume with a narrower --format), so that no
    label file there disagrees with labels.csv: only the files each writer writes
    (files_in). Returns the formats whose files were removed."""
    removed = []
    for key, writer in FORMATS.items():
        if key in keep:
            continue
        paths = writer.files_in(Path(out))
        for path in paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        if paths:
            removed.append(key)
    return removed


class _SideWriters:
    """Some writers in a spawned process (formats/side.py), driven through a pipe:
    started at once; `finished()` waits until they have finished (or raises what
    failed there); then `publish()` or `discard()`."""

    def __init__(self, out, schema, keys, source):
        import multiprocessing as mp

        from synthface.formats.side import run_side
        from synthface.core.workers import sigint_held

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=run_side, args=(child, str(out), schema, keys, source), daemon=True)
        with sigint_held():  # it starts with Ctrl-C blocked, then ignores it (this process stops it)
            self.proc.start()
        child.close()
        self.done = False  # the side's writers have finished

    def _reply(self):
        try:
            reply = self.conn.recv()
        except EOFError:
            self.proc.join()
            raise SynthfaceError(f"the label writers' second process ended without a word "
                                 f"(exit code {self.proc.exitcode})") from None
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def finished(self) -> None:
        self._reply()
        self.done = True

    def publish(self) -> None:
        self.conn.send("publish")
        self._reply()
        self.proc.join()

    def discard(self) -> None:
        if not self.proc.is_alive():
            return
        if self.done:
            self.conn.send("discard")
        else:  # still writing: stopped at once (it discards its temporaries on SIGTERM)
            self.proc.terminate()
        self.proc.join()
