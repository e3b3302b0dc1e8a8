"""The work on each face of a make-dataset run, wherever make.py's scheduler runs it (the
calling thread, a thread beside it, or a worker process: core/workers.py).

A chunk of candidates (`_chunk_task`): on CPU generated here from their seeds (whole
generator blocks), or images the main thread generated; each goes through the per-face
stage (face/stage.py: sized, annotated, turned, augmented, PNG-encoded). What a run does
to each face travels as one `FaceStage`; a worker's context is (annotator, sampler or
None): a process loads its own (`_load_worker`), the thread shares the caller's. Also
what a resume remakes (`remake_damaged_images`) and the card's picture of the turn
(`write_turn_grid`), through the same stage.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from synthface.core.files import write_atomic
from synthface.dataset.config import MakeConfig
from synthface.dataset.journal import STATE_DIR, FaceRecord, image_complete, image_name, iter_records
from synthface.errors import SynthfaceError
from synthface.face.annotate import AnnotateConfig, Annotator
from synthface.face.stage import Face, FaceStage, encode_png

log = logging.getLogger("synthface")

class _Stopped(Exception):
    """The run ended (target reached, error or Ctrl-C): the thread drops its chunk."""


def _load_worker(acfg: AnnotateConfig, sampler_spec):
    """A worker process's models: (annotator, sampler or None)."""
    sampler = None
    if sampler_spec is not None:
        from synthface.generator.sampling import sampler_from_spec

        sampler = sampler_from_spec(sampler_spec)
    return Annotator(acfg), sampler


def _chunk_task(context, chunk, stage: FaceStage, seeds=None, stop=None):
    """One chunk: `chunk` is either candidate indices (generated here, whole blocks) or
    images the main thread generated; `seeds` the candidates' seeds. Returns the
    per-image results and this thread's CPU seconds in dlib, in PNG encoding and in
    generation."""
    from synthface.generator.sampling import images_for

    annotator, sampler = context
    t0 = time.thread_time()
    images = chunk if isinstance(chunk, np.ndarray) else images_for(sampler, stage.seed, chunk)
    t_gen = time.thread_time() - t0
    results, t_dlib, t_enc = _process_chunk(annotator, images, stage, seeds, stop)
    return results, t_dlib, t_enc, t_gen


def _process_chunk(annotator: Annotator, images: np.ndarray, stage: FaceStage, seeds=None, stop=None):
    """Each image through the stage: per image (status, faces found, the kept Face's
    labels (image=None) or None, png bytes or None), and the thread's CPU seconds in
    dlib (with the turn and augmentation) and in PNG encoding."""
    out, t0 = [], time.thread_time()
    t_enc = 0.0
    for k, img in enumerate(images):
        if stop is not None and stop.is_set():
            raise _Stopped
        status, found, face = stage.labelled(annotator, img, None if seeds is None else seeds[k])
        png = None
        if face is not None:
            te = time.thread_time()
            png = encode_png(face)
            t_enc += time.thread_time() - te
            face = face.replace(image=None)  # the labels travel back; the image as its PNG
        out.append((status, found, face, png))
    return out, time.thread_time() - t0 - t_enc, t_enc


def kept_record(index: int, seed: int, n_faces: int, file: str, face: Face) -> FaceRecord:
    """The journal's record of a kept face."""
    return FaceRecord(index=index, seed=seed, status="", faces=n_faces, file=file,
                      box=tuple(int(v) for v in face.box), score=face.score, landmarks=face.points,
                      disagreement=face.disagreement, hidden=face.hidden)


def remake_damaged_images(out: Path, cfg: MakeConfig, context, kept: int, checks: dict) -> int:
    """On resume: the first `kept` faces' images must be there and whole (image_complete:
    both ends of each file, no decoding, so 100,000 faces take seconds); any missing or
    truncated one is made again from its candidate, which gives the same pixels and
    labels. Returns how many were remade."""
    from synthface.generator.sampling import BLOCK

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
    stage = FaceStage.of(cfg)
    for start in range(0, len(records), BLOCK):
        chunk = records[start:start + BLOCK]
        results = _chunk_task(context, [r.index for r in chunk], stage, [r.seed for r in chunk])[0]
        for rec, (status, n_faces, face, png) in zip(chunk, results):
            again = None if status else kept_record(rec.index, rec.seed, n_faces, rec.file, face)
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
    from synthface.dataset.preview import turn_row
    from synthface.generator.sampling import images_for

    first = next((r for r in iter_records(out / STATE_DIR / "journal.csv") if r.kept), None)
    if first is None:
        return
    stage = FaceStage.of(cfg)
    _, _, face = stage.annotated(annotator, stage.sized(images_for(sampler, cfg.seed, [first.index])[0]))
    if face is None:
        return
    scale = max(1, round(192 / face.image.shape[0]))
    tiles = turn_row(face, np.linspace(*cfg.rotate3d.yaw, TURN_STEPS), scale)
    grid = make_grid(np.stack(tiles), TURN_STEPS)
    try:
        write_atomic(out / "turns.jpg", cv2.imencode(".jpg", np.ascontiguousarray(grid[:, :, ::-1]),
                                                     [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    except (OSError, SynthfaceError) as exc:  # a full disk: the labels are written; only the card's picture is not
        why = exc.strerror or exc if isinstance(exc, OSError) else "a folder is in its place"
        raise SynthfaceError(f"writing {out / 'turns.jpg'}: {why}; the labels are complete, "
                             "rerun the command with --resume for the picture") from None
