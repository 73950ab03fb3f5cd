"""Stage-2 latent denoisers, one file per family."""

from specdm.models.denoisers.unet import build_denoiser

__all__ = ["build_denoiser"]
