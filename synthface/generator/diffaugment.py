"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"): the same random, differentiable augmentation applied to every image the
discriminator sees, real and fake, in the D step and the G step. With about 10k
training faces the discriminator otherwise memorises them and stops teaching the
generator; on StyleGAN2 with 10k FFHQ images the paper halves FID (14.75 -> 7.86).

Ported from the authors' DiffAugment_pytorch.py (BSD-2-Clause). Images are (B, 3, H, W)
in [-1, 1]; every op is differentiable with respect to the images, so the generator's
gradient passes through. Policies: "color" (brightness, saturation, contrast),
"translation" (shift by up to 1/8 of the side, zero-filled), "cutout" (a square of half
the side zeroed). The paper warns that with a weak generator cutout can leak into the
samples; "color,translation" is the safe default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synthface.errors import SynthfaceError


def _brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)


def _saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean


def _contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, size=[b, 1, 1], device=x.device)
    tx = torch.randint(-sw, sw + 1, size=[b, 1, 1], device=x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy + ty + 1, 0, h + 1)
    gx = torch.clamp(gx + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return padded.permute(0, 2, 3, 1).contiguous()[gb, gy, gx].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), size=[b, 1, 1], device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), size=[b, 1, 1], device=x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gy = torch.clamp(gy + oy - ch // 2, min=0, max=h - 1)
    gx = torch.clamp(gx + ox - cw // 2, min=0, max=w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gy, gx] = 0
    return x * mask.unsqueeze(1)


POLICIES = {"color": (_brightness, _saturation, _contrast), "translation": (_translation,),
            "cutout": (_cutout,)}


def parse_policy(policy: str) -> tuple[str, ...]:
    """"color,translation" -> ("color", "translation"); "" -> (); unknown names are an error."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise SynthfaceError(f"train.diffaugment: unknown policy {', '.join(unknown)} "
                             f"(known: {', '.join(POLICIES)}; comma-separated, '' for none)")
    return names


def diff_augment(x: torch.Tensor, policy: str | tuple = ()) -> torch.Tensor:
    """Augment a batch with the named policies, differentiably (see the module doc)."""
    names = parse_policy(policy) if isinstance(policy, str) else policy
    for name in names:
        for fn in POLICIES[name]:
            x = fn(x)
    return x
