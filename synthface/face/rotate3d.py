"""Face profiling: turn a labelled face in 3D and carry its 68 points exactly.

The idea of 300W-LP (Zhu et al., CVPR 2016, "Face Alignment Across Large Poses: A 3D
Solution"), done on generated faces, whose dlib labels are most accurate when frontal:

1. Fit: a generic 3D face of 68 points (MEAN_FACE_68) is fitted to the face's points by
   a scaled orthographic (weak-perspective) projection, least squares on the 51 inner
   points (brows, nose, eyes, mouth; the jaw is where dlib follows the silhouette). Each
   labelled point keeps its image position and takes its depth from the fitted model.
2. Mesh: the 68 points (the inner-lip points aside, which coincide when the mouth is
   shut), cheek and forehead vertices and a ring around the head (hair, ears) placed by
   the same fit, and fixed anchors on and beyond the image border: the background.
   Delaunay triangles in the source image (cv2.Subdiv2D).
3. Turn: the head's vertices rotate about the centre of its 68 points (so the face
   stays where it was in the frame) by the drawn yaw and pitch, in the camera's axes, and
   are projected again; the anchors stay. Every destination pixel takes the front-most triangle covering it (a painter's
   depth order: triangle ids painted far to near), and one remap pulls each pixel from
   its triangle's source position. What the turn uncovers is filled by the stretched
   background and hair triangles around the head, as 300W-LP does.
4. Labels: the 68 points through the same rotation and projection. A point whose surface
   is hidden by a nearer triangle is flagged hidden. Jaw points (0-7, 9-16) march to the
   visible outline of the face, as 300-W places them on turned faces ("landmark
   marching", 3DDFA): along the horizontal line from each jaw point towards the face's
   midline, the mesh surface point that projects furthest out on its side; a jaw point
   that moved is flagged hidden (its anatomical place is not seen) but stays labelled on
   the outline. The box is where dlib's HOG detector puts a turned face's box (measured:
   see _turned_box), so that a landmark model trained on turned faces starts from the
   boxes it will be given.

Axes are the camera's: x to the image's right, y down, z away from the camera. A turn by
yaw > 0 moves the nose towards the image's right, as pose.py measures yaw; pitch > 0 up.
The mean face and its fit live in pose.py (MEAN_FACE_68, fit_mean_face).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synthface.errors import SynthfaceError
from synthface.face.pose import MEAN_FACE_68, fit_mean_face, rotation

_STREAM = 0x3D  # the seed's stream for its turn
MAX_YAW = 75.0
MAX_PITCH = 40.0

MESH_POINTS = np.arange(60)  # the inner lips (60-67) coincide when the mouth is shut
JAW_LEFT, JAW_RIGHT = np.arange(0, 8), np.arange(9, 17)
MIDLINE = [27, 28, 29, 30, 33, 51, 57, 8]


def _extra_vertices() -> np.ndarray:
    """Cheeks, forehead and a ring around the head (hair, ears), in the mean face's
    millimetres: where the mesh needs vertices that the 68 points do not give."""
    cheeks = [(x * side, y, z) for side in (-1, 1)
              for x, y, z in ((50, -14, 12), (53, 6, 15), (49, 26, 18), (40, 44, 16), (30, 10, -5), (34, -20, 3))]
    forehead = ([(x, -82.0, -8 + x * x / 180) for x in (-60, -40, -20, 0, 20, 40, 60)]
                + [(x, -108.0, -4 + x * x / 160) for x in (-50, -25, 0, 25, 50)])
    return np.array(cheeks + forehead + _ring(), float)


def _ring() -> list:
    """The head's outline beyond the face: sides (ears) and top (hair), not the neck."""
    return [(85 * math.cos(a), -20 - 120 * math.sin(a), 62 - 37 * max(math.sin(a), 0.0))
            for a in np.radians(np.arange(-30, 211, 20))]


EXTRA_3D = _extra_vertices()


