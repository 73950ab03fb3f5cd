"""Stage 2: the denoising U-Net family.

One family for every method: diffusers' :class:`~diffusers.UNet2DConditionModel`.
SpecDM uses it unconditioned (no cross-attention blocks, so it runs with
``encoder_hidden_states=None``). The same model takes the conditions later
methods need: concatenated condition channels (RGB features, HyperLDM),
ControlNet residuals (``down_block_additional_residuals``, HSIGene; build the
ControlNet with ``ControlNetModel.from_unet``), class labels
(``num_class_embeds``) and text embeddings (``cross_attention_dim``).
"""

from __future__ import annotations

from diffusers import UNet2DConditionModel


def build_denoiser(
    latent_channels: int,
    sample_size: int,
    block_out_channels: tuple[int, ...] = (64, 128),
    layers_per_block: int = 2,
    norm_num_groups: int = 32,
    condition_channels: int = 0,
    num_class_embeds: int | None = None,
    cross_attention_dim: int | None = None,
) -> UNet2DConditionModel:
    """A U-Net mapping ``latent_channels`` (+ ``condition_channels`` concatenated) to ``latent_channels``."""
    n = len(block_out_channels)
    if cross_attention_dim is None:
        down, mid, up = ("DownBlock2D",) * n, "UNetMidBlock2D", ("UpBlock2D",) * n
        cross = 8  # unused without cross-attention blocks
    else:
        down = ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1)
        mid = "UNetMidBlock2DCrossAttn"
        up = ("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",)
        cross = cross_attention_dim
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=latent_channels + condition_channels,
        out_channels=latent_channels,
        down_block_types=down,
        mid_block_type=mid,
        up_block_types=up,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        norm_num_groups=norm_num_groups,
        cross_attention_dim=cross,
        num_class_embeds=num_class_embeds,
    )
