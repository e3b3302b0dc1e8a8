"""landmarks train-cnn: a PyTorch Lightning landmark model on the inputs the dlib trainer
reads, mixed by its rule, resumable and reproducible, exported as TorchScript that runs
without synthface and that `landmarks eval` scores like a dlib model."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import FACES, FACES_300W, one_line_error, run_cli

SMALL = ["--size", 48, "--width", 8, "--batch-size", 6, "--no-progress"]
EXACT = ["--rotate", 0, "--scale", 0, "--shift", 0, "--flip", 0]  # no random moves: it may learn its six faces


def _nme(model, data, *args) -> float:
    r = run_cli("landmarks", "eval", "--model", model, "--data", data, "--no-progress", *args)
    assert r.returncode == 0, r.stderr
    return float(r.stdout.split("NME mean ")[1].split("%")[0])


def test_it_learns_its_faces_and_runs_without_synthface(tmp_path):
    r = run_cli("landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "m.pt", "--epochs", 40, "--lr", 0.005,
                *SMALL, *EXACT)
    assert r.returncode == 0, r.stderr
    assert "trained a CNN on 6 faces" in r.stdout and "40 epochs on cpu" in r.stdout
    summary = json.loads((tmp_path / "m.json").read_text())
    assert summary["kind"] == "cnn" and summary["faces"] == 6 and summary["options"]["size"] == 48
    run_cli("landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "one.pt", "--epochs", 1, *SMALL, *EXACT)
    trained, untrained = _nme(tmp_path / "m.pt", FACES_300W), _nme(tmp_path / "one.pt", FACES_300W)
    assert trained < 0.75 * untrained, (trained, untrained)
    # TorchScript with its crop settings: torch alone runs it
    code = ("import json, torch; extra = {'synthface.json': ''}; "
            f"m = torch.jit.load({str(tmp_path / 'm.pt')!r}, _extra_files=extra); "
            "meta = json.loads(extra['synthface.json']); s = meta['size']; "
            "print(tuple(m(torch.zeros(2, 3, s, s)).shape), meta['margin'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["(2,", "68,", "2)", "1.25"]
    # trained on mirrored faces too (--flip), the exported model averages the crop's points with
    # its mirror's: a mirrored crop gives exactly the mirrored points (x -> size - 1 - x, each
    # point in its partner's place); trained without (--flip 0, m.pt), it does not
    from synthface.face.scheme68 import mirror_points

    run_cli("landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "f.pt", "--epochs", 1, *SMALL)
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    for name, equivariant in (("f.pt", True), ("m.pt", False)):
        m = torch.jit.load(str(tmp_path / name))
        plain, mirrored = m(x)[0].detach().numpy(), m(torch.flip(x, dims=[3]))[0].detach().numpy()
        assert (abs(mirror_points(plain, 48) - mirrored).max() < 1e-3) == equivariant, name


def _outputs(model):
    """The model's points for a fixed input: equal models give equal tensors."""
    m = torch.jit.load(str(model))
    return m(torch.linspace(0, 1, 3 * 48 * 48).reshape(1, 3, 48, 48)).detach()


def test_the_same_command_resumes_and_gives_the_same_model(tmp_path):
    syn = tmp_path / "syn"
    assert run_cli("make-dataset", "-n", 12, "--landmarks", "--replay-faces", FACES, "--workers", 0,
                   "--no-progress", "--format", "csv", "-o", syn).returncode == 0
    data = ["landmarks", "train-cnn", "--data", syn, "--data", FACES_300W]
    args = [*data, "--epochs", 2, *SMALL]
    r = run_cli(*args, "-o", tmp_path / "a.pt")
    assert r.returncode == 0, r.stderr
    a = json.loads((tmp_path / "a.json").read_text())
    # the rule: the real faces weighted to half of the training faces, the synthetic ones their train split
    assert a["splits"] == {str(syn): "train", str(FACES_300W): "all"} and a["weights"][1] > 1
    assert "real faces weighted" in r.stdout and (tmp_path / "a.checkpoints" / "last.ckpt").is_file()
    first = _outputs(tmp_path / "a.pt")
    again = run_cli(*args, "-o", tmp_path / "a.pt")  # finished: resumed from its last checkpoint, exported again
    assert again.returncode == 0, again.stderr
    assert torch.equal(_outputs(tmp_path / "a.pt"), first)
    run_cli(*args, "-o", tmp_path / "b.pt")  # another folder, the same seed: the same model
    assert torch.equal(_outputs(tmp_path / "b.pt"), first)
    other = run_cli(*data, "--epochs", 3, *SMALL, "-o", tmp_path / "a.pt")
    one_line_error(other, "a.checkpoints holds a run with other settings (epochs: 2 there, 3 now)")
    # a run made before --loss existed trained with L1: it resumes as --loss l1, not as another run
    saved = tmp_path / "a.checkpoints" / "options.json"
    older = json.loads(saved.read_text())
    assert older.pop("loss") == "l1"
    saved.write_text(json.dumps(older))
    assert run_cli(*args, "-o", tmp_path / "a.pt").returncode == 0
    assert torch.equal(_outputs(tmp_path / "a.pt"), first)
    one_line_error(run_cli(*args, "--loss", "wing", "-o", tmp_path / "a.pt"), "(loss: l1 there, wing now)")
    # and one made before --colour changed brightness and contrast alone: it resumes as --colour 0
    older = json.loads(saved.read_text())
    assert older.pop("colour") == 0
    saved.write_text(json.dumps(older))
    assert run_cli(*args, "-o", tmp_path / "a.pt").returncode == 0
    assert torch.equal(_outputs(tmp_path / "a.pt"), first)
    one_line_error(run_cli(*args, "--colour", 1, "-o", tmp_path / "a.pt"), "(colour: 0.0 there, 1.0 now)")
    assert run_cli(*args, "--colour", 1, "-o", tmp_path / "c.pt").returncode == 0  # other samples, another model
    assert not torch.equal(_outputs(tmp_path / "c.pt"), first)


