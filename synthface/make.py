"""`make_dataset`: sample faces, label them with dlib, stream them to disk, resumably.

Flow: the main thread cuts the candidate stream into chunks of `batch_size` (whole
generator blocks, see sampling.py; smaller near the end, so that the workers finish
together) and hands them to the workers (a thread, then processes: see below), which
resize, detect, predict landmarks and PNG-encode. On CPU each worker also generates its
chunk; on a GPU the main thread generates and the workers only annotate. Up to 2
unfinished chunks a worker, so nothing waits and memory stays bounded. Results are
written in order; accepted faces as images/SSSSS/NNNNNNNN.png (atomic renames).

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
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
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
    # Candidates per work chunk handed to a worker, rounded up to whole generator blocks
    # when at least one block (also the journal's fsync unit).
    batch_size: int = 256
    # Workers: a thread of the calling process, the rest spawned processes (see _Workers);
    # 0 does everything in the calling thread.
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
# A run starts at once in a thread of this process, which shares the models loaded here;
# the other workers are spawned processes that join as soon as they have loaded their
# own (about 2 s). Why not all threads: dlib's detector, torch and OpenCV release the
# GIL, but dlib's shape predictor holds it (0.7 ms a face), so threads queue on it. Side
# by side on 2 cores at n=10,000 (bench/bench_pipeline.py --threads 2 1), two threads
# made 331 faces/s and a thread plus a process 363. On CPU each worker also generates
# its chunk (torch on one thread); on a GPU the main thread generates and the workers
# only annotate.
THREADS = 1


class _Stopped(Exception):
    """The run ended (target reached, error or Ctrl-C): the thread drops its chunk."""


_annotator: Annotator | None = None  # a worker process's own models (_init_process)
_sampler = None
_init_error = ""


def _init_process(cfg: AnnotateConfig, sampler_spec, ready) -> None:
    """Load a worker process's models. A failure is kept for its first task to report
    in one line (the main process, loading the same models, normally says it first):
    a Pool would restart a worker whose initializer raised, forever."""
    global _annotator, _sampler, _init_error
    import signal

    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as inherited, also for a restarted worker
    cv2.setNumThreads(1)
    try:
        if sampler_spec is not None:
            from synthface.sampling import sampler_from_spec

            _sampler = sampler_from_spec(sampler_spec)
        _annotator = Annotator(cfg)
    except Exception as exc:  # noqa: BLE001 - reported by _process_task
        _init_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return
    with ready.get_lock():
        ready.value += 1


@contextmanager
def _sigint_ignored():
    """SIGINT ignored while worker processes are started, so that they ignore it from
    their first instruction on: a Ctrl-C in the terminal reaches the whole process
    group, and a worker killed by it mid-task can leave Pool.terminate() hanging. The
    main process turns it into a one-line message and ends the workers itself."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _chunk_task(annotator: Annotator, sampler, chunk, seed: int, image_size: int | None, pad: float,
                stop=None):
    """One chunk: `chunk` is either candidate indices (generated here, whole blocks) or
    images the main thread generated. Returns the per-image results and this thread's
    CPU seconds in dlib, in PNG encoding and in generation."""
    from synthface.sampling import images_for

    t0 = time.thread_time()
    images = chunk if isinstance(chunk, np.ndarray) else images_for(sampler, seed, chunk)
    t_gen = time.thread_time() - t0
    results, t_dlib, t_enc = _process_chunk(annotator, images, image_size, pad, stop)
    return results, t_dlib, t_enc, t_gen


def _process_task(*args):
    if _annotator is None:
        raise SynthfaceError(f"a worker process could not load its models: {_init_error}")
    return _chunk_task(_annotator, _sampler, *args)


class _Task:
    """A chunk handed out: its candidates, where it runs, and its result when done."""

    def __init__(self, meta: list, where: str, done, get):
        self.meta, self.where, self.done, self.get = meta, where, done, get


