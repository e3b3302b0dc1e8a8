"""The generators that ship in the package (synthface/models/): celeba64 the default, default64
the default of scenes."""

import json

import numpy as np
import torch

from conftest import run_cli

from synthface.core.imaging import read_rgb
from synthface.generator.sampling import DEFAULT_CHECKPOINT, candidates, open_sampler
from synthface.generator.weights import load_generator


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
    res = run_cli("sample", "-n", "6", "-o", str(grid))
    assert res.returncode == 0, res.stderr
    faces = np.stack([img for _, _, img in candidates(sampler, 0, 0, 6)])
    expected = read_rgb(grid)
    assert expected.shape == (2 + 2 * 66, 2 + 3 * 66, 3)
    assert np.array_equal(expected[2:66, 2:66], faces[0])  # face 0 is candidate 0 of seed 0
    out = tmp_path / "d"
    res = run_cli("make-dataset", "-n", "5", "--landmarks", "--out", out, "--workers", 1, "--no-progress",
                  "--format", "csv")
    assert res.returncode == 0, res.stderr
    card = json.loads((out / "dataset.json").read_text())
    # named, not by a local path: the card is the same on any machine
    gen = card["generator"]
    assert gen["name"] == "celeba64" and gen["bundled"] and "checkpoint" not in gen
    assert gen["sha256"] == open_sampler().identity["sha256"] and str(DEFAULT_CHECKPOINT) not in (out / "README.md").read_text()
    assert card["counts"]["faces"] == 5
    assert card["licence"].startswith("The images are synthetic, made by the generator named here")
    assert "UTKFace, CelebA for the bundled ones" in card["licence_terms"]
    # the dataset card and the model card name the generator's training data
    assert "trained on CelebA: 45,328 faces" in (out / "README.md").read_text()
    assert "utkface-crop" in (DEFAULT_CHECKPOINT.parent / "MODEL_CARD.md").read_text()
    # scenes come from default64 unless --checkpoint says otherwise
    scenes = tmp_path / "s"
    res = run_cli("make-dataset", "--scenes", "-n", "4", "--out", scenes, "--workers", 1, "--no-progress",
                  "--format", "csv")
    assert res.returncode == 0, res.stderr
    assert json.loads((scenes / "dataset.json").read_text())["generator"]["name"] == "default64"


def test_bundled_generators_by_name(tmp_path):
    from synthface.generator.sampling import MODELS, bundled_generators, resolve_checkpoint
    from synthface.generator.steering import load_directions
    from synthface.generator.weights import file_sha256

    assert bundled_generators() == ["celeba64", "default64"]
    assert resolve_checkpoint(None) == DEFAULT_CHECKPOINT == resolve_checkpoint("celeba64")
    assert resolve_checkpoint("default64") == MODELS / "default64.safetensors"
    celeba = resolve_checkpoint("celeba64")
    assert celeba == MODELS / "celeba64.safetensors"
    g, meta = load_generator(celeba)
    assert meta["trained_on"].startswith("CelebA: 45,328 faces") and meta["stored_as"] == "float16"
    # its directions ship with it and name its own weights
    vectors, summary = load_directions(celeba)
    assert vectors.shape == (5, 100) and summary["generator_sha256"] == file_sha256(celeba)
    # the name works wherever --checkpoint does: face 0 of the grid is candidate 0 of seed 0
    grid = tmp_path / "grid.png"
    res = run_cli("sample", "-n", "2", "--checkpoint", "celeba64", "-o", grid)
    assert res.returncode == 0, res.stderr
    face = next(iter(candidates(open_sampler("celeba64"), 0, 0, 1)))[2]
    assert np.array_equal(read_rgb(grid)[2:66, 2:66], face)
    other = next(iter(candidates(open_sampler("default64"), 0, 0, 1)))[2]
    assert not np.array_equal(face, other)




def test_a_dataset_of_the_former_default_resumes_by_naming_it(tmp_path):
    from conftest import one_line_error

    out = tmp_path / "d"
    make = ["make-dataset", "--landmarks", "-o", out, "--workers", 0, "--no-progress", "--format", "csv"]
    assert run_cli(*make, "-n", 3, "--checkpoint", "default64").returncode == 0
    one_line_error(run_cli(*make, "-n", 4, "--resume"),
                   "generator differ: it was made by default64, add --checkpoint default64")
    r = run_cli(*make, "-n", 4, "--resume", "--checkpoint", "default64")
    assert r.returncode == 0, r.stderr
    assert len((out / "labels.csv").read_text().splitlines()) == 5
