"""`make_dataset`: sample faces, label them with dlib, stream them to disk, resumably.

The path of a face: the main thread cuts the candidate stream into chunks (whole
generator blocks, see sampling.py) and hands each to a worker (workers.py): on CPU the
worker generates the chunk's images from the candidates' seeds, then resizes, detects,
predicts landmarks and PNG-encodes each (`_process_chunk`). The main thread takes the
results in candidate order, writes each kept face's PNG under its final name
(images/SSSSS/NNNNNNNN.png, atomic rename), then appends one `FaceRecord` per candidate,
kept or not, to the journal and fsyncs it (journal.py). At the end every label format is
written from the journal (export.py), each published only when complete.

Resumability: a killed run restarts from the candidate after the last complete journal
row; since candidate j depends only on (seed, j), the result is byte for byte that of an
uninterrupted run. One process writes a folder at a time (an flock in the state folder).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections import deque
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from synthface.face.annotate import (DETECTORS, LABELS, MAX_UPSAMPLE, AnnotateConfig, Annotator,  # noqa: F401
                                check_predictor_text, check_upsample)
from synthface.errors import SynthfaceError
from synthface.core.files import folder_lock, write_atomic
from synthface.formats import ALL_FORMATS, parse_formats
from synthface.face.geometry import BOX_CONVENTIONS
from synthface.dataset.journal import (DEFAULT_VAL_FRACTION, STATE_DIR, FaceRecord, Journal, add_checks, check_identity,
                               image_complete, image_name, iter_records, prepare_folder, read_progress,
                               truncate_after, write_options)
from synthface.generator.sampling import BLOCK, MAX_SEED, candidate_seed, candidate_seeds, candidates, check_seed  # noqa: F401
from synthface.core.workers import ChunkWorkers, check_workers

log = logging.getLogger("synthface")

MAX_IMAGE_SIZE = 2048  # a 2048 px face, upsampled twice for the detector, is 200 MB of pixels


def check_box(box: str, landmarks: bool) -> None:
    """A --box convention (geometry.BOX_CONVENTIONS); all but dlib's are computed from the 68 points."""
    if box not in BOX_CONVENTIONS:
        raise SynthfaceError(f"--box must be one of {', '.join(BOX_CONVENTIONS)}, got '{box}'")
    if box != "dlib" and not landmarks:
        raise SynthfaceError(f"--box {box} needs --landmarks (the box is computed from the face's 68 points)")


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
    # Workers: a thread of the calling process, the rest spawned processes (workers.py);
    # 0 does everything in the calling thread.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Give up when this many candidates were tried without reaching n
    # (None: 20 x n + 1000, i.e. a pass rate under about 5%).
    max_tries: int | None = None
    formats: tuple = ALL_FORMATS
    # The face box convention of the labels (geometry.BOX_CONVENTIONS): dlib's own box, or
    # one computed from the 68 points (needs landmarks) to match the boxes a detector's
    # benchmark annotates. A label setting like `formats`: it changes no image or journal row.
    box: str = "dlib"
    # Dataset-time augmentation (transforms.AugmentConfig; None: none): each kept face
    # and its labels transformed exactly, with parameters from the face's seed. "auto":
    # on with landmarks, off without: it was the one change that trained better landmark
    # models (docs/landmarks.md); the card and the run's summary say it is on.
    augment: object = "auto"
    # The share of faces held out as the validation split, chosen per face from its seed
    # (journal.split_of). An export option: changing it on --resume re-splits the labels.
    val_fraction: float = DEFAULT_VAL_FRACTION
    # Face profiling (rotate3d.Rotate3DConfig; None: none): each kept face turned in 3D by
    # a yaw and pitch from its seed, its points carried through the turn, before --augment.
    # "auto": on with landmarks (yaw +-30 degrees), off without: real + turned faces trained
    # better landmark models than real + unturned ones in every case measured
    # (docs/landmarks.md).
    rotate3d: object = "auto"
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    # Part K of N of the same dataset (see shard_quota and merge.py); with N > 1, K must
    # be given (None: not given, which is part 0 of 1).
    num_shards: int = 1
    shard_index: int | None = None

    def __post_init__(self):
        if self.shard_index is None and self.num_shards == 1:
            self.shard_index = 0
        if isinstance(self.augment, str) and self.augment == "auto":
            from synthface.face.augment import AugmentConfig

            self.augment = AugmentConfig() if self.annotate.landmarks else None
        if isinstance(self.rotate3d, str) and self.rotate3d == "auto":
            from synthface.face.rotate3d import Rotate3DConfig

            self.rotate3d = Rotate3DConfig() if self.annotate.landmarks else None

    @property
    def target(self) -> int:
        """Faces this run makes: n, or a shard's share of n with a margin."""
        return shard_quota(self.n, self.num_shards)

    def validate(self) -> None:
        """Every option, before any work and before any folder is made."""
        if self.n < 1:
            raise SynthfaceError(f"-n must be at least 1, got {self.n}")
        check_seed(self.seed)
        if self.num_shards < 1:
            raise SynthfaceError(f"--num-shards must be at least 1, got {self.num_shards}")
        if self.shard_index is None and self.num_shards > 1:  # shard 0 by default would be a silent guess
            raise SynthfaceError(f"--num-shards {self.num_shards} needs --shard-index K: which part this job makes, "
                                 f"0 .. {self.num_shards - 1}")
        if not 0 <= (self.shard_index or 0) < self.num_shards:
            raise SynthfaceError(f"--shard-index must be in [0, {self.num_shards - 1}], got {self.shard_index}")
        if self.image_size is not None and not 16 <= self.image_size <= MAX_IMAGE_SIZE:
            raise SynthfaceError(f"--image-size must be from 16 to {MAX_IMAGE_SIZE}, got {self.image_size}")
        if not 0.0 <= self.pad <= 1.0:  # NaN fails too
            raise SynthfaceError(f"--pad must be in [0, 1], got {self.pad}")
        if not 1 <= self.batch_size <= 100_000:
            raise SynthfaceError(f"--batch-size must be from 1 to 100000, got {self.batch_size}")
        check_workers(self.workers)
        if self.max_tries is not None and self.max_tries < 1:
            raise SynthfaceError(f"--max-tries must be at least 1, got {self.max_tries}")
        parse_formats(self.formats)
        check_box(self.box, self.annotate.landmarks)
        if self.augment is not None:
            self.augment.validate()
        if self.rotate3d is not None:
            if not self.annotate.landmarks:
                raise SynthfaceError("--rotate-3d needs --landmarks (the turn is fitted to the face's 68 points)")
            self.rotate3d.validate()
        if not 0.0 <= self.val_fraction < 1.0:  # NaN fails too
            raise SynthfaceError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        a = self.annotate
        check_upsample(a.upsample)
        check_predictor_text(a.predictor_path)
        if a.labels not in LABELS:
            raise SynthfaceError(f"--labels must be one of {', '.join(LABELS)}, got '{a.labels}'")
        if a.max_disagreement is not None:
            if a.labels != "flip" or not a.landmarks:
                raise SynthfaceError("--max-disagreement needs --landmarks --labels flip (the disagreement is "
                                     "that of the two flip predictions)")
            if not a.max_disagreement > 0:  # NaN fails too
                raise SynthfaceError(f"--max-disagreement must be above 0, got {a.max_disagreement}")
        if a.detector not in DETECTORS:
            raise SynthfaceError(f"--detector must be one of {', '.join(DETECTORS)}, got '{a.detector}'")
        if not math.isfinite(a.min_score):
            raise SynthfaceError(f"--min-score must be a number, got {a.min_score}")


