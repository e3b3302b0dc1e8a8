"""`make_dataset`: sample faces, label them with dlib, stream them to disk, resumably.

Flow: the main process cuts the candidate stream into chunks of `batch_size` and hands
them to worker processes, which each load dlib's models once and resize, detect,
predict landmarks and PNG-encode. On CPU each worker also generates its chunk (whole
aligned blocks, see sampling.py); on a GPU the main process generates and the workers
only annotate. Up to 2 chunks a worker are in flight, so nothing waits and memory stays
bounded. Results come back in order; accepted faces are written as
images/SSSSS/NNNNNNNN.png (atomic renames).

Resumability: every candidate, kept or not, gets one row in `.synthface/journal.csv`,
appended and fsynced per chunk after the chunk's images are on disk. A killed run
restarts from the candidate after the last complete journal row; since candidate j
depends only on (seed, j), the result is identical to an uninterrupted run. The label
files are all written from the journal at the end (export.py).
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing as mp
import os
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from synthface.annotate import AnnotateConfig, Annotator
from synthface.errors import SynthfaceError
from synthface.files import write_atomic
from synthface.sampling import BLOCK, candidate_seeds, candidates

log = logging.getLogger("synthface")

STATE_DIR = ".synthface"
REJECT_REASONS = ("no_face", "several_faces", "low_score")
BOX_COLS = ["x", "y", "w", "h", "score"]
POINT_COLS = [c for i in range(68) for c in (f"x{i}", f"y{i}")]


@dataclass
class MakeConfig:
    n: int
    seed: int = 0
    # Side of the saved images; None keeps the generator's resolution. Larger images
    # are upscaled (bicubic) before detection, so labels match the saved pixels.
    image_size: int | None = None
    # A reflected border around each face, as a fraction of its side: the generator's
    # tight crops otherwise leave the detector and a landmark model trained on the
    # dataset nothing but black beyond the face's edges, unlike real photos.
    pad: float = 0.0
    # Candidates per work chunk handed to a dlib worker (also the journal's fsync unit).
    batch_size: int = 256
    # dlib worker processes; 0 annotates in the main process.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Give up when this many candidates were tried without reaching n
    # (None: 20 x n + 1000, i.e. a pass rate under about 5%).
    max_tries: int | None = None
    formats: tuple = ("csv", "parquet", "xml", "pts", "coco", "yolo")
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    # Part K of N of the same dataset (see shard_quota and merge.py).
    num_shards: int = 1
    shard_index: int = 0

    @property
    def target(self) -> int:
        """Faces this run makes: n, or a shard's share of n with a margin."""
        return shard_quota(self.n, self.num_shards)


def shard_quota(n: int, num_shards: int) -> int:
    """A shard's faces: its share of n plus a margin (3 standard deviations of the
    acceptance count, and one block), so that the shards together cover the first n
    faces of the single run with near certainty; merge says so if they fall short."""
    if num_shards == 1:
        return n
    share = -(-n // num_shards)
    return share + int(3 * share ** 0.5) + BLOCK


def _journal_header(landmarks: bool) -> list[str]:
    return ["index", "seed", "status", "faces", "file"] + BOX_COLS + (POINT_COLS if landmarks else [])


def image_name(k: int) -> str:
    """Face k's path in the dataset: 1,000 a folder."""
    return f"images/{k // 1000:05d}/{k:08d}.png"


# -- worker side ------------------------------------------------------------------------
# On CPU each worker also generates its chunks (torch on one thread): a generating main
# process would compete with the workers for the same cores. On a GPU the main process
# generates and the workers only annotate (they then never import torch).
_annotator: Annotator | None = None
_sampler = None


def _init_worker(cfg: AnnotateConfig, sampler_spec=None) -> None:
    global _annotator, _sampler
    import cv2

    cv2.setNumThreads(1)
    _annotator = Annotator(cfg)
    if sampler_spec is not None:
        from synthface.sampling import sampler_from_spec

        _sampler = sampler_from_spec(sampler_spec)


def _generate_and_process(seed: int, js: list, image_size: int | None, pad: float):
    from synthface.sampling import images_for

    t0 = time.perf_counter()
    images = images_for(_sampler, seed, js)
    t_gen = time.perf_counter() - t0
    results, t_dlib, t_enc = _process_chunk(images, image_size, pad)
    return results, t_dlib, t_enc, t_gen


def pad_pixels(size: int, pad: float) -> int:
    return int(round(size * pad))


def _process_chunk(images: np.ndarray, image_size: int | None, pad: float = 0.0):
    """Annotate a chunk: per image (status, faces found, face or None, png bytes or None)."""
    import cv2

    out, t0 = [], time.perf_counter()
    t_enc = 0.0
    for img in images:
        if image_size and image_size != img.shape[0]:
            interp = cv2.INTER_CUBIC if image_size > img.shape[0] else cv2.INTER_AREA
            img = cv2.resize(img, (image_size, image_size), interpolation=interp)
        if pad:
            p = pad_pixels(img.shape[0], pad)
            img = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REFLECT_101)
        faces = _annotator.annotate(img)
        status = _annotator.keep(faces)
        png = None
        if not status:
            te = time.perf_counter()
            png = cv2.imencode(".png", np.ascontiguousarray(img[:, :, ::-1]))[1].tobytes()
            t_enc += time.perf_counter() - te
        out.append((status, len(faces), faces[0] if not status else None, png))
    return out, time.perf_counter() - t0 - t_enc, t_enc


