"""Networks: stage-1 autoencoders and stage-2 denoisers (one file per family), losses, model-folder metadata."""

from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.denoisers import build_denoiser

__all__ = ["SpectralAutoencoder", "build_denoiser"]
