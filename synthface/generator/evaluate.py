"""`evaluate`: a generator measured against real faces, offline, with dlib's own models.

- detection yield: share of samples in which the HOG detector (make-dataset's settings)
  finds exactly one face;
- Fréchet face distance (FFD): the Fréchet distance between Gaussians fitted to the
  128-D dlib face descriptors (dlib_face_recognition_resnet_model_v1 on 5-point face
  chips) of generated and of real faces, next to the same for two disjoint real halves
  (its scale);
- memorisation: share of generated faces whose nearest face in a real reference half A
  is under dlib's same-person threshold 0.6, next to that share for the real faces of
  the other half B (held out from A); the same reference, so the shares compare;
- diversity: share of generated pairs under 0.6 (a collapsed generator repeats people).

A descriptor is taken on the detected face when there is exactly one, else on the
whole image (the samples are aligned crops), so every sample counts in FFD.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError

log = logging.getLogger("synthface")

SAME_PERSON = 0.6  # dlib's threshold for "same person" between two descriptors


# -- worker side ----------------------------------------------------------------------
def _load_models(upsample: int):
    import dlib

    from synthface.face.annotate import model_path

    return (dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(model_path("landmarks5"))),
            dlib.face_recognition_model_v1(str(model_path("descriptor"))), upsample)


def _describe(models, images: np.ndarray):
    """(faces found, 128-D descriptor) per image."""
    import dlib

    detector, sp5, rec, upsample = models
    found, descs = [], []
    for img in images:
        rects = detector(img, upsample)
        h, w = img.shape[:2]
        rect = rects[0] if len(rects) == 1 else dlib.rectangle(0, 0, w - 1, h - 1)
        descs.append(np.array(rec.compute_face_descriptor(img, sp5(img, rect)), np.float32))
        found.append(len(rects))
    return np.array(found), np.stack(descs)


def describe_faces(images: np.ndarray, workers: int, upsample: int = 1, desc: str = "",
                   progress: bool = True):
    """Faces found and descriptors for (N, H, W, 3) uint8 RGB images, on all cores."""
    from synthface.core.progress import progress_bar

    from synthface.core.workers import Pool

    chunks = [images[i:i + 32] for i in range(0, len(images), 32)]
    found, descs = [], []
    with progress_bar(total=len(images), desc=desc, unit="face", disable=not progress, leave=False) as bar, \
            Pool(workers, _load_models, (upsample,)) as pool:
        for f, d in pool.imap(_describe, chunks):
            found.append(f)
            descs.append(d)
            bar.update(len(f))
    return np.concatenate(found), np.concatenate(descs)


# -- metrics --------------------------------------------------------------------------
def _sqrtm_psd(c: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(c)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of row vectors.
    Tr sqrt(C1 C2) is computed as Tr sqrt(S C2 S) with S = sqrt(C1), which is symmetric."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    s1 = _sqrtm_psd(c1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(s1 @ c2 @ s1), 0, None)).sum()
    return float(max(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * cross, 0.0))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(d2, 0, None))


def nearest_distances(queries: np.ndarray, reference: np.ndarray, block: int = 1024) -> np.ndarray:
    """For each query, the distance to its nearest reference row (in blocks: bounded memory)."""
    return np.concatenate([_pairwise(queries[i:i + block], reference).min(1)
                           for i in range(0, len(queries), block)])


def close_pair_share(x: np.ndarray, threshold: float = SAME_PERSON) -> float:
    """Share of unordered pairs closer than the threshold."""
    n = len(x)
    if n < 2:
        return 0.0
    close = 0
    for i in range(0, n, 1024):
        d = _pairwise(x[i:i + 1024], x)
        rows = np.arange(i, min(i + 1024, n))[:, None]
        close += int(((d < threshold) & (np.arange(n)[None, :] > rows)).sum())
    return close / (n * (n - 1) / 2)


# -- the command ------------------------------------------------------------------------
def _real_descriptors(real, size: int, workers: int, upsample: int, cache_dir: str, progress: bool, *,
                      exclude=(), limit: int | None = None, seed: int = 0):
    """Descriptors of the real faces at the generator's resolution, cached on disk: of
    all of them, or of `limit` faces drawn with `seed` (a descriptor costs about 0.1 s of
    CPU: describing 45k faces to use 4k would take hours). Returns (found, descriptors,
    how many real faces there are)."""
    from synthface.core.imagefiles import ImageSource, load_faces

    source = ImageSource(real, exclude=exclude)
    total = len(source.names)
    pick = None
    if limit is not None and limit < total:
        pick = np.sort(np.random.default_rng(seed).permutation(total)[:limit])
    part = "all" if pick is None else f"{limit}-{seed}"
    key = hashlib.sha1(f"{source.fingerprint()}-{size}-{upsample}-{part}".encode()).hexdigest()[:16]
    cache = Path(os.path.expanduser(cache_dir)) / f"descriptors-{key}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        cached = _cached_descriptors(cache)
        if cached is not None:
            return (*cached, total)
    faces = load_faces(real, size, cache_dir, progress, exclude=exclude)
    if pick is not None:
        faces = faces[pick] if len(faces) == total else faces[:limit]
    if progress:
        print(f"describing {len(faces)} of {total} real faces (cached for the next run)", flush=True)
    found, desc = describe_faces(faces, workers, upsample, "real faces", progress)
    if cache is not None:
        from synthface.core.files import atomic_open

        try:
            with atomic_open(cache, "wb") as f:
                np.savez(f, found=found, desc=desc)
        except (OSError, SynthfaceError) as exc:  # a cache is a saving, not a result: the run goes on
            log.warning("cannot write the cache %s (%s); the next run computes it again", cache,
                        getattr(exc, "strerror", None) or exc)
    return found, desc, total


def _cached_descriptors(cache: Path):
    """(found, descriptors) from a cache file, or None (with a warning) when it is
    damaged (cut off, edited, another program's): then they are computed again."""
    import zipfile
    import zlib

    try:
        with np.load(cache) as z:
            found, desc = z["found"], z["desc"]
        if found.ndim == 1 and desc.shape == (len(found), 128) and len(found) and np.isfinite(desc).all():
            return found, desc
        why = "not descriptors"
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        why = type(exc).__name__
    log.warning("%s is damaged (%s); describing the real faces again", cache, why)
    return None


def quick_scores(images: np.ndarray, real, cache_dir: str = "~/.cache/synthface", upsample: int = 1,
                 workers: int = 0, exclude=()) -> dict:
    """Detection yield and FFD of a few hundred generated images against all the real
    faces (their descriptors cached): what training logs every `train.eval_every` epochs.
    FFD from few samples is biased upwards; compare snapshots of one run with each other."""
    # the same number of real faces, so the scale is comparable from run to run
    _, ref, _ = _real_descriptors(real, images.shape[1], workers, upsample, cache_dir, False, exclude=exclude,
                                  limit=max(len(images), 2))
    found, desc = describe_faces(images, workers, upsample, progress=False)
    return {"yield": float((found == 1).mean()), "ffd": frechet_distance(desc, ref)}


def evaluate(sampler, real, *, n: int = 2000, seed: int = 0, workers: int | None = None,
             upsample: int = 1, cache_dir: str = "~/.cache/synthface", progress: bool = True) -> dict:
    """Measure a sampler (see sampling.py) against the real faces under `real`."""
    from synthface.generator.sampling import candidates

    from synthface.core.workers import check_workers

    check_evaluate_options(n, seed, workers, upsample)
    workers = check_workers(workers)
    # the metrics use two real halves of n faces: only those are described
    real_found, real_desc, n_real = _real_descriptors(real, sampler.resolution, workers, upsample, cache_dir,
                                                      progress, limit=2 * n, seed=seed)
    if len(real_desc) < 4:
        raise SynthfaceError(f"{real}: at least 4 real faces are needed, found {len(real_desc)}")
    images = np.stack([img for _, _, img in candidates(sampler, seed, 0, n)])
    gen_found, gen_desc = describe_faces(images, workers, upsample, "generated faces", progress)

    # two disjoint real halves of at most n each: A is the reference, B is held out
    order = np.random.default_rng(seed).permutation(len(real_desc))
    half = min(n, len(order) // 2)
    ref, held = real_desc[order[:half]], real_desc[order[half:2 * half]]
    gen_to_train = nearest_distances(gen_desc, real_desc)
    held_to_ref = nearest_distances(held, ref)
    gen_to_ref = nearest_distances(gen_desc, ref)
    return {
        "n_generated": int(n),
        "n_real": int(n_real),
        "n_real_described": int(len(real_desc)),
        "real_split": int(half),
        "detection_yield": float((gen_found == 1).mean()),
        "detection_yield_real": float((real_found == 1).mean()),
        "ffd": frechet_distance(gen_desc, ref),
        "ffd_real_vs_real": frechet_distance(held, ref),
        # against the same reference half A for both, so the two shares are comparable
        "memorised_share": float((gen_to_ref < SAME_PERSON).mean()),
        "memorised_share_heldout_real": float((held_to_ref < SAME_PERSON).mean()),
        # against every real face described (both halves)
        "memorised_share_all_training": float((gen_to_train < SAME_PERSON).mean()),
        # calibrated: closer than 95% of held-out real faces are to their nearest real face
        # (so the real share is 5% by construction; a copying generator scores far above)
        "memorised_share_calibrated": float((gen_to_ref < np.quantile(held_to_ref, 0.05)).mean()),
        "nearest_real_distance_mean": float(gen_to_train.mean()),
        "nearest_real_distance_mean_vs_split": float(gen_to_ref.mean()),
        "nearest_real_distance_mean_heldout": float(held_to_ref.mean()),
        "diversity_close_pair_share": close_pair_share(gen_desc),
        "diversity_close_pair_share_real": close_pair_share(held),
        "same_person_threshold": SAME_PERSON,
    }


MAX_EVALUATE = 200_000  # generated faces held in memory at once (64 px: 2.5 GB)


def check_evaluate_options(n: int, seed: int, workers, upsample: int) -> None:
    from synthface.face.annotate import check_upsample
    from synthface.generator.sampling import check_seed
    from synthface.core.workers import check_workers

    if not 2 <= n <= MAX_EVALUATE:
        raise SynthfaceError(f"-n must be from 2 to {MAX_EVALUATE}, got {n}")
    check_seed(seed)
    check_upsample(upsample)
    check_workers(workers)


def format_report(r: dict) -> str:
    rows = [
        ("metric", "generated", "real baseline"),
        ("detection yield (exactly one face)", f"{r['detection_yield']:.1%}", f"{r['detection_yield_real']:.1%}"),
        ("Fréchet face distance (lower is better)", f"{r['ffd']:.4f}", f"{r['ffd_real_vs_real']:.4f} (real vs real)"),
        ("memorised: nearest real face (half A) < 0.6", f"{r['memorised_share']:.1%}",
         f"{r['memorised_share_heldout_real']:.1%} (real half B)"),
        ("  closer than 95% of real faces are (calibrated)", f"{r['memorised_share_calibrated']:.1%}", "5.0% (by construction)"),
        ("  mean distance to nearest real face (half A)", f"{r['nearest_real_distance_mean_vs_split']:.3f}",
         f"{r['nearest_real_distance_mean_heldout']:.3f} (real half B)"),
        ("diversity: pairs < 0.6 (lower is more diverse)", f"{r['diversity_close_pair_share']:.2%}",
         f"{r['diversity_close_pair_share_real']:.2%}"),
    ]
    w0, w1 = max(len(a) for a, _, _ in rows), max(len(b) for _, b, _ in rows)
    lines = [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"({r['n_generated']} generated faces; {r.get('n_real_described', r['n_real'])} of {r['n_real']} "
                 f"real faces described, split {r['real_split']} / {r['real_split']})")
    return "\n".join(lines)


def write_report(report: dict, path) -> None:
    from synthface.core.files import write_atomic

    from synthface.core.outputs import GENERATOR_REPORT

    write_atomic(path, json.dumps({"format": GENERATOR_REPORT, **report}, indent=2, allow_nan=False) + "\n")


def evaluate_generator(real, *, checkpoint: str | None = None, n: int = 2000, seed: int = 0, workers: int | None = None,
                       upsample: int = 1, cache_dir: str = "~/.cache/synthface", device: str = "auto",
                       progress: bool = True, output=None, echo=None) -> dict:
    """`synthface evaluate` whole: the options and `output` checked before the work, the
    generator (the bundled default unless `checkpoint`) measured against the real faces
    under `real` (evaluate), its identity added to the report, and the report written as
    JSON at `output` where given. `echo` (print, for the command) gets the report's table
    and then where it was written. Returns the report."""
    from synthface.core.files import check_writable_file
    from synthface.generator.sampling import open_sampler

    check_evaluate_options(n, seed, workers, upsample)
    if output:
        check_writable_file(output, "-o")  # before the work, not after it
    sampler = open_sampler(checkpoint, device=device)
    report = evaluate(sampler, real, n=n, seed=seed, workers=workers, upsample=upsample, cache_dir=cache_dir,
                      progress=progress)
    report["generator"] = sampler.identity
    if echo is not None:
        echo(format_report(report))
    if output:
        write_report(report, output)
        if echo is not None:
            echo(f"report: {output}")
    return report
