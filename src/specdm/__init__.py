"""specdm: synthesize labelled hyperspectral and multispectral data sets with latent diffusion."""

__version__ = "0.1.0"
