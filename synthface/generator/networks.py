"""The generator and discriminator: plain nn.Modules, no training code.

`build_generator(arch)` rebuilds a generator from the plain dict of its architecture
arguments (what `weights.py` stores as JSON next to the safetensors file).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from synthface.errors import SynthfaceError

ARCH_KEYS = ("arch", "resolution", "z_dim", "g_width", "d_width", "d_dropout")


def _init_dcgan(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: conv weights N(0, 0.02), BN gamma N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _same4(cin: int, cout: int) -> nn.Sequential:
    """A 4x4 stride-1 conv padded like Keras/TF 'same' (1 before, 2 after)."""
    return nn.Sequential(nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(cin, cout, 4))


class DCGANGenerator(nn.Module):
    """z -> 4x4 -> ... -> resolution: transposed 4x4 convs, BatchNorm, ReLU, tanh."""

    def __init__(self, resolution: int = 64, z_dim: int = 100, g_width: int = 64, **_):
        super().__init__()
        self.z_dim = z_dim
        n_up = int(math.log2(resolution)) - 2  # 4x4 doubles n_up times
        width = g_width * 2 ** (n_up - 1)
        layers = [nn.ConvTranspose2d(z_dim, width, 4, 1, 0, bias=False),
                  nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image -> logit: strided 4x4 convs, BatchNorm (not on the first), LeakyReLU(0.2)."""

    def __init__(self, resolution: int = 64, d_width: int = 64, d_dropout: float = 0.0, **_):
        super().__init__()
        n_down = int(math.log2(resolution)) - 2
        width = d_width
        layers = [nn.Conv2d(3, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True)]
            width *= 2
        if d_dropout:
            layers.append(nn.Dropout(d_dropout))
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))  # 4x4 -> 1x1 logit
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


class UpconvGenerator(nn.Module):
    """The article's generator: dense to (res/8)^2 x C, three times [2x nearest
    upsample, 4x4 conv, BatchNorm, ReLU], then a 4x4 conv to RGB and tanh."""

    def __init__(self, resolution: int = 56, z_dim: int = 100, g_width: int = 128, **_):
        super().__init__()
        self.z_dim, self.width, self.base = z_dim, g_width, resolution // 8
        self.dense = nn.Sequential(nn.Linear(z_dim, g_width * self.base ** 2), nn.ReLU(True))
        blocks = []
        for _ in range(3):
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), _same4(g_width, g_width),
                       nn.BatchNorm2d(g_width), nn.ReLU(True)]
        blocks += [_same4(g_width, 3), nn.Tanh()]
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(z.view(z.shape[0], self.z_dim))
        return self.net(x.view(-1, self.width, self.base, self.base))


class UpconvDiscriminator(nn.Module):
    """The article's discriminator: four stride-2 4x4 convs with BatchNorm and
    LeakyReLU(0.2), then flatten, dropout and a dense layer to one logit."""

    def __init__(self, resolution: int = 56, d_width: int = 64, d_dropout: float = 0.25, **_):
        super().__init__()
        widths = [d_width, d_width * 2, d_width * 2, d_width * 2]
        layers, cin, side = [], 3, resolution
        for w in widths:
            layers += [nn.Conv2d(cin, w, 4, 2, 1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2, True)]
            cin, side = w, (side + 2 - 4) // 2 + 1
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(d_dropout), nn.Linear(cin * side * side, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()


_NETWORKS = {"dcgan": (DCGANGenerator, DCGANDiscriminator),
             "upconv": (UpconvGenerator, UpconvDiscriminator)}


def _classes(arch: dict):
    name = arch.get("arch")
    if name not in _NETWORKS:
        raise SynthfaceError(f"unknown generator architecture '{name}' (known: {', '.join(_NETWORKS)})")
    return _NETWORKS[name]


def build_generator(arch: dict) -> nn.Module:
    """A freshly initialised generator for an architecture dict (see ARCH_KEYS)."""
    net = _classes(arch)[0](**{k: v for k, v in arch.items() if k != "arch"})
    net.apply(_init_dcgan)
    return net


def build_discriminator(arch: dict, spectral_norm: bool = False) -> nn.Module:
    """The discriminator for an architecture dict. spectral_norm (Miyato et al. 2018)
    bounds each layer's Lipschitz constant, which keeps a discriminator trained on few
    images from growing sharp; as in SN-GAN it replaces D's BatchNorm."""
    net = _classes(arch)[1](**{k: v for k, v in arch.items() if k != "arch"})
    net.apply(_init_dcgan)
    if spectral_norm:
        _spectral_norm(net)
    return net


def _spectral_norm(module: nn.Module) -> None:
    from torch.nn.utils.parametrizations import spectral_norm

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.Identity())
        elif isinstance(child, (nn.Conv2d, nn.Linear)):
            setattr(module, name, spectral_norm(child))
        else:
            _spectral_norm(child)


