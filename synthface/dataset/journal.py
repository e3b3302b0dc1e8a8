"""A dataset folder's state: the journal of every candidate, and the lock.

    DATASET/.synthface/journal.csv   one row per candidate, kept or rejected, in order
    DATASET/.synthface/lock          flock'ed by the one process writing the folder
    DATASET/.synthface/run.json, options.json: the run's identity and options (folder.py)

The journal is the dataset: images are named from it, every label format is written
from it, --resume continues after its last row, merge joins several. It is created
with its header already on disk (written, fsynced, renamed into place), so it is never
empty or headerless; rows are appended a chunk at a time and fsynced. A kill can only
tear the last row, and `iter_records` drops a torn row (in this one place).

Each row ends with its `check`: 16 hex digits of blake2b over the previous row's check
and the row's other fields (the row's text), so a hand edit of any value, or a row
deleted, repeated or moved, is found on reading and named by its line. Journals written
before the check existed (no `check` column) are read as they are, their values
unverified (there is nothing to verify them against), and a resume gives them their
checks: refusing them would make their owners remake datasets that took hours.

One `FaceRecord` is a candidate with its labels; every stage that reads or writes a
dataset goes through it (make, export, merge, preview, landmarks).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError
from synthface.core.files import atomic_open, write_atomic
from synthface.core.outputs import PNG_END, PNG_SIGNATURE
from synthface.face.scheme68 import POINT_COLS

STATE_DIR = ".synthface"
REJECT_REASONS = ("no_face", "several_faces", "low_score", "disagreement")
BOX_COLS = ["x", "y", "w", "h", "score"]
BASE_COLS = ["index", "seed", "status", "faces", "file"]
CHECK_COL = "check"  # last: the row's chained hash (row_check)


def journal_columns(landmarks: bool, confidence: bool = False, hidden: bool = False) -> list[str]:
    """The journal's columns; `confidence`: flip-checked labels' disagreement too;
    `hidden`: faces turned in 3D, the points their turn hid (a hex mask, point i bit i)."""
    return (BASE_COLS + BOX_COLS + (["disagreement"] if confidence else []) + (["hidden"] if hidden else [])
            + (POINT_COLS if landmarks else []) + [CHECK_COL])


def row_check(previous: str, values) -> str:
    """A row's check: its fields' text chained to the previous row's check ("" before the
    first row), so that an edit, a removed or a moved row breaks it."""
    text = previous + "\n" + ",".join(values)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()




def image_complete(path) -> bool:
    """A quick test that an image file was written whole: a PNG from its signature to
    its IEND chunk, a JPEG from SOI to EOI (12 bytes read at each end, no decoding)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(max(f.seek(0, 2) - 12, 0))
            tail = f.read(12)
    except OSError:
        return False
    if head == PNG_SIGNATURE:
        return tail == PNG_END
    if head.startswith(b"\xff\xd8"):
        return tail.endswith(b"\xff\xd9")
    return False


