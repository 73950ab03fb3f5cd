"""Controllable synthesis's denoiser (HSIGene, Uni-ControlNet style): our U-Net, a ControlNet for the
local condition maps and a global branch for embedding vectors.

- **local** conditions (edge, line, sketch, segment maps at pixel resolution) are stacked along
  channels, each followed by a presence channel (1 where the condition was given, 0 where it was
  dropped), and go through diffusers' :class:`~diffusers.ControlNetModel` made by ``from_unet``;
  its conditioning embedding downsamples by the autoencoder's factor, so the maps meet the latent
  grid, and its zero-initialised output convolutions add ``down_block_additional_residuals`` and a
  ``mid_block_additional_residual`` to the U-Net.
- **global** conditions (content and text embeddings) are concatenated, each followed by its presence
  flag, into one vector that the U-Net (and the ControlNet) project onto the time embedding
  (``class_embed_type="projection"``).

A dropped condition is zeros with presence 0, so one network predicts the noise for every subset
of its conditions (trained with per-condition dropout), and the pipeline guides each one.
"""

from __future__ import annotations

import math

import torch
from diffusers import ConfigMixin, ControlNetModel, ModelMixin
from diffusers.configuration_utils import register_to_config

from specdm.models.denoisers.unet import build_denoiser


class ControlledDenoiser(ModelMixin, ConfigMixin):
    """``forward(z, t, local, global_)`` -> noise prediction (an object with ``.sample``, like a U-Net's).

    ``local``: ``(N, local_channels, H * f, W * f)`` (maps and presence channels, see
    :meth:`local_channels`), ``global_``: ``(N, global_channels)``; either is None when the model has
    no condition of that kind.
    """

    @register_to_config
    def __init__(
        self,
        latent_channels: int,
        sample_size: int,
        downsampling: int,
        local_widths: tuple[int, ...] = (),
        global_widths: tuple[int, ...] = (),
        block_out_channels: tuple[int, ...] = (64, 128),
        layers_per_block: int = 2,
        norm_num_groups: int = 32,
    ):
        super().__init__()
        global_dim = sum(global_widths) + len(global_widths)
        self.unet = build_denoiser(latent_channels, sample_size, tuple(block_out_channels), layers_per_block,
                                   norm_num_groups, global_dim=global_dim)
        self.controlnet = None
        if local_widths:
            levels = round(math.log2(downsampling))
            if 2 ** levels != downsampling:
                raise ValueError(f"downsampling must be a power of two, got {downsampling}")
            self.controlnet = ControlNetModel.from_unet(
                self.unet, conditioning_embedding_out_channels=tuple(16 * 2 ** i for i in range(levels + 1)),
                conditioning_channels=sum(local_widths) + len(local_widths))

    @property
    def local_channels(self) -> int:
        w = self.config["local_widths"]
        return sum(w) + len(w)

    @property
    def global_channels(self) -> int:
        w = self.config["global_widths"]
        return sum(w) + len(w)

    def forward(self, sample: torch.Tensor, timestep, local: torch.Tensor | None = None,
                global_: torch.Tensor | None = None):
        labels = global_ if self.global_channels else None
        kw = {}
        if self.controlnet is not None:
            down, mid = self.controlnet(sample, timestep, encoder_hidden_states=None, controlnet_cond=local,
                                        class_labels=labels, return_dict=False)
            kw = {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
        return self.unet(sample, timestep, encoder_hidden_states=None, class_labels=labels, **kw)