def shard_quota(n: int, num_shards: int) -> int:
    """A shard's faces: its share of n plus a margin (3 standard deviations of the
    acceptance count, and one block), so that the shards together cover the first n
    faces of the single run with near certainty; merge says so if they fall short."""
    if num_shards == 1:
        return n
    share = -(-n // num_shards)
    return share + int(3 * share ** 0.5) + BLOCK


def pad_pixels(size: int, pad: float) -> int:
    return int(round(size * pad))


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


def _load_worker(acfg: AnnotateConfig, sampler_spec):
    """A worker process's models: (annotator, sampler or None)."""
    sampler = None
    if sampler_spec is not None:
        from synthface.generator.sampling import sampler_from_spec

        sampler = sampler_from_spec(sampler_spec)
    return Annotator(acfg), sampler


def _chunk_task(context, chunk, seed: int, image_size: int | None, pad: float, seeds=None, augment=None,
                rotate3d=None, stop=None):
    """One chunk: `chunk` is either candidate indices (generated here, whole blocks) or
    images the main thread generated. Returns the per-image results and this thread's
    CPU seconds in dlib, in PNG encoding and in generation."""
    from synthface.generator.sampling import images_for

    annotator, sampler = context
    t0 = time.thread_time()
    images = chunk if isinstance(chunk, np.ndarray) else images_for(sampler, seed, chunk)
    t_gen = time.thread_time() - t0
    results, t_dlib, t_enc = _process_chunk(annotator, images, image_size, pad, stop, seeds, augment, rotate3d)
    return results, t_dlib, t_enc, t_gen


def _sized(img: np.ndarray, image_size: int | None, pad: float) -> np.ndarray:
    """A generated image as make-dataset saves and labels it: resized to --image-size
    (bicubic up, area down), then --pad's reflected border."""
    import cv2

    if image_size and image_size != img.shape[0]:
        interp = cv2.INTER_CUBIC if image_size > img.shape[0] else cv2.INTER_AREA
        img = cv2.resize(img, (image_size, image_size), interpolation=interp)
    if pad:
        p = pad_pixels(img.shape[0], pad)
        img = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REFLECT_101)
    return img


