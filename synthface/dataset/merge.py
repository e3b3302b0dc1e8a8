"""`merge`: join the shards of a sharded make-dataset run into the single-run dataset.

Shard K of N makes the candidate blocks b with b % N == K. Candidate j is the same
image, labelled the same way, in whichever run makes it; so the single run's first n
faces are the first n accepted candidates in j order, and merge can rebuild them once
every candidate before the n-th accepted one has been made by some shard.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from synthface.errors import SynthfaceError
from synthface.core.files import folder_lock, write_atomic
from synthface.formats import ALL_FORMATS
from synthface.dataset.folder import DEFAULT_VAL_FRACTION, _is_fresh, read_identity, read_options, write_options
from synthface.dataset.journal import STATE_DIR, Journal, image_complete, image_name, iter_records
from synthface.dataset.record import RunRecord
from synthface.generator.sampling import BLOCK


def _read_part(part: Path) -> tuple[RunRecord, list]:
    """A shard's record and journal records."""
    record = RunRecord.load(part)
    journal = part / STATE_DIR / "journal.csv"
    if record is None or not journal.is_file():
        raise SynthfaceError(f"{part} is not a make-dataset folder (no {STATE_DIR}/run.json and journal.csv)")
    if record.shards is None:
        raise SynthfaceError(f"{part} was not made with --num-shards")
    return record, list(iter_records(journal, repair=False))  # only read: shards may be on read-only storage


MARK = "merge.json"  # in the state folder: the folder is a merge, of which shards


def _check_output(out: Path, shards: dict) -> None:
    """-o is new, empty, or a merge of the same shards (an interrupted or finished one is
    redone): a folder holding anything else, a make-dataset run above all, is refused."""
    if not out.exists() or (out.is_dir() and _is_fresh(out)):
        return
    mark = out / STATE_DIR / MARK
    if mark.is_file():
        try:
            made = json.loads(mark.read_text())
        except ValueError:
            raise SynthfaceError(f"{mark} is damaged (not JSON); choose a new -o") from None
    elif read_identity(out) is None:
        raise SynthfaceError(f"{out} is not empty and holds no merge of these shards; choose a new -o")
    else:
        made = _merged_before_marks(out, shards)
    if made is None:
        raise SynthfaceError(f"{out} holds a make-dataset run, not a merge: merging into it would replace its "
                             "labels; choose a new -o")
    if made != shards:
        raise SynthfaceError(f"{out} holds a merge of other shards ({made.get('num')} shards of -n "
                             f"{made.get('n')}); choose a new -o")


def _merged_before_marks(out: Path, shards: dict) -> dict | None:
    """A merge made before merges were marked: its dataset card names the command."""
    try:
        card = json.loads((out / "dataset.json").read_text())
    except (OSError, ValueError):
        return None
    return shards if str(card.get("command", "")).startswith("synthface merge ") else None


