"""Controllable synthesis's content encoder (HSIGene's image embedding): an RGB window -> one unit vector.

A small CNN (3x3 convolutions, two stride-2 stages, GroupNorm + SiLU, global average pooling, a
linear map) whose output, scaled to unit length, is the ``content`` condition. It is trained by
specdm on the real training windows (:mod:`specdm.training.content`) without labels: a linear head
on the unit vector predicts the window's per-band mean and standard deviation on the aligned
spectral grid (``target_dim`` = 2 x bands), so the vector has to say what materials the window
holds and how mixed they are, which is what the RGB colours and textures alone only hint at. The
head is saved with the encoder (it is how the embedding was trained) but sampling uses only
:meth:`ContentEncoder.embed`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn


class ContentEncoder(ModelMixin, ConfigMixin):
    """``forward(rgb)``: ``(N, 3, H, W)`` in [0, 1] -> ``(N, embedding_dim)`` unit vectors;
    :meth:`predict` maps them to the training target, :meth:`embed` one RGB image ``(H, W, 3)`` -> numpy."""

    @register_to_config
    def __init__(self, embedding_dim: int = 64, target_dim: int = 96, block_out_channels: tuple[int, ...] = (32, 64, 64),
                 norm_num_groups: int = 8):
        super().__init__()
        layers, c_in = [], 3
        for i, c in enumerate(block_out_channels):
            layers += [nn.Conv2d(c_in, c, 3, stride=1 if i == 0 else 2, padding=1), nn.GroupNorm(norm_num_groups, c),
                       nn.SiLU()]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.project = nn.Linear(c_in, embedding_dim)
        self.head = nn.Linear(embedding_dim, target_dim)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(self.features(rgb).mean(dim=(2, 3))), dim=1)

    def predict(self, embedding: torch.Tensor) -> torch.Tensor:
        """The training target (per-band mean, then per-band std of the window) predicted from unit embeddings."""
        return self.head(embedding)

    @torch.no_grad()
    def embed(self, rgb: np.ndarray) -> np.ndarray:
        """The content condition of one RGB image ``(H, W, 3)`` in [0, 1]: ``(embedding_dim,)`` float32, unit length."""
        x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(rgb, np.float32), -1, 0)))[None]
        return self(x.to(self.device, self.dtype))[0].float().cpu().numpy()  # GroupNorm: no train/eval difference