def _process_chunk(annotator: Annotator, images: np.ndarray, image_size: int | None, pad: float = 0.0,
                   stop=None, seeds=None, augment=None, rotate3d=None):
    """Annotate a chunk: per image (status, faces found, face or None, png bytes or None),
    and the thread's CPU seconds in dlib and in PNG encoding. With `rotate3d` (a
    Rotate3DConfig), each kept face is turned in 3D, then with `augment` (an
    AugmentConfig) transformed, each with its labels, by its seed's draws."""
    import cv2

    if augment is not None:
        from synthface.face.augment import augment_face, flipped
    if rotate3d is not None:
        from synthface.face.rotate3d import rotate_face
    out, t0 = [], time.thread_time()
    t_enc = 0.0
    for k, img in enumerate(images):
        if stop is not None and stop.is_set():
            raise _Stopped
        img = _sized(img, image_size, pad)
        faces = annotator.annotate(img)
        status = annotator.rejection_reason(faces)
        png = None
        if not status and rotate3d is not None:
            face = faces[0]
            turned = rotate_face(img, face["landmarks"], face["box"], seeds[k], rotate3d)
            img, face["landmarks"], face["box"], face["hidden"] = turned.image, turned.points, turned.box, turned.hidden
        if not status and augment is not None:
            face = faces[0]
            img, face["landmarks"], face["box"] = augment_face(img, face.get("landmarks"), face["box"], seeds[k],
                                                               augment)
            if face.get("hidden") is not None and flipped(seeds[k], augment):
                from synthface.face.scheme68 import FLIP_IDX_68

                face["hidden"] = face["hidden"][FLIP_IDX_68]
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
        records.append(FaceRecord(j, seed_j, "", n_faces, name, tuple(int(v) for v in face["box"]),
                                  face["score"], face.get("landmarks"), face.get("disagreement"), face.get("hidden")))
        accepted += 1
    journal.append(records)
    return records, accepted


# -- the run -------------------------------------------------------------------------
# annotate options left out of a run's identity at their defaults, so that folders made
# before the option existed still resume
DEFAULTS_LEFT_OUT = {("detector", "hog"), ("labels", "single"), ("max_disagreement", None)}

def _identity(cfg: MakeConfig, sampler) -> dict:
    """What makes two runs the same dataset (n, workers and batch size do not)."""
    size = cfg.image_size or sampler.resolution
    return {"seed": cfg.seed, "image_size": size + 2 * pad_pixels(size, cfg.pad),
            **({"pad": cfg.pad} if cfg.pad else {}),
            **({"augment": cfg.augment.to_dict()} if cfg.augment is not None else {}),
            **({"rotate_3d": cfg.rotate3d.to_dict()} if cfg.rotate3d is not None else {}),
            "generator": sampler.identity,
            # the detector only when not the default: folders made before --detector resume
            "annotate": {k: v for k, v in asdict(cfg.annotate).items()
                         if k != "predictor_path" and (k, v) not in DEFAULTS_LEFT_OUT},
            "predictor_sha256": _predictor_hash(cfg.annotate),
            **({"shards": {"num": cfg.num_shards, "index": cfg.shard_index, "n": cfg.n}}
               if cfg.num_shards > 1 else {})}


def _predictor_hash(acfg: AnnotateConfig) -> str | None:
    if not acfg.landmarks:
        return None
    from synthface.face.annotate import model_path
    from synthface.generator.weights import file_sha256

    return file_sha256(model_path("landmarks68", acfg.predictor_path))


def prune_images(out: Path, count: int) -> int:
    """Remove images/ files (and .pts beside them) of faces k >= count (left by a run resumed with a smaller
    -n, or written by a chunk that a kill kept out of the journal)."""
    removed = 0
    images = Path(out) / "images"
    if not images.is_dir():
        return 0
    for folder in images.iterdir():
        if not folder.is_dir() or not folder.name.isdigit() or (int(folder.name) + 1) * 1000 <= count:
            continue
        for f in folder.iterdir():
            stem = f.name.split(".")[0]
            if f.suffix in (".png", ".pts", ".tmp") and stem.isdigit() and int(stem) >= count:
                f.unlink()
                removed += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    return removed


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
        identity = _identity(cfg, sampler)
        prepare_folder(out, resume)
        with folder_lock(out / STATE_DIR, out, "make-dataset"):
            check_identity(out, identity)
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
            made, stats = _sample(out, cfg, sampler, spec, workers, state, progress)
            wall = time.perf_counter() - t_start
            workers.close()
            t_export = time.perf_counter()
            summary = write_exports(out, cfg, identity, command, progress)
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