class _Workers:
    """Where chunks run: inline (workers=0), the threads, or the process pool once some
    of its processes are ready. Each worker gets up to 2 unfinished chunks; results are
    taken in order, and `changed` is set whenever a chunk finishes."""

    def __init__(self, count: int, sampler, acfg: AnnotateConfig, spec):
        self.annotator: Annotator | None = None  # the main process's, set by the caller
        self.sampler = sampler
        self.stop, self.changed = threading.Event(), threading.Event()
        self.threads = min(count, THREADS)
        self.thread = ThreadPoolExecutor(self.threads, thread_name_prefix="synthface") if count > 0 else None
        self.pool = self.ready = None
        if count > self.threads:
            ctx = mp.get_context("spawn")
            self.ready = ctx.Value("i", 0)
            with _sigint_ignored():  # inherited: a Ctrl-C is the main process's to handle
                self.pool = ctx.Pool(count - self.threads, _init_process, (acfg, spec, self.ready))

    def free(self, pending) -> str | None:
        """A worker with room for another chunk, if any."""
        if self.thread is None:
            return None if pending else "inline"
        busy = Counter(t.where for t in pending if not t.done())
        if busy["thread"] < 2 * self.threads:
            return "thread"
        if self.pool is not None and busy["pool"] < 2 * self.ready.value:
            return "pool"
        return None

    def submit(self, meta: list, where: str, chunk, *args) -> _Task:
        if where == "inline":
            result = _chunk_task(self.annotator, self.sampler, chunk, *args)
            return _Task(meta, where, lambda: True, lambda: result)
        changed = self.changed
        if where == "thread":
            f = self.thread.submit(_chunk_task, self.annotator, self.sampler, chunk, *args, self.stop)
            f.add_done_callback(lambda _: changed.set())
            return _Task(meta, where, f.done, f.result)
        r = self.pool.apply_async(_process_task, (chunk, *args), callback=lambda _: changed.set(),
                                  error_callback=lambda _: changed.set())
        return _Task(meta, where, r.ready, r.get)

    def close(self) -> None:
        """Drop the work past the target (or after an error): the thread stops at its
        next image, the processes are ended."""
        self.stop.set()
        if self.thread is not None:
            self.thread.shutdown(wait=True, cancel_futures=True)
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            # drop the pool's and the counter's semaphores now, not at exit (where an
            # interrupted run would leave them to the resource tracker, which warns)
            self.pool = self.ready = None


def pad_pixels(size: int, pad: float) -> int:
    return int(round(size * pad))


def _process_chunk(annotator: Annotator, images: np.ndarray, image_size: int | None, pad: float = 0.0,
                   stop=None):
    """Annotate a chunk: per image (status, faces found, face or None, png bytes or None),
    and the thread's CPU seconds in dlib and in PNG encoding."""
    import cv2

    out, t0 = [], time.thread_time()
    t_enc = 0.0
    for img in images:
        if stop is not None and stop.is_set():
            raise _Stopped
        if image_size and image_size != img.shape[0]:
            interp = cv2.INTER_CUBIC if image_size > img.shape[0] else cv2.INTER_AREA
            img = cv2.resize(img, (image_size, image_size), interpolation=interp)
        if pad:
            p = pad_pixels(img.shape[0], pad)
            img = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REFLECT_101)
        faces = annotator.annotate(img)
        status = annotator.keep(faces)
        png = None
        if not status:
            te = time.thread_time()
            png = cv2.imencode(".png", np.ascontiguousarray(img[:, :, ::-1]))[1].tobytes()
            t_enc += time.thread_time() - te
        out.append((status, len(faces), faces[0] if not status else None, png))
    return out, time.thread_time() - t0 - t_enc, t_enc


@contextmanager
def _one_thread_each():
    """torch and OpenCV on one thread per call while workers run side by side (their
    own thread pools would oversubscribe the cores); restored afterwards."""
    import cv2

    torch = sys.modules.get("torch")
    cv_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads() if torch else None
    cv2.setNumThreads(1)
    if torch:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(cv_threads)
        if torch:
            torch.set_num_threads(torch_threads)


def _chunk_size(cfg: MakeConfig, faces_left: int, tried: int, kept: int, in_flight: int) -> int:
    """Guided scheduling: full chunks while there is plenty left, then about a quarter
    of the remaining candidates per worker (never under one block), so that the workers
    finish together instead of one working alone through a last large chunk."""
    pass_rate = max(kept / tried, 0.05) if tried else 1.0
    left = faces_left / pass_rate - in_flight  # candidates still to hand out, estimated
    floor = min(cfg.batch_size, BLOCK)
    return max(floor, min(cfg.batch_size, int(left / (2 * max(cfg.workers, 1)))))


def _take(stream, size: int) -> list:
    """The next chunk of about `size` candidates from (j, ...) items; with size >= BLOCK
    it ends where a generator block ends, so that no block is generated twice."""
    chunk = []
    for item in stream:
        chunk.append(item)
        if len(chunk) >= size and (size < BLOCK or (item[0] + 1) % BLOCK == 0):
            break
    return chunk


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


