"""SpecDM (``method: specdm``, the default): images and masks (or date pairs and change masks) sampled jointly by
a latent U-Net over the KL-VAE's concatenated latents."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from specdm.config.method import Method
from specdm.config.sections import AutoencoderConfig, DiffusionConfig, RunConfig


class SpecDMRunConfig(RunConfig):
    method: Literal["specdm"] = "specdm"
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig)


METHOD = Method("specdm", SpecDMRunConfig, "images and masks sampled jointly (SpecDM)", "specdm.recipes.specdm",
                "specdm.pipelines.specdm:SpecDMPipeline")