@dataclass
class Rotate3DConfig:
    """What `--rotate-3d` does: each kept face turned by a yaw (and pitch) drawn uniformly
    from these ranges, in degrees, from the face's seed."""

    yaw: tuple = (-30.0, 30.0)  # the default with --landmarks: it trained the best landmark models
    pitch: tuple = (0.0, 0.0)

    def validate(self) -> None:
        for name, (lo, hi), top in (("--rotate-3d", self.yaw, MAX_YAW), ("--rotate-3d-pitch", self.pitch, MAX_PITCH)):
            if not (math.isfinite(lo) and math.isfinite(hi) and -top <= lo <= hi <= top):
                raise SynthfaceError(f"{name} must be MIN:MAX degrees with -{top:g} <= MIN <= MAX <= {top:g}, "
                                     f"got {lo:g}:{hi:g}")

    def to_dict(self) -> dict:
        return {"yaw": [float(v) for v in self.yaw], "pitch": [float(v) for v in self.pitch]}


def parse_turns(yaw: str | None, pitch: str | None = None) -> Rotate3DConfig | None:
    """--rotate-3d and --rotate-3d-pitch ("MIN:MAX" or one number, degrees) -> a checked
    config; None when neither is given. A pitch alone keeps the default yaw range."""
    if yaw is None and pitch is None:
        return None
    ranges = []
    for flag, text, default in (("--rotate-3d", yaw, Rotate3DConfig.yaw), ("--rotate-3d-pitch", pitch, (0.0, 0.0))):
        if text is None:
            ranges.append(default)
            continue
        parts = str(text).split(":")
        try:
            lo, hi = (float(parts[0]), float(parts[-1])) if len(parts) <= 2 else (None, None)
        except ValueError:
            lo = hi = None
        if lo is None:
            raise SynthfaceError(f"{flag} must be MIN:MAX degrees (e.g. {flag}=-60:60), got '{text}'")
        ranges.append((lo, hi))
    cfg = Rotate3DConfig(*ranges)
    cfg.validate()
    return cfg


def draw_turn(seed: int, cfg: Rotate3DConfig) -> tuple[float, float]:
    """A face's (yaw, pitch) turn, from its seed alone (its own random stream)."""
    u = np.random.default_rng([int(seed), _STREAM]).random(2)
    return (float(cfg.yaw[0] + u[0] * (cfg.yaw[1] - cfg.yaw[0])),
            float(cfg.pitch[0] + u[1] * (cfg.pitch[1] - cfg.pitch[0])))


def turn_matrix(yaw: float, pitch: float) -> np.ndarray:
    """The rotation that adds (yaw, pitch) to a head's pose (pose.py's conventions)."""
    return rotation(yaw, pitch, 0.0)


@dataclass
class Turned:
    """A turned face: its image, 68 points, per-point hidden flags and box."""

    image: np.ndarray
    points: np.ndarray
    hidden: np.ndarray
    box: tuple


def turn_face(img: np.ndarray, points, box, yaw: float, pitch: float = 0.0) -> Turned:
    """Turn a face (RGB image, its 68 points, its box) by yaw and pitch degrees."""
    import cv2

    points = np.asarray(points, float)
    h, w = img.shape[:2]
    scale, rot, t = fit_mean_face(points)

    def place(model):  # model millimetres -> image (x, y) and depth, through the fit
        cam = model @ rot.T * scale
        return np.column_stack([cam[:, :2] + t, cam[:, 2]])

    fitted = place(MEAN_FACE_68)
    head = np.vstack([np.column_stack([points, fitted[:, 2]])[MESH_POINTS], place(EXTRA_3D)])
    landmarks3d = np.column_stack([points, fitted[:, 2]])
    # the head turns about its points' centre, so that the face stays where it was in
    # the frame (turning about the neck would also move it sideways)
    pivot = landmarks3d.mean(0)
    turn = turn_matrix(yaw, pitch)

    def rotate(v):
        return (v - pivot) @ turn.T + pivot

    # anchors: the image border (where the head does not reach) and a far frame, at the
    # depth of the background, which does not move
    span = max(w, h)
    far = float(np.max(head[:, 2]) + 4 * span)
    border = [(x, y) for x in np.linspace(0, w - 1, 5) for y in (0, h - 1)] + \
             [(x, y) for y in np.linspace(0, h - 1, 5)[1:-1] for x in (0, w - 1)]
    hull = cv2.convexHull(head[:, :2].astype(np.float32))  # the head ring included
    border = [b for b in border if cv2.pointPolygonTest(hull, b, True) < -1.0]
    frame = [(x, y) for x in (-2 * span, w / 2, w + 2 * span) for y in (-2 * span, h / 2, h + 2 * span)
             if (x, y) != (w / 2, h / 2)]
    fixed = np.array([(x, y, far) for x, y in border + frame], float)
    src = np.vstack([head, fixed])
    dst = np.vstack([rotate(head), fixed])
    tris = _delaunay(src[:, :2])
    idbuf, affines = _render_order(src, dst, tris, w, h)

    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    covered = idbuf >= 0
    a = affines[np.maximum(idbuf, 0)]  # (h, w, 2, 3)
    map_x = np.where(covered, a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2], xs).astype(np.float32)
    map_y = np.where(covered, a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2], ys).astype(np.float32)
    out = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    moved = rotate(landmarks3d)
    new_points = moved[:, :2].copy()
    tol = 6.0 * scale  # millimetres of the mean face, in pixels
    hidden = _hidden(moved, dst, tris, idbuf, tol)
    # landmark marching: jaw points to the visible outline
    marched = _march(points, landmarks3d, src, tris[(tris < len(head)).all(1)], rotate)
    hidden[JAW] |= np.linalg.norm(marched - new_points[JAW], axis=1) > 1.0 * scale  # moved over a millimetre
    new_points[JAW] = marched
    return Turned(out, new_points, hidden, _turned_box(box, points, new_points, yaw))


