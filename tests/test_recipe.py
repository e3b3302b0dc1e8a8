"""Issue 13: the data-efficient recipe (DiffAugment, EMA, hinge, spectral norm) and
quality measured during training."""

import csv

import pytest
import torch

from synthface.generator.diffaugment import diff_augment
from synthface.generator.config import load_config
from synthface.errors import SynthfaceError
from synthface.generator.gan import DCGAN
from synthface.generator.networks import arch_of
from synthface.generator.train import train
from synthface.generator.weights import load_generator


def test_diffaugment_keeps_shapes_and_passes_gradients():
    torch.manual_seed(0)
    x = (torch.rand(6, 3, 32, 32) * 2 - 1).requires_grad_(True)
    y = diff_augment(x, "color,translation,cutout")
    assert y.shape == x.shape and not torch.equal(y, x)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(x, ""), x)
    shifted = diff_augment(x.detach(), "translation")
    assert (shifted == 0).any()  # zero-filled borders where the image moved
    with pytest.raises(SynthfaceError, match="unknown policy rotate"):
        diff_augment(x, "color,rotate")


def test_generator_gradient_flows_through_the_augmented_discriminator():
    cfg = load_config("tiny")
    module = DCGAN(arch_of(cfg.model), diffaugment="color,translation,cutout", loss="hinge", spectral_norm=True)
    z = torch.randn(4, cfg.model.z_dim)
    (-module._d_view(module.generator(z)).mean()).backward()
    grads = [p.grad for p in module.generator.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    # spectral norm replaced D's BatchNorm and wraps its convolutions
    names = [n for n, _ in module.discriminator.named_modules()]
    assert any("parametrizations" in n for n in names)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in module.discriminator.modules())


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    from conftest import FACES

    run = tmp_path_factory.mktemp("ema") / "run"
    cfg = load_config("tiny", ["data.cache_dir=", "train.max_epochs=2", "train.ema_halflife_kimg=0.01",
                               "train.diffaugment=color,translation", "train.loss=hinge", "model.spectral_norm=true",
                               "train.eval_every=1", "train.eval_samples=16"])
    weights = train(FACES, run, cfg, progress=False)
    return run, weights


def test_the_saved_generator_is_the_ema(ema_run):
    run, weights = ema_run
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    state = ckpt["state_dict"]
    saved, meta = load_generator(weights)
    ema = {k[len("generator_ema."):]: v for k, v in state.items() if k.startswith("generator_ema.")}
    raw = {k[len("generator."):]: v for k, v in state.items() if k.startswith("generator.")}
    assert ema and set(ema) == set(raw)
    params = [k for k, _ in saved.named_parameters()]
    assert any(not torch.equal(ema[k], raw[k]) for k in params)  # the EMA lags the trained weights
    assert all(torch.equal(saved.state_dict()[k], ema[k]) for k in params)
    assert float(state["images_seen"]) == 2 * 2 * 4  # 2 epochs of 2 batches of 4


def test_quality_is_logged_during_training(ema_run):
    run, _ = ema_run
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "yield", "ffd"] and [r[0] for r in rows[1:]] == ["1", "2"]
    assert all(0 <= float(r[1]) <= 1 and float(r[2]) >= 0 for r in rows[1:])
    assert (run / "metrics.png").is_file()


def test_old_files_still_load(tmp_path):
    """Generators and checkpoints written before the recipe existed."""
    from synthface.generator.sampling import DEFAULT_CHECKPOINT

    g, meta = load_generator(DEFAULT_CHECKPOINT)
    assert meta["arch"]["resolution"] == 64
    cfg = load_config("tiny")
    old = DCGAN(arch_of(cfg.model))  # the hyper-parameters of an older checkpoint: no EMA, BCE
    restored = DCGAN(**{"arch": arch_of(cfg.model), "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999,
                        "flip": True, "grid": 8, "seed": 0})
    restored.load_state_dict(old.state_dict())
    assert restored.generator_ema is None and restored.sampling_generator() is restored.generator


def test_recipe_options_are_checked():
    with pytest.raises(SynthfaceError, match="train.loss must be bce or hinge"):
        load_config("tiny", ["train.loss=wgan"])
    with pytest.raises(SynthfaceError, match="train.diffaugment: unknown policy"):
        load_config("tiny", ["train.diffaugment=color,zoom"])
    with pytest.raises(SynthfaceError, match="train.ema_halflife_kimg must be 0 or more"):
        load_config("tiny", ["train.ema_halflife_kimg=-1"])
    assert load_config("dcgan128").model.resolution == 128
