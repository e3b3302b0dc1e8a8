"""The label formats: one writer class per format, one file each, registered here.

`FORMATS` maps each --format name to its writer (formats/base.py has the interface);
make-dataset, scenes, merge and the trainers' imglab files all write through it, and
the dataset card asks each writer for its own lines. A new format is one class in one
file, added to `FORMATS`.
"""

from __future__ import annotations

from synthface.errors import SynthfaceError
from synthface.formats.coco import CocoWriter
from synthface.formats.hf import HfWriter
from synthface.formats.imglab import ImglabWriter
from synthface.formats.parquet import ParquetWriter
from synthface.formats.pts import PtsWriter
from synthface.formats.table import CsvWriter
from synthface.formats.yolo import YoloWriter

FORMATS = {w.key: w for w in (CsvWriter, ParquetWriter, HfWriter, ImglabWriter, PtsWriter, CocoWriter, YoloWriter)}
ALL_FORMATS = tuple(FORMATS)
# labels.csv is every dataset's own table (resume, merge, preview and the readers use it)
ALWAYS = "csv"


def parse_formats(text) -> tuple:
    """--format "all" or "a,b,c" (a list or tuple too) -> the chosen formats, csv always
    among them, in the registry's order; an unknown name is an error."""
    names = ALL_FORMATS if text == "all" else (
        [f.strip() for f in text.split(",") if f.strip()] if isinstance(text, str) else list(text))
    unknown = sorted(set(names) - set(FORMATS))
    if unknown:
        raise SynthfaceError(f"unknown --format {', '.join(unknown)} (known: {', '.join(ALL_FORMATS)})")
    return tuple(f for f in ALL_FORMATS if f in set(names) | {ALWAYS})


def open_writers(out, schema, formats) -> list:
    """One writer per chosen format that applies (.pts need landmarks)."""
    writers = []
    try:
        for key in formats:
            cls = FORMATS[key]
            if getattr(cls, "needs_landmarks", False) and not schema.landmarks:
                continue
            writers.append(cls(out, schema))
    except BaseException:
        for w in writers:
            w.discard()
        raise
    return writers


def write_labels(out, schema, images, formats) -> list:
    """Every image to every writer; all finished before any is published (so a failure
    leaves the previous labels); returns the formats written."""
    writers = open_writers(out, schema, formats)
    try:
        for image in images:
            for w in writers:
                w.add(image)
        for w in writers:
            w.finish()
    except BaseException as exc:
        for w in writers:
            w.discard()
        if isinstance(exc, OSError) and not exc.filename:  # a full disk: say where, and what is kept
            raise SynthfaceError(f"writing the labels in {out}: {exc.strerror or exc}; the label files there "
                                 "are as they were before this export") from None
        raise
    for w in writers:
        w.publish()
    return [w.key for w in writers]
