"""Stage-1 autoencoders and the stage-2 denoiser."""

from specdm.models.autoencoder import SpectralAutoencoder
from specdm.models.denoiser import build_denoiser

__all__ = ["SpectralAutoencoder", "build_denoiser"]
