"""One flag convention across commands: -o/--output for what a command writes (--out
kept), --data for what it reads (--dataset, --real kept), --workers for parallelism
(--threads, --num-threads kept), --seed (--random-seed kept). Each alias lands in the
same option as the old name, so old command lines keep working."""

import pytest

from conftest import FACES, run_cli

ALIASES = [
    (["train", "--data", "d", "-o", "r"], "out", "r"),
    (["train", "--data", "d", "--out", "r"], "out", "r"),
    (["make-dataset", "-n", "1", "--output", "x"], "out", "x"),
    (["detector", "mine", "--model", "m.svm", "-o", "neg"], "out", "neg"),
    (["detector", "train", "--data", "a", "--data", "b", "-o", "m.svm"], "dataset", ["a", "b"]),
    (["detector", "train", "--dataset", "a", "-o", "m.svm", "--workers", "3"], "num_threads", 3),
    (["detector", "train", "--dataset", "a", "-o", "m.svm", "--threads", "3"], "num_threads", 3),
    (["detector", "train", "--dataset", "a", "-o", "m.svm", "--num-threads", "3"], "num_threads", 3),
    (["detector", "train", "--dataset", "a", "-o", "m.svm", "--no-flip", "--C", "2"], "flip", False),
    (["landmarks", "train", "--data", "a", "-o", "m.dat", "--workers", "2"], "num_threads", 2),
    (["landmarks", "train", "--dataset", "a", "-o", "m.dat", "--num-threads", "2"], "num_threads", 2),
    (["landmarks", "train", "--data", "a", "-o", "m.dat", "--seed", "7"], "random_seed", "7"),
    (["landmarks", "train", "--data", "a", "-o", "m.dat", "--random-seed", "7"], "random_seed", "7"),
    (["evaluate", "--data", "faces"], "real", "faces"),
    (["evaluate", "--real", "faces"], "real", "faces"),
]


@pytest.mark.parametrize("argv, dest, value", ALIASES, ids=[" ".join(a[:3]) for a, _, _ in ALIASES])
def test_each_alias_sets_the_same_option(argv, dest, value):
    from synthface.cli.main import build_parser

    args, rest = build_parser().parse_known_args(argv)
    assert rest == [] and getattr(args, dest) == value


def test_make_dataset_writes_to_dash_o(tmp_path):
    out = tmp_path / "d"
    r = run_cli("make-dataset", "-n", "3", "-o", out, "--replay-faces", FACES, "--format", "csv", "--no-progress",
                "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert len((out / "labels.csv").read_text().splitlines()) == 4


def test_a_repeatable_option_may_repeat():
    from synthface.cli.main import build_parser

    args, _ = build_parser().parse_known_args(["detector", "train", "--data", "a", "--dataset", "b", "-o", "m"])
    assert args.dataset == ["a", "b"]


def test_positional_inputs_and_outputs_take_the_shared_flags(tmp_path):
    """align SRC DST, preview DATASET and merge PARTS also take --data and -o; one of
    the two forms, given once."""
    from conftest import one_line_error

    aligned = tmp_path / "a"
    r = run_cli("align", "--data", FACES, "-o", aligned, "--size", "32", "--no-progress", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert len(list(aligned.rglob("*.png"))) == 16
    assert "give SRC or --data, not both" in one_line_error(run_cli("align", FACES, "--data", FACES, "-o",
                                                                      tmp_path / "b"))
    assert "give DST (or -o)" in one_line_error(run_cli("align", "--data", FACES))
    assert "give PARTS (or --data)" in one_line_error(run_cli("merge", "-o", tmp_path / "m"))
    assert not (tmp_path / "b").exists() and not (tmp_path / "m").exists()


def test_trainer_flags_come_from_their_option_dataclasses():
    """detector train's and landmarks train's flags are the fields of DetectorOptions and
    TrainOptions, with the dataclasses' own defaults (one place for each default)."""
    from dataclasses import fields

    from synthface.cli.common import options_from
    from synthface.cli.main import build_parser
    from synthface.trainers.detector import DetectorOptions
    from synthface.trainers.landmarks import TrainOptions

    args, _ = build_parser().parse_known_args(["detector", "train", "--data", "a", "-o", "m.svm"])
    assert options_from(args, DetectorOptions) == DetectorOptions()
    args, _ = build_parser().parse_known_args(["detector", "train", "--data", "a", "-o", "m.svm", "--window", "64",
                                               "--no-flip", "--max-runtime", "9"])
    assert options_from(args, DetectorOptions) == DetectorOptions(window=64, flip=False, max_runtime=9.0)
    args, _ = build_parser().parse_known_args(["landmarks", "train", "--data", "a", "-o", "m.dat"])
    assert options_from(args, TrainOptions) == TrainOptions()
    assert {f.name for f in fields(TrainOptions)} <= set(vars(args))


def test_make_dataset_and_train_flags_default_to_their_configs():
    """make-dataset's flags default to MakeConfig's and AnnotateConfig's fields, its scene
    flags (not given) to SceneConfig's, detector mine's to SceneConfig's; train's shortcut
    flags set their config key and leave the preset's value when not given."""
    from synthface.cli.main import build_parser
    from synthface.dataset.config import MakeConfig
    from synthface.dataset.scenes import SceneConfig, scene_config_from_flags
    from synthface.face.annotate import AnnotateConfig

    args, _ = build_parser().parse_known_args(["make-dataset", "-n", "5", "-o", "x"])
    made, annotate = MakeConfig(n=5), AnnotateConfig()
    for name in ("seed", "pad", "batch_size", "box", "val_fraction", "num_shards"):
        assert getattr(args, name) == getattr(made, name), name
    for name in ("upsample", "min_score", "detector", "labels"):
        assert getattr(args, name) == getattr(annotate, name), name
    assert scene_config_from_flags() == SceneConfig()
    assert scene_config_from_flags(image_size=64).face_size == (32, 32)  # the default sizes fit a small scene
    args, _ = build_parser().parse_known_args(["detector", "mine", "--model", "m.svm", "-o", "neg"])
    assert (args.image_size, args.photometric) == (SceneConfig.image_size, SceneConfig.photometric)
    args, _ = build_parser().parse_known_args(["train", "--data", "d", "-o", "r", "--max-epochs", "3",
                                               "--devices", "0,1"])
    assert getattr(args, "train.max_epochs") == 3 and getattr(args, "train.devices") == "0,1"
    assert getattr(args, "data.batch_size") is None  # the preset's


def test_the_output_check_reads_the_generator_the_run_uses():
    """make-dataset's inputs (never overwritten) name the generator that run opens: celeba64
    for faces, default64 for --scenes, the one given when given."""
    from pathlib import Path

    from synthface.cli import plans
    from synthface.cli.main import build_parser

    def generator_of(*argv):
        args, _ = build_parser().parse_known_args(["make-dataset", "-n", "5", "-o", "x", *argv])
        names = {Path(p).name for p in plans.make_dataset(args).inputs if p}
        return {n for n in names if n.endswith(".safetensors") and ".directions" not in n}

    assert generator_of() == {"celeba64.safetensors"}
    assert generator_of("--scenes") == {"default64.safetensors"}
    assert generator_of("--scenes", "--checkpoint", "celeba64") == {"celeba64.safetensors"}
