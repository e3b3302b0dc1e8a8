"""The iBUG 300-W 68-point scheme: names, mirror permutation, skeleton, OKS sigmas,
label columns and the .pts file. A leaf: it imports nothing of synthface's, so every
module (annotation, augmentation, writers, readers) can take it from here.

Points are 0-based pixel centres in synthface; .pts files are 1-based, as in 300-W.
"""

from __future__ import annotations

import numpy as np

N_POINTS = 68
# labels.csv's point columns: x0, y0 .. x67, y67
POINT_COLS = [c for i in range(N_POINTS) for c in (f"x{i}", f"y{i}")]

# The face's regions as point ranges [start, end): where a landmark model's error lies.
REGIONS_68 = {"jaw": (0, 17), "brows": (17, 27), "nose": (27, 36), "eyes": (36, 48), "mouth": (48, 68)}

# The left-right mirror of each point (flip augmentation, flip-checked labels, YOLO's flip_idx).
FLIP_IDX_68 = (list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30]
               + [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
               + [54, 53, 52, 51, 50, 49, 48] + [59, 58, 57, 56, 55]
               + [64, 63, 62, 61, 60] + [67, 66, 65])


def mirror_points(points, width: int) -> np.ndarray:
    """68 points of a face -> the same face's points in its left-right mirror (an image
    `width` px wide): x -> width - 1 - x (pixel centres at integers), and each point takes
    its mirror partner's place (the subject's left eye corner becomes its right one, ...).
    Its own inverse. The one mirror rule: flip labels, the flip augmentation, hidden flags."""
    p = np.array(points, np.float32)
    p[:, 0] = width - 1 - p[:, 0]
    return p[FLIP_IDX_68]


def mirror_flags(flags) -> np.ndarray:
    """Per-point values (hidden flags, visibilities) of a face -> its mirror's."""
    return np.asarray(flags)[FLIP_IDX_68]


# The points by name; "left"/"right" are the subject's own (the subject's right eye is on
# the image's left: points 36-41).
IBUG68_NAMES = ([f"jaw_{i}" for i in range(1, 18)] + [f"right_eyebrow_{i}" for i in range(1, 6)]
                + [f"left_eyebrow_{i}" for i in range(1, 6)] + [f"nose_bridge_{i}" for i in range(1, 5)]
                + [f"nose_lower_{i}" for i in range(1, 6)] + [f"right_eye_{i}" for i in range(1, 7)]
                + [f"left_eye_{i}" for i in range(1, 7)] + [f"outer_lip_{i}" for i in range(1, 13)]
                + [f"inner_lip_{i}" for i in range(1, 9)])


def _chain(a: int, b: int, closed: bool = False) -> list:
    pairs = [[i, i + 1] for i in range(a, b)]
    return pairs + ([[b, a]] if closed else [])


# The standard contour drawing (0-based pairs; COCO's file stores them 1-based): jaw,
# brows, nose bridge and base, eyes and lips as closed loops.
SKELETON_68 = (_chain(0, 16) + _chain(17, 21) + _chain(22, 26) + _chain(27, 30) + [[30, 33]] + _chain(31, 35)
               + _chain(36, 41, True) + _chain(42, 47, True) + _chain(48, 59, True) + _chain(60, 67, True))
# Per-keypoint OKS sigmas of COCO-WholeBody's 68 face points (the same iBUG order), as
# published with its evaluation (myeval_wholebody.py): what COCOeval needs for faces.
FACE_SIGMAS_68 = (
    0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023,
    0.029, 0.032, 0.037, 0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011,
    0.011, 0.012, 0.012, 0.011, 0.011, 0.013, 0.015, 0.009, 0.007, 0.007,
    0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011,
    0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034, 0.008, 0.008,
    0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007,
    0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.01, 0.008)


def pts_text(points) -> str:
    """A 300-W .pts file. Its coordinates are 1-based (300-W's MATLAB convention, which
    300-W tools and `read_pts` expect): each 0-based point plus one."""
    # 10 significant digits: %g's 6 would drop one of a journaled point (itself 6) when
    # the +1 carries it past a power of ten (9.12345 + 1 = 10.1235)
    body = "\n".join(f"{x + 1:.10g} {y + 1:.10g}" for x, y in points)
    return f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n"


def parse_pts(text: str, origin: int = 1) -> np.ndarray:
    """A .pts file's text -> (68, 2) points, 0-based (`origin`: the file's first pixel).
    ValueError, with what is wrong, for anything else."""
    try:
        n = int(text.split("n_points:")[1].split()[0])
        body = text.split("{", 1)[1].split("}", 1)[0].split()
        pts = np.array(body, float).reshape(-1, 2)
    except (IndexError, ValueError):
        raise ValueError("not a 300-W .pts file (version / n_points / { x y ... })") from None
    if len(pts) != n:
        raise ValueError(f"n_points says {n} but {len(pts)} points follow")
    if n != N_POINTS:
        raise ValueError(f"{n} points; the 68-point iBUG scheme is needed")
    if not np.isfinite(pts).all():
        raise ValueError("a point that is not a number (nan or inf)")
    return pts - float(origin)
