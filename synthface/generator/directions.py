"""Latent directions: where in z a generator keeps head pose and expression.

InterFaceGAN (Shen et al. 2020) samples many faces, scores an attribute on each and fits
a linear boundary in latent space; moving a code along the boundary's normal changes the
attribute. Here the attributes are continuous (yaw, pitch, roll in degrees; mouth and eye
opening ratios, see pose.py), so the boundary is a ridge regression of the attribute on
z (InterFaceGAN's linear SVM needs the attribute cut into two classes, which throws away
its size; for a linear boundary both give the same kind of normal). Each direction is a
unit vector d; a code's distance along it is z . d (about N(0, 1) for z ~ N(0, I)).

Calibration: fresh codes are moved to fixed distances (-6 .. 6) along each direction,
labelled by dlib, and the mean attribute of the kept faces and the share kept are stored
per distance: the table that turns "yaw 30 degrees" into a distance, and that says how
far the generator can go before its faces stop being faces.

Saved beside the generator as NAME.directions.safetensors (the unit vectors, one row per
attribute) and NAME.directions.json (names, method, correlations, calibration tables).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError
from synthface.face.pose import POSE_COLS
from synthface.generator.steering import directions_path, load_directions  # noqa: F401 (re-exported)

log = logging.getLogger("synthface")

CAL_DISTANCES = tuple(float(d) for d in range(-6, 7))
RIDGE_ALPHA = 10.0  # mild: n >> z_dim; keeps the fit stable for small n


# -- labelling generated faces (worker side) ------------------------------------------
def _load_annotator(upsample: int):
    from synthface.face.annotate import AnnotateConfig, Annotator

    return Annotator(AnnotateConfig(upsample=upsample, landmarks=True))


def _attributes(annotator, images: np.ndarray) -> list:
    """Per image: its pose and expression (pose.face_attributes) when dlib keeps it
    (exactly one face, as make-dataset), else None."""
    from synthface.face.stage import FaceStage

    stage = FaceStage(seed=0, image_size=None, pad=0.0)  # as make-dataset annotates a face
    out = []
    for img in images:
        _, _, face = stage.annotated(annotator, img)
        out.append(None if face is None else face.attributes())
    return out


def label_codes(generator_images, codes: np.ndarray, pool, bar=None) -> list:
    """Attributes (or None) of the faces made from `codes` (N, z_dim), 64 at a time."""
    results = []
    batches = (generator_images(codes[i:i + 64]) for i in range(0, len(codes), 64))
    for labels in pool.imap(_attributes, batches):
        results += labels
        if bar is not None:
            bar.update(len(labels))
    return results


# -- fitting ------------------------------------------------------------------------------
def fit_direction(z: np.ndarray, y: np.ndarray, alpha: float = RIDGE_ALPHA) -> tuple[np.ndarray, float]:
    """Unit ridge-regression direction of y on z, oriented so that y grows along it,
    and the correlation of z . d with y."""
    zc, yc = z - z.mean(0), y - y.mean()
    w = np.linalg.solve(zc.T @ zc + alpha * np.eye(z.shape[1]), zc.T @ yc)
    d = w / np.linalg.norm(w)
    r = float(np.corrcoef(z @ d, y)[0, 1])
    return d, r


def check_directions_target(checkpoint, output) -> None:
    """Where the directions go: beside a generator of the user's, or with -o beside a copy
    outside the installed package (the bundled generators' directions ship with it)."""
    package = Path(__file__).resolve().parents[1]
    if output is None and package in Path(checkpoint).resolve().parents:
        raise SynthfaceError(f"{checkpoint} ships inside synthface with its directions; to fit new ones give -o "
                             "NEW.safetensors (the generator is copied there, its directions written beside it)")
    if output is not None and (Path(output).suffix != ".safetensors"
                               or package in Path(output).expanduser().resolve().parents):
        raise SynthfaceError(f"-o must be a NAME.safetensors outside the installed package (the generator's copy; "
                             f"its directions go beside it), got {output}")


def summary_lines(summary: dict, target) -> list[str]:
    """What `directions` prints of fit_directions' summary: where the directions went, and
    each attribute's fit (r) and reach (mean value at every other calibration distance)."""
    lines = [f"{summary['kept']} of {summary['n']} faces labelled; directions in {directions_path(target)}"]
    for name, a in summary["attributes"].items():
        cal = a["calibration"]
        reach = ", ".join(f"{d:+g}: {v if v is None else round(v, 3)} ({k:.0%} kept)"
                          for d, v, k in zip(cal["distance"], cal["value"], cal["kept"]) if d % 2 == 0)
        lines.append(f"  {name:10s} r = {a['r']:.2f}; distance -> mean value: {reach}")
    return lines


def fit_directions(checkpoint, *, n: int = 5000, seed: int = 0, calibration_faces: int = 200,
                   workers: int | None = None, upsample: int = 1, device: str = "auto",
                   progress: bool = True, output=None) -> dict:
    """Sample n faces, fit a direction per attribute, calibrate it, save both files
    beside the generator (or beside `output`, a copy of the generator made there);
    returns the summary (what the JSON file holds). The bundled generator's directions
    ship with the package and are never replaced: for it, `output` is required."""
    from synthface.core.progress import progress_bar

    from synthface.face.annotate import check_upsample
    from synthface.core.files import check_writable_file
    from synthface.core.outputs import DIRECTIONS
    from synthface.generator.sampling import GeneratorSampler, candidate_seed, check_seed, noise
    from synthface.core.workers import Pool, check_workers

    check_seed(seed)
    check_upsample(upsample)
    if not 200 <= n <= 1_000_000:
        raise SynthfaceError(f"-n must be from 200 to 1000000, got {n}")
    if not 10 <= calibration_faces <= 100_000:
        raise SynthfaceError(f"--calibration-faces must be from 10 to 100000, got {calibration_faces}")
    workers = check_workers(os.cpu_count() or 1 if workers is None else workers)
    check_directions_target(checkpoint, output)
    if output is not None:
        output = check_writable_file(output, "-o")
    sampler = GeneratorSampler(checkpoint, device)
    out = directions_path(output if output is not None else sampler.checkpoint)
    check_writable_file(out, "the directions file")
    z_dim = sampler.z_dim

    def images(codes):
        return sampler.images_from_codes(codes)

    total = n + len(POSE_COLS) * len(CAL_DISTANCES) * calibration_faces
    with progress_bar(total=total, desc="directions", unit="face", disable=not progress, leave=False) as bar, \
            Pool(workers, _load_annotator, (upsample,)) as pool:
        z = noise([candidate_seed(seed, j) for j in range(n)], z_dim)
        labels = label_codes(images, z, pool, bar)
        kept = [i for i, a in enumerate(labels) if a is not None]
        if len(kept) < 100:
            raise SynthfaceError(f"dlib kept only {len(kept)} of {n} faces; is the generator trained?")
        zk = z[kept]
        summary = {"format": DIRECTIONS, "names": list(POSE_COLS), "method": "ridge",
                   "alpha": RIDGE_ALPHA, "n": n, "kept": len(kept), "seed": seed,
                   "generator_sha256": sampler.identity["sha256"], "attributes": {}}
        vectors = []
        fresh = noise([candidate_seed(seed + 1, j) for j in range(calibration_faces)], z_dim)
        for name in POSE_COLS:
            y = np.array([labels[i][name] for i in kept])
            d, r = fit_direction(zk, y)
            vectors.append(d)
            table = {"distance": [], "value": [], "kept": []}
            for s in CAL_DISTANCES:
                moved = fresh + (s - fresh @ d)[:, None] * d[None]
                found = [a[name] for a in label_codes(images, moved.astype(np.float32), pool, bar) if a is not None]
                table["distance"].append(s)
                table["value"].append(round(float(np.mean(found)), 4) if found else None)
                table["kept"].append(round(len(found) / calibration_faces, 4))
            summary["attributes"][name] = {"r": round(r, 4), "mean": round(float(y.mean()), 4),
                                           "std": round(float(y.std()), 4), "calibration": table}
    if output is not None:  # the generator beside its new directions
        import shutil

        from synthface.core.files import temp_beside

        for suffix in (".safetensors", ".json"):
            tmp = temp_beside(output.with_suffix(suffix))
            try:
                shutil.copyfile(Path(checkpoint).with_suffix(suffix), tmp)
                os.replace(tmp, output.with_suffix(suffix))
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    _save(out, np.stack(vectors).astype(np.float32), summary)
    return summary


def _save(json_path: Path, vectors: np.ndarray, summary: dict) -> None:
    from safetensors.numpy import save

    from synthface.core.files import write_atomic

    import hashlib

    data = save({"directions": vectors})
    write_atomic(json_path.with_suffix(".safetensors"), data)
    # the vectors' sha256: how a later run knows them for its own (cli/plans.py)
    write_atomic(json_path, json.dumps({**summary, "vectors_sha256": hashlib.sha256(data).hexdigest()}, indent=2)
                 + "\n")