def _record(out: Path, jf, writer, meta, results, accepted: int, target: int, landmarks: bool):
    """The main thread's part of a chunk: write its kept faces as images accepted,
    accepted + 1, ... (until target), then its journal rows, fsynced. Returns the
    statuses of the candidates used and the new accepted count."""
    rows, statuses = [], []
    for (j, seed_j), (status, n_faces, face, png) in zip(meta, results):
        if accepted >= target:
            break
        statuses.append(status)
        if status:
            rows.append(_row(j, seed_j, status, n_faces, "", None, landmarks))
            continue
        name = image_name(accepted)
        write_atomic(out / name, png)
        rows.append(_row(j, seed_j, "", n_faces, name, face, landmarks))
        accepted += 1
    writer.writerows(rows)
    jf.flush()
    os.fsync(jf.fileno())
    return statuses, accepted


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
    spec = sampler.spec() if cfg.workers > 0 and hasattr(sampler, "spec") else None
    workers = _Workers(cfg.workers, sampler, cfg.annotate, spec)  # worker processes start loading now
    try:
        # dlib's models, loaded here while the processes start, before anything is
        # written: a missing or wrong model file is one line. The threads share them.
        workers.annotator = Annotator(cfg.annotate)
        identity = _identity(cfg, sampler)
        _prepare_out(out, identity, resume)
        t_start = time.perf_counter()
        made, stats = _sample(out, cfg, sampler, spec, workers, progress)
        wall = time.perf_counter() - t_start
    finally:
        workers.close()
    summary = write_exports(out, cfg, identity, command)
    summary["this_run"] = {"faces": made, "seconds": round(wall, 2), **{k: round(v, 2) for k, v in stats.items()}}
    return summary


def _sample(out: Path, cfg: MakeConfig, sampler, spec, workers: _Workers, progress: bool) -> tuple[int, dict]:
    """The sampling loop: hand out chunks, write results in order, journal every
    candidate. Returns the faces this run made and its timings."""
    journal = out / STATE_DIR / "journal.csv"
    accepted, start, rejected, _ = read_journal(journal)
    made_before, target, landmarks = accepted, cfg.target, cfg.annotate.landmarks
    max_tries = cfg.max_tries or 20 * target + 1000
    stats = {"gen_s": 0.0, "dlib_s": 0.0, "encode_s": 0.0, "write_s": 0.0}
    if accepted >= target:
        return 0, stats
    new_file = not journal.is_file()
    from tqdm.auto import tqdm

    if spec is not None:  # the workers generate
        stream = candidate_seeds(cfg.seed, start, cfg.num_shards, cfg.shard_index)
    else:
        stream = candidates(sampler, cfg.seed, start, None, cfg.num_shards, cfg.shard_index)
    pending: deque = deque()
    # candidates of this run (a shard's own): tried = annotated, submitted = sent out
    tried = submitted = tried_before = sum(rejected.values()) + accepted
    with open(journal, "a", newline="") as jf, \
            tqdm(total=target, initial=accepted, unit="face", desc="make-dataset", disable=not progress,
                 dynamic_ncols=True) as bar, \
            _one_thread_each() if cfg.workers else nullcontext():
        writer = csv.writer(jf)
        if new_file:
            writer.writerow(_journal_header(landmarks))
        while accepted < target:
            workers.changed.clear()
            # hand out chunks while a worker has room (finished results wait, in order,
            # for at most 4 chunks a worker)
            while (submitted < max_tries and len(pending) < 4 * max(cfg.workers, 1)
                   and (where := workers.free(pending))):
                t0 = time.thread_time()
                chunk = _take(stream, _chunk_size(cfg, target - accepted, tried - tried_before,
                                                  accepted - made_before, submitted - tried))
                meta = [(c[0], c[1]) for c in chunk]
                submitted += len(chunk)
                if spec is not None:
                    work = [c[0] for c in chunk]
                else:
                    work = np.stack([c[2] for c in chunk])
                    stats["gen_s"] += time.thread_time() - t0
                pending.append(workers.submit(meta, where, work, cfg.seed, cfg.image_size, cfg.pad))
            if not pending:
                counts = ", ".join(f"{k} {v}" for k, v in rejected.most_common())
                raise SynthfaceError(
                    f"gave up after {tried} samples: only {accepted} of {target} faces passed the filter "
                    f"({counts}); the generator may be untrained or broken (look at it with a sample grid), "
                    f"or loosen --min-score; --max-tries raises the limit, --resume continues")
            if not pending[0].done():
                workers.changed.wait(0.05)  # a chunk finished, or look again for ready processes
                continue
            task = pending.popleft()
            results, t_dlib, t_enc, t_gen = task.get()
            stats["gen_s"] += t_gen
            stats["dlib_s"] += t_dlib
            stats["encode_s"] += t_enc
            t0 = time.perf_counter()
            statuses, accepted = _record(out, jf, writer, task.meta, results, accepted, target, landmarks)
            tried += len(statuses)
            rejected.update(st for st in statuses if st)
            stats["write_s"] += time.perf_counter() - t0
            bar.update(accepted - bar.n)
            bar.set_postfix(rejected=f"{sum(rejected.values()) / max(tried, 1):.1%}", refresh=False)
    return accepted - made_before, stats
