import pytest
import torch

from synthface.generator.config import load_config
from synthface.generator.networks import arch_of, build_discriminator, build_generator


@pytest.mark.parametrize("preset, side", [("seed56", 56), ("dcgan64", 64), ("tiny", 32)])
def test_shapes_of_every_preset(preset, side):
    arch = arch_of(load_config(preset).model)
    g, d = build_generator(arch).eval(), build_discriminator(arch).eval()
    z = torch.randn(3, arch["z_dim"])
    with torch.no_grad():
        img = g(z)
        logits = d(img)
    assert img.shape == (3, 3, side, side)
    assert img.min() >= -1 and img.max() <= 1  # tanh
    assert logits.shape == (3,)


def test_seed56_is_the_articles_layout():
    g = build_generator(arch_of(load_config("seed56").model))
    assert g.dense[0].out_features == 7 * 7 * 128
    ups = [m for m in g.net if isinstance(m, torch.nn.Upsample)]
    convs = [m for m in g.net.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in g.net if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(ups) == 3 and len(bns) == 3 and len(convs) == 4
    assert all(c.kernel_size == (4, 4) for c in convs) and convs[-1].out_channels == 3
    d = build_discriminator(arch_of(load_config("seed56").model))
    strided = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in strided] == [(2, 2)] * 4
    assert d.head[1].p == 0.25 and d.head[2].out_features == 1


def test_dcgan_init_is_normal_002():
    g = build_generator(arch_of(load_config("dcgan64").model))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3


@pytest.mark.parametrize("overrides", [[], ["model.resolution=32", "model.g_width=16", "model.z_dim=8"]])
def test_fast_generator_computes_the_same_images(overrides):
    from synthface.generator.networks import UpsampleConv, fast_generator

    arch = arch_of(load_config("seed56", overrides).model)
    torch.manual_seed(0)
    g = build_generator(arch)
    g.train()(torch.randn(16, arch["z_dim"]))  # BatchNorm statistics away from their init
    g.eval()
    fast = fast_generator(g)
    assert sum(isinstance(m, UpsampleConv) for m in fast.modules()) == 3
    assert not any(isinstance(m, torch.nn.Upsample) for m in fast.modules())
    z = torch.randn(8, arch["z_dim"])
    with torch.no_grad():
        ref, out = g(z), fast(z)
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() < 1e-5


def test_fast_generator_leaves_dcgan_as_it_is():
    from synthface.generator.networks import fast_generator

    arch = arch_of(load_config("tiny").model)
    g = build_generator(arch).eval()
    z = torch.randn(4, arch["z_dim"])
    with torch.no_grad():
        assert torch.equal(fast_generator(g, channels_last=False)(z), g(z))
        fast = fast_generator(g)  # channels_last: other kernels, the same images within float error
        assert next(p for p in fast.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last)
        assert (fast(z) - g(z)).abs().max().item() < 1e-5
