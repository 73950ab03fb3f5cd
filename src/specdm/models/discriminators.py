"""Discriminators of HyperLDM's stage 1 (``hyperldm.discriminators``): a spatial and a spectral critic.

- :class:`SpatialDiscriminator`: a PatchGAN-style 2-D convolution stack on the normalized window
  ``(N, C, P, P)`` (stride-2 4x4 convolutions, LeakyReLU), one logit per patch of the output grid;
- :class:`SpectralDiscriminator`: a 1-D convolution stack along the bands of single pixel spectra
  ``(S, C)``, one logit per position along the bands.

:class:`Discriminators` holds both, picks the pixels the spectral one sees (a strided grid at a
given offset) and gives the hinge losses: ``relu(1 - D(real)) + relu(1 + D(fake))`` for the
discriminators and ``-D(fake)`` for the autoencoder, summed over the two critics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SpatialDiscriminator(nn.Sequential):
    """``(N, C, H, W)`` -> patch logits ``(N, 1, H / 4, W / 4)``."""

    def __init__(self, num_bands: int, width: int = 64):
        super().__init__(
            nn.Conv2d(num_bands, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, 1, 1),
        )


class SpectralDiscriminator(nn.Module):
    """Pixel spectra ``(S, C)`` -> logits ``(S, 1, ceil(C / 4))`` along the bands."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(1, width, 7, 2, 3), nn.LeakyReLU(0.2),
            nn.Conv1d(width, 2 * width, 5, 2, 2), nn.LeakyReLU(0.2),
            nn.Conv1d(2 * width, 1, 3, 1, 1),
        )

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        return self.net(spectra[:, None])


class Discriminators(nn.Module):
    """The spatial and the spectral critic of windows of ``num_bands`` bands; the spectral one sees the pixels
    of every ``stride``-th row and column (from an offset the caller draws)."""

    def __init__(self, num_bands: int, spatial_width: int = 64, spectral_width: int = 32, stride: int = 4):
        super().__init__()
        self.spatial = SpatialDiscriminator(num_bands, spatial_width)
        self.spectral = SpectralDiscriminator(spectral_width)
        self.stride = stride

    def logits(self, x: torch.Tensor, offset: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(spatial logits, spectral logits) of windows ``x (N, C, H, W)``."""
        r, c = offset
        pixels = x[:, :, r :: self.stride, c :: self.stride].movedim(1, -1).reshape(-1, x.shape[1])
        return self.spatial(x), self.spectral(pixels)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, offset: tuple[int, int]) -> torch.Tensor:
        """Hinge loss of both critics on real windows and (detached) reconstructions."""
        real_logits, fake_logits = self.logits(real, offset), self.logits(fake.detach(), offset)
        return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits))

    def generator_loss(self, fake: torch.Tensor, offset: tuple[int, int]) -> torch.Tensor:
        """The autoencoder's adversarial term: ``-mean D(fake)`` summed over both critics."""
        return sum(-f.mean() for f in self.logits(fake, offset))
