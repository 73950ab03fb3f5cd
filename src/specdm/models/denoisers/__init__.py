"""Stage-2 latent denoisers, one file per family."""

from specdm.models.denoisers.controlled import ControlledDenoiser, build_controlnet
from specdm.models.denoisers.unet import build_denoiser

__all__ = ["ControlledDenoiser", "build_controlnet", "build_denoiser"]
