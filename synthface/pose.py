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
    ok, rvec, tvec = cv2.solvePnP(_MODEL_CAM, image_points, camera, None, rvec, tvec, True,
                                  cv2.SOLVEPNP_ITERATIVE)
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
