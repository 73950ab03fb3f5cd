"""A denoiser steered by ControlNet-style residuals: diffusers' :class:`~diffusers.ControlNetModel`
beside the shared U-Net (:mod:`specdm.models.denoisers.unet`).

The ControlNet is a trainable copy of the U-Net's encoder that reads the condition and adds
zero-initialised residuals to the U-Net's skip connections and middle block. The condition here
lives on the latent grid (a mask's latent), so the ControlNet's condition embedding keeps its
resolution (one block, no downsampling). Dropping the condition means dropping the residuals
(``keep`` = 0 for that item): the U-Net alone is then the unconditional model, which is what
classifier-free guidance mixes with.
"""

from __future__ import annotations

import torch
from diffusers import ControlNetModel, UNet2DConditionModel


def build_controlnet(unet: UNet2DConditionModel, condition_channels: int) -> ControlNetModel:
    """A ControlNet for ``unet`` reading ``condition_channels`` at the latent resolution (weights copied from
    the U-Net's encoder, output convolutions zero, so it starts as no control at all)."""
    return ControlNetModel.from_unet(unet, conditioning_channels=condition_channels,
                                     conditioning_embedding_out_channels=(16,))


class ControlledDenoiser(torch.nn.Module):
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
