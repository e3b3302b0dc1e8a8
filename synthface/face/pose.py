"""Head pose and expression from the 68 iBUG points: plain numpy in, plain floats out.

Pose: `cv2.solvePnP` of six points (nose tip 30, chin 8, outer eye corners 36 and 45,
mouth corners 48 and 54) against the generic 3D face model widely used for this (in
model units, x to the image's right, y up, z towards the camera, nose tip at the origin),
with a pinhole camera of focal length = image width centred on the image. Angles, in
degrees, of the face's direction (its normal, the way the nose points) and its
ear-to-ear axis, as seen in the image:
- yaw > 0: the face turns towards the image's right (the subject's left);
- pitch > 0: the face turns up;
- roll > 0: the head tilts clockwise in the image (the image-right eye lower).
A generic model on 64 px faces is coarse: use the angles to bin and steer faces (a few
degrees), not as ground truth.

Expression: `mouth_open` is the inner-lip gap (mean of 61-67, 62-66, 63-65) over the
outer-eye-corner distance (36-45); `eye_open` is the eye aspect ratio (Soukupova and
Cech 2016: the two lid distances over twice the corner distance), both eyes averaged.
`yaw_proxy` is the nose tip's offset from the midpoint of the outer eye corners over
their distance: a model-free turn measure.
"""

from __future__ import annotations

import math

import numpy as np

POSE_COLS = ["yaw", "pitch", "roll", "mouth_open", "eye_open"]
MODEL_POINTS = (30, 8, 36, 45, 48, 54)
MODEL_3D = np.array([(0.0, 0.0, 0.0), (0.0, -330.0, -65.0), (-225.0, 170.0, -135.0), (225.0, 170.0, -135.0),
                     (-150.0, -150.0, -125.0), (150.0, -150.0, -125.0)])
# the model in the camera's axes (x right, y down, z away from the camera): a frontal
# face is then the identity rotation
_MODEL_CAM = MODEL_3D * np.array([1.0, -1.0, -1.0])


def _camera(size: float) -> np.ndarray:
    return np.array([[size, 0.0, size / 2], [0.0, size, size / 2], [0.0, 0.0, 1.0]])


