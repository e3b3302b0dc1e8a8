"""The DCGAN LightningModule: manual optimization, BCE-with-logits, a fixed noise batch.

Follows Lightning's GAN example for 2.x: `automatic_optimization = False`, one
discriminator step then one generator step per batch, each between
toggle_optimizer / untoggle_optimizer.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from synthface.networks import build_discriminator, build_generator


def to_unit_range(batch: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of the generator's tanh."""
    return batch.float().mul_(2.0 / 255.0).sub_(1.0)


class DCGAN(pl.LightningModule):
    def __init__(self, arch: dict, lr_g: float = 2e-4, lr_d: float = 2e-4, beta1: float = 0.5,
                 beta2: float = 0.999, flip: bool = True, grid: int = 8, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = build_generator(arch)
        self.discriminator = build_discriminator(arch)
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

    def training_step(self, batch: torch.Tensor, batch_idx: int):
        real = to_unit_range(batch)
        if self.hparams.flip:
            flip = torch.rand(real.shape[0], 1, 1, 1, device=real.device) < 0.5
            real = torch.where(flip, real.flip(3), real)
        opt_g, opt_d = self.optimizers()
        z = torch.randn(real.shape[0], self.hparams.arch["z_dim"], device=self.device)
        fake = self.generator(z)

        # Discriminator: real -> 1, fake -> 0 (the fake is detached: D's step only).
        self.toggle_optimizer(opt_d)
        logits_real = self.discriminator(real)
        logits_fake = self.discriminator(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
                  + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        # Generator: make D call the fake real (the non-saturating loss).
        self.toggle_optimizer(opt_g)
        logits = self.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        self.log_dict({"d_loss": d_loss.detach(), "g_loss": g_loss.detach()},
                      prog_bar=True, on_step=True, on_epoch=True, batch_size=real.shape[0])

    @torch.no_grad()
    def sample_fixed(self) -> torch.Tensor:
        """The fixed noise batch through the generator in eval mode, in [-1, 1]."""
        was_training = self.generator.training
        self.generator.eval()
        out = self.generator(self.fixed_z).float()
        self.generator.train(was_training)
        return out
