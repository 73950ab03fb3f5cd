"""Stage 2: the latent denoiser family, diffusers' :class:`~diffusers.UNet2DConditionModel`.

Plain down/up blocks without cross-attention, so it runs with
``encoder_hidden_states=None``. SpecDM uses it unconditioned; layout-conditioned
synthesis concatenates the condition (the mask's latent) to the noisy latent along
channels (``condition_channels``) and predicts the noise of the latent part only.
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
    global_dim: int = 0,
) -> UNet2DConditionModel:
    """A U-Net mapping ``latent_channels`` (+ ``condition_channels`` concatenated after them) to
    ``latent_channels`` on ``sample_size`` latents; ``global_dim`` > 0 adds a learned projection of a
    ``global_dim`` vector (``class_labels``) to the time embedding (controllable synthesis's global branch)."""
    n = len(block_out_channels)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=latent_channels + condition_channels,
        out_channels=latent_channels,
        down_block_types=("DownBlock2D",) * n,
        mid_block_type="UNetMidBlock2D",
        up_block_types=("UpBlock2D",) * n,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        norm_num_groups=norm_num_groups,
        cross_attention_dim=8,  # unused: no cross-attention blocks
        class_embed_type="projection" if global_dim else None,
        projection_class_embeddings_input_dim=global_dim or None,
    )
