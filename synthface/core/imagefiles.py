"""Face image files: a folder (searched recursively, FFHQ's layouts included) or a zip,
listed, read and decoded. Light on purpose: no torch, no Lightning (align, evaluate and
the replay sampler list images without paying for them).

Every image is decoded once, centre-cropped to a square, resized to the requested
resolution and kept as one uint8 array (N, H, W, 3) in RGB order, optionally cached on
disk, so training epochs after the first are not bound by JPEG/PNG decoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import zlib

import numpy as np

from synthface.errors import SynthfaceError

log = logging.getLogger("synthface")

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
CACHE_VERSION = 1


def image_files(folder, flag: str, skip=None) -> list:
    """The images under `folder` (recursively, sorted), leaving out those inside `skip`
    (a dataset folder there); a path that is not a folder is `flag`'s one-line error."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SynthfaceError(f"{flag} {folder}: not a folder")
    skip = Path(skip).resolve() if skip is not None else None
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS
                  and (skip is None or skip not in p.resolve().parents))


def _synthface_outputs(root: Path) -> list:
    """Folders under `root` (not root itself) that synthface wrote: a training run
    (config.yaml beside checkpoints/) or a dataset (its .synthface/ state)."""
    found = [f.parent for f in root.rglob("config.yaml") if (f.parent / "checkpoints").is_dir()]
    found += [d.parent for d in root.rglob(".synthface") if d.is_dir()]
    found = sorted({f for f in found if f != root})
    return [f for f in found if not any(o in f.parents for o in found)]


class ImageSource:
    """The image files of a folder or a zip, in sorted order, read as bytes.
    `split` ("train" / "validation") keeps FFHQ's official split, read from
    ffhq-dataset-v2.json beside the images (train: images 0-59,999)."""

    def __init__(self, path, split: str = "all", exclude=()):
        """exclude: folders under `path` to leave out (an output folder inside the data:
        a run must not read back its own outputs as inputs)."""
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise SynthfaceError(f"data path not found: {self.path}")
        self._local = threading.local()
        self.outputs = []  # synthface output folders inside a data folder, left out
        if self.path.is_dir():
            self.is_zip = False
            skip = [Path(e).expanduser().resolve() for e in exclude]
            root = self.path.resolve()
            skip = [e.relative_to(root).parts for e in skip if e.is_relative_to(root) and e != root]
            # synthface's own outputs inside the data (another training run's samples and
            # plots, a dataset of generated faces) are not real faces to learn from
            self.outputs = sorted(str(f.relative_to(self.path)) for f in _synthface_outputs(self.path))
            skip += [tuple(Path(f).parts) for f in self.outputs]
            files = [p for p in self.path.rglob("*")
                     if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.path).parts)
                     and not any(p.relative_to(self.path).parts[:len(e)] == e for e in skip)]
            names = sorted(str(p.relative_to(self.path)) for p in files)
        elif zipfile.is_zipfile(self.path):
            self.is_zip = True
            with zipfile.ZipFile(self.path) as zf:
                names = sorted(i.filename for i in zf.infolist()
                               if not i.is_dir() and not Path(i.filename).name.startswith("."))
        else:
            raise SynthfaceError(f"{self.path} is neither a folder nor a zip of images")
        self.names = [n for n in names if Path(n).suffix.lower() in IMAGE_EXTS]
        self.n_other = len(names) - len(self.names)
        self.split = split
        if split != "all":
            if split not in FFHQ_SPLITS:
                raise SynthfaceError(f"data.split must be all, train or validation, got '{split}'")
            meta_path = find_ffhq_metadata(self.path)
            if meta_path is None:
                raise SynthfaceError(f"data.split={split} needs FFHQ's {FFHQ_JSON} in {self.path} or its parent")
            meta = load_ffhq_metadata(meta_path)
            want = FFHQ_SPLITS[split]
            self.names = [n for n in self.names
                          if meta.get("/".join(Path(n).parts[-2:]), {}).get("category") == want]

    def read(self, name: str) -> bytes:
        if not self.is_zip:
            return (self.path / name).read_bytes()
        zf = getattr(self._local, "zf", None)
        if zf is None:  # ZipFile objects are not safe to share between threads
            zf = self._local.zf = zipfile.ZipFile(self.path)
        try:
            return zf.read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise OSError(f"{self.path}: member {name} is damaged ({exc})") from None

    def fingerprint(self) -> str:
        """Changes when any file is added, removed or rewritten."""
        if self.is_zip:
            st = self.path.stat()
            items = [str(self.path.resolve()), st.st_size, st.st_mtime_ns, self.names]
        else:
            items = [str(self.path.resolve())]
            for n in self.names:
                st = (self.path / n).stat()
                items.append([n, st.st_size, st.st_mtime_ns])
        return hashlib.sha1(json.dumps(items).encode()).hexdigest()[:16]


