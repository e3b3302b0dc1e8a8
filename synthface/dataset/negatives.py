"""Hard negatives for a face detector: face-free scenes, drawn as the scenes' own
backgrounds are (compose.py), on which a detector fires.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError
from synthface.dataset.compose import _STREAM, background_files, photo_background, procedural_background
from synthface.dataset.photometric import photometric


def mine_negatives(model: str, out, n: int, cfg, *, seed: int = 0, upsample: int = 1,
                   progress: bool = True) -> dict:
    """Hard negatives for a detector: `n` face-free scenes drawn as the scenes' own
    backgrounds are (procedural, or crops of cfg.backgrounds; cfg.photometric applied),
    run through `model` as `detector eval` runs it; those where it fires (score >= 0)
    are written to `out` as JPEGs, for `detector train --negatives out`. The draws come
    from (seed, i), so rounds with other seeds see other backgrounds. `cfg`: a SceneConfig
    (scenes.py)."""
    import cv2
    from synthface.core.progress import progress_bar

    from synthface.trainers.detector import open_detector
    from synthface.core.files import check_output_folder, write_atomic
    from synthface.core.outputs import mark_image
    from synthface.generator.sampling import candidate_seed, check_seed

    cfg.validate()
    check_seed(seed)
    if n < 1:
        raise SynthfaceError(f"-n must be at least 1, got {n}")
    out = Path(out).expanduser()
    check_output_folder(out, "--out")
    cfg.check_backgrounds()  # every one now: a bad photo drawn late would cost the run
    detector = open_detector(model)
    files = background_files(cfg.backgrounds) if cfg.backgrounds is not None else None
    kept = detections = 0
    for i in progress_bar(range(n), desc="negatives", unit="image", disable=not progress, leave=False):
        rng = np.random.default_rng([candidate_seed(seed, i), _STREAM, 3])
        size = cfg.image_size
        img = procedural_background(rng, size) if files is None else photo_background(rng, files, size)
        if cfg.photometric:
            img = photometric(img, rng, cfg.photometric)
        rects, scores, _ = detector.run(img, upsample, 0.0)
        if len(rects):
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
            # marked: a later round may add to the folder, whose files are all mine's (cli/plans.py);
            # write_atomic makes --out with the first image, so a run that keeps none leaves none
            write_atomic(out / f"neg_{seed}_{i:07d}.jpg", mark_image(buf.tobytes(), "detector mine"))
            kept += 1
            detections += len(rects)
    return {"drawn": n, "kept": kept, "false_positives": detections, "folder": str(out)}
