"""dlib annotation: face boxes (HOG frontal detector) and the 68 iBUG 300-W landmarks.

Plain types at the boundary: a face is a dict with `box` = (x, y, w, h) floats, `score`,
and `landmarks` = float32 array (68, 2). Coordinates are in pixels of the image passed
in, with pixel centres at integer coordinates (dlib's and OpenCV's convention): the
top-left pixel's centre is (0, 0). A dlib rectangle (left, top, right, bottom) is
inclusive, so w = right - left + 1.

Model files come from the `face_recognition_models` package, found with
importlib.util.find_spec (its __init__ imports pkg_resources, which new environments
lack); every path can be overridden.
"""

from __future__ import annotations

import copy
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthface.errors import SynthfaceError
from synthface.face.scheme68 import mirror_points

MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
    "mmod": "mmod_human_face_detector.dat",
}


def check_predictor_text(path) -> None:
    """--predictor "" (an unset shell variable, say) is a mistake, not the default."""
    if path is not None and not str(path).strip():
        raise SynthfaceError(f"--predictor {str(path)!r} is empty: give the path of {MODEL_FILES['landmarks68']}, "
                             "or leave --predictor out for face_recognition_models' own")


def model_path(kind: str, override: str | None = None) -> Path:
    """The path of one of dlib's model files; `override` wins when given."""
    if kind == "landmarks68":
        check_predictor_text(override)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise SynthfaceError(f"dlib model file not found: {path}")
        return path
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SynthfaceError("dlib's model files are missing: pip install face_recognition_models, "
                             f"or pass the path of {MODEL_FILES[kind]} as an option")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILES[kind]
    if not path.is_file():
        raise SynthfaceError(f"dlib model file not found: {path}")
    return path


@dataclass
class AnnotateConfig:
    # Detector upsampling: HOG finds faces of about 80 px, generated faces are 56-64 px.
    upsample: int = 1
    # Keep a sample only if the detector's score is at least this (dlib's own
    # threshold is 0; raise it for cleaner, fewer faces).
    min_score: float = 0.0
    # With landmarks: the 68-point predictor; without, boxes only.
    landmarks: bool = True
    # Override the 68-point predictor file (default: face_recognition_models').
    predictor_path: str | None = None
    # "hog": dlib's frontal HOG detector; "mmod": its CNN detector (about 60 times the CPU
    # cost), whose boxes are mapped to the HOG convention (MMOD_TO_HOG).
    detector: str = "hog"
    # "single": the 68-point predictor once; "flip": also on the mirrored image, its
    # points mapped back (scheme68.mirror_points) and the two averaged, with their disagreement
    # (mean point distance / outer-eye-corner distance) kept as a label confidence.
    labels: str = "single"
    # With flip labels: reject faces whose two predictions disagree by more than this.
    max_disagreement: float | None = None


DETECTORS = ("hog", "mmod")
LABELS = ("single", "flip")
# MMOD box -> HOG box, one convention per dataset: measured on 800 bundled-generator
# faces that both detectors found (upsample 1), HOG's box is 0.93 times MMOD's side and
# its centre lies (0.070, 0.078) MMOD sides right and down of MMOD's (median IoU of the
# mapped boxes with HOG's 0.83, against 0.73 unmapped). The 68-point predictor was
# trained on HOG-like boxes, so it is given the mapped box too.
MMOD_TO_HOG = (0.93, 0.070, 0.078)


MAX_UPSAMPLE = 3  # a 2048 px image upsampled three times is 16k px a side


def check_upsample(value, flag: str = "--upsample") -> int:
    """Detector upsampling steps: 0 to MAX_UPSAMPLE, or a one-line error."""
    if not 0 <= value <= MAX_UPSAMPLE:
        raise SynthfaceError(f"{flag} must be from 0 to {MAX_UPSAMPLE}, got {value}")
    return value


def load_imglab(xml: Path):
    """dlib's reading of an imglab XML file, or a one-line error."""
    import dlib

    try:
        return dlib.image_dataset_metadata.load_image_dataset_metadata(str(xml))
    except RuntimeError as exc:
        raise SynthfaceError(f"{xml}: not a dlib imglab XML file ({str(exc).strip().splitlines()[0]})") from None


def mmod_to_hog(rect):
    """A dlib.rectangle from the CNN detector -> the HOG-convention dlib.rectangle."""
    import dlib

    k, dx, dy = MMOD_TO_HOG
    w = rect.right() - rect.left() + 1
    cx = (rect.left() + rect.right()) / 2 + dx * w
    cy = (rect.top() + rect.bottom()) / 2 + dy * w
    side = k * w
    left, top = round(cx - (side - 1) / 2), round(cy - (side - 1) / 2)
    return dlib.rectangle(left, top, left + round(side) - 1, top + round(side) - 1)


