"""The per-face stage: a generated image -> sized -> annotated -> turned -> augmented ->
encoded, one `Face` record carried through every step.

Every path that makes or shows a labelled face goes through here: make-dataset's
workers (dataset/faces.py), the card's turns.jpg, `sample --rotate-3d` and the
attributes `directions` fits on. A `Face` holds the image and its labels as plain
types: the box (x, y, w, h), dlib's score, the 68 points (0-based pixel centres), the
per-point flags the turn hid, the flip labels' disagreement, and the turn (yaw, pitch)
as the saved image shows it. A mirror (the augmentation's flip) swaps points, flags and
the turn's yaw by scheme68's one rule (mirror_points / mirror_flags).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from synthface.face.scheme68 import mirror_flags


@dataclass(frozen=True)
class Face:
    """One face and its labels, as a step left it."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    box: tuple  # x, y, w, h
    score: float
    points: np.ndarray | None = None  # (68, 2) float32; None for boxes only
    hidden: np.ndarray | None = None  # (68,) bool: the points the turn hid; None unturned
    disagreement: float | None = None  # flip labels: the two predictions' distance, in eye distances
    turn: tuple | None = None  # (yaw, pitch) degrees the face was turned, as the saved image shows it

    def replace(self, **changes) -> Face:
        return dataclasses.replace(self, **changes)

    def attributes(self) -> dict:
        """Pose and expression from the points (pose.face_attributes)."""
        from synthface.face.pose import face_attributes

        return face_attributes(self.points, self.image.shape[0])

    def labels(self) -> dict:
        """The labels as the journal's worker result takes them (plain types)."""
        out = {"box": self.box, "score": self.score}
        for key, value in (("landmarks", self.points), ("disagreement", self.disagreement),
                           ("hidden", self.hidden)):
            if value is not None:
                out[key] = value
        return out


def from_dlib(image: np.ndarray, found: dict) -> Face:
    """A face as Annotator.annotate found it (its dict) in `image`."""
    return Face(image, found["box"], found["score"], found.get("landmarks"), disagreement=found.get("disagreement"))


def turned_to(face: Face, yaw: float, pitch: float = 0.0) -> Face:
    """The face turned in 3D by yaw and pitch degrees, its points carried exactly and the
    ones the turn hid flagged (rotate3d.turn_face)."""
    from synthface.face.rotate3d import turn_face

    t = turn_face(face.image, face.points, face.box, yaw, pitch)
    return face.replace(image=t.image, points=t.points, box=t.box, hidden=t.hidden, turn=(yaw, pitch))


def turn_as_saved(seed: int, rotate3d, augment) -> tuple[float, float]:
    """A face's drawn turn (yaw, pitch) as its saved image shows it: the augmentation's
    mirror changes the yaw's sign."""
    from synthface.face.rotate3d import draw_turn

    yaw, pitch = draw_turn(seed, rotate3d)
    if augment is not None:
        from synthface.face.augment import flipped

        if flipped(seed, augment):
            yaw = -yaw
    return yaw, pitch


@dataclass(frozen=True)
class FaceStage:
    """What a make-dataset run does to each face (MakeConfig's --image-size, --pad,
    --augment, --rotate-3d), the same for every face; a worker process gets it pickled.
    `seed` is the run's (a chunk of candidates is generated from it); each face's own
    draws come from its candidate seed."""

    seed: int
    image_size: int | None
    pad: float
    augment: object = None  # an AugmentConfig, or None
    rotate3d: object = None  # a Rotate3DConfig, or None

    @classmethod
    def of(cls, cfg) -> FaceStage:
        """The stage of a run of these settings (a MakeConfig)."""
        return cls(seed=cfg.seed, image_size=cfg.image_size, pad=cfg.pad, augment=cfg.augment, rotate3d=cfg.rotate3d)

    def sized(self, img: np.ndarray) -> np.ndarray:
        """A generated image as make-dataset saves and labels it: resized to --image-size
        (bilinear up, area down: both bit-exact on every CPU, where OpenCV's bicubic rounds
        differently by its SIMD path, so the same seed gave other pixels on another
        machine), then --pad's reflected border."""
        import cv2

        from synthface.face.geometry import pad_pixels

        if self.image_size and self.image_size != img.shape[0]:
            interp = cv2.INTER_LINEAR_EXACT if self.image_size > img.shape[0] else cv2.INTER_AREA
            img = cv2.resize(img, (self.image_size, self.image_size), interpolation=interp)
        if self.pad:
            p = pad_pixels(img.shape[0], self.pad)
            img = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REFLECT_101)
        return img

    def annotated(self, annotator, img: np.ndarray) -> tuple[str, int, Face | None]:
        """dlib on the sized image: (why it is rejected or "", faces found, the Face kept or None)."""
        found = annotator.annotate(img)
        status = annotator.rejection_reason(found)
        return status, len(found), None if status else from_dlib(img, found[0])

    def turned(self, face: Face, seed: int) -> Face:
        """--rotate-3d: turned by its seed's draw."""
        from synthface.face.rotate3d import draw_turn

        return turned_to(face, *draw_turn(seed, self.rotate3d))

    def augmented(self, face: Face, seed: int) -> Face:
        """--augment: transformed with its labels by its seed's draw; a mirror swaps the
        hidden flags and the turn's yaw as it swaps the points."""
        from synthface.face.augment import augment_face, flipped

        img, points, box = augment_face(face.image, face.points, face.box, seed, self.augment)
        face = face.replace(image=img, points=points, box=box)
        if flipped(seed, self.augment):
            face = face.replace(hidden=None if face.hidden is None else mirror_flags(face.hidden),
                                turn=None if face.turn is None else (-face.turn[0], face.turn[1]))
        return face

    def labelled(self, annotator, img: np.ndarray, seed: int) -> tuple[str, int, Face | None]:
        """Every step but the encoding: sized, annotated, then (kept) turned and augmented."""
        status, found, face = self.annotated(annotator, self.sized(img))
        if face is not None and self.rotate3d is not None:
            face = self.turned(face, seed)
        if face is not None and self.augment is not None:
            face = self.augmented(face, seed)
        return status, found, face


def encode_png(face: Face) -> bytes:
    """The face's image as the dataset's PNG bytes."""
    import cv2

    return cv2.imencode(".png", np.ascontiguousarray(face.image[:, :, ::-1]))[1].tobytes()
