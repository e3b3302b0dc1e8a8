"""Flip-checked labels, dataset-time augmentation and mixing training sources."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import FACES
from synthface.face.annotate import AnnotateConfig
from synthface.face.scheme68 import mirror_points as unflip_points
from synthface.errors import SynthfaceError
from synthface.face.scheme68 import FLIP_IDX_68
from synthface.dataset.make import MakeConfig, make_dataset
from synthface.generator.sampling import ReplaySampler
from synthface.face.augment import AugmentConfig, augment_face, draw_params, invert_points


def _symmetric_shape(width=64):
    """68 points symmetric about the image's vertical centre line ((width - 1) / 2)."""
    rng = np.random.default_rng(0)
    c = (width - 1) / 2
    p = np.zeros((68, 2))
    for i in range(68):
        j = FLIP_IDX_68[i]
        if j < i:
            continue
        x, y = rng.uniform(5, width - 5), rng.uniform(5, width - 5)
        if i == j:
            x = c  # on the centre line: the nose bridge and tip, the chin, the lips' middles
        p[i], p[j] = (x, y), (2 * c - x, y)
    return p


def test_the_flip_permutation_is_an_involution_keeping_the_centre_line():
    assert all(FLIP_IDX_68[FLIP_IDX_68[i]] == i for i in range(68))
    assert FLIP_IDX_68[36] == 45 and FLIP_IDX_68[45] == 36 and FLIP_IDX_68[30] == 30 and FLIP_IDX_68[8] == 8


def test_flip_averaging_a_symmetric_shape_returns_it_unchanged():
    p = _symmetric_shape()
    mirrored_prediction = unflip_points(p, 64)  # what the mirror image's prediction maps back to
    assert np.allclose(mirrored_prediction, p, atol=1e-5)
    assert np.allclose((p + mirrored_prediction) / 2, p, atol=1e-5)
    q = p + np.random.default_rng(1).normal(0, 1, p.shape)  # not symmetric: the flip moves it
    assert not np.allclose(unflip_points(q, 64), q, atol=0.1)
    assert np.allclose(unflip_points(unflip_points(q, 64), 64), q, atol=1e-5)  # flipping twice: the identity


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_augmentation_round_trips_the_points(seed):
    img = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    points = np.random.default_rng(seed + 10).uniform(10, 54, (68, 2))
    out, moved, box = augment_face(img, points, (10, 12, 40, 40), seed, AugmentConfig())
    p = draw_params(seed, AugmentConfig(), 64)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.allclose(invert_points(moved, p, 64), points, atol=1e-3)
    assert (box[2], box[3]) == (round(40 * p.scale), round(40 * p.scale))
    # the pixels move with the points: a bright dot lands where its point goes
    dot = np.zeros((64, 64, 3), np.uint8)
    dot[30:33, 20:23] = 255
    cfg = AugmentConfig(colour=0, blur=0, noise=0, jpeg=0)
    moved_dot, where, _ = augment_face(dot, np.array([[21.0, 31.0]] * 68), (0, 0, 64, 64), seed, cfg)
    y, x = np.unravel_index(np.argmax(moved_dot[..., 0].astype(float)), (64, 64))
    assert abs(x - where[0, 0]) <= 1.5 and abs(y - where[0, 1]) <= 1.5


def test_mixing_counts_each_source_as_weighted():
    from synthface.trainers.landmarks import mix_face_sets

    a, b = list(range(10)), list(range(100, 104))
    faces, counts = mix_face_sets([a, b], [1, 2.5])
    assert counts == [10, 10] and len(faces) == 20
    assert sorted(faces[10:]).count(100) in (2, 3) and set(faces[10:]) == set(b)
    assert mix_face_sets([a, b])[1] == [10, 4]
    assert mix_face_sets([a, b], [1, 2.5])[0] == faces  # seeded: the same draw
    with pytest.raises(SynthfaceError, match="1 --weight for 2 --data"):
        mix_face_sets([a, b], [2])
    with pytest.raises(SynthfaceError, match="--weight must be above 0"):
        mix_face_sets([a, b], [1, 0])


