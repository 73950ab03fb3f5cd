"""Stage-2 latent denoisers, one file per family."""

from specdm.models.denoisers.controlnet import ControlledDenoiser, LatentControlledDenoiser, build_latent_controlnet
from specdm.models.denoisers.unet import build_denoiser

__all__ = ["ControlledDenoiser", "LatentControlledDenoiser", "build_denoiser", "build_latent_controlnet"]
