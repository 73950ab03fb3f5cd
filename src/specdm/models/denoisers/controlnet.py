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

Layout-conditioned synthesis's ControlNet option (``layout.conditioning: controlnet``) is the same
diffusers ControlNet on a condition that already lives on the latent grid (a mask's latent): its
condition embedding keeps the resolution (one block, no downsampling), and dropping the condition
drops the residuals (``keep`` = 0 for that item), so the U-Net alone is the unconditional model
(:class:`LatentControlledDenoiser`, saved as two components, ``unet`` and ``controlnet``).
"""

from __future__ import annotations

import math

import torch
from diffusers import ConfigMixin, ControlNetModel, ModelMixin, UNet2DConditionModel
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


def build_latent_controlnet(unet: UNet2DConditionModel, condition_channels: int) -> ControlNetModel:
    """A ControlNet for ``unet`` reading ``condition_channels`` at the latent resolution (weights copied from
    the U-Net's encoder, output convolutions zero, so it starts as no control at all)."""
    return ControlNetModel.from_unet(unet, conditioning_channels=condition_channels,
                                     conditioning_embedding_out_channels=(16,))


class LatentControlledDenoiser(torch.nn.Module):
    """``(z_t, t, condition, keep)`` -> predicted noise: the U-Net plus ``keep``-weighted ControlNet residuals
    (``keep`` per item: 1 conditional, 0 unconditional). One module, so the shared training engine trains,
    checkpoints and averages (EMA) both networks together."""

    def __init__(self, unet: UNet2DConditionModel, controlnet: ControlNetModel):
        super().__init__()
        self.unet, self.controlnet = unet, controlnet

    def forward(self, z: torch.Tensor, t, condition: torch.Tensor, keep: torch.Tensor | float = 1.0) -> torch.Tensor:
        if isinstance(keep, (int, float)) and keep == 0:
            return self.unet(z, t, encoder_hidden_states=None).sample
        down, mid = self.controlnet(z, t, encoder_hidden_states=None, controlnet_cond=condition, return_dict=False)
        w = keep if isinstance(keep, (int, float)) else keep.view(-1, 1, 1, 1).to(z.dtype)
        return self.unet(z, t, encoder_hidden_states=None, down_block_additional_residuals=[d * w for d in down],
                         mid_block_additional_residual=mid * w).sample