def arch_of(model_cfg) -> dict:
    """The plain dict of architecture arguments from a ModelConfig."""
    return {k: getattr(model_cfg, k) for k in ARCH_KEYS}


class UpsampleConv(nn.Module):
    """Nearest 2x upsample followed by a 4x4 'same' conv (pad 1 before, 2 after),
    computed exactly at the low resolution.

    Output pixel Y = 2a + p of the upsampled conv reads input rows a + (p - 1 + k) // 2
    for kernel rows k = 0..3: for p = 0 the offsets -1, 0, 0, +1 and for p = 1 the
    offsets 0, 0, +1, +1. So each of the 4 output phases is a 3x3 conv of the low-res
    input whose taps are sums of the 4x4 taps; the 4 phases become 4x the output
    channels and a pixel shuffle puts them in place. Same sums, 9 taps instead of 16
    per output pixel, and no upsampled copy in memory.
    """

    # rows: input offset -1, 0, +1; columns: the 4x4 kernel's row index
    _PHASES = (torch.tensor([[1., 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]),
               torch.tensor([[0., 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]]))

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        w = conv.weight.detach()  # (O, I, 4, 4)
        out_ch, in_ch = w.shape[:2]
        phases = [torch.einsum("yk,oikl,xl->oiyx", self._PHASES[py], w, self._PHASES[px])
                  for py in (0, 1) for px in (0, 1)]
        weight = torch.stack(phases, 1).reshape(out_ch * 4, in_ch, 3, 3)  # pixel_shuffle order
        self.conv = nn.Conv2d(in_ch, out_ch * 4, 3, padding=1, bias=conv.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias.detach().repeat_interleave(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pixel_shuffle(self.conv(x), 2)


def fast_generator(generator: nn.Module, channels_last: bool = True) -> nn.Module:
    """An inference-only copy that computes the same images faster: for the upconv
    design, each [nearest upsample, 4x4 conv] pair becomes an UpsampleConv. BatchNorm
    stays as it is (eval mode uses its running statistics). channels_last lets oneDNN
    pick faster kernels (dcgan64 on one CPU thread: 2.3 -> 2.0 ms an image); the output
    moves by about 1e-6, which flips a rare uint8 pixel by one level."""
    import copy

    import torch

    fast = copy.deepcopy(generator).eval()
    if isinstance(fast, UpconvGenerator):
        layers, old, i = [], list(fast.net), 0
        while i < len(old):
            if isinstance(old[i], nn.Upsample) and i + 1 < len(old):
                layers.append(UpsampleConv(old[i + 1][1]))  # old[i + 1] = (ZeroPad2d, Conv2d)
                i += 2
            else:
                layers.append(old[i])
                i += 1
        fast.net = nn.Sequential(*layers)
    for p in fast.parameters():
        p.requires_grad_(False)
    return fast.to(memory_format=torch.channels_last) if channels_last else fast
