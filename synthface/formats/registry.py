"""The registry of label formats: each --format name and its writer, and the writers a
run opens. (The package's __init__ re-exports it; formats/side.py, run in a process of
its own, imports it from here.)"""

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
    if not names:  # --format "" (an unset variable, say) is a mistake, not csv alone
        raise SynthfaceError(f"--format {text!r} names no format: give all, or some of "
                             f"{', '.join(ALL_FORMATS)} separated by commas")
    return tuple(f for f in ALL_FORMATS if f in set(names) | {ALWAYS})


def applicable(schema, formats) -> list:
    """The chosen formats that apply to a schema (.pts need landmarks)."""
    return [k for k in formats if schema.landmarks or not getattr(FORMATS[k], "needs_landmarks", False)]


def open_writers(out, schema, formats) -> list:
    """One writer per chosen format that applies."""
    writers = []
    try:
        for key in applicable(schema, formats):
            writers.append(FORMATS[key](out, schema))
    except BaseException:
        for w in writers:
            w.discard()
        raise
    return writers