# -- journal -------------------------------------------------------------------------
def read_journal(path: Path) -> tuple[int, int, Counter, int]:
    """(accepted, next candidate, rejections by reason, rows); cuts a torn last line."""
    if not path.is_file():
        return 0, 0, Counter(), 0
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data):  # killed in the middle of a write: drop the torn row
        with open(path, "r+b") as f:
            f.truncate(cut)
    accepted, nxt, rejected, rows = 0, 0, Counter(), 0
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for row in reader:
            rows += 1
            nxt = int(row[0]) + 1
            if row[2]:
                rejected[row[2]] += 1
            else:
                accepted += 1
    return accepted, nxt, rejected, rows


def _row(j, seed, status, n_faces, file, face, landmarks: bool) -> list:
    row = [j, seed, status, n_faces, file]
    if face is None:
        return row + [""] * (len(BOX_COLS) + (136 if landmarks else 0))
    x, y, w, h = face["box"]
    row += [int(x), int(y), int(w), int(h), f"{face['score']:.6f}"]
    if landmarks:
        row += [f"{v:g}" for v in face["landmarks"].reshape(-1)]
    return row


# -- the run -------------------------------------------------------------------------
def _identity(cfg: MakeConfig, sampler) -> dict:
    """What makes two runs the same dataset (n, workers and batch size do not)."""
    size = cfg.image_size or sampler.resolution
    return {"seed": cfg.seed, "image_size": size + 2 * pad_pixels(size, cfg.pad),
            **({"pad": cfg.pad} if cfg.pad else {}),
            "generator": sampler.identity,
            "annotate": {k: v for k, v in asdict(cfg.annotate).items() if k != "predictor_path"},
            "predictor_sha256": _predictor_hash(cfg.annotate),
            **({"shards": {"num": cfg.num_shards, "index": cfg.shard_index, "n": cfg.n}}
               if cfg.num_shards > 1 else {})}


def _predictor_hash(acfg: AnnotateConfig) -> str | None:
    if not acfg.landmarks:
        return None
    from synthface.annotate import model_path
    from synthface.weights import file_sha256

    return file_sha256(model_path("landmarks68", acfg.predictor_path))


