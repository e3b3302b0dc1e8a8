"""Files that a reader, or a run resumed after a kill, never sees half-written; and one
writer per folder.

- `atomic_open(path)`: write under a temporary name of its own beside `path` (made
  exclusively, so no file or link already there is written through), publish by
  rename only when the block ends normally; on any exception (Ctrl-C included) the temporary is removed and the
  old file, if any, stays as it was. `write_atomic` is the one-shot form.
- `folder_lock(folder)`: an OS lock (flock) on a file in the folder's state directory,
  held while a run writes there. The kernel drops it when the process ends, however
  it ends, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from synthface.errors import SynthfaceError


def fsync_dir(folder) -> None:
    """Make a rename or a new file in `folder` durable (POSIX: the directory entry)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_beside(path) -> Path:
    """A new empty file beside `path` for writing it under: `.NAME.XXXX.tmp`, created
    exclusively (O_EXCL), so whatever already lies there (a user's NAME.tmp, a link to
    an input) is never opened, truncated or written through."""
    import tempfile

    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:  # mkstemp makes it 0600: give it the mode a plain open() would (0666 less the umask)
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(name)


def remove_temps(folder, name: str = "*") -> int:
    """Remove the temporaries temp_beside made in `folder` for files named `name` (a glob)
    that a kill left behind; only run while the folder's lock is held. Returns how many."""
    stale = list(Path(folder).glob(f".{name}.*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path, mode: str = "w", durable: bool = False, **kw):
    """Open `path` for writing under a temporary name; rename into place when the block
    succeeds, remove the temporary when it fails. durable: fsync before the rename."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():  # else the rename fails naming the temporary
        raise SynthfaceError(f"{path} is a folder where synthface writes a file; move it away")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        f = open(tmp, mode, **kw)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        yield f
        f.flush()
        if durable:
            os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException:
        try:
            f.close()
        except OSError:  # a full disk fails the close's flush again: the temporary goes anyway
            pass
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path, data: bytes | str, durable: bool = False) -> None:
    """Write under a temporary name in the same folder, then rename into place."""
    with atomic_open(path, "wb", durable=durable) as f:
        f.write(data.encode() if isinstance(data, str) else data)


def publish_file(src, dst, flag: str = "-o") -> None:
    """Move a finished file (made in a temporary folder, perhaps on another disk) to
    `dst`: copied beside it under a temporary name of its own, synced, renamed into place. On a failure (a
    full disk) the temporary is removed, `dst` stays as it was, and the one-line error
    names `dst` (`flag` says which option gave it), never the temporary."""
    import shutil

    dst = Path(dst)
    tmp = None
    try:
        tmp = temp_beside(dst)
        shutil.move(src, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dst)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise SynthfaceError(f"{flag} {dst}: cannot be written ({exc.strerror or exc}); nothing was written "
                                 "there") from None
        raise
    fsync_dir(dst.parent)


def write_summary(model, summary: dict) -> None:
    """A trainer's summary, MODEL.json beside its published model, written atomically; a
    failure (a full disk) is one line naming the summary, not its temporary."""
    import json

    path = Path(model).with_suffix(".json")
    try:
        write_atomic(path, json.dumps(summary, indent=2) + "\n")
    except OSError as exc:
        raise SynthfaceError(f"{model} was written but not its summary {path} ({exc.strerror or exc}); "
                             "free some space and train again") from None


def own_files(folder) -> None:
    """Give every file in `folder` that has other hard links (a copy made by `cp -al` or
    `rsync --link-dest`) a copy of its own, renamed into place, so that appending to it
    or cutting it changes this folder only, never the folder it was linked from."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for f in folder.iterdir():
        if not f.is_symlink() and f.is_file() and f.stat().st_nlink > 1:
            write_atomic(f, f.read_bytes(), durable=True)


@contextmanager
def folder_lock(state_dir, folder, what: str = "run"):
    """Hold the one-writer lock of `folder` (its file lives in `state_dir`). The state
    files that a run appends to or cuts in place are first made this folder's own
    (own_files): a hard-linked copy of a dataset resumed never changes the original."""
    import fcntl

    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    own_files(state_dir)
    f = open(state_dir / "lock", "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        raise SynthfaceError(f"{folder} is in use by another synthface {what}"
                             f"{f' (pid {holder})' if holder else ''}; wait for it to end, or choose another folder")
    try:
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield
    finally:
        f.close()  # releases the lock


def check_output_folder(folder, flag: str) -> None:
    """A folder to write: not a file, and not under one."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SynthfaceError(f"{flag} {folder} is a file, not a folder")
    for p in folder.parents:
        if p.exists():
            if not p.is_dir():
                raise SynthfaceError(f"{flag} {folder}: {p} is a file, not a folder")
            break


def check_writable_file(path, what: str) -> Path:
    """Fail now, before any work, if `path` cannot be created: its folder is not a
    folder, or not writable. (Creates the missing folders, as the write would.)"""
    path = Path(path).expanduser()
    if path.is_dir():
        raise SynthfaceError(f"{what} {path} is a folder; give a file name")
    parent = path.parent
    check_output_folder(parent, f"{what} {path}:")
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise SynthfaceError(f"{what} {path}: cannot write in {parent} (permission denied)")
    return path
