"""RunRecord (synthface.dataset.record): a run's run.json read back typed; built from
an older run's identity it gives None or defaults; export through it writes the labels
that export through the identity dict wrote (the values below are those of the labels
made before the record existed)."""

import dataclasses
import json
import pickle
import shutil

import pytest

from conftest import FACES, run_cli
from synthface.dataset.record import RunRecord, Shards

MAKE = ["-n", 4, "--landmarks", "--format", "csv", "--no-progress", "--workers", 1, "--replay-faces", FACES,
        "--seed", 7, "--image-size", 96, "--labels", "flip"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("record") / "d"
    r = run_cli("make-dataset", "--out", out, *MAKE)
    assert r.returncode == 0, r.stderr
    return out


def test_the_record_of_a_run_reads_its_settings(made):
    from synthface.face.augment import AugmentConfig

    record = RunRecord.load(made)
    assert record.raw == json.loads((made / ".synthface" / "run.json").read_text())
    assert (record.kind, record.seed, record.image_size, record.n, record.pad) == ("faces", 7, 96, None, 0.0)
    assert record.shards is None and record.scenes is None
    assert record.generator["kind"] == "replay" and record.generator["resolution"] == 64
    assert record.steering is None and record.steered == []
    assert record.landmarks and record.flip_labels and record.labels == "flip"
    assert record.detector == "hog" and record.max_disagreement is None
    assert len(record.predictor_sha256) == 64
    assert record.annotate_config.labels == "flip" and record.annotate_config.landmarks
    # --landmarks turns faces in 3D (yaw -30:30) and augments them by default
    assert record.turned and tuple(record.rotate3d.yaw) == (-30.0, 30.0) and tuple(record.rotate3d.pitch) == (0, 0)
    assert record.rotate3d_settings == {"yaw": [-30.0, 30.0], "pitch": [0.0, 0.0]}
    assert record.augment == AugmentConfig() and record.augment_settings == AugmentConfig().to_dict()


def test_a_record_round_trips_and_is_frozen(made):
    record = RunRecord.load(made)
    again = RunRecord.from_identity(record.raw)
    assert again == record and again.raw is not record.raw
    assert RunRecord.of(record) is record and RunRecord.of(record.raw) == record
    assert pickle.loads(pickle.dumps(record)) == record  # the parallel export's second process gets it
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.raw = {}
    other = RunRecord.from_identity({**record.raw, "seed": 8})
    assert record.differing(other) == ["seed"] and record.differing(again) == []
    before = (made / ".synthface" / "run.json").read_bytes()
    again.save(made)  # the same record: accepted, run.json left as it was
    assert (made / ".synthface" / "run.json").read_bytes() == before
    with pytest.raises(Exception, match=r"was made with other settings \(seed differ\)"):
        other.save(made)


def test_a_record_from_an_older_run_gives_defaults():
    from synthface.dataset.export import turn_labels
    from synthface.face.annotate import AnnotateConfig

    old = RunRecord.from_identity({"seed": 0, "image_size": 64, "generator": {"kind": "replay", "folder": "f"},
                                   "annotate": {"upsample": 1, "min_score": 0.0, "landmarks": False},
                                   "predictor_sha256": None})
    assert (old.kind, old.n, old.pad, old.shards, old.scenes) == ("faces", None, 0.0, None, None)
    assert old.rotate3d is None and old.rotate3d_settings is None and not old.turned
    assert old.augment is None and old.augment_settings is None
    assert (old.flip_labels, old.labels, old.detector, old.max_disagreement) == (False, "single", "hog", None)
    assert old.steering is None and old.steered == [] and old.predictor_sha256 is None
    assert old.annotate_config == AnnotateConfig(landmarks=False)
    assert turn_labels(old) is None
    shard = RunRecord.from_identity({**old.raw, "shards": {"num": 2, "index": 1, "n": 10}})
    assert shard.shards == Shards(2, 1, 10) and shard.n == 10
    assert shard.without_shards() == old
    scenes = RunRecord.from_identity({"kind": "scenes", "seed": 3, "n": 5, "scenes": {"recipe": 2},
                                      "generator": {"kind": "replay"}})
    assert (scenes.kind, scenes.n, scenes.scenes, scenes.turned) == ("scenes", 5, {"recipe": 2}, False)


HEADER = ("file,split,seed,index,x,y,w,h,score,yaw,pitch,roll,mouth_open,eye_open,disagreement,turn_yaw,"
          "turn_pitch,hidden," + ",".join(f"x{i},y{i}" for i in range(68)))
# file, split, seed, index, turn_yaw, turn_pitch of each face, as the labels made before the record have them
KNOWN = [("images/00000/00000000.png", "train", "8460147692890830636", "0", "2.7773", "0.0"),
         ("images/00000/00000001.png", "train", "3317731564112288844", "1", "1.9666", "0.0"),
         ("images/00000/00000002.png", "train", "9139555415570476218", "2", "8.4906", "0.0"),
         ("images/00000/00000003.png", "train", "2530781778362038830", "3", "-1.9571", "0.0")]


def test_export_through_the_record_writes_the_labels_it_did(made, tmp_path):
    import csv

    from synthface.dataset.config import MakeConfig
    from synthface.dataset.export import write_exports

    labels = (made / "labels.csv").read_text()
    assert labels.splitlines()[0] == HEADER
    rows = list(csv.DictReader(labels.splitlines()))
    assert [tuple(r[c] for c in ("file", "split", "seed", "index", "turn_yaw", "turn_pitch")) for r in rows] == KNOWN
    assert [r["hidden"] for r in rows] == ["1", "1", "0", "0"]
    assert (rows[0]["x"], rows[0]["y"], rows[0]["w"], rows[0]["h"], rows[0]["disagreement"]) == \
        ("12", "-16", "106", "105", "0.012035")
    # resumed after losing its labels: the record is compared, the export writes them again
    copy = tmp_path / "d"
    shutil.copytree(made, copy)
    (copy / "labels.csv").unlink()
    r = run_cli("make-dataset", "--out", copy, *MAKE, "--resume")
    assert r.returncode == 0, r.stderr
    assert (copy / "labels.csv").read_text() == labels
    # the exporter given the identity dict (as before the record), or the per-image
    # formats in a second process: the same files
    record = RunRecord.load(made)
    written = []
    for run, parallel in ((record.raw, False), (record, True)):
        cfg = MakeConfig(n=4, seed=7, image_size=96, formats=("csv", "pts"), annotate=record.annotate_config)
        write_exports(copy, cfg, run, parallel=parallel)
        assert (copy / "labels.csv").read_text() == labels
        written.append({p.name: p.read_bytes() for p in sorted((copy / "images").rglob("*.pts"))})
    assert len(written[0]) == 4 and written[1] == written[0]
