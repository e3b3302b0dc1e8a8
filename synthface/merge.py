"""`merge`: join the shards of a sharded make-dataset run into the single-run dataset.

Shard K of N makes the candidate blocks b with b % N == K. Candidate j is the same
image, labelled the same way, in whichever run makes it; so the single run's first n
faces are the first n accepted candidates in j order, and merge can rebuild them once
every candidate before the n-th accepted one has been made by some shard.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

from synthface.errors import SynthfaceError
from synthface.files import write_atomic
from synthface.make import STATE_DIR, MakeConfig, image_name
from synthface.sampling import BLOCK


def _read_part(part: Path) -> tuple[dict, list[dict]]:
    run = part / STATE_DIR / "run.json"
    journal = part / STATE_DIR / "journal.csv"
    if not run.is_file() or not journal.is_file():
        raise SynthfaceError(f"{part} is not a make-dataset folder (no {STATE_DIR}/run.json and journal.csv)")
    identity = json.loads(run.read_text())
    if "shards" not in identity:
        raise SynthfaceError(f"{part} was not made with --num-shards")
    with open(journal, newline="") as f:
        data = f.read()
    rows = list(csv.DictReader(data[: data.rfind("\n") + 1].splitlines()))
    return identity, rows


def _first_unmade(rows: list[dict], num: int, index: int) -> int:
    """The smallest candidate j of this shard that its journal does not hold."""
    if not rows:
        return index * BLOCK
    j = int(rows[-1]["index"]) + 1
    block = j // BLOCK
    if (j % BLOCK == 0) and block % num != index:  # moved past its block: next own block
        while block % num != index:
            block += 1
        j = block * BLOCK
    return j


def merge_shards(parts, out, progress: bool = True) -> dict:
    """Merge shard folders into `out`; returns the summary written to dataset.json."""
    from tqdm.auto import tqdm

    from synthface.annotate import AnnotateConfig
    from synthface.export import write_exports

    parts = [Path(p) for p in parts]
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SynthfaceError(f"{out} is not empty; choose a new -o")
    read = [_read_part(p) for p in parts]
    first = read[0][0]
    num, n = first["shards"]["num"], first["shards"]["n"]
    common = {k: v for k, v in first.items() if k != "shards"}
    seen = {}
    for part, (identity, _) in zip(parts, read):
        if {k: v for k, v in identity.items() if k != "shards"} != common or \
                identity["shards"]["num"] != num or identity["shards"]["n"] != n:
            raise SynthfaceError(f"{part} belongs to another run than {parts[0]} (settings differ)")
        k = identity["shards"]["index"]
        if k in seen:
            raise SynthfaceError(f"{part} and {seen[k]} are both shard {k}")
        seen[k] = part
    missing = sorted(set(range(num)) - set(seen))
    if missing:
        raise SynthfaceError(f"shards {', '.join(map(str, missing))} of {num} are missing")

    # candidates below `covered` have been made by their shard
    covered = min(_first_unmade(rows, num, identity["shards"]["index"]) for identity, rows in read)
    by_part = {identity["shards"]["index"]: (part, rows) for part, (identity, rows) in zip(parts, read)}
    merged = sorted((int(r["index"]), k, r) for k, (_, rows) in by_part.items() for r in rows
                    if int(r["index"]) < covered)
    kept, accepted = [], 0
    for _, k, row in merged:
        if accepted == n:
            break
        kept.append((k, row))
        accepted += not row["status"]
    if accepted < n:
        raise SynthfaceError(f"the shards cover only {accepted} of the {n} faces (candidates below {covered}); "
                             "run each shard again with --resume and a larger -n, then merge again")

    state = out / STATE_DIR
    state.mkdir(parents=True)
    fields = list(kept[0][1].keys())
    face = 0
    with open(state / "journal.csv.tmp", "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        for k, row in tqdm(kept, desc="merging", unit="sample", disable=not progress, leave=False):
            if not row["status"]:
                name = image_name(face)
                src = by_part[k][0] / row["file"]
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, out / name)  # same file system: no copy
                except OSError:
                    shutil.copyfile(src, out / name)
                row = {**row, "file": name}
                face += 1
            w.writerow(row)
    os.replace(state / "journal.csv.tmp", state / "journal.csv")
    write_atomic(state / "run.json", (json.dumps(common, indent=2) + "\n").encode())
    annotate = AnnotateConfig(**{**common["annotate"]})
    size = common["image_size"]
    formats = tuple(json.loads((parts[0] / "dataset.json").read_text())["files"]["formats"]) \
        if (parts[0] / "dataset.json").is_file() else ("csv",)
    cfg = MakeConfig(n=n, seed=common["seed"], image_size=size, formats=formats, annotate=annotate)
    return write_exports(out, cfg, common, "synthface merge " + " ".join(map(str, parts)) + f" -o {out}")