def _prepare_out(out: Path, identity: dict, resume: bool) -> None:
    state = out / STATE_DIR
    if out.exists() and not out.is_dir():
        raise SynthfaceError(f"--out {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise SynthfaceError(f"{out} is not empty; add --resume to continue the run there, or choose a new --out")
        run_file = state / "run.json"
        if not run_file.is_file():
            raise SynthfaceError(f"{out} is not a synthface dataset folder (no {STATE_DIR}/run.json); choose a new --out")
        saved = json.loads(run_file.read_text())
        if saved != json.loads(json.dumps(identity)):
            keys = [k for k in identity if saved.get(k) != json.loads(json.dumps(identity[k]))]
            raise SynthfaceError(f"{out} was made with other settings ({', '.join(keys)} differ); "
                                 "resume with the same command, or choose a new --out")
        return
    state.mkdir(parents=True, exist_ok=True)
    write_atomic(state / "run.json", (json.dumps(identity, indent=2) + "\n").encode())


def make_dataset(out, cfg: MakeConfig, sampler, resume: bool = False, progress: bool = True,
                 command: str = "") -> dict:
    """Make `cfg.n` labelled faces in `out`; returns the stats written to dataset.json."""
    from synthface.export import write_exports

    if cfg.n < 1:
        raise SynthfaceError(f"-n must be at least 1, got {cfg.n}")
    if cfg.num_shards < 1 or not 0 <= cfg.shard_index < cfg.num_shards:
        raise SynthfaceError(f"--shard-index must be in [0, {cfg.num_shards - 1}] and --num-shards at least 1, "
                             f"got {cfg.shard_index} of {cfg.num_shards}")
    if cfg.image_size is not None and cfg.image_size < 16:
        raise SynthfaceError(f"--image-size must be at least 16, got {cfg.image_size}")
    if not 0.0 <= cfg.pad <= 1.0:
        raise SynthfaceError(f"--pad must be in [0, 1], got {cfg.pad}")
    if cfg.batch_size < 1:
        raise SynthfaceError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    out = Path(out)
    landmarks = cfg.annotate.landmarks
    # Load the models here once: a missing or wrong model file fails now with one line,
    # not in every worker (a Pool restarts workers whose initializer fails, forever).
    Annotator(cfg.annotate)
    identity = _identity(cfg, sampler)
    _prepare_out(out, identity, resume)
    journal = out / STATE_DIR / "journal.csv"
    accepted, start, rejected, _ = read_journal(journal)
    target = cfg.target
    max_tries = cfg.max_tries or 20 * target + 1000
    stats = {"gen_s": 0.0, "dlib_s": 0.0, "encode_s": 0.0, "write_s": 0.0}
    t_start = time.perf_counter()
    made_before = accepted

    if accepted < target:
        new_file = not journal.is_file()
        jf = open(journal, "a", newline="")
        writer = csv.writer(jf)
        if new_file:
            writer.writerow(_journal_header(landmarks))
        from tqdm.auto import tqdm

        bar = tqdm(total=target, initial=accepted, unit="face", desc="make-dataset",
                   disable=not progress, dynamic_ncols=True)
        pool = None
        spec = sampler.spec() if cfg.workers > 0 and hasattr(sampler, "spec") else None
        if cfg.workers > 0:
            pool = mp.get_context("spawn").Pool(cfg.workers, _init_worker, (cfg.annotate, spec))
        else:
            _init_worker(cfg.annotate)
        try:
            if spec is not None:
                stream = ((j, seed_j, None) for j, seed_j in
                          candidate_seeds(cfg.seed, start, cfg.num_shards, cfg.shard_index))
            else:
                stream = candidates(sampler, cfg.seed, start, None, cfg.num_shards, cfg.shard_index)
            pending: deque = deque()
            window = max(2 * cfg.workers, 1)
            # candidates of this run (a shard's own): tried = annotated, submitted = sent out
            tried = submitted = sum(rejected.values()) + accepted
            gave_up = False
            while accepted < target:
                while len(pending) < window and submitted < max_tries:
                    t0 = time.perf_counter()
                    chunk = [next(stream) for _ in range(cfg.batch_size)]
                    meta = [(c[0], c[1]) for c in chunk]
                    submitted += len(chunk)
                    if spec is not None:  # the worker generates
                        args = (cfg.seed, [c[0] for c in chunk], cfg.image_size, cfg.pad)
                        pending.append((meta, pool.apply_async(_generate_and_process, args)))
                        continue
                    images = np.stack([c[2] for c in chunk])
                    stats["gen_s"] += time.perf_counter() - t0
                    if pool is None:
                        pending.append((meta, _process_chunk(images, cfg.image_size, cfg.pad)))
                    else:
                        pending.append((meta, pool.apply_async(_process_chunk, (images, cfg.image_size, cfg.pad))))
                if not pending:
                    gave_up = True
                    break
                meta, result = pending.popleft()
                results, t_dlib, t_enc, *t_gen = result if pool is None else result.get()
                stats["gen_s"] += sum(t_gen)
                stats["dlib_s"] += t_dlib
                stats["encode_s"] += t_enc
                t0 = time.perf_counter()
                rows = []
                for (j, seed_j), (status, n_faces, face, png) in zip(meta, results):
                    if accepted >= target:
                        break
                    tried += 1
                    if status:
                        rejected[status] += 1
                        rows.append(_row(j, seed_j, status, n_faces, "", None, landmarks))
                        continue
                    name = image_name(accepted)
                    write_atomic(out / name, png)
                    rows.append(_row(j, seed_j, "", n_faces, name, face, landmarks))
                    accepted += 1
                writer.writerows(rows)
                jf.flush()
                os.fsync(jf.fileno())
                stats["write_s"] += time.perf_counter() - t0
                bar.update(accepted - bar.n)
                bar.set_postfix(rejected=f"{sum(rejected.values()) / max(tried, 1):.1%}", refresh=False)
        finally:
            bar.close()
            jf.close()
            if pool is not None:
                pool.terminate()
                pool.join()
        if gave_up:
            counts = ", ".join(f"{k} {v}" for k, v in rejected.most_common())
            raise SynthfaceError(
                f"gave up after {tried} samples: only {accepted} of {target} faces passed the filter "
                f"({counts}); the generator may be untrained or broken (look at it with a sample grid), "
                f"or loosen --min-score; --max-tries raises the limit, --resume continues")

    wall = time.perf_counter() - t_start
    summary = write_exports(out, cfg, identity, command)
    summary["this_run"] = {"faces": max(accepted - made_before, 0), "seconds": round(wall, 2),
                           **{k: round(v, 2) for k, v in stats.items()}}
    return summary
