"""Stage-2 latent denoisers, one file per family."""

from specdm.models.denoisers.controlnet import ControlledDenoiser
from specdm.models.denoisers.unet import build_denoiser

__all__ = ["ControlledDenoiser", "build_denoiser"]
