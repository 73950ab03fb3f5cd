"""RGB-conditioned synthesis (``method: hyperldm``, HyperLDM): spectral images for RGB images, from a conditional VQ
autoencoder with a spectral-library head and an RGB-conditioned denoiser."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field, model_validator

from specdm.config.method import Method
from specdm.config.sections import DiffusionConfig, RunConfig, StageOneConfig, Strict

# HyperLDM: T = 100, betas linear from 0.005 M to M, M = 0.02
HYPERLDM_SCHEDULE = dict(num_train_timesteps=100, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
MOVED = {"zero_terminal_snr": "diffusion.zero_terminal_snr", "ssim_weight": "diffusion.ssim_weight"}


class VQAutoencoderConfig(StageOneConfig):
    """Stage 1: the conditional VQ autoencoder (its codebook, heads and losses are in the ``hyperldm`` section)."""

    latent_channels: int = Field(16, ge=1)  # n_x, the paper's


class HyperLDMConfig(Strict):
    """The hyperldm section: the RGB, the library head, the codebook and losses of stage 1, the denoiser's RGB input."""

    rgb_method: Literal["auto", "bands", "cie"] = "auto"  # conditions.rgb: sensor bands, CIE 1931, or auto
    rgb_percentile: float = Field(99.0, gt=0.0, le=100.0)  # the RGB scale: this percentile of the training colours
    # "usgs": USGS splib07 (AV95) under the data root; a path: an ENVI spectral library; null: direct output head
    library: str | None = "usgs"
    max_spectra: int | None = Field(128, ge=1)  # library spectra kept (k-means on shape); null keeps all
    library_select: Literal["kmeans", "random"] = "kmeans"
    use_rgb: bool = True  # the decoder sees the RGB (the paper's; false: the ablation)
    num_codes: int = Field(1024, ge=2)  # codebook size K
    condition_channels: int = Field(16, ge=1)  # channels of the decoder's RGB features C(rgb)
    head_channels: int = Field(64, ge=1)
    l1_weight: float = Field(1.0, ge=0.0)  # paper: 100 x L1 + 1000 x (1 - cos), here divided by 100
    cosine_weight: float = Field(10.0, ge=0.0)
    commitment_weight: float = Field(0.25, ge=0.0)
    p_uncond: float = Field(0.0, ge=0.0, lt=1.0)  # share of stage-2 steps without the RGB
    # the denoiser's RGB input: "folded" = the RGB pixels folded onto the latent grid (space-to-depth, no
    # parameter); "features" = stage 1's condition encoder C(rgb), frozen (the paper's; needs use_rgb)
    denoiser_rgb: Literal["folded", "features"] = "folded"
    # stage 1: spatial (2-D PatchGAN) and spectral (1-D, per pixel) discriminators, hinge loss (the paper's;
    # off by default: +45 % per stage-1 step on one CPU thread for a small gain; docs/design.md)
    discriminators: bool = False
    discriminator_weight: float = Field(0.1, ge=0.0)  # weight of the autoencoder's adversarial term
    discriminator_every: int = Field(3, ge=1)  # the discriminators step every this many steps (paper: 3)
    num_versions: int = Field(10, ge=1)  # K: spectral versions per RGB image written by `specdm run`

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, raw):
        moved = [f"hyperldm.{k} is now {v} (every method's denoiser takes it)" for k, v in MOVED.items()
                 if isinstance(raw, dict) and k in raw]
        if moved:
            raise ValueError("; ".join(moved))
        return raw

    @model_validator(mode="after")
    def _rgb_input(self):
        if self.denoiser_rgb == "features" and not self.use_rgb:
            raise ValueError("hyperldm.denoiser_rgb 'features' feeds the denoiser stage 1's RGB condition encoder, "
                             "which hyperldm.use_rgb: false leaves out; use denoiser_rgb: folded")
        return self


class HyperLDMDiffusionConfig(DiffusionConfig):
    """Stage 2 with the paper's schedule (T = 100, betas 1e-4..0.02), rescaled to zero terminal SNR with v
    prediction (measured: docs/results.md; ``zero_terminal_snr: false`` is the paper's, alpha_bar_T = 0.36), and
    the paper's SSIM term (0.1)."""

    num_train_timesteps: int = HYPERLDM_SCHEDULE["num_train_timesteps"]
    beta_start: float = HYPERLDM_SCHEDULE["beta_start"]
    beta_end: float = HYPERLDM_SCHEDULE["beta_end"]
    zero_terminal_snr: bool = True
    ssim_weight: float = Field(0.1, ge=0.0)


class HyperLDMRunConfig(RunConfig):
    method: Literal["hyperldm"] = "hyperldm"
    autoencoder: VQAutoencoderConfig = Field(default_factory=VQAutoencoderConfig)
    diffusion: HyperLDMDiffusionConfig = Field(default_factory=HyperLDMDiffusionConfig)
    hyperldm: HyperLDMConfig = Field(default_factory=HyperLDMConfig)


def card_section(meta: dict) -> list[str]:
    """The model's output head, library and RGB, from ``metadata.json``'s ``source``."""
    src = meta.get("source") or {}
    lib = src.get("library")
    return ["## Model", "", f"- output head: {src.get('head', 'unknown')}",
            *([f"- spectral library: `{lib['file']}`, {lib['spectra']} spectra ({lib['select']})"] if lib else []),
            f"- decoder sees the RGB: {src.get('use_rgb', True)}",
            f"- the RGB it was trained on (conditions.rgb.rgb_from_scene): `{json.dumps(src.get('rgb'))}`", ""]


METHOD = Method("hyperldm", HyperLDMRunConfig, "spectral versions of RGB images (RGB-conditioned synthesis, "
                "HyperLDM)", "specdm.recipes.hyperldm", "specdm.pipelines.hyperldm:HyperLDMPipeline", card_section)
