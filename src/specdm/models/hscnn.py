"""The one-to-one RGB -> spectra baseline of RGB-conditioned synthesis: a small residual CNN (HSCNN+ kind).

Each RGB window gives exactly one spectral image: a 3x3 stem, ``blocks`` residual blocks
(two 3x3 convolutions each, ReLU, identity shortcut) and a 1x1 projection to the bands,
in the data's normalized units. It trains on the same (RGB, spectra) windows as HyperLDM
(:func:`specdm.training.hyperldm.train_rgb_regressor`).
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, padding_mode="reflect"), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, width, 3, padding=1, padding_mode="reflect"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class RGBToSpectra(nn.Module):
    """``rgb (N, 3, H, W)`` in [0, 1] -> normalized spectra ``(N, num_bands, H, W)``, any H and W."""

    def __init__(self, num_bands: int, width: int = 64, blocks: int = 4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, padding_mode="reflect"), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.out = nn.Conv2d(width, num_bands, 1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.stem(rgb)))
