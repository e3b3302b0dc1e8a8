"""The generator that ships in the package (synthface/models/default64.*)."""

import json
import subprocess
import sys

import numpy as np
import torch

from synthface.imaging import read_rgb
from synthface.sampling import DEFAULT_CHECKPOINT, candidates, open_sampler
from synthface.weights import load_generator


def test_bundled_weights_load_and_make_64px_faces():
    assert DEFAULT_CHECKPOINT.is_file() and DEFAULT_CHECKPOINT.with_suffix(".json").is_file()
    assert (DEFAULT_CHECKPOINT.parent / "MODEL_CARD.md").is_file()
    g, meta = load_generator(DEFAULT_CHECKPOINT)
    assert meta["arch"] == {"arch": "dcgan", "resolution": 64, "z_dim": 100, "g_width": 64,
                            "d_width": 64, "d_dropout": 0.0}
    assert meta["stored_as"] == "float16" and meta["epoch"] >= 5
    with torch.no_grad():
        out = g(torch.randn(4, 100))
    assert out.shape == (4, 3, 64, 64) and out.dtype == torch.float32
    assert out.std() > 0.1  # not a constant image


def test_commands_use_the_bundled_generator_without_checkpoint(tmp_path):
    sampler = open_sampler()
    assert sampler.identity["checkpoint"] == str(DEFAULT_CHECKPOINT)
    grid = tmp_path / "grid.png"
    res = subprocess.run([sys.executable, "-m", "synthface", "sample", "-n", "6", "-o", str(grid)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    faces = np.stack([img for _, _, img in candidates(sampler, 0, 0, 6)])
    expected = read_rgb(grid)
    assert expected.shape == (2 + 2 * 66, 2 + 3 * 66, 3)
    assert np.array_equal(expected[2:66, 2:66], faces[0])  # face 0 is candidate 0 of seed 0
    out = tmp_path / "d"
    res = subprocess.run([sys.executable, "-m", "synthface", "make-dataset", "-n", "5", "--landmarks",
                          "--out", str(out), "--workers", "1", "--no-progress", "--format", "csv"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    card = json.loads((out / "dataset.json").read_text())
    assert card["generator"]["checkpoint"] == str(DEFAULT_CHECKPOINT)
    assert card["counts"]["faces"] == 5
    # the dataset card and the model card name the generator's training data
    assert "trained on utkface-crop: UTKFace crop_part1" in (out / "README.md").read_text()
    assert "utkface-crop" in (DEFAULT_CHECKPOINT.parent / "MODEL_CARD.md").read_text()