def rect_to_box(rect) -> tuple[float, float, float, float]:
    return (float(rect.left()), float(rect.top()),
            float(rect.right() - rect.left() + 1), float(rect.bottom() - rect.top() + 1))


def shape_to_array(shape) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def load_shape_predictor(override: str | None = None, path=None):
    """dlib's 68-point shape predictor (or the file given), checked: a file that is not
    a shape predictor, or predicts another number of points, is one line."""
    import dlib

    path = Path(path) if path is not None else model_path("landmarks68", override)
    if not path.is_file():
        raise SynthfaceError(f"model not found: {path}")
    try:
        predictor = dlib.shape_predictor(str(path))
    except RuntimeError as exc:
        # dlib's text runs over several lines ("... while deserializing ..."): its first is enough
        raise SynthfaceError(f"{path} is not a dlib shape predictor ({str(exc).strip().splitlines()[0]})") from None
    probe = predictor(np.zeros((8, 8, 3), np.uint8), dlib.rectangle(0, 0, 7, 7))
    if probe.num_parts != 68:
        raise SynthfaceError(f"{path} predicts {probe.num_parts} points, not 68")
    return predictor


class Annotator:
    """Loads dlib's models once; `annotate(rgb)` returns every face found."""

    def __init__(self, cfg: AnnotateConfig):
        import dlib

        self.cfg = cfg
        self._detector = dlib.get_frontal_face_detector()
        self._local = threading.local()
        self.predictor = load_shape_predictor(cfg.predictor_path) if cfg.landmarks else None

    @property
    def detector(self):
        """This thread's HOG detector. dlib's object_detector keeps its scanner's state
        in the object, so threads must not share one (shared, they return wrong boxes);
        a copy costs 1 ms where building one costs 230. The shape predictor keeps no
        state and is shared."""
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = copy.copy(self._detector)
        return detector

    @property
    def cnn(self):
        """This thread's MMOD CNN detector (loaded once a thread: it keeps state)."""
        import dlib

        cnn = getattr(self._local, "cnn", None)
        if cnn is None:
            cnn = self._local.cnn = dlib.cnn_face_detection_model_v1(str(model_path("mmod")))
        return cnn

    def annotate(self, rgb: np.ndarray) -> list[dict]:
        """Faces in an (H, W, 3) uint8 RGB image, best score first."""
        import dlib

        if self.cfg.detector == "mmod":
            found = self.cnn(rgb, self.cfg.upsample)
            rects, scores = [mmod_to_hog(d.rect) for d in found], [d.confidence for d in found]
        else:
            rects, scores, _ = self.detector.run(rgb, self.cfg.upsample, 0.0)
        faces = []
        for rect, score in sorted(zip(rects, scores), key=lambda rs: -rs[1]):
            face = {"box": rect_to_box(rect), "score": float(score)}
            if self.predictor is not None:
                rect = dlib.rectangle(rect.left(), rect.top(), rect.right(), rect.bottom())
                face["landmarks"] = shape_to_array(self.predictor(rgb, rect))
                if self.cfg.labels == "flip":
                    face["landmarks"], face["disagreement"] = self._flip_average(rgb, rect, face["landmarks"])
            faces.append(face)
        return faces

    def _flip_average(self, rgb: np.ndarray, rect, points: np.ndarray):
        """The prediction averaged with the mirrored image's (mapped back), and the two
        predictions' disagreement in outer-eye-corner distances."""
        import dlib

        w = rgb.shape[1]
        mirror = np.ascontiguousarray(rgb[:, ::-1])
        mrect = dlib.rectangle(w - 1 - rect.right(), rect.top(), w - 1 - rect.left(), rect.bottom())
        mirrored = mirror_points(shape_to_array(self.predictor(mirror, mrect)), w)
        eye = max(float(np.linalg.norm(points[45] - points[36])), 1e-6)
        disagreement = float(np.linalg.norm(points - mirrored, axis=1).mean() / eye)
        return ((points + mirrored) / 2).astype(np.float32), disagreement

    def rejection_reason(self, faces: list[dict]) -> str:
        """Why a sample is rejected ("" to keep it): exactly one face, score high enough."""
        if not faces:
            return "no_face"
        if len(faces) > 1:
            return "several_faces"
        if faces[0]["score"] < self.cfg.min_score:
            return "low_score"
        if self.cfg.max_disagreement is not None and faces[0].get("disagreement", 0.0) > self.cfg.max_disagreement:
            return "disagreement"
        return ""