def _delaunay(pts2d: np.ndarray) -> np.ndarray:
    """Delaunay triangles (T, 3) of vertex indices."""
    import cv2

    lo = np.floor(pts2d.min(0)) - 2
    size = np.ceil(pts2d.max(0) - lo) + 4
    sub = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(size[0]), int(size[1])))
    sub.insert([(float(x), float(y)) for x, y in pts2d])
    tri = sub.getTriangleList().reshape(-1, 3, 2)
    # each corner back to its vertex: Subdiv2D keeps the inserted coordinates (as float32);
    # of two vertices at one place the first is used
    key = {}
    for i, (x, y) in enumerate(pts2d.astype(np.float32).tolist()):
        key.setdefault((x, y), i)
    out = [[key.get((x, y), -1) for x, y in t] for t in tri.tolist()]
    out = np.array(out, int).reshape(-1, 3)
    ok = (out >= 0).all(1) & (out[:, 0] != out[:, 1]) & (out[:, 1] != out[:, 2]) & (out[:, 0] != out[:, 2])
    return out[ok]


def _render_order(src, dst, tris, w, h):
    """Paint triangle ids far to near into an id buffer; the per-triangle affine map
    destination -> source. Returns (idbuf, affines (T, 2, 3))."""
    import cv2

    d = dst[tris]  # (T, 3, 3)
    s = src[tris]
    m = np.concatenate([d[:, :, :2], np.ones((len(tris), 3, 1))], 2)  # (T, 3, 3)
    det = np.linalg.det(m)
    good = np.abs(det) > 1e-6
    affines = np.zeros((len(tris), 2, 3))
    affines[good] = np.linalg.solve(m[good], s[good][:, :, :2]).transpose(0, 2, 1)
    idbuf = np.full((h, w), -1, np.int32)
    depth = d[:, :, 2].mean(1)
    corners = np.round(d[:, :, :2] * 16).astype(np.int32)
    for k in np.argsort(-depth, kind="stable"):
        if good[k]:
            cv2.fillConvexPoly(idbuf, corners[k], int(k), cv2.LINE_8, 4)
    return idbuf, affines


def _barycentric(q: np.ndarray, tri2d: np.ndarray):
    """(u, v) of points q (..., 2) in triangles tri2d (..., 3, 2), broadcast; the point is
    a + u (b - a) + v (c - a). Degenerate triangles give NaN."""
    a, b, c = tri2d[..., 0, :], tri2d[..., 1, :], tri2d[..., 2, :]
    v0, v1, r = b - a, c - a, q - a
    den = v0[..., 0] * v1[..., 1] - v0[..., 1] * v1[..., 0]
    den = np.where(np.abs(den) > 1e-9, den, np.nan)
    u = (r[..., 0] * v1[..., 1] - r[..., 1] * v1[..., 0]) / den
    v = (v0[..., 0] * r[..., 1] - v0[..., 1] * r[..., 0]) / den
    return u, v


