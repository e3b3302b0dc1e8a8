"""The work on each face of a make-dataset run, wherever make.py's scheduler runs it (the
calling thread, a thread beside it, or a worker process: core/workers.py).

A chunk of candidates (`_chunk_task`): on CPU generated here from their seeds (whole
generator blocks), or images the main thread generated; each image resized to
--image-size and padded (`_sized`), annotated by dlib, turned in 3D (--rotate-3d) and
augmented (--augment) with its labels by its seed's draws, and PNG-encoded
(`_process_chunk`). What a run does to each face travels as one `ChunkJob`; a worker's
context is (annotator, sampler or None): a process loads its own (`_load_worker`), the
thread shares the caller's. Also the card's picture of the turn (`write_turn_grid`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthface.face.annotate import AnnotateConfig, Annotator
from synthface.errors import SynthfaceError
from synthface.core.files import write_atomic
from synthface.dataset.config import MakeConfig, pad_pixels
from synthface.dataset.journal import STATE_DIR


class _Stopped(Exception):
    """The run ended (target reached, error or Ctrl-C): the thread drops its chunk."""


@dataclass(frozen=True)
class ChunkJob:
    """What a run does to each face, the same for every chunk (a worker process gets it
    pickled with each): the run's `seed` (a chunk of candidate indices is generated
    from it), --image-size, --pad, --augment and --rotate-3d (MakeConfig's)."""

    seed: int
    image_size: int | None
    pad: float
    augment: object = None  # an AugmentConfig, or None
    rotate3d: object = None  # a Rotate3DConfig, or None

    @classmethod
    def of(cls, cfg: MakeConfig) -> ChunkJob:
        """The job of a run of these settings."""
        return cls(seed=cfg.seed, image_size=cfg.image_size, pad=cfg.pad, augment=cfg.augment, rotate3d=cfg.rotate3d)


def _load_worker(acfg: AnnotateConfig, sampler_spec):
    """A worker process's models: (annotator, sampler or None)."""
    sampler = None
    if sampler_spec is not None:
        from synthface.generator.sampling import sampler_from_spec

        sampler = sampler_from_spec(sampler_spec)
    return Annotator(acfg), sampler


def _chunk_task(context, chunk, job: ChunkJob, seeds=None, stop=None):
    """One chunk: `chunk` is either candidate indices (generated here, whole blocks) or
    images the main thread generated; `seeds` the candidates' seeds. Returns the
    per-image results and this thread's CPU seconds in dlib, in PNG encoding and in
    generation."""
    from synthface.generator.sampling import images_for

    annotator, sampler = context
    t0 = time.thread_time()
    images = chunk if isinstance(chunk, np.ndarray) else images_for(sampler, job.seed, chunk)
    t_gen = time.thread_time() - t0
    results, t_dlib, t_enc = _process_chunk(annotator, images, job, seeds, stop)
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


def _process_chunk(annotator: Annotator, images: np.ndarray, job: ChunkJob, seeds=None, stop=None):
    """Annotate a chunk: per image (status, faces found, face or None, png bytes or None),
    and the thread's CPU seconds in dlib and in PNG encoding. With `job.rotate3d` (a
    Rotate3DConfig), each kept face is turned in 3D, then with `job.augment` (an
    AugmentConfig) transformed, each with its labels, by its seed's draws."""
    import cv2

    image_size, pad, augment, rotate3d = job.image_size, job.pad, job.augment, job.rotate3d
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
