"""The writer interface every label format implements, and the two ways a writer keeps
its output out of sight until the whole export succeeded.

A writer is made for a dataset folder and its `LabelSchema`, gets every `LabelledImage`
in order (`add`), then `finish()` writes what remains under temporary names and
`publish()` renames them into place, a step with no writing in it. The export calls
`finish` on every writer before it calls `publish` on any, so a failure (a full disk,
an interrupt) leaves every label file of the previous export as it was; `discard`
removes the temporaries. Streaming: memory does not grow with the number of images.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from synthface.face.labels import LabelledImage, LabelSchema


def tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


class Writer:
    """One label format. `key` is its --format name; `describe` and `loading` are its
    lines in the dataset card (the file it writes; how to load it, or None)."""

    key = ""
    # False: the writer reads only an image's file, size, split and each face's box,
    # points and visibility, so a parallel export may feed it from a second process
    needs_attributes = True

    def __init__(self, out: Path, schema: LabelSchema):
        self.out, self.schema = Path(out), schema

    def add(self, image: LabelledImage) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Write what remains, still under temporary names."""

    def publish(self) -> None:
        """Rename the finished files into place."""

    def discard(self) -> None:
        """Remove the temporaries (after a failure, before or after finish)."""

    @classmethod
    def files_in(cls, out: Path) -> list[Path]:
        """The files (or folders) this format's writer writes that are now in the dataset
        folder `out`: what an export that no longer writes the format removes."""
        return []

    @staticmethod
    def describe(schema: LabelSchema) -> str:
        raise NotImplementedError

    @staticmethod
    def loading(schema: LabelSchema, size: int, formats) -> tuple[str, str] | None:
        return None


class FileWriter(Writer):
    """A writer of one file: NAME.tmp while written, renamed on publish."""

    filename = ""

    def __init__(self, out: Path, schema: LabelSchema, mode: str = "w", path: Path | None = None, **open_kw):
        super().__init__(out, schema)
        self.path = Path(path) if path is not None else self.out / self.filename
        self.f = open(tmp_path(self.path), mode, **open_kw)

    def finish(self) -> None:
        self.f.close()

    def publish(self) -> None:
        os.replace(tmp_path(self.path), self.path)

    def discard(self) -> None:
        try:
            self.f.close()
        except OSError:  # a full disk fails the last flush too; the file goes anyway
            pass
        tmp_path(self.path).unlink(missing_ok=True)

    @classmethod
    def files_in(cls, out: Path) -> list[Path]:
        path = Path(out) / cls.filename
        return [path] if path.is_file() or path.is_symlink() else []


class FolderWriter(Writer):
    """A writer of a folder of small files: NAME.tmp/ while written, swapped in on publish."""

    folder = ""

    def __init__(self, out: Path, schema: LabelSchema):
        super().__init__(out, schema)
        self.path = self.out / self.folder
        shutil.rmtree(tmp_path(self.path), ignore_errors=True)
        tmp_path(self.path).mkdir(parents=True)
        self._made: set = set()

    def file(self, rel: Path) -> Path:
        p = tmp_path(self.path) / rel
        if p.parent not in self._made:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(p.parent)
        return p

    def publish(self) -> None:
        old = self.path.with_name(self.path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            os.replace(self.path, old)
        os.replace(tmp_path(self.path), self.path)
        shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(tmp_path(self.path), ignore_errors=True)

    @classmethod
    def files_in(cls, out: Path) -> list[Path]:
        path = Path(out) / cls.folder
        return [path] if path.is_dir() or path.is_symlink() else []
