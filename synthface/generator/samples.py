"""Grids of generated faces, as `synthface sample` draws them: a plain grid of the first
candidates, one steered attribute walked from MIN to MAX along each row, or each face
dlib keeps turned in 3D along its row with its landmarks drawn.
"""

from __future__ import annotations

from synthface.errors import SynthfaceError


def steering_from_flags(yaw: str | None = None, pitch: str | None = None, mouth_open: str | None = None,
                        pose_mix: bool = False) -> list:
    """The steering flags' texts (MIN:MAX) as steering.Target rows, checked before any work."""
    from synthface.generator.steering import parse_range, pose_mix_targets

    targets = {t.name: t for t in pose_mix_targets()} if pose_mix else {}
    for name, text in (("yaw", yaw), ("pitch", pitch), ("mouth_open", mouth_open)):
        if text is not None:
            targets[name] = parse_range(text, name)
    return list(targets.values())


def sample_grid(output, *, n: int = 64, checkpoint: str | None = None, seed: int = 0, scale: int | None = None,
                device: str = "auto", yaw: str | None = None, pitch: str | None = None,
                mouth_open: str | None = None, pose_mix: bool = False, rotate_3d: str | None = None,
                steps: int | None = None) -> str:
    """Draw n faces of a generator (the bundled default unless `checkpoint`) into one
    image at `output`, face j being make-dataset's candidate j for the same seed. With
    `steps`, the one steered attribute (yaw, pitch or mouth_open, as MIN:MAX) is walked
    along each row; with `rotate_3d` (MIN:MAX degrees) and `steps`, each face dlib keeps
    is turned in 3D along its row, its labels drawn. `scale` magnifies each face (default
    1; 3 with rotate_3d). Every option is checked before the generator is loaded.
    Returns the one-line summary."""
    from synthface.core.imaging import check_image_path
    from synthface.generator.sampling import check_seed

    if not 1 <= n <= 4096:
        raise SynthfaceError(f"-n must be from 1 to 4096, got {n}")
    if scale is None:
        scale = 3 if rotate_3d is not None else 1
    if not 1 <= scale <= 16:
        raise SynthfaceError(f"--scale must be from 1 to 16, got {scale}")
    check_seed(seed)
    check_image_path(output)
    targets = steering_from_flags(yaw, pitch, mouth_open, pose_mix)
    if rotate_3d is not None:
        return sample_turns(output, n=n, checkpoint=checkpoint, seed=seed, scale=scale, device=device,
                            targets=targets, rotate_3d=rotate_3d, steps=steps)
    return _sample_walk(output, n=n, checkpoint=checkpoint, seed=seed, scale=scale, device=device,
                        targets=targets, pose_mix=pose_mix, steps=steps)


def _sample_walk(output, *, n: int, checkpoint, seed: int, scale: int, device: str, targets: list, pose_mix: bool,
                 steps: int | None) -> str:
    """sample_grid without a 3D turn: the first n candidates, or with `steps` one steered
    attribute walked along each row."""
    import cv2
    import numpy as np

    from synthface.core.imaging import make_grid, write_image
    from synthface.generator.sampling import candidates, open_sampler

    if steps is not None:
        walked = [t for t in targets if t.std is None]
        if len(walked) != 1 or pose_mix or not 2 <= steps <= 64:
            raise SynthfaceError("--steps walks one attribute: give exactly one of --yaw, --pitch, --mouth-open "
                                 "(MIN:MAX), without --pose-mix, and 2 to 64 steps")
    sampler = open_sampler(checkpoint, device=device, targets=targets)
    cells = n * (steps or 1)
    if cells * (sampler.resolution * scale) ** 2 * 3 > 2 ** 30:
        raise SynthfaceError(f"a grid of {cells} faces of {sampler.resolution * scale} px is over 1 GB; "
                             "lower -n or --scale")
    if steps is None:
        faces = np.stack([img for _, _, img in candidates(sampler, seed, 0, n)])
        ncol = None
    else:
        from synthface.generator.sampling import candidate_seed, noise

        t = walked[0]
        steering = sampler.steering
        z = noise([candidate_seed(seed, j) for j in range(n)], sampler.z_dim)
        values = np.linspace(t.low, t.high, steps)
        table = steering.tables[t.name]
        grid = np.stack([sampler.images_from_codes(steering.at_distances(z, t.name, float(np.interp(v, *table))))
                         for v in values], 1)  # (n, steps, H, W, 3)
        faces = grid.reshape(-1, *grid.shape[2:])
        ncol = steps
    if scale > 1:
        faces = np.stack([cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
                          for f in faces])
    write_image(output, make_grid(faces, ncol), "sample")
    return f"{len(faces)} faces: {output}"


def sample_turns(output, *, n: int, checkpoint: str | None = None, seed: int = 0, scale: int = 3,
                 device: str = "auto", targets: list = (), rotate_3d: str, steps: int | None) -> str:
    """Each of the first n faces dlib keeps, turned in 3D from MIN to MAX degrees of yaw
    (`rotate_3d`, MIN:MAX) in `steps` columns, with its labels drawn (hidden points
    yellow), into one image at `output`. Returns the one-line summary."""
    import numpy as np

    from synthface.core.imaging import make_grid, write_image
    from synthface.dataset.preview import turn_row
    from synthface.face.annotate import AnnotateConfig, Annotator
    from synthface.face.rotate3d import parse_turns
    from synthface.face.stage import FaceStage
    from synthface.generator.sampling import candidates, open_sampler

    turns = parse_turns(rotate_3d)
    if steps is None or not 2 <= steps <= 64:
        raise SynthfaceError("--rotate-3d in sample needs --steps (2 to 64): the turn walks MIN to MAX along each row")
    sampler = open_sampler(checkpoint, device=device, targets=list(targets))
    size = sampler.resolution * scale
    if n * steps * size * size * 3 > 2 ** 30:
        raise SynthfaceError(f"a grid of {n * steps} faces of {size} px is over 1 GB; lower -n or --scale")
    annotator = Annotator(AnnotateConfig(landmarks=True))
    stage = FaceStage(seed=seed, image_size=None, pad=0.0)  # as make-dataset annotates, before its turn
    tiles, rows = [], 0
    for j, _, img in candidates(sampler, seed, 0, 20 * n + 100):
        _, _, face = stage.annotated(annotator, img)
        if face is None:
            continue
        tiles += turn_row(face, np.linspace(*turns.yaw, steps), scale)
        rows += 1
        if rows == n:
            break
    if not tiles:
        raise SynthfaceError("dlib kept none of the faces drawn; the generator may be untrained")
    write_image(output, make_grid(np.stack(tiles), steps), "sample")
    return f"{rows} faces turned {turns.yaw[0]:g} to {turns.yaw[1]:g} degrees in {steps} steps: {output}"
