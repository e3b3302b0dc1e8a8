"""Usage mistakes, one table: each is one stderr line `synthface: error: ...` naming the
mistake, exit 1, and nothing written. Run in this process (conftest.run_cli with
in_process), so the table costs milliseconds a case; what needs a process of its own
(kills, signals, worker pools) lives beside its command's other tests.

{t} is the test's folder (also the working directory), {empty} an empty folder in it.
"""

from __future__ import annotations

import pytest

from conftest import FACES, FACES_300W, one_line_error, run_cli

MAKE = ["make-dataset", "--out", "{t}/a", "--no-progress"]
REPLAY = ["-n", "5", "--replay-faces", str(FACES)]
TRAIN = ["train", "--data", str(FACES), "--out", "{t}/r", "--config", "tiny"]
LANDMARKS = ["landmarks", "train", "--dataset", str(FACES_300W), "-o", "{t}/m.dat"]

CASES = [
    # make-dataset: counts and ranges
    (MAKE + ["-n", "0", "--replay-faces", str(FACES)], "-n must be at least 1, got 0"),
    (MAKE + REPLAY + ["--workers", "999"], "--workers must be from 0 to"),
    (MAKE + REPLAY + ["--workers", "-1"], "--workers must be from 0 to"),
    (MAKE + REPLAY + ["--image-size", "100000"], "--image-size must be from 16 to 2048"),
    (MAKE + REPLAY + ["--upsample", "10"], "--upsample must be from 0 to 3"),
    (MAKE + REPLAY + ["--upsample=-1"], "--upsample must be from 0 to 3"),
    (MAKE + REPLAY + ["--min-score", "nan"], "--min-score must be a number"),
    (MAKE + REPLAY + ["--max-tries", "0"], "--max-tries must be at least 1"),
    (MAKE + REPLAY + ["--pad", "nan"], "--pad must be in [0, 1]"),
    (MAKE + REPLAY + ["--seed=-1"], "--seed must be from 0"),
    (MAKE + REPLAY + ["--num-shards", "2"], "--num-shards 2 needs --shard-index"),
    (MAKE + REPLAY + ["--num-shards", "0"], "--num-shards must be at least 1, got 0"),
    (MAKE + REPLAY + ["--num-shards", "2", "--shard-index", "2"], "--shard-index must be in [0, 1], got 2"),
    # make-dataset: files and names
    (MAKE + ["-n", "5", "--replay-faces", "{empty}"], "--replay-faces {empty} holds no images"),
    (MAKE + ["-n", "5", "--replay-faces", "{empty}", "--scenes"], "--replay-faces {empty} holds no images"),
    (MAKE + ["-n", "5", "--replay-faces", ""], "--replay-faces '' is empty"),
    (MAKE + REPLAY + ["--landmarks", "--predictor", ""], "--predictor '' is empty"),
    (MAKE + REPLAY + ["--landmarks", "--predictor", "{t}/x.dat"], "dlib model file not found"),
    (MAKE + ["-n", "5", "--checkpoint", "{t}/none.safetensors"], "checkpoint not found"),
    (MAKE + REPLAY + ["--format", "csv,tiff"], "unknown --format tiff"),
    (MAKE + ["-n", "5", "--device", "tpu"], "--device must be auto, cpu or cuda"),
    # sample, align, preview, evaluate
    (["sample", "-n", "4", "-o", "{t}/g.png", "--scale", "1000"], "--scale must be from 1 to 16"),
    (["sample", "-n", "4", "-o", "{t}/g.png", "--seed=-1"], "--seed must be from 0"),
    (["sample", "-n", "4", "-o", "{t}/g.tiff"], "the image format is chosen by the extension"),
    (["align", str(FACES_300W), "{t}/al", "--size", "100000"], "--size must be from 16 to 4096"),
    (["preview", "{t}/ds", "-o", "{t}/p.png"], "has no labels.csv"),
    (["evaluate", "--real", str(FACES), "-n", "1"], "-n must be from 2"),
    (["sample", "-n", "2", "--checkpoint", "celeb64", "-o", "{t}/g.png"],
     "--checkpoint celeb64: no such file, nor a bundled generator (celeba64, default64)"),
    (["sample", "-n", "2", "--checkpoint", "{t}/celeba64", "-o", "{t}/g.png"], "checkpoint not found: {t}/celeba64"),
    # train
    (TRAIN + ["--precision", "bogus"], "train.precision (--precision) must be one of"),
    (TRAIN + ["--accelerator", "gpu"], "no CUDA GPU is available"),
    (TRAIN + ["--devices", "64"], "--devices 64"),
    # landmarks train
    (LANDMARKS + ["--cascade-depth", "0"], "--cascade-depth must be from 1"),
    (LANDMARKS + ["--nu", "5"], "--nu must be in (0, 1]"),
    (["landmarks", "eval", "--model", "{t}/none.dat", "--data", str(FACES_300W)], "model not found"),
    (["landmarks", "eval", "--model", "dlib68", "--data", "{t}/nowhere"], "not found"),
    (["landmarks", "train", "--dataset", "{empty}", "-o", "{t}/m.dat"], "no labels.csv or dlib.xml, and no images"),
    # one option given twice, or under two of its names
    (["make-dataset", "-n", "3", "-o", "a", "--out", "b"],
     "-o and --out given both: they are one option (-o/--output/--out); give it once"),
    (["landmarks", "train", "--data", "a", "-o", "m.dat", "--seed", "1", "--random-seed", "2"],
     "--seed and --random-seed given both: they are one option (--seed/--random-seed); give it once"),
    (["detector", "eval", "--model", "dlib", "--data", "a", "--data", "b"], "--data given twice: it takes one value"),
    (["detector", "train", "--data", "a", "-o", "m.svm", "--workers", "1", "--threads", "2"],
     "--workers and --threads given both"),
    # argparse's own mistakes: one line too, with a hint for negative ranges
    (["make-dataset", "-n", "3", "-o", "a", "--rotate-3d", "-30:30"], "--rotate-3d=-30:30"),
    (["make-dataset", "-n", "3", "-o", "a", "--yaw=-20:20", "--pitch", "-10:10"], "--pitch=-10:10"),
    (["sample", "-o", "s.png", "--mouth-open", "-1:2"], "--mouth-open=-1:2"),
    # no abbreviations: a prefix of --output would replace the -o given first
    (["preview", "{t}", "-o", "a.png", "--out", "b.png"], "unrecognized arguments: --out b.png"),
    (["make-dataset", "-n", "3", "-o", "a", "--outp", "b"], "unrecognized arguments: --outp b"),
    (["make-dataset", "-n", "3", "-o", "-y1"], "goes after '=': -o=-y1)"),
    # a short flag with its value attached is the same flag: -oFILE after -o is given twice
    (["make-dataset", "-n", "3", "-o", "a", "-ob"], "-o given twice: it takes one value"),
    (["make-dataset", "-n3", "-n", "4", "-o", "a"], "-n given twice: it takes one value"),
    (["make-dataset", "-n", "many", "-o", "a"], "invalid int value: 'many'"),
    (["make-dataset", "-n", "3", "-o", "a", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "give a command"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_a_usage_mistake_is_one_line_and_writes_nothing(tmp_path, argv, message):
    (tmp_path / "empty").mkdir()
    fill = {"t": tmp_path, "empty": tmp_path / "empty"}
    r = run_cli(*[a.format(**fill) for a in argv], in_process=True, cwd=tmp_path)
    one_line_error(r, message.format(**fill))
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]
    assert list((tmp_path / "empty").iterdir()) == []