def _first_unmade(records: list, num: int, index: int) -> int:
    """The smallest candidate j of this shard that its journal does not hold."""
    if not records:
        return index * BLOCK
    j = records[-1].index + 1
    block = j // BLOCK
    if (j % BLOCK == 0) and block % num != index:  # moved past its block: next own block
        while block % num != index:
            block += 1
        j = block * BLOCK
    return j


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def merge_shards(parts, out, progress: bool = True) -> dict:
    """Merge shard folders into `out`; returns the summary written to dataset.json."""
    from synthface.core.progress import progress_bar

    from synthface.dataset.export import write_exports
    from synthface.dataset.config import MakeConfig, check_box

    parts = [Path(p) for p in parts]
    out = Path(out)
    read = [_read_part(p) for p in parts]
    first = read[0][0]
    num, n = first.shards.num, first.shards.n
    # an interrupted (or finished) merge of the same run may be run again: it is redone
    _check_output(out, {"num": num, "n": n})
    common = first.without_shards()
    seen = {}
    for part, (record, _) in zip(parts, read):
        keys = record.without_shards().differing(common)
        keys += [f"shards.{k}" for k in ("num", "n") if getattr(record.shards, k) != getattr(first.shards, k)]
        if keys:
            raise SynthfaceError(f"{part} belongs to another run than {parts[0]} ({', '.join(keys)} differ)")
        k = record.shards.index
        if k in seen:
            raise SynthfaceError(f"{part} and {seen[k]} are both shard {k}")
        seen[k] = part
    missing = sorted(set(range(num)) - set(seen))
    if missing:
        raise SynthfaceError(f"shards {', '.join(map(str, missing))} of {num} are missing")

    # candidates below `covered` have been made by their shard
    covered = min(_first_unmade(records, num, record.shards.index) for record, records in read)
    by_part = {record.shards.index: part for part, (record, _) in zip(parts, read)}
    merged = sorted(((r.index, record.shards.index, r) for record, records in read for r in records
                     if r.index < covered), key=lambda t: (t[0], t[1]))
    kept, accepted = [], 0
    for _, k, rec in merged:
        if accepted == n:
            break
        kept.append((k, rec))
        accepted += rec.kept
    if accepted < n:
        raise SynthfaceError(f"the shards cover only {accepted} of the {n} faces (candidates below {covered}); "
                             "run each shard again with --resume and a larger -n, then merge again")
    lost = [by_part[k] / rec.file for k, rec in kept if rec.kept and not (by_part[k] / rec.file).is_file()]
    if lost:
        raise SynthfaceError(f"{len(lost)} image(s) listed in the shards' journals are missing, e.g. {lost[0]}; "
                             "run that shard again with --resume, which makes them again")
    damaged = [by_part[k] / rec.file for k, rec in kept if rec.kept and not image_complete(by_part[k] / rec.file)]
    if damaged:
        raise SynthfaceError(f"{len(damaged)} image(s) of the shards are not whole PNG files (truncated?), e.g. "
                             f"{damaged[0]}; run that shard again with --resume, which makes them again")
    # the formats any shard chose (an unfinished shard has no dataset card yet)
    formats, fractions, boxes = set(), set(), set()
    for part in parts:
        options = read_options(part) or {}
        formats |= set(options.get("formats", ()))
        if "val_fraction" in options:
            fractions.add(options["val_fraction"])
            boxes.add(options["box"])
    formats = tuple(f for f in ALL_FORMATS if f in formats) or ALL_FORMATS
    if len(fractions) > 1:
        raise SynthfaceError(f"the shards were made with different --val-fraction ({', '.join(map(str, sorted(fractions)))})")
    val_fraction = fractions.pop() if fractions else DEFAULT_VAL_FRACTION
    # a label setting like the split: one convention for the whole dataset
    if len(boxes) > 1:
        raise SynthfaceError(f"the shards were made with different --box ({', '.join(sorted(boxes))})")
    box = boxes.pop() if boxes else "dlib"
    check_box(box, common.landmarks)  # a hand-edited options.json

    landmarks = common.landmarks
    with folder_lock(out / STATE_DIR, out, "merge"):
        write_atomic(out / STATE_DIR / MARK, json.dumps({"num": num, "n": n}) + "\n", durable=True)
        common.save(out)
        write_options(out, formats, val_fraction, box)
        journal = out / STATE_DIR / "journal.csv"
        tmp = journal.with_name("journal.csv.part")
        tmp.unlink(missing_ok=True)
        face, batch = 0, []
        with Journal(tmp, landmarks, common.flip_labels, common.turned) as j:
            for k, rec in progress_bar(kept, desc="merging", unit="sample", disable=not progress, leave=False):
                if rec.kept:
                    name = image_name(face)
                    src = by_part[k] / rec.file
                    (out / name).parent.mkdir(parents=True, exist_ok=True)
                    tmp_image = out / (name + ".tmp")
                    tmp_image.unlink(missing_ok=True)
                    if not _same_file(src, out / name):  # a rerun over a linked merge has nothing to do
                        try:
                            os.link(src, tmp_image)  # same file system: no copy
                        except OSError:
                            shutil.copyfile(src, tmp_image)
                        os.replace(tmp_image, out / name)  # a rerun replaces what an interrupted one left
                        # renaming a link onto another link of the same file does nothing: the temporary stays
                        tmp_image.unlink(missing_ok=True)
                    rec.file = name
                    face += 1
                batch.append(rec)
                if len(batch) == 4096:
                    j.append(batch)
                    batch = []
            j.append(batch)
        os.replace(tmp, journal)
        cfg = MakeConfig(n=n, seed=common.seed, image_size=common.image_size, formats=formats,
                         val_fraction=val_fraction, box=box, annotate=common.annotate_config, augment=None)
        return write_exports(out, cfg, common, "synthface merge " + " ".join(map(str, parts)) + f" -o {out}",
                             progress)
