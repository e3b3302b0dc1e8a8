import csv
import json
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import run_cli

from synthface.generator.config import load_config
from synthface.errors import SynthfaceError
from synthface.core.imaging import read_rgb
from synthface.generator.train import train
from synthface.generator.weights import load_generator


def _rows(run):
    with open(run / "loss.csv", newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """The tiny preset fitted for 3 epochs of 2 batches on the real fixture faces."""
    from conftest import FACES

    run = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = load_config("tiny", ["data.cache_dir=", "train.max_epochs=3", "train.save_every=2"])
    weights = train(FACES, run, cfg, progress=False)
    return run, weights, cfg


def test_run_folder_holds_the_articles_outputs(trained_run):
    run, weights, cfg = trained_run
    rows = _rows(run)
    assert rows[0] == ["epoch", "d_loss", "g_loss"]
    assert [int(r[0]) for r in rows[1:]] == [1, 2, 3]
    assert all(float(r[1]) > 0 and float(r[2]) > 0 for r in rows[1:])
    grids = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert grids == ["epoch_0001.png", "epoch_0002.png", "epoch_0003.png"]
    # a 2x2 grid of 32 px faces with 2 px padding
    assert read_rgb(run / "samples" / "epoch_0003.png").shape == (2 + 2 * 34, 2 + 2 * 34, 3)
    assert sorted(p.name for p in (run / "weights").iterdir()) == ["epoch_0002.json", "epoch_0002.safetensors"]
    assert weights == run / "generator.safetensors" and (run / "generator.json").is_file()
    assert (run / "loss.png").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"] == cfg.to_dict()["model"] and saved["data_path"].endswith("faces")


def test_weights_rebuild_an_identical_generator(trained_run):
    run, weights, _ = trained_run
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    from synthface.generator.gan import DCGAN

    module = DCGAN(**ckpt["hyper_parameters"])
    module.load_state_dict(ckpt["state_dict"])
    module.generator.eval()
    loaded, meta = load_generator(weights)
    assert meta["arch"]["arch"] == "dcgan" and meta["epoch"] == 3
    z = torch.randn(5, meta["arch"]["z_dim"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(z), module.generator(z))
    # and the sample grid was drawn by those weights from the fixed noise
    from synthface.core.imaging import make_grid, to_uint8

    with torch.no_grad():
        grid = make_grid(to_uint8(loaded(module.fixed_z)), ncol=2)
    assert (abs(grid.astype(int) - read_rgb(run / "samples" / "epoch_0003.png").astype(int))).max() <= 1


def test_same_command_resumes_from_the_last_epoch(tmp_path, faces_dir, tiny_cfg):
    run = tmp_path / "run"
    train(faces_dir, run, tiny_cfg, progress=False)  # 2 epochs
    first_rows = _rows(run)
    step_before = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    longer = load_config("tiny", ["data.cache_dir=", "train.max_epochs=4"])
    train(faces_dir, run, longer, resume=True, progress=False)
    rows = _rows(run)
    assert rows[:3] == first_rows  # epochs 1-2 kept as they were
    assert [int(r[0]) for r in rows[1:]] == [1, 2, 3, 4]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    # saved at the end of epoch index 3 (0-based): 2 more epochs were trained, not 4
    assert ckpt["epoch"] == 3 and ckpt["global_step"] == step_before * 2
    assert json.loads((run / "generator.json").read_text())["epoch"] == 4


@pytest.mark.slow
def test_kill_9_then_the_same_command_resumes(tmp_path, faces_dir):
    """A run killed mid-training continues from its last whole epoch, not from zero."""
    import os
    import signal
    import time

    run = tmp_path / "run"
    args = [sys.executable, "-m", "synthface", "train", "--data", str(faces_dir), "--out", str(run),
            "--config", "tiny", "--max-epochs", "6", "--no-progress", "data.cache_dir=",
            "train.batches_per_epoch=40"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not (run / "loss.csv").is_file() or len(_rows(run)) < 3):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] + 1  # epochs completed
    assert 1 <= done < 6  # killed after a whole epoch (row 2 may precede its checkpoint), before the end
    kept = _rows(run)[1:done + 1]
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    rows = _rows(run)
    assert [int(r[0]) for r in rows[1:]] == [1, 2, 3, 4, 5, 6]
    assert rows[1:done + 1] == kept
    assert "Restored all states from the checkpoint" in again.stderr or "resuming" in again.stderr


def test_resume_drops_loss_rows_written_after_the_checkpoint(tmp_path, faces_dir, tiny_cfg):
    run = tmp_path / "run"
    train(faces_dir, run, tiny_cfg, progress=False)
    with open(run / "loss.csv", "a") as f:  # as if killed after logging epoch 3
        f.write("3,9.9,9.9\n")
    train(faces_dir, run, load_config("tiny", ["data.cache_dir=", "train.max_epochs=3"]), progress=False)
    rows = _rows(run)
    assert [int(r[0]) for r in rows[1:]] == [1, 2, 3] and rows[3][1] != "9.9"


def test_run_folder_errors(tmp_path, faces_dir, tiny_cfg):
    with pytest.raises(SynthfaceError, match="nothing to resume"):
        train(faces_dir, tmp_path / "new", tiny_cfg, resume=True, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(SynthfaceError, match="not a synthface run folder"):
        train(faces_dir, foreign, tiny_cfg, progress=False)
    assert (foreign / "thesis.tex").read_text() == "precious"
    run = tmp_path / "run"
    train(faces_dir, run, tiny_cfg, progress=False)
    other = load_config("tiny", ["data.cache_dir=", "model.z_dim=8"])
    with pytest.raises(SynthfaceError, match=r"another config \(model.z_dim: 16 -> 8\)"):
        train(faces_dir, run, other, progress=False)


def test_cli_help_has_examples():
    out = run_cli("train", "--help")
    assert out.returncode == 0 and "synthface train --data" in out.stdout and "--resume" in out.stdout
    top = run_cli("--help")
    assert top.returncode == 0 and "train" in top.stdout


@pytest.mark.parametrize("args, message", [
    (["--data", "/no/such/folder", "--out", "{tmp}/r"], "data path not found: /no/such/folder"),
    (["--data", "{empty}", "--out", "{tmp}/r"], "no image files"),
    (["--data", "{faces}", "--out", "{tmp}/r", "model.nope=1"], "unknown config key 'model.nope'"),
    (["--data", "{faces}", "--out", "{tmp}/r", "--config", "nope"], "no config preset 'nope'"),
])
def test_cli_errors_are_one_line_without_traceback(tmp_path, faces_dir, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.format(tmp=tmp_path, faces=faces_dir, empty=tmp_path / "empty") for a in args]
    out = run_cli("train", *args)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthface: error: ") and message in lines[0]


def test_cli_trains_the_tiny_preset(tmp_path, faces_dir):
    out = run_cli("train", "--data", str(faces_dir), "--out", str(tmp_path / "r"), "--config", "tiny",
               "--max-epochs", "1", "--no-progress", "data.cache_dir=")
    assert out.returncode == 0, out.stderr
    assert f"generator weights: {tmp_path / 'r' / 'generator.safetensors'}" in out.stdout
    assert len(_rows(tmp_path / "r")) == 2


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(tmp_path, faces_dir):
    """Lightning DDP over gloo: two processes train, rank zero alone writes the outputs."""
    out = run_cli("train", "--data", str(faces_dir), "--out", str(tmp_path / "r"), "--config", "tiny",
               "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--max-epochs", "2",
               "--no-progress", "data.cache_dir=", "train.batches_per_epoch=4")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in out.stderr
    assert out.stdout.count("generator weights:") == 1
    assert [r[0] for r in _rows(tmp_path / "r")] == ["epoch", "1", "2"]
    ckpt = torch.load(tmp_path / "r" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2 * 2 * 2  # 2 epochs x 2 batches a process (4 split over 2) x 2 optimizers
