"""A dataset folder's run record beside its journal (journal.py): what the run is and
what it writes, and whether a run may start or resume in the folder.

    DATASET/.synthface/run.json      what makes two runs the same dataset (identity)
    DATASET/.synthface/options.json  what this run writes (label formats, val split, box; not identity)

make, merge and scenes prepare their folder here (`prepare_folder`) and check a resumed
one's identity (`check_identity`); merge and the landmark trainer read the options.
"""

from __future__ import annotations

import json
from pathlib import Path

from synthface.errors import SynthfaceError
from synthface.core.files import check_output_folder, fsync_dir, remove_temps, write_atomic
from synthface.dataset.journal import STATE_DIR


# -- the run identity ------------------------------------------------------------------
def read_identity(out: Path) -> dict | None:
    """The identity in a folder's run.json, or None when it has none."""
    run = Path(out) / STATE_DIR / "run.json"
    if not run.is_file():
        return None
    try:
        identity = json.loads(run.read_text())
    except ValueError:  # not JSON, or not text
        raise SynthfaceError(f"{run} is damaged (not JSON)") from None
    if not isinstance(identity, dict):  # a list, a string, null: JSON, but no run's record
        raise SynthfaceError(f"{run} is damaged (not a run record)")
    return identity


def comparable(identity: dict) -> dict:
    """What must match for two runs to make the same dataset: the identity without the
    generator's path when its bytes' sha256 is there (a copy elsewhere makes the same faces)."""
    out = json.loads(json.dumps(identity))
    gen = out.get("generator")
    if isinstance(gen, dict) and gen.get("sha256"):
        gen.pop("checkpoint", None)
    return out


def differing(a: dict, b: dict) -> list[str]:
    """The settings in which two identities differ (that matter: see comparable)."""
    a, b = comparable(a), comparable(b)
    return [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_identity(out: Path, identity: dict) -> None:
    """A new folder gets this identity; a resumed one must already have it."""
    out = Path(out)
    identity = json.loads(json.dumps(identity))
    # a kill while run.json, the journal or options.json was written (the caller holds the lock)
    remove_temps(out / STATE_DIR)
    saved = read_identity(out)
    if saved is None:
        write_atomic(out / STATE_DIR / "run.json", json.dumps(identity, indent=2) + "\n", durable=True)
        return
    keys = differing(saved, identity)
    if keys:
        # folders made before the turn was the default with --landmarks resume with --no-rotate-3d
        hint = " (it was made without a 3D turn: add --no-rotate-3d)" if keys == ["rotate_3d"] and \
            "rotate_3d" not in saved else ""
        made_by = _generator_name(saved)
        if "generator" in keys and made_by and made_by != _generator_name(identity):
            # folders made before celeba64 became the default name theirs
            hint += f": it was made by {made_by}, add --checkpoint {made_by}"
        raise SynthfaceError(f"{out} was made with other settings ({', '.join(keys)} differ{hint}); "
                             "resume with the same command, or choose a new -o")


def _generator_name(identity: dict) -> str | None:
    """A bundled generator's name in a run's identity (None for a file of the user's)."""
    gen = identity.get("generator")
    path = Path(str(gen.get("checkpoint", ""))) if isinstance(gen, dict) else None
    if path is not None and path.parent == Path(__file__).resolve().parents[1] / "models" and path.is_file():
        return path.stem  # bundled: the package's models folder
    return None


DEFAULT_VAL_FRACTION = 0.1


def write_options(out: Path, formats, val_fraction: float, box: str = "dlib") -> None:
    """What this run writes, in options.json (read back by read_options)."""
    write_atomic(Path(out) / STATE_DIR / "options.json",
                 json.dumps({"formats": sorted(formats), "val_fraction": val_fraction, "box": box}) + "\n")


def read_options(out: Path) -> dict | None:
    """What a run chose to write: {"formats": [...], "val_fraction": f, "box": convention}
    (its options, or an older folder's dataset card; "dlib" before --box existed), or None."""
    for path, key in ((Path(out) / STATE_DIR / "options.json", None), (Path(out) / "dataset.json", "files")):
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                formats = list((data[key] if key else data)["formats"])
            except (ValueError, KeyError, TypeError):
                continue
            fraction = data.get("val_fraction", data.get("split", {}).get("val_fraction", DEFAULT_VAL_FRACTION))
            box = data.get("box", data.get("conventions", {}).get("box_convention", "dlib"))
            return {"formats": formats, "val_fraction": fraction, "box": box}
    return None


def _is_fresh(out: Path) -> bool:
    """Empty, or holding only the state folder of a run killed before its identity was
    on disk (nothing of a dataset yet): a new run may start there."""
    entries = list(out.iterdir())
    if not entries:
        return True
    if [e.name for e in entries] != [STATE_DIR] or not entries[0].is_dir():
        return False
    return not any(f.name in ("run.json", "journal.csv") for f in entries[0].iterdir())


def prepare_folder(out: Path, resume: bool, create: bool = True) -> None:
    """Refuse a folder that is a file, not empty without --resume, or not a dataset;
    then (create) make its state folder."""
    out = Path(out)
    check_output_folder(out, "--out")
    if out.exists() and not _is_fresh(out):
        if not resume:
            raise SynthfaceError(f"{out} is not empty; add --resume to continue the run there, or choose a new -o")
        if read_identity(out) is None:
            raise SynthfaceError(f"{out} is not a synthface dataset folder (no {STATE_DIR}/run.json); choose a new -o")
    if create:
        (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
        fsync_dir(out)


def prune_images(out: Path, count: int) -> int:
    """Remove images/ files (and .pts beside them) of faces k >= count (left by a run resumed with a smaller
    -n, or written by a chunk that a kill kept out of the journal), and any image's temporary a kill left."""
    removed = 0
    images = Path(out) / "images"
    if not images.is_dir():
        return 0
    for folder in images.iterdir():
        if not folder.is_dir() or not folder.name.isdigit():
            continue
        below = (int(folder.name) + 1) * 1000 <= count  # every face of this folder is kept
        removed += remove_temps(folder)  # writes a kill cut short
        for f in folder.iterdir():
            stem = f.name.split(".")[0]
            if not below and f.suffix in (".png", ".pts", ".tmp") and stem.isdigit() and int(stem) >= count:
                f.unlink()
                removed += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    return removed
