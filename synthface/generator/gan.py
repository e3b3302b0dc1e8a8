"""The DCGAN LightningModule: manual optimization, BCE-with-logits, a fixed noise batch.

Follows Lightning's GAN example for 2.x: `automatic_optimization = False`, one
discriminator step then one generator step per batch, each between
toggle_optimizer / untoggle_optimizer.

The data-efficient recipe (issue 13), each a switch that is off in the paper presets:
- DiffAugment (augment.py) on every image D sees, real and fake, in both steps;
- the hinge loss (SN-GAN, BigGAN) instead of the non-saturating BCE;
- spectral norm in D (networks.py);
- a generator EMA (StyleGAN): `generator_ema` follows the trained weights with a
  half-life of `ema_halflife_kimg` thousand images; it is what is sampled and saved.
"""

from __future__ import annotations

import copy

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from synthface.generator.diffaugment import diff_augment, parse_policy
from synthface.generator.networks import build_discriminator, build_generator


def to_unit_range(batch: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of the generator's tanh."""
    return batch.float().mul_(2.0 / 255.0).sub_(1.0)


class DCGAN(pl.LightningModule):
    def __init__(self, arch: dict, *, lr_g: float = 2e-4, lr_d: float = 2e-4, beta1: float = 0.5,
                 beta2: float = 0.999, flip: bool = True, grid: int = 8, seed: int = 0,
                 loss: str = "bce", diffaugment: str = "", ema_halflife_kimg: float = 0.0,
                 ema_rampup: float = 0.05, spectral_norm: bool = False, channels_last: bool = False):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.policy = parse_policy(diffaugment)
        self.generator = build_generator(arch)
        self.discriminator = build_discriminator(arch, spectral_norm=spectral_norm)
        self.generator_ema = None
        if ema_halflife_kimg > 0:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
            # images shown so far: the EMA's ramp-up reads it; saved in checkpoints
            self.register_buffer("images_seen", torch.zeros((), dtype=torch.float64))
        # The same noise every epoch, so sample grids can be compared image to image;
        # a buffer, so it is saved in (and restored from) every checkpoint.
        noise = torch.randn(grid * grid, arch["z_dim"], generator=torch.Generator().manual_seed(seed))
        self.register_buffer("fixed_z", noise)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def configure_optimizers(self):
        hp = self.hparams
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=hp.lr_g, betas=(hp.beta1, hp.beta2))
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr_d, betas=(hp.beta1, hp.beta2))
        return opt_g, opt_d

    def on_fit_start(self):
        if self.hparams.channels_last:  # faster convolution kernels on GPUs (and oneDNN)
            self.to(memory_format=torch.channels_last)

    def _d_view(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees of a batch: the DiffAugment'ed images, then D's logits."""
        return self.discriminator(diff_augment(x, self.policy) if self.policy else x)

    def training_step(self, batch: torch.Tensor, batch_idx: int):
        real = to_unit_range(batch)
        if self.hparams.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        if self.hparams.flip:
            flip = torch.rand(real.shape[0], 1, 1, 1, device=real.device) < 0.5
            real = torch.where(flip, real.flip(3), real)
        opt_g, opt_d = self.optimizers()
        z = torch.randn(real.shape[0], self.hparams.arch["z_dim"], device=self.device)
        fake = self.generator(z)
        hinge = self.hparams.loss == "hinge"

        # Discriminator: real -> 1, fake -> 0 (the fake is detached: D's step only).
        self.toggle_optimizer(opt_d)
        logits_real = self._d_view(real)
        logits_fake = self._d_view(fake.detach())
        if hinge:
            d_loss = F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean()
        else:
            d_loss = (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
                      + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        # Generator: make D call the fake real (the non-saturating loss; hinge: -D(G(z))).
        self.toggle_optimizer(opt_g)
        logits = self._d_view(fake)
        g_loss = -logits.mean() if hinge else F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        if self.generator_ema is not None:
            self._update_ema(real.shape[0] * self.trainer.world_size)

        self.log_dict({"d_loss": d_loss.detach(), "g_loss": g_loss.detach()},
                      prog_bar=True, on_step=True, on_epoch=True, batch_size=real.shape[0])

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        """StyleGAN2-ADA's EMA: beta = 0.5 ** (batch / half-life in images), the half-life
        ramped up to `ema_rampup` x the images shown so far, so the early, quickly
        changing weights are not averaged in for long. Parameters only: the EMA's
        BatchNorm statistics are measured on the EMA itself (standing_stats)."""
        self.images_seen += batch
        halflife = self.hparams.ema_halflife_kimg * 1000.0
        if self.hparams.ema_rampup:
            halflife = min(halflife, float(self.images_seen) * self.hparams.ema_rampup)
        beta = 0.5 ** (batch / max(halflife, 1e-8))
        for p_ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))

    def sampling_generator(self) -> torch.nn.Module:
        """What is sampled and saved: the EMA when there is one (with its BatchNorm
        statistics measured afresh), else the trained generator."""
        if self.generator_ema is None:
            return self.generator
        standing_stats(self.generator_ema, self.hparams.arch["z_dim"], self.fixed_z.device, self.hparams.seed)
        return self.generator_ema

    @torch.no_grad()
    def sample_fixed(self) -> torch.Tensor:
        """The fixed noise batch through the sampling generator in eval mode, in [-1, 1]."""
        generator = self.sampling_generator()
        was_training = generator.training
        generator.eval()
        out = generator(self.fixed_z).float()
        generator.train(was_training)
        return out


@torch.no_grad()
def standing_stats(generator: torch.nn.Module, z_dim: int, device, seed: int = 0,
                   batches: int = 8, batch_size: int = 256) -> None:
    """Set every BatchNorm's running statistics to their exact mean over a fixed set of
    noise batches (BigGAN's "standing statistics"). The EMA's weights are an average of
    past generators, so the running statistics of any one of them would not fit it."""
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    was_training = generator.training
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    generator.train()
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(batches):
        generator(torch.randn(batch_size, z_dim, generator=g).to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    generator.train(was_training)