def head_pose(points, size: float) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a face's 68 points in a `size` px image."""
    import cv2

    image_points = np.ascontiguousarray(np.asarray(points, float)[list(MODEL_POINTS)])
    camera = _camera(size)
    # start from a frontal face at a distance that gives the eyes their size in the image
    eye = np.linalg.norm(image_points[3] - image_points[2])
    distance = size * 450.0 / max(eye, 1e-6)
    centre = (image_points[0] - size / 2) * distance / size
    rvec, tvec = np.zeros((3, 1)), np.array([[centre[0]], [centre[1]], [distance]])
    ok, rvec, tvec = cv2.solvePnP(_MODEL_CAM, image_points, camera, None, rvec=rvec, tvec=tvec,
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    rot, _ = cv2.Rodrigues(rvec)
    return _angles(rot)


def _angles(rot: np.ndarray) -> tuple[float, float, float]:
    """The rotation as Rz(roll) Ry(-yaw) Rx(-pitch) (standard axis matrices, camera axes):
    pitch first, then yaw, then roll in the image plane."""
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, rot[2, 0]))))
    pitch = -math.degrees(math.atan2(rot[2, 1], rot[2, 2]))
    roll = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
    return yaw, pitch, roll


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The head rotation with these angles (the inverse of `_angles`)."""
    y, p, r = (math.radians(a) for a in (-yaw, -pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


# The 68-point 3D mean face distributed with open head-pose estimation code (e.g.
# yinguobing/head-pose-estimation, assets/model.txt), in millimetres about the face's
# centre, camera axes (x right, y down, z away from the camera: the nose towards -z).
MEAN_FACE_68 = np.array([
    -73.393524, -29.801432, 47.667534, -72.77502, -10.949766, 45.909405, -70.53364, 7.929818, 44.84258,
    -66.85006, 26.07428, 43.141113, -59.790188, 42.56439, 38.6353, -48.368973, 56.48108, 30.750622,
    -34.1211, 67.246994, 18.456453, -17.87541, 75.05689, 3.609035, 0.098749, 77.06129, -0.881698,
    17.477032, 74.758446, 5.181201, 32.648968, 66.92902, 19.176563, 46.372356, 56.31139, 30.77057,
    57.34348, 42.419125, 37.628628, 64.38848, 25.45588, 40.88631, 68.212036, 6.990805, 42.28145,
    70.486404, -11.666193, 44.142567, 71.375824, -30.36519, 47.140427, -61.119408, -49.361603, 14.254422,
    -51.287586, -58.769794, 7.268147, -37.8048, -61.996155, 0.442051, -24.022755, -61.033398, -6.606501,
    -11.635713, -56.68676, -11.967398, 12.056636, -57.391033, -12.051204, 25.106256, -61.902187, -7.315098,
    38.33859, -62.777714, -1.022953, 51.191006, -59.302345, 5.349435, 60.053852, -50.190254, 11.615746,
    0.65394, -42.19379, -13.380835, 0.804809, -30.993721, -21.150852, 0.992204, -19.944595, -29.284037,
    1.226783, -8.414541, -36.94806, -14.772472, 2.598255, -20.132004, -7.180239, 4.751589, -23.536684,
    0.55592, 6.5629, -25.944448, 8.272499, 4.661005, -23.695742, 15.214351, 2.643046, -20.858156,
    -46.04729, -37.471413, 7.037989, -37.674686, -42.73051, 3.021217, -27.883856, -42.711517, 1.353629,
    -19.648268, -36.75474, -0.111088, -28.272964, -35.134495, -0.147273, -38.082417, -34.919044, 1.476612,
    19.265867, -37.032307, -0.665746, 27.894192, -43.342445, 0.24766, 37.43753, -43.11082, 1.696435,
    45.170807, -38.086514, 4.894163, 38.196453, -35.532024, 0.282961, 28.76499, -35.484287, -1.172675,
    -28.916267, 28.612717, -2.24031, -17.533194, 22.172188, -15.934335, -6.68459, 19.02905, -22.611355,
    0.381001, 20.721119, -23.748438, 8.375443, 19.03546, -22.721994, 18.876617, 22.39411, -15.610679,
    28.794413, 28.079924, -3.217393, 19.057573, 36.29825, -14.987997, 8.956375, 39.634575, -22.554245,
    0.381549, 40.395645, -23.591625, -7.428895, 39.836407, -22.406107, -18.160633, 36.6779, -15.121907,
    -24.37749, 28.67777, -4.785684, -6.897633, 25.475977, -20.893742, 0.340663, 26.014269, -22.220478,
    8.444722, 25.326199, -21.02552, 24.474474, 28.323008, -5.712776, 8.449166, 30.596216, -20.67149,
    0.205322, 31.408737, -21.90367, -7.198266, 30.844875, -20.328022]).reshape(68, 3)

FIT_POINTS = np.arange(17, 68)  # brows, nose, eyes, mouth: the jaw is where dlib follows the silhouette


def fit_mean_face(points) -> tuple[float, np.ndarray, np.ndarray]:
    """Weak-perspective fit of the mean face to 68 points: (scale, rotation 3x3, 2D
    translation) with points ~ scale * (R @ X)[:2] + t, least squares on FIT_POINTS."""
    p = np.asarray(points, float)[FIT_POINTS]
    x = MEAN_FACE_68[FIT_POINTS]
    pm, xm = p.mean(0), x.mean(0)
    m, *_ = np.linalg.lstsq(x - xm, p - pm, rcond=None)  # (3, 2): p ~ x @ m
    u, s, vt = np.linalg.svd(m.T, full_matrices=False)  # the nearest scaled pair of orthonormal rows
    rows = u @ vt
    rot = np.vstack([rows, np.cross(rows[0], rows[1])])
    scale = float(s.mean())
    return scale, rot, pm - scale * rows @ xm


def fitted_pose(points) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of the mean face fitted to 68 points by a scaled
    orthographic projection (`fit_mean_face`): no camera to assume, 51 points instead of
    six. On faces turned in 3D (rotate3d.py) it recovers the turn within 2 degrees, where
    `head_pose`'s perspective fit of six points measures about two thirds of it."""
    return _angles(fit_mean_face(points)[1])


def mouth_open(points) -> float:
    p = np.asarray(points, float)
    gap = np.mean([np.linalg.norm(p[a] - p[b]) for a, b in ((61, 67), (62, 66), (63, 65))])
    return float(gap / max(np.linalg.norm(p[45] - p[36]), 1e-6))


def eye_open(points) -> float:
    p = np.asarray(points, float)

    def ear(e):  # the six points of one eye, corner first
        return (np.linalg.norm(p[e[1]] - p[e[5]]) + np.linalg.norm(p[e[2]] - p[e[4]])) / (
            2 * max(np.linalg.norm(p[e[0]] - p[e[3]]), 1e-6))

    return float((ear(range(36, 42)) + ear(range(42, 48))) / 2)


def yaw_proxy(points) -> float:
    p = np.asarray(points, float)
    mid = (p[36] + p[45]) / 2
    return float((p[30, 0] - mid[0]) / max(np.linalg.norm(p[45] - p[36]), 1e-6))


def face_attributes(points, size: float) -> dict:
    """Every per-face pose and expression value (POSE_COLS), rounded for the labels."""
    yaw, pitch, roll = head_pose(points, size)
    values = {"yaw": yaw, "pitch": pitch, "roll": roll, "mouth_open": mouth_open(points), "eye_open": eye_open(points)}
    return {k: round(float(v), 4) for k, v in values.items()}