def _hidden(moved, dst, tris, idbuf, tol) -> np.ndarray:
    """Points whose place is covered by a nearer triangle (more than `tol` nearer)."""
    h, w = idbuf.shape
    x, y = np.round(moved[:, 0]).astype(int), np.round(moved[:, 1]).astype(int)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    t = np.full(len(moved), -1)
    t[inside] = idbuf[y[inside], x[inside]]
    tri = dst[tris[np.maximum(t, 0)]]  # (68, 3, 3)
    u, v = _barycentric(moved[:, :2], tri[:, :, :2])
    z = tri[:, 0, 2] + u * (tri[:, 1, 2] - tri[:, 0, 2]) + v * (tri[:, 2, 2] - tri[:, 0, 2])
    return (t >= 0) & np.isfinite(z) & (z < moved[:, 2] - tol)


JAW = np.concatenate([JAW_LEFT, JAW_RIGHT])
_SIDE = np.where(JAW < 8, -1.0, 1.0)


def _march(points, landmarks3d, src, tris, rotate, samples: int = 12) -> np.ndarray:
    """Each jaw point's (JAW) place on the turned face's outline: along the horizontal
    line from it towards the face's midline, the mesh surface point that projects
    furthest out on its side. (len(JAW), 2)."""
    mid = np.asarray(points, float)[MIDLINE]
    order = np.argsort(mid[:, 1])
    p = landmarks3d[JAW]
    xm = np.interp(p[:, 1], mid[order, 1], mid[order, 0])
    f = np.linspace(0.0, 0.7, samples)
    cand = np.stack([p[:, None, 0] + f[None] * (xm - p[:, 0])[:, None], np.repeat(p[:, None, 1], samples, 1)], -1)
    tri = src[tris]  # (T, 3, 3)
    u, v = _barycentric(cand[:, :, None, :], tri[None, None, :, :, :2])  # (J, S, T)
    inside = (u >= -1e-6) & (v >= -1e-6) & (u + v <= 1 + 1e-6)
    first = inside.argmax(-1)  # (J, S): the first triangle holding each candidate
    found = inside.any(-1)
    jj, ss = np.meshgrid(np.arange(len(JAW)), np.arange(samples), indexing="ij")
    zt = tri[first, :, 2]  # (J, S, 3)
    uu, vv = u[jj, ss, first], v[jj, ss, first]
    z = zt[..., 0] + uu * (zt[..., 1] - zt[..., 0]) + vv * (zt[..., 2] - zt[..., 0])
    z[:, 0] = p[:, 2]
    found[:, 0] = True
    pts3 = np.concatenate([cand, z[..., None]], -1).reshape(-1, 3)
    turned = rotate(pts3).reshape(len(JAW), samples, 3)
    score = np.where(found, _SIDE[:, None] * turned[..., 0], -np.inf)
    best = score.argmax(1)
    return turned[np.arange(len(JAW)), best, :2]


# Where dlib's HOG detector puts the box of a turned face, against the box moved with the
# points: shifted towards where the nose turned by about a quarter of its width times
# sin(yaw), its size that of the frontal face (measured on generated faces turned -45 to
# +45 degrees, where the detector still fires: bench/bench_rotate3d.py boxes).
HOG_SHIFT = 0.25


def _turned_box(box, before, after, yaw: float) -> tuple:
    """The box of the turned face in the HOG convention: the face's box moved with the
    centre of its points' extent, then HOG_SHIFT x sin(yaw) of its width sideways; its
    side scaled by the extent's height (a pitch shortens it, a yaw does not)."""
    from synthface.face.geometry import points_box

    x, y, w, h = box
    bx, by, bw, bh = points_box(before)
    ax, ay, aw, ah = points_box(after)
    k = ah / max(bh, 1.0)
    cx = x + (w - 1) / 2 + (ax + (aw - 1) / 2) - (bx + (bw - 1) / 2) + HOG_SHIFT * math.sin(math.radians(yaw)) * w
    cy = y + (h - 1) / 2 + (ay + (ah - 1) / 2) - (by + (bh - 1) / 2)
    nw, nh = w * k, h * k
    return (int(round(cx - (nw - 1) / 2)), int(round(cy - (nh - 1) / 2)), int(round(nw)), int(round(nh)))


def rotate_face(img, points, box, seed: int, cfg: Rotate3DConfig) -> Turned:
    """A kept face turned by its seed's draw (make-dataset's step)."""
    yaw, pitch = draw_turn(seed, cfg)
    return turn_face(img, points, box, yaw, pitch)
