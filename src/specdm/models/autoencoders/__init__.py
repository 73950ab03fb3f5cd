"""Stage-1 autoencoders, one file per family."""

from specdm.models.autoencoders.hyper_vq import HyperVQAutoencoder
from specdm.models.autoencoders.spectral_kl import SpectralAutoencoder

__all__ = ["HyperVQAutoencoder", "SpectralAutoencoder"]