FFHQ_JSON = "ffhq-dataset-v2.json"
FFHQ_SPLITS = {"train": "training", "validation": "validation"}


def find_ffhq_metadata(path) -> Path | None:
    """FFHQ's ffhq-dataset-v2.json in the data folder or the folder above it."""
    path = Path(path).expanduser()
    for folder in (path, path.parent):
        if (folder / FFHQ_JSON).is_file():
            return folder / FFHQ_JSON
    return None


def load_ffhq_metadata(json_path) -> dict:
    """FFHQ's metadata by image key "SSSSS/NNNNN.png" (the last two path parts, the same
    for the thumbnails and the 1024 images): {"category": ..., "landmarks": (68, 2)}
    (landmarks in the 1024x1024 image; scale by side / 1024 for the thumbnails)."""
    with open(json_path) as f:
        meta = json.load(f)
    out = {}
    for entry in meta.values():
        for kind in ("image", "thumbnail"):
            item = entry.get(kind) or {}
            if "file_path" in item:
                key = "/".join(Path(item["file_path"]).parts[-2:])
                lm = entry.get("image", {}).get("face_landmarks")
                out[key] = {"category": entry.get("category"),
                            "landmarks": np.asarray(lm, np.float32) if lm is not None else None}
    return out


def is_incomplete(data: bytes) -> bool:
    """Whether an image file's bytes were cut off before its end (a copy or download
    stopped short): libjpeg only warns on a cut-off JPEG, and dlib's loader (the trainers
    read their images with it; OpenCV's too, in some versions) returns it grey below the
    cut. A JPEG must reach its end marker (EOI), a PNG its IEND chunk, a WebP the size
    its header gives; bytes after the end (padding, or the video a phone's motion photo
    appends) are allowed. Other formats: False."""
    if data[:3] == b"\xff\xd8\xff":
        return not _jpeg_reaches_eoi(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        pos = 8
        while pos + 8 <= len(data):  # chunks: length, type, data, CRC
            length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
            pos += 12 + length
            if kind == b"IEND":
                return pos > len(data)
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return len(data) < 8 + int.from_bytes(data[4:8], "little")
    return False


# the marker that ends a JPEG scan's entropy-coded data: FF, then neither a stuffed zero,
# a fill byte nor a restart marker
_SCAN_END = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")


def _jpeg_reaches_eoi(data: bytes) -> bool:
    """Walk a JPEG's segments by their lengths (an EXIF thumbnail's own EOI inside APP1
    is skipped so) and each scan's data to the marker after it, up to EOI."""
    pos, n = 2, len(data)
    while pos < n:
        if data[pos] != 0xFF:  # not a marker where one belongs: judge by the file's end
            return data.rstrip(b"\x00").endswith(b"\xff\xd9")
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            return False
        code, pos = data[pos], pos + 1
        if code == 0xD9:
            return True
        if code == 0x01 or 0xD0 <= code <= 0xD7:  # markers without a length
            continue
        pos += int.from_bytes(data[pos:pos + 2], "big")  # the length counts its own 2 bytes
        if code == 0xDA:  # a scan: its entropy-coded data runs to the next marker
            found = _SCAN_END.search(data, pos)
            if found is None:
                return False
            pos = found.start()
    return False


def decode_face(data: bytes, size: int) -> np.ndarray | None:
    """bytes -> (size, size, 3) uint8 RGB, or None if unreadable. Grayscale, RGBA and
    16-bit images are converted; a non-square image is centre-cropped first."""
    import cv2

    if not data or is_incomplete(data):
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = img[top:top + s, left:left + s]
    if img.shape[0] != size:
        interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_CUBIC
        img = cv2.resize(img, (size, size), interpolation=interp)
    return np.ascontiguousarray(img[:, :, ::-1])  # BGR -> RGB


def _cache_file(cache_dir: str, source: ImageSource, size: int) -> Path | None:
    if not cache_dir:
        return None
    key = f"v{CACHE_VERSION}-{size}px-{source.fingerprint()}"
    return Path(os.path.expanduser(cache_dir)) / f"faces-{key}.npy"


def load_faces(path, size: int, cache_dir: str = "", progress: bool = True, split: str = "all",
               exclude=()) -> np.ndarray:
    """All readable images under `path` as one (N, size, size, 3) uint8 RGB array."""
    import cv2
    from synthface.core.progress import progress_bar

    source = ImageSource(path, split, exclude)
    if not source.names:
        extra = f" ({source.n_other} other files)" if source.n_other else ""
        raise SynthfaceError(f"no image files (png, jpg, webp, bmp) under {source.path}{extra}")
    cache = _cache_file(cache_dir, source, size)
    if cache is not None and cache.is_file():
        cached = _cached_faces(cache, size)
        if cached is not None:
            faces, stats = cached
            _warn_skipped(source, stats["unreadable"], stats["unreadable_examples"])
            log.info("loaded %d decoded faces from cache %s", len(faces), cache)
            return faces

    def work(name):
        try:
            return decode_face(source.read(name), size)
        except OSError:
            return None

    faces = np.empty((len(source.names), size, size, 3), np.uint8)
    bad: list[str] = []
    n = 0
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # threads below decode one image each; no nested pools (restored after)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = pool.map(work, source.names, chunksize=16)
        if progress:  # no bar object at all otherwise: tqdm's lock is a semaphore, which a
            # make-dataset worker process, ended by terminate(), would leave to the resource tracker
            results = progress_bar(results, total=len(source.names), desc="decoding faces", unit="img", leave=False)
        for name, img in zip(source.names, results):
            if img is None:
                bad.append(name)
            else:
                faces[n] = img
                n += 1
    cv2.setNumThreads(cv_threads)
    faces = faces[:n]
    if n == 0:
        raise SynthfaceError(f"none of the {len(source.names)} image files under {source.path} could be read")
    _warn_skipped(source, len(bad), bad[:3])
    if cache is not None:
        from synthface.core.files import atomic_open, write_atomic

        try:
            write_atomic(cache.with_suffix(".json"), json.dumps(
                {"source": str(source.path), "count": n, "unreadable": len(bad), "unreadable_examples": bad[:3]}))
            with atomic_open(cache, "wb") as f:  # last: the array's presence means both are whole
                np.save(f, faces)
        except (OSError, SynthfaceError) as exc:  # a cache is a saving, not a result: the run goes on
            log.warning("cannot write the cache %s (%s); the next run computes it again", cache,
                        getattr(exc, "strerror", None) or exc)
    return faces


def _cached_faces(cache: Path, size: int):
    """(faces, stats) from a cache file and its .json, or None (with a warning) when
    either is damaged (cut off, edited, another program's): then they are decoded again."""
    path = cache
    try:
        faces = np.ascontiguousarray(np.load(cache, mmap_mode="r"))
        path = cache.with_suffix(".json")
        stats = json.loads(path.read_text())
        ok = (faces.dtype == np.uint8 and faces.ndim == 4 and faces.shape[1:] == (size, size, 3) and len(faces)
              and isinstance(stats, dict) and stats.get("count") == len(faces)
              and isinstance(stats.get("unreadable"), int) and isinstance(stats.get("unreadable_examples"), list))
        path, why = (cache, "") if ok else (cache, "its array and .json do not match")
    except (OSError, ValueError, EOFError) as exc:  # cut off, not an array, not JSON, missing
        why = type(exc).__name__
    if not why:
        return faces, stats
    log.warning("%s is damaged (%s); decoding the faces again", path, why)
    return None


def _warn_skipped(source: ImageSource, n_bad: int, examples: list) -> None:
    parts = []
    if n_bad:
        parts.append(f"{n_bad} unreadable or truncated image(s) skipped (e.g. {', '.join(examples)})")
    if source.n_other:
        parts.append(f"{source.n_other} non-image file(s) ignored")
    if source.outputs:
        parts.append(f"synthface's own output folder(s) left out: {', '.join(source.outputs[:3])}")
    if parts:
        log.warning("%s: %s", source.path, "; ".join(parts))