def split_of(seed: int, val_fraction: float) -> str:
    """A face's split, "val" for about `val_fraction` of faces, "train" for the rest,
    chosen from the face's own seed alone (splitmix64 of it, as a fraction of 2**64): a
    face keeps its split whichever run, resume point, shard or merge made it."""
    mask = (1 << 64) - 1
    z = (seed + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return "val" if (z ^ (z >> 31)) < val_fraction * 2.0 ** 64 else "train"


def image_name(k: int) -> str:
    """Face k's path in the dataset: 1,000 a folder."""
    return f"images/{k // 1000:05d}/{k:08d}.png"


@dataclass
class FaceRecord:
    """One candidate: made from `seed` as candidate `index` of its run. Kept when
    `status` is "" (then `file`, `box`, `score` and, with landmarks, `landmarks` are
    set); otherwise `status` is the rejection reason."""

    index: int
    seed: int
    status: str = ""
    faces: int = 0  # faces the detector found
    file: str = ""  # the image, relative to the dataset folder
    box: tuple | None = None  # x, y, w, h (ints): dlib's inclusive rectangle
    score: float | None = None
    landmarks: np.ndarray | None = None  # (68, 2) float, 0-based pixel centres
    disagreement: float | None = None  # flip-checked labels: the two predictions' distance
    hidden: np.ndarray | None = None  # faces turned in 3D: (68,) bool, the points the turn hid
    split: str = ""  # "train" or "val", set on export from the seed (split_of); not journaled
    attributes: dict = field(default_factory=dict)  # pose, expression, steering targets: set on export

    @property
    def kept(self) -> bool:
        return not self.status

    def to_row(self, landmarks: bool, confidence: bool = False, hidden: bool = False) -> list:
        row = [self.index, self.seed, self.status, self.faces, self.file]
        if not self.kept:
            return row + [""] * (len(BOX_COLS) + confidence + hidden + (len(POINT_COLS) if landmarks else 0))
        row += [int(v) for v in self.box] + [f"{self.score:.6f}"]
        if confidence:
            row.append(f"{self.disagreement:.6f}")
        if hidden:
            row.append(format(sum(1 << i for i, v in enumerate(self.hidden) if v), "x"))
        if landmarks:
            row += [f"{v:g}" for v in np.asarray(self.landmarks).reshape(-1)]
        return row

    @classmethod
    def from_row(cls, row: dict) -> "FaceRecord":
        rec = cls(int(row["index"]), int(row["seed"]), row["status"], int(row["faces"] or 0), row["file"])
        if rec.kept:
            rec.box = tuple(int(row[c]) for c in ("x", "y", "w", "h"))
            rec.score = float(row["score"])
            if row.get("disagreement"):
                rec.disagreement = float(row["disagreement"])
            if "hidden" in row:
                bits = int(row["hidden"], 16)
                if bits < 0 or bits >> 68:
                    raise ValueError(f"hidden mask {row['hidden']!r} is not 68 bits")
                rec.hidden = np.array([(bits >> i) & 1 for i in range(68)], bool)
            if "x0" in row:
                rec.landmarks = np.array([[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in range(68)])
        return rec


def is_torn_row(tail: bytes) -> bool:
    """Whether the bytes after a line-per-record file's last newline can be a row that a
    kill tore: the start of a row's text (UTF-8, its last character possibly cut short),
    printable, no newline. Anything else (random bytes, a binary file) is damage: left
    on disk as it is, for the reader to refuse in one line."""
    import codecs

    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(tail, final=False)
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\t" for c in text)


def _recover(path: Path) -> bytes:
    """The journal's bytes with a torn last row cut off (on disk too)."""
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data) and is_torn_row(data[cut:]):  # killed in the middle of a write
        with open(path, "r+b") as f:
            f.truncate(cut)
            os.fsync(f.fileno())
        data = data[:cut]
    return data


def cut_torn_tail(path) -> None:
    """Cut a line-per-record file after its last newline (a kill can tear only the last
    line), reading only its end; only a torn row's bytes (is_torn_row) are cut."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, "r+b") as f:
        size = pos = f.seek(0, 2)
        cut = 0
        while pos > 0:
            step = min(1 << 16, pos)
            f.seek(pos - step)
            i = f.read(step).rfind(b"\n")
            if i >= 0:
                cut = pos - step + i + 1
                break
            pos -= step
        if cut < size:
            f.seek(cut)
            if not is_torn_row(f.read(size - cut)):
                return
            f.truncate(cut)
            os.fsync(f.fileno())


def iter_records(path, seed_of=None, contiguous: bool = False, repair: bool = True) -> "iter[FaceRecord]":
    """Every complete row of a journal, in order (a torn last row is dropped), checked:
    each row's check (row_check), indices increasing (`contiguous`: by one, an unsharded
    run's), known statuses, finite numbers, kept faces named images/.. in order, and
    (`seed_of`: index -> the seed the run draws for it) each row's seed its index's. A
    hand-edited or damaged journal is one line naming the line, never a silently wrong
    dataset. `repair`: cut a torn last row on disk too (the writer's side, before it
    appends); without, the file is only read (merge's shards may be read-only)."""
    path = Path(path)
    if repair:
        cut_torn_tail(path)
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:  # streamed a line at a time: memory stays flat in the journal's length
        yield from _checked_records(path, _text_lines(path, f), seed_of, contiguous)


def _text_lines(path: Path, f):
    for line, raw in enumerate(f, start=1):
        if not raw.endswith(b"\n"):
            if is_torn_row(raw):  # a torn last row (left on disk when read without repair)
                return
            raise SynthfaceError(f"{path}, line {line}: not text; the journal is damaged")
        try:
            yield raw.decode()
        except UnicodeDecodeError:
            raise SynthfaceError(f"{path}, line {line}: not text; the journal is damaged") from None


def _checked_records(path: Path, lines, seed_of, contiguous: bool):
    reader = csv.DictReader(lines)
    try:
        fieldnames = reader.fieldnames
    except csv.Error:
        fieldnames = None
    if fieldnames is None or fieldnames[:len(BASE_COLS)] != BASE_COLS:
        shown = fieldnames if fieldnames is None or len(fieldnames) <= 6 else fieldnames[:5] + ["..."]
        raise SynthfaceError(f"{path} is not a synthface journal (its header begins {shown})")
    checked = fieldnames[-1] == CHECK_COL  # written before checks existed: read as it is
    if checked and fieldnames != journal_columns("x0" in fieldnames, "disagreement" in fieldnames,
                                                 "hidden" in fieldnames):
        raise SynthfaceError(f"{path}, line 1: its {len(fieldnames)} columns are not a journal's; the journal is damaged "
                             "(restore it, or make the dataset in a new --out)")
    values = fieldnames[:-1]
    previous, kept, check = -1, 0, ""
    rows = iter(reader)
    line = 1
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            what = "a stray line break" if "new-line" in str(exc) else str(exc)
            raise SynthfaceError(f"{path}, line {line + 1}: not a journal row ({what}); the journal is damaged "
                                 "(restore it, or make the dataset in a new --out)") from None
        line += 1

        def damaged(what):
            return SynthfaceError(f"{path}, line {line}: {what}; the journal is damaged (restore it, or make the "
                                  "dataset in a new --out)")

        if None in row or None in row.values():
            given = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
            raise damaged(f"a row with {given} fields, not {len(fieldnames)}")
        try:
            rec = FaceRecord.from_row(row)
        except (ValueError, KeyError):
            raise damaged("unreadable row") from None
        if rec.index <= previous or (contiguous and rec.index != previous + 1):
            raise damaged(f"candidate {rec.index} follows candidate {previous}")
        if rec.status not in ("", *REJECT_REASONS):
            raise damaged(f"unknown status {rec.status!r}")
        if seed_of is not None and rec.seed != seed_of(rec.index):
            raise damaged(f"candidate {rec.index} has seed {rec.seed}, not the run's {seed_of(rec.index)}")
        if rec.kept:
            if rec.file != image_name(kept):
                raise damaged(f"kept face {kept} is {rec.file!r}, not {image_name(kept)!r} (a row removed or "
                              "added?)")
            numbers = [*rec.box, rec.score] + ([] if rec.landmarks is None else list(rec.landmarks.reshape(-1)))
            if not np.isfinite(np.asarray(numbers, float)).all():
                raise damaged("a box, score or point that is not a finite number")
            kept += 1
        elif rec.file:
            raise damaged(f"candidate {rec.index} is {rec.status!r} but holds kept face {kept}'s "
                          f"{rec.file!r} (its status edited?)")
        if checked:  # after the checks above, which say more precisely what is wrong
            expected = row_check(check, [row[c] for c in values])
            if row[CHECK_COL] != expected:
                raise damaged("the row's values do not match its check (edited by hand, or a row before it "
                              "removed or moved?)")
            check = expected
        previous = rec.index
        yield rec


@dataclass
class Progress:
    """Where a journal stands: faces kept, the next candidate, rejections by reason."""

    accepted: int = 0
    next_index: int = 0
    rejected: Counter = field(default_factory=Counter)
    rows: int = 0

    @property
    def tried(self) -> int:
        return self.accepted + sum(self.rejected.values())


def read_progress(path, seed_of=None, contiguous: bool = False) -> Progress:
    p = Progress()
    if not Path(path).is_file():
        return p
    for rec in iter_records(path, seed_of, contiguous):
        p.rows += 1
        p.next_index = rec.index + 1
        if rec.kept:
            p.accepted += 1
        else:
            p.rejected[rec.status] += 1
    return p


def _header(path: Path) -> list:
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def add_checks(path) -> bool:
    """Give a journal written before checks existed its check column (a new file, renamed
    into place); its rows' text stays as it was. Returns whether it changed."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    header = _header(path)
    if header + [CHECK_COL] != journal_columns("x0" in header, "disagreement" in header, "hidden" in header):
        return False  # already checked (or not a journal: its reader says so)
    data = _recover(path).decode()
    check = ""
    with atomic_open(path, "w", durable=True, newline="") as f:
        writer = csv.writer(f)
        for i, row in enumerate(csv.reader(io.StringIO(data, newline=""))):
            if i == 0:
                f.write(",".join(row + [CHECK_COL]) + "\n")
                continue
            check = row_check(check, row)
            writer.writerow(row + [check])
    return True


def _last_check(path: Path) -> str:
    """The last row's check ("" when the journal holds only its header): where the chain
    of the next appended row starts."""
    with open(path, "rb") as f:
        end = f.seek(0, 2)
        step = 1 << 14
        while True:  # the last complete line, read from the end
            start = max(end - step, 0)
            f.seek(start)
            tail = f.read(end - start).rstrip(b"\r\n")
            i = tail.rfind(b"\n")
            if i >= 0 or start == 0:
                break
            step *= 4
    last = tail[i + 1:].decode()
    return "" if start == 0 and i < 0 else last.rsplit(",", 1)[-1]


class Journal:
    """The append side: `append(records)` writes whole rows, each with its check, and
    fsyncs them."""

    def __init__(self, path, landmarks: bool, confidence: bool = False, hidden: bool = False):
        self.path, self.landmarks, self.confidence, self.hidden = Path(path), landmarks, confidence, hidden
        columns = journal_columns(landmarks, confidence, hidden)
        self.check = ""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            # the header is durable before the first row can be: never an empty journal
            write_atomic(self.path, ",".join(columns) + "\n", durable=True)
        else:
            cut_torn_tail(self.path)
            if _header(self.path) == columns[:-1]:  # written before checks existed
                add_checks(self.path)
            header = _header(self.path)
            if header != columns:
                raise SynthfaceError(f"{self.path} has other columns than this run writes "
                                     f"({'with' if 'x0' in header else 'without'} landmarks); "
                                     "resume with the same options")
            self.check = _last_check(self.path)
        self.f = open(self.path, "a", newline="")
        self.writer = csv.writer(self.f)

    def append(self, records) -> None:
        rows = []
        for r in records:
            row = [str(v) for v in r.to_row(self.landmarks, self.confidence, self.hidden)]
            self.check = row_check(self.check, row)
            rows.append(row + [self.check])
        self.writer.writerows(rows)
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def truncate_after(path, n: int) -> int:
    """Keep the journal's rows up to its n-th kept face (a resume with a smaller -n);
    returns the rows dropped."""
    path = Path(path)
    data = _recover(path)
    lines = data.split(b"\n")
    kept, end = 0, len(lines)
    for i, row in enumerate(csv.reader(io.StringIO(data.decode()))):
        if i == 0:
            continue
        if kept == n:
            end = i
            break
        if len(row) > 2 and not row[2]:
            kept += 1
    if end >= len(lines) - 1:
        return 0
    with atomic_open(path, "wb", durable=True) as f:
        f.write(b"\n".join(lines[:end]) + b"\n")
    return len(lines) - 1 - end