def test_colour_changes_saturation_and_each_channel_and_greys_some_faces():
    import numpy as np

    from synthface.trainers.cnn import recoloured

    rng = np.random.default_rng(0)
    tinted = np.full((2, 2, 3), [250.0, 10.0, 10.0], np.float32)
    for strength, grey_share in ((1.0, 0.1), (0.5, 0.05)):
        out = np.stack([recoloured(tinted, rng, strength)[0, 0] for _ in range(4000)])
        # grey outright, then the channel gains: red over blue at most 1.15 / 0.85; at the
        # least saturation (0.3) it stays above 1.6, and above 1.4 blue falls below 0 (clipped later)
        grey = (out[:, 2] > 0) & (out[:, 0] < 1.5 * out[:, 2])
        assert abs(grey.mean() - grey_share) < 0.02, (strength, grey.mean())
        # each channel's gain within 1 +- 0.15 s: a grey input comes back with channels that far apart
        gains = np.stack([recoloured(np.full((1, 1, 3), 100.0, np.float32), rng, strength)[0, 0] / 100
                          for _ in range(2000)])
        assert gains.min() >= 1 - 0.15 * strength - 1e-6 and gains.max() <= 1 + 0.15 * strength + 1e-6
        assert gains.min() < 1 - 0.12 * strength and gains.max() > 1 + 0.12 * strength
        # saturation from 1 - 0.7 s to 1 + 0.5 s: red minus blue, 240 in the input, reaches further
        # than the gains alone could take it (0.84 .. 1.16 at s = 1)
        spread = (out[~grey, 0] - out[~grey, 2]) / 240
        assert spread.min() < 1 - 0.6 * strength and spread.max() > 1 + 0.4 * strength


def test_the_wing_loss_is_logarithmic_below_w_and_linear_above():
    from synthface.trainers.cnn import point_loss

    px = torch.tensor([0.0, 1.0, 10.0, 30.0]) / 64  # errors of 0, 1, 10 and 30 in crop units x 64
    zero = torch.zeros(4)
    each = [float(point_loss(px[k:k + 1], zero[k:k + 1], "wing")) for k in range(4)]
    # 10 ln(1 + d / 2) below w = 10 px; above, d - C with C = 10 - 10 ln 6, so the two meet at w
    assert each == pytest.approx([0.0, 4.0546511, 17.917595, 37.917595], rel=1e-5)
    assert float(point_loss(px, zero, "l1")) == pytest.approx(41 / 4 / 64)
    # a small error weighs more, against a large one, than under L1: 4.05 / 37.9 against 1 / 30
    assert each[1] / each[3] > 3 * (1 / 30)
    with pytest.raises(ValueError, match="unknown loss 'L1'"):
        point_loss(px, zero, "L1")