def remake_damaged_images(out: Path, cfg: MakeConfig, context, kept: int, checks: dict) -> int:
    """On resume: the first `kept` faces' images must be there and whole (image_complete:
    both ends of each file, no decoding, so 100,000 faces take seconds); any missing or
    truncated one is made again from its candidate, which gives the same pixels and
    labels. Returns how many were remade."""
    damaged = [k for k in range(kept) if not image_complete(out / image_name(k))]
    if not damaged:
        return 0
    wanted, records, k = set(damaged), [], 0
    for rec in iter_records(out / STATE_DIR / "journal.csv", **checks):
        if rec.kept:
            if k in wanted:
                records.append(rec)
            k += 1
    landmarks, flip, turned = cfg.annotate.landmarks, cfg.annotate.labels == "flip", cfg.rotate3d is not None
    for start in range(0, len(records), BLOCK):
        chunk = records[start:start + BLOCK]
        results = _chunk_task(context, [r.index for r in chunk], cfg.seed, cfg.image_size, cfg.pad,
                              [r.seed for r in chunk], cfg.augment, cfg.rotate3d)[0]
        for rec, (status, n_faces, face, png) in zip(chunk, results):
            again = None if status else FaceRecord(
                rec.index, rec.seed, "", n_faces, rec.file, tuple(int(v) for v in face["box"]), face["score"],
                face.get("landmarks"), face.get("disagreement"), face.get("hidden"))
            if again is None or again.to_row(landmarks, flip, turned) != rec.to_row(landmarks, flip, turned):
                raise SynthfaceError(f"{out / rec.file} is missing or damaged, and made again it is not the face "
                                     "the journal labels (another generator or library version?); restore the "
                                     "image, or make the dataset in a new --out")
            write_atomic(out / rec.file, png)
    log.warning("%d image(s) of the journal missing or damaged (e.g. %s): made again", len(records),
                records[0].file)
    return len(records)


TURN_STEPS = 7


def write_turn_grid(out: Path, cfg: MakeConfig, sampler, annotator: Annotator) -> None:
    """turns.jpg for the card of a --rotate-3d dataset: its first face, as dlib labelled
    it before the turn, turned across the run's yaw range in TURN_STEPS steps."""
    import cv2

    from synthface.core.imaging import make_grid
    from synthface.dataset.journal import iter_records
    from synthface.dataset.preview import turn_row
    from synthface.generator.sampling import images_for

    first = next((r for r in iter_records(out / STATE_DIR / "journal.csv") if r.kept), None)
    if first is None:
        return
    img = _sized(images_for(sampler, cfg.seed, [first.index])[0], cfg.image_size, cfg.pad)
    faces = annotator.annotate(img)
    if annotator.rejection_reason(faces):
        return
    scale = max(1, round(192 / img.shape[0]))
    tiles = turn_row(img, faces[0]["landmarks"], faces[0]["box"], np.linspace(*cfg.rotate3d.yaw, TURN_STEPS), scale)
    grid = make_grid(np.stack(tiles), TURN_STEPS)
    try:
        write_atomic(out / "turns.jpg", cv2.imencode(".jpg", np.ascontiguousarray(grid[:, :, ::-1]),
                                                     [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    except (OSError, SynthfaceError) as exc:  # a full disk: the labels are written; only the card's picture is not
        why = exc.strerror or exc if isinstance(exc, OSError) else "a folder is in its place"
        raise SynthfaceError(f"writing {out / 'turns.jpg'}: {why}; the labels are complete, "
                             "rerun the command with --resume for the picture") from None


def _sample(out: Path, cfg: MakeConfig, sampler, spec, workers: ChunkWorkers, state, progress: bool
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
    from tqdm.auto import tqdm

    if spec is not None:  # the workers generate
        stream = candidate_seeds(cfg.seed, state.next_index, cfg.num_shards, cfg.shard_index)
    else:
        stream = candidates(sampler, cfg.seed, state.next_index, None, cfg.num_shards, cfg.shard_index)
    pending: deque = deque()
    # candidates of this run (a shard's own): tried = annotated, submitted = sent out
    tried = submitted = tried_before = state.tried
    with Journal(path, cfg.annotate.landmarks, cfg.annotate.labels == "flip", cfg.rotate3d is not None) as journal, \
            tqdm(total=target, initial=accepted, unit="face", desc="make-dataset", disable=not progress,
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
                pending.append(workers.submit(meta, where, _chunk_task, work, cfg.seed, cfg.image_size, cfg.pad,
                                              [m[1] for m in meta], cfg.augment, cfg.rotate3d))
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