def test_flip_labels_and_augmentation_in_a_dataset(tmp_path):
    replay = ReplaySampler(FACES, 64)
    out = tmp_path / "d"
    cfg = MakeConfig(n=12, workers=0, augment=AugmentConfig(),
                     annotate=AnnotateConfig(labels="flip", max_disagreement=0.03))
    summary = make_dataset(out, cfg, replay, progress=False)
    frame = pd.read_csv(out / "labels.csv")
    assert "disagreement" in frame and (frame["disagreement"] <= 0.03).all() and (frame["disagreement"] > 0).all()
    assert summary["rejected"].get("disagreement", 0) >= 0 and len(frame) == 12
    card = json.loads((out / "dataset.json").read_text())
    assert card["annotation"]["labels"] == "flip" and card["augment"]["rotate"] == 15.0
    again = tmp_path / "again"  # the same dataset whatever the batching
    make_dataset(again, MakeConfig(n=12, workers=2, batch_size=5, augment=AugmentConfig(),
                                   annotate=AnnotateConfig(labels="flip", max_disagreement=0.03)),
                 replay, progress=False)
    assert (again / "labels.csv").read_bytes() == (out / "labels.csv").read_bytes()
    with pytest.raises(SynthfaceError, match="--max-disagreement needs --landmarks --labels flip"):
        MakeConfig(n=5, annotate=AnnotateConfig(max_disagreement=0.1)).validate()
    with pytest.raises(SynthfaceError, match="augment: flip is a probability"):
        MakeConfig(n=5, augment=AugmentConfig(flip=2)).validate()


def test_landmark_datasets_are_augmented_by_default_from_the_cli(tmp_path):
    from conftest import run_cli

    base = ["make-dataset", "-n", "3", "--landmarks", "--replay-faces", FACES, "--workers", "0", "--no-progress"]
    assert run_cli(*base, "--out", tmp_path / "a").returncode == 0
    assert json.loads((tmp_path / "a" / "dataset.json").read_text())["augment"]["rotate"] == 15.0
    assert run_cli(*base, "--no-augment", "--out", tmp_path / "b").returncode == 0
    assert json.loads((tmp_path / "b" / "dataset.json").read_text())["augment"] is None
    r = run_cli(*base, "--augment", "--no-augment", "--out", tmp_path / "c")
    assert r.returncode == 1 and r.stderr.strip() == "synthface: error: give --augment or --no-augment, not both"


def test_a_script_gets_the_dataset_the_cli_makes(tmp_path):
    """The augmentation rule lives in MakeConfig ("auto": on with landmarks), so a script
    that calls the library gets the same dataset as `make-dataset --landmarks`."""
    from conftest import run_cli
    from synthface.face.annotate import AnnotateConfig
    from synthface.dataset.make import MakeConfig, make_dataset
    from synthface.generator.sampling import ReplaySampler

    assert MakeConfig(n=1, annotate=AnnotateConfig(landmarks=True)).augment is not None
    assert MakeConfig(n=1, annotate=AnnotateConfig(landmarks=False)).augment is None
    r = run_cli("make-dataset", "-n", "4", "--landmarks", "--replay-faces", FACES, "--workers", "0", "--no-progress",
                "--out", tmp_path / "cli")
    assert r.returncode == 0 and "--no-augment turns it off" in r.stdout
    make_dataset(tmp_path / "lib", MakeConfig(n=4, workers=0), ReplaySampler(FACES, 64), progress=False)
    assert (tmp_path / "lib" / "labels.csv").read_bytes() == (tmp_path / "cli" / "labels.csv").read_bytes()


def test_training_xml_lists_each_photo_once_with_all_its_copies(tmp_path):
    """A weighted source's copies are one image entry with repeated boxes (dlib loads
    every entry into memory); the boxes and points go through unchanged."""
    import xml.etree.ElementTree as ET

    from conftest import FACES_300W
    from synthface.face.geometry import points_box
    from synthface.trainers.landmarks import Face, load_face_set, mix_face_sets, write_training_xml

    real = [Face(f.image, points_box(f.points), f.points) for f in load_face_set(FACES_300W)]
    faces, counts = mix_face_sets([real, real[:2]], [3, 1])
    assert counts == [3 * len(real), 2]
    xml = tmp_path / "train.xml"
    assert write_training_xml(faces, xml) == len(real)
    images = ET.parse(xml).getroot().find("images")
    boxes = [len(image.findall("box")) for image in images]
    assert len(boxes) == len(real) and sorted(boxes) == sorted([4, 4] + [3] * (len(real) - 2))
    first = images[0].find("box")
    x, y, w, h = (int(round(v)) for v in real[0].box)
    assert (int(first.get("left")), int(first.get("top")), int(first.get("width"))) == (x, y, w)
    parts = first.findall("part")
    assert len(parts) == 68 and int(parts[36].get("x")) == round(real[0].points[36][0])