@pytest.mark.parametrize("args, message", [
    (["--size", 8], "--size must be from 16 to 512, got 8"),
    (["--epochs", 0], "--epochs must be from 1 to 10000, got 0"),
    (["--lr", "nan"], "--lr must be in (0, 1), got nan"),
    (["--device", "tpu"], "--device must be auto, cpu or cuda, got tpu"),
    (["--loss", "l2"], "--loss must be l1 or wing, got l2"),
    (["--loss", " l1"], "--loss must be l1 or wing, got ' l1'"),
    (["--colour", 1.5], "--colour must be in [0, 1], got 1.5"),
])
def test_bad_options_are_one_line_before_any_work(tmp_path, args, message):
    one_line_error(run_cli("landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "m.pt", *args,
                           in_process=True), message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_is_one_line_and_the_same_command_resumes(tmp_path):
    import signal

    args = [sys.executable, "-m", "synthface", "landmarks", "train-cnn", "--data", str(FACES_300W), "-o",
            str(tmp_path / "m.pt"), "--epochs", "10", "--size", "16", "--width", "4", "--batch-size", "2"]
    # SIGINT as a terminal gives it, even where this test runs as a background job (which ignores it)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # 10 epochs: some left after the second epoch's line for SIGINT to find it training, few
    # enough that the resumed run ends in seconds on a loaded machine (200 took over 600 s)
    seen = ""
    while "epoch 2 of 10" not in seen:  # poll its log for the second epoch's line
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and err.strip().endswith("synthface: interrupted")
    assert not (tmp_path / "m.pt").exists() and (tmp_path / "m.checkpoints" / "last.ckpt").is_file()
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "epoch 1 of 10" not in r.stderr and "trained a CNN on 6 faces" in r.stdout  # resumed, not restarted


def test_what_it_writes_and_resumes_is_only_its_own(tmp_path):
    dlib = run_cli("landmarks", "train", "--data", FACES_300W, "-o", tmp_path / "lt.dat", "--cascade-depth", 2,
                   "--num-trees-per-cascade-level", 10, "--no-progress")
    assert dlib.returncode == 0, dlib.stderr
    before = (tmp_path / "lt.json").read_bytes()
    tiny = ["--size", 32, "--width", 4, "--epochs", 1, "--batch-size", 4, "--no-progress"]
    # lt.json is the summary of lt.dat: not train-cnn's to replace for lt.pt
    one_line_error(run_cli("landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "lt.pt", *tiny),
                   "lt.json exists and was not written by")
    assert (tmp_path / "lt.json").read_bytes() == before and not (tmp_path / "lt.pt").exists()
    one_line_error(run_cli("landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "c.dat", *tiny),
                   "a CNN landmark model is TorchScript, named NAME.pt")
    one_line_error(run_cli("landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "u.pt", "--upsample", -3,
                           *tiny), "--upsample must be from 0 to 3")
    assert run_cli("landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "a.pt", "--rotate=-0.0",
                   *tiny).returncode == 0
    # another dataset under the same -o is not a resume of the first
    syn = tmp_path / "syn"
    run_cli("make-dataset", "-n", 6, "--landmarks", "--replay-faces", FACES, "--workers", 0, "--no-progress",
            "--format", "csv", "-o", syn)
    one_line_error(run_cli("landmarks", "train-cnn", "--data", syn, "-o", tmp_path / "a.pt", "--rotate=-0.0", *tiny),
                   "a.checkpoints holds a run with other settings (data: [", "splits: ['all'] there, ['train'] now")
    (tmp_path / "a.checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 cut")
    one_line_error(run_cli("landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "a.pt", "--rotate=-0.0",
                           *tiny), "last.ckpt is damaged")
    foreign = tmp_path / "f.checkpoints"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    one_line_error(run_cli("landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "f.pt", *tiny),
                   "holds files that train-cnn did not write")
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    one_line_error(run_cli("landmarks", "eval", "--model", tmp_path / "lt.json", "--data", FACES_300W))
    (tmp_path / "x.pt").write_bytes(b"not torchscript")
    one_line_error(run_cli("landmarks", "eval", "--model", tmp_path / "x.pt", "--data", FACES_300W),
                   "is not a synthface CNN landmark model")


def test_checkpoints_and_models_that_load_but_are_wrong_are_one_line(tmp_path):
    tiny = ["--size", 32, "--width", 4, "--epochs", 1, "--batch-size", 4, "--no-progress"]
    train = ["landmarks", "train-cnn", "--data", FACES_300W, "-o", tmp_path / "a.pt", *tiny]
    assert run_cli(*train).returncode == 0
    ckpts = tmp_path / "a.checkpoints"
    options, last = (ckpts / "options.json").read_text(), (ckpts / "last.ckpt").read_bytes()
    for text in ("[1, 2]", "null", "3", '"x"'):  # JSON, but not a run's settings
        (ckpts / "options.json").write_text(text)
        one_line_error(run_cli(*train), "options.json is damaged (not a run's settings)")
    (ckpts / "options.json").write_text(options)
    for value, why in (([1, 2], "not a Lightning checkpoint"), ({"epoch": "x"}, "not a Lightning checkpoint"),
                       ({**torch.load(ckpts / "last.ckpt", weights_only=False), "state_dict": {}},
                        "its weights are not this model's")):
        torch.save(value, ckpts / "last.ckpt")
        one_line_error(run_cli(*train), f"last.ckpt is damaged ({why})")
    (ckpts / "last.ckpt").write_bytes(last)
    assert run_cli(*train).returncode == 0  # whole again: resumed
    # a model that predicts NaN: one line, not a report of NaN errors nor a JSON crash
    extra = {"synthface.json": json.dumps({"size": 32, "margin": 1.25})}

    class Nan(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 68, 2), float("nan"))

    torch.jit.save(torch.jit.script(Nan()), str(tmp_path / "nan.pt"), _extra_files=extra)
    for out in ([], ["-o", tmp_path / "r.json"]):
        one_line_error(run_cli("landmarks", "eval", "--model", tmp_path / "nan.pt", "--data", FACES_300W, *out),
                       "predicted points that are not numbers (NaN or inf)")
    assert not (tmp_path / "r.json").exists()
    torch.jit.save(torch.jit.script(Nan()), str(tmp_path / "big.pt"),
                   _extra_files={"synthface.json": '{"size": 1e300, "margin": 1.25}'})
    one_line_error(run_cli("landmarks", "eval", "--model", tmp_path / "big.pt", "--data", FACES_300W),
                       "size 1e+300 / margin 1.25 out of range")


def test_init_starts_from_a_trained_model_and_refuses_one_of_another_shape(tmp_path):
    base = ["landmarks", "train-cnn", "--data", FACES_300W, "--batch-size", 6, "--no-progress", *EXACT]
    train = [*base, "--size", 48, "--width", 8]
    assert run_cli(*train, "--epochs", 40, "--lr", 0.005, "-o", tmp_path / "m.pt").returncode == 0
    assert run_cli(*train, "--epochs", 1, "-o", tmp_path / "one.pt").returncode == 0
    # one epoch at a small learning rate from m.pt keeps what m.pt learned; from random weights it has not learned
    r = run_cli(*train, "--epochs", 1, "--lr", 1e-6, "--init", tmp_path / "m.pt", "-o", tmp_path / "tuned.pt")
    assert r.returncode == 0, r.stderr
    trained, tuned = _nme(tmp_path / "m.pt", FACES_300W), _nme(tmp_path / "tuned.pt", FACES_300W)
    assert abs(tuned - trained) < 0.1 * trained and tuned < 0.75 * _nme(tmp_path / "one.pt", FACES_300W)
    summary = json.loads((tmp_path / "tuned.json").read_text())
    m_sha = json.loads((tmp_path / "m.json").read_text())["model_sha256"]
    assert summary["init"] == {"model": str(tmp_path / "m.pt"), "model_sha256": m_sha}
    # its checkpoints resume only the run that started from the same model
    one_line_error(run_cli(*train, "--epochs", 1, "--lr", 1e-6, "-o", tmp_path / "tuned.pt"),
                   f"(init: {m_sha[:12]}", "there, None now)")
    nan = torch.jit.load(str(tmp_path / "m.pt"), _extra_files=(extra := {"synthface.json": ""}))
    with torch.no_grad():
        nan.state_dict()["net.head.bias"][0] = float("nan")
    torch.jit.save(nan, str(tmp_path / "nan.pt"), _extra_files=extra)
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, message in (
            (["--init", tmp_path / "none.pt", "--size", 48], "--init " + str(tmp_path / "none.pt") + ": no such "
                                                                 "model file"),
            (["--init", tmp_path / "m.json", "--size", 48], "is not a synthface CNN landmark model"),
            (["--init", tmp_path / "m.pt", "--size", 32], "it was trained at --size 48 --margin 1.25; give those "
                                                          "(now --size 32 --margin 1.25)"),
            (["--init", tmp_path / "m.pt", "--size", 48, "--width", 16],
             "it was trained at --width 8; give that (now --width 16)"),
            (["--init", tmp_path / "nan.pt", "--size", 48, "--width", 8],
             "some of its weights are not numbers (NaN or inf)"),
            (["--init", tmp_path, "--size", 48], "is a folder; give the model file"),
            (["--init", "", "--size", 48], "--init is empty; give a model file")):
        one_line_error(run_cli(*base, "--epochs", 1, *args, "-o", tmp_path / "new" / "bad.pt"), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written (not even new/) for a refused --init
