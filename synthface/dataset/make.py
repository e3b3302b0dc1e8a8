"""`make_dataset`: sample faces, label them with dlib, stream them to disk, resumably.

This module is the scheduler; the settings are config.py's `MakeConfig`, the work on
each face is faces.py's. The path of a face: the main thread cuts the candidate stream
into chunks (whole generator blocks, see sampling.py) and hands each to a worker
(core/workers.py): on CPU the worker generates the chunk's images from the candidates'
seeds, then resizes, detects, predicts landmarks and PNG-encodes each (faces.py). The
main thread takes the results in candidate order, writes each kept face's PNG under its
final name (images/SSSSS/NNNNNNNN.png, atomic rename), then appends one `FaceRecord` per
candidate, kept or not, to the journal and fsyncs it (journal.py). At the end every
label format is written from the journal (export.py), each published only when complete.

Resumability: a killed run restarts from the candidate after the last complete journal
row; since candidate j depends only on (seed, j), the result is byte for byte that of an
uninterrupted run. One process writes a folder at a time (an flock in the state folder).
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from synthface.face.annotate import (DETECTORS, LABELS, MAX_UPSAMPLE, AnnotateConfig, Annotator,  # noqa: F401
                                check_predictor_text, check_upsample)
from synthface.errors import SynthfaceError
from synthface.core.files import folder_lock, write_atomic
from synthface.dataset.config import MAX_IMAGE_SIZE, MakeConfig, check_box, pad_pixels, shard_quota  # noqa: F401
from synthface.dataset.faces import _chunk_task, _load_worker, kept_record, remake_damaged_images, write_turn_grid
from synthface.face.stage import FaceStage
from synthface.dataset.folder import prepare_folder, prune_images, write_options
from synthface.dataset.journal import (STATE_DIR, FaceRecord, Journal, add_checks, image_name, read_progress,
                                       truncate_after)
from synthface.dataset.record import RunRecord
from synthface.generator.sampling import BLOCK, MAX_SEED, candidate_seed, candidate_seeds, candidates, check_seed  # noqa: F401
from synthface.core.workers import ChunkWorkers

log = logging.getLogger("synthface")

# -- the workers --------------------------------------------------------------------------
# A run starts at once in a thread of this process, which shares the models loaded here;
# the other workers are spawned processes that join as soon as they have loaded their
# own (about 2 s). Why not all threads: dlib's detector, torch and OpenCV release the
# GIL, but dlib's shape predictor holds it (0.7 ms a face), so threads queue on it. Side
# by side on 2 cores at n=10,000 (bench/bench_pipeline.py --threads 2 1), two threads
# made 331 faces/s and a thread plus a process 363. On CPU each worker also generates
# its chunk (torch on one thread); on a GPU the main thread generates and the workers
# only annotate.
THREADS = 1


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


def _record(out: Path, journal: Journal, meta, results, accepted: int, target: int):
    """The main thread's part of a chunk: write its kept faces as images accepted,
    accepted + 1, ... (until target), then journal every candidate used, fsynced.
    Returns the records and the new accepted count."""
    records = []
    for (j, seed_j), (status, n_faces, face, png) in zip(meta, results):
        if accepted >= target:
            break
        if status:
            records.append(FaceRecord(j, seed_j, status, n_faces))
            continue
        name = image_name(accepted)
        write_atomic(out / name, png)
        records.append(kept_record(j, seed_j, n_faces, name, face))
        accepted += 1
    journal.append(records)
    return records, accepted


# -- the run -------------------------------------------------------------------------
def make_dataset(out, cfg: MakeConfig, sampler, resume: bool = False, progress: bool = True,
                 command: str = "") -> dict:
    """Make `cfg.n` labelled faces in `out`; returns the stats written to dataset.json."""
    from synthface.dataset.export import write_exports

    cfg.validate()
    out = Path(out)
    prepare_folder(out, resume, create=False)
    spec = sampler.spec() if cfg.workers > 0 and hasattr(sampler, "spec") else None
    # worker processes start loading now, while this process loads its own models
    workers = ChunkWorkers(cfg.workers, THREADS, _load_worker, (cfg.annotate, spec))
    try:
        # dlib's models, loaded before anything is written: a missing or wrong model
        # file is one line and leaves no folder behind. The threads share them.
        workers.context = (Annotator(cfg.annotate), sampler)
        record = RunRecord.of_run(cfg, sampler)
        prepare_folder(out, resume)
        with folder_lock(out / STATE_DIR, out, "make-dataset"):
            record.save(out)
            write_options(out, cfg.formats, cfg.val_fraction, cfg.box)
            journal = out / STATE_DIR / "journal.csv"
            checks = {"seed_of": lambda j: candidate_seed(cfg.seed, j), "contiguous": cfg.num_shards == 1}
            state = read_progress(journal, **checks)
            if state.accepted > cfg.target:  # resumed with a smaller -n
                truncate_after(journal, cfg.target)
                state = read_progress(journal, **checks)
            add_checks(journal)  # a journal written before rows had checks gets them now
            remade = remake_damaged_images(out, cfg, workers.context, state.accepted, checks)
            t_start = time.perf_counter()
            made, stats = _sample(out, cfg, sampler, spec=spec, workers=workers, state=state, progress=progress)
            wall = time.perf_counter() - t_start
            workers.close()
            t_export = time.perf_counter()
            summary = write_exports(out, cfg, record, command, progress)
            export_s = time.perf_counter() - t_export
            prune_images(out, summary["faces"])
            if cfg.rotate3d is not None:  # after the labels: a failed export publishes nothing
                write_turn_grid(out, cfg, sampler, workers.context[0])
    finally:
        workers.close()
    summary["this_run"] = {"faces": made, "seconds": round(wall, 2), "export_s": round(export_s, 2),
                           **({"images_remade": remade} if remade else {}),
                           **{k: round(v, 2) for k, v in stats.items()}}
    return summary


def _sample(out: Path, cfg: MakeConfig, sampler, spec, *, workers: ChunkWorkers, state, progress: bool
            ) -> tuple[int, dict]:
    """The sampling loop from where the journal stands (`state`): hand out chunks, write
    results in order, journal every candidate. Returns the faces this run made and its
    timings."""
    path = out / STATE_DIR / "journal.csv"
    accepted, rejected = state.accepted, state.rejected
    made_before, target = accepted, cfg.target
    max_tries = cfg.max_tries or 20 * target + 1000
    # timings (CPU seconds summed over workers) and the chunks done by worker processes
    stats = {"gen_s": 0.0, "dlib_s": 0.0, "encode_s": 0.0, "write_s": 0.0, "process_chunks": 0}
    if accepted >= target:
        return 0, stats
    from synthface.core.progress import progress_bar

    if spec is not None:  # the workers generate
        stream = candidate_seeds(cfg.seed, state.next_index, cfg.num_shards, cfg.shard_index)
    else:
        stream = candidates(sampler, cfg.seed, state.next_index, None, cfg.num_shards, cfg.shard_index)
    stage = FaceStage.of(cfg)  # what each worker does to each face
    pending: deque = deque()
    # candidates of this run (a shard's own): tried = annotated, submitted = sent out
    tried = submitted = tried_before = state.tried
    with Journal(path, cfg.annotate.landmarks, cfg.annotate.labels == "flip", cfg.rotate3d is not None) as journal, \
            progress_bar(total=target, initial=accepted, unit="face", desc="make-dataset", disable=not progress,
                 dynamic_ncols=True) as bar, \
            _one_thread_each() if cfg.workers else nullcontext():
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
                pending.append(workers.submit(meta, where, _chunk_task, work, stage, [m[1] for m in meta]))
            if not pending:
                counts = ", ".join(f"{k} {v}" for k, v in rejected.most_common())
                raise SynthfaceError(
                    f"gave up after {tried} samples: only {accepted} of {target} faces passed the filter "
                    f"({counts}); the generator may be untrained or broken (look at it with a sample grid), "
                    f"or loosen --min-score; --max-tries raises the limit, --resume continues")
            if not pending[0].done():
                workers.check()  # a dead worker process's chunks would never finish
                workers.changed.wait(0.05)  # a chunk finished, or look again for ready processes
                continue
            task = pending.popleft()
            results, t_dlib, t_enc, t_gen = task.get()
            stats["process_chunks"] += task.where == "pool"
            stats["gen_s"] += t_gen
            stats["dlib_s"] += t_dlib
            stats["encode_s"] += t_enc
            t0 = time.perf_counter()
            records, accepted = _record(out, journal, task.meta, results, accepted, target)
            tried += len(records)
            rejected.update(r.status for r in records if r.status)
            stats["write_s"] += time.perf_counter() - t0
            bar.update(accepted - bar.n)
            bar.set_postfix(rejected=f"{sum(rejected.values()) / max(tried, 1):.1%}", refresh=False)
    return accepted - made_before, stats
