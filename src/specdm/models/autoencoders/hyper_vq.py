"""HyperLDM's stage 1: a VQ autoencoder whose decoder sees the RGB image and mixes library spectra.

``E(x)`` (diffusers' VAE ``Encoder``, f = 2 ** (levels - 1)) maps the spectral window to
``latent_channels`` (n_x) channels; each latent vector is replaced by its nearest codebook
entry by L1 distance (:func:`~specdm.models.autoencoders.mixing.nearest_code`; K codes),
with straight-through gradients and the codebook and commitment losses of VQ-VAE. The
decoder (diffusers' ``Decoder``) gets the quantized latent concatenated with the features
``C(rgb)`` of a condition encoder of the same shape on the RGB window (``use_rgb``), and its
output, with the RGB window itself, goes to the head:

- with a library (``num_spectra > 0``): :class:`~specdm.models.autoencoders.mixing.LibraryMixingHead`,
  softmax abundances over the library's spectra times a positive per-band scale. The mixture
  is formed in the data's own units and then normalized like the training data: the buffer
  ``library`` holds the spectra multiplied per band by ``gain`` (``1 / (high - low)`` of the
  normalization times a calibration that makes a scale of 1 give the training mean for the
  mean library spectrum), and ``offset = low / (high - low)`` is subtracted, so the output is
  ``(t * k * (A @ R) - low) / (high - low)`` with t the learnt scale;
- without (``num_spectra = 0``, a scene without wavelengths, or the ablation): a 1x1
  convolution to the bands (direct output).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import Decoder, Encoder
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from specdm.errors import DataError
from specdm.models.autoencoders.mixing import LibraryMixingHead, nearest_code

RGB_CHANNELS = 3


class VQOutput(NamedTuple):
    """``image`` (N, C, H, W) normalized; ``codebook_loss``, ``commitment_loss`` scalars; ``indices`` (N, h, w)."""

    image: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    indices: torch.Tensor


def library_calibration(library: np.ndarray, low: np.ndarray, high: np.ndarray, mean: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``(library * gain, offset)`` for :class:`HyperVQAutoencoder`: per band, ``gain = k / (high - low)`` with
    ``k = mean / mean(library)`` (the data's mean over the library's mean spectrum), ``offset = low / (high - low)``."""
    lib = np.asarray(library, np.float64)
    low, high, mean = (np.asarray(v, np.float64) for v in (low, high, mean))
    if lib.ndim != 2 or lib.shape[1] != len(low):
        raise DataError(f"the library has shape {lib.shape}, the data {len(low)} bands")
    span = high - low
    k = mean / np.maximum(lib.mean(0), 1e-12)
    return (lib * (k / span)).astype(np.float32), (low / span).astype(np.float32)


class HyperVQAutoencoder(ModelMixin, ConfigMixin):
    """The conditional VQ autoencoder (a diffusers model: ``save_pretrained`` / ``from_pretrained``).

    The library (already calibrated, see :func:`library_calibration`) and ``offset`` are buffers in the
    weights, not in ``config.json``; a model rebuilt from its config starts with zeros and loads them.
    """

    ignore_for_config = ["library", "offset"]

    @register_to_config
    def __init__(
        self,
        num_bands: int,
        latent_channels: int = 16,
        num_codes: int = 1024,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        norm_num_groups: int = 16,
        condition_channels: int = 16,
        head_channels: int = 64,
        use_rgb: bool = True,
        num_spectra: int = 0,
        library=None,
        offset=None,
    ):
        super().__init__()
        n = len(block_out_channels)
        blocks = dict(block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
                      norm_num_groups=norm_num_groups, mid_block_add_attention=False)
        self.encoder = Encoder(num_bands, latent_channels, ("DownEncoderBlock2D",) * n, double_z=False, **blocks)
        self.quant_conv = nn.Conv2d(latent_channels, latent_channels, 1)
        self.codebook = nn.Embedding(num_codes, latent_channels)
        self.codebook.weight.data.uniform_(-1.0 / num_codes, 1.0 / num_codes)
        cond = condition_channels if use_rgb else 0
        self.condition_encoder = (Encoder(RGB_CHANNELS, condition_channels, ("DownEncoderBlock2D",) * n,
                                          double_z=False, **blocks) if use_rgb else None)
        self.decoder = Decoder(latent_channels + cond, head_channels, ("UpDecoderBlock2D",) * n, **blocks)
        head_in = head_channels + (RGB_CHANNELS if use_rgb else 0)
        if num_spectra:
            lib = torch.zeros(num_spectra, num_bands) if library is None else torch.as_tensor(library, dtype=torch.float32)
            if tuple(lib.shape) != (num_spectra, num_bands):
                raise DataError(f"the library has shape {tuple(lib.shape)}, the model needs ({num_spectra}, {num_bands})")
            self.head = LibraryMixingHead(lib, head_in)
        else:
            self.head = nn.Conv2d(head_in, num_bands, 1)
        off = torch.zeros(num_bands) if offset is None else torch.as_tensor(offset, dtype=torch.float32)
        self.register_buffer("offset", off.clone())

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    @property
    def has_library(self) -> bool:
        return self.config.num_spectra > 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The continuous latent ``(N, n_x, H/f, W/f)`` of normalized spectral windows ``x (N, C, H, W)``."""
        return self.quant_conv(self.encoder(x))

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(indices, codes)``: the nearest code of every latent vector by L1 distance."""
        return nearest_code(z, self.codebook.weight, p=1.0)

    def decode(self, zq: torch.Tensor, rgb: torch.Tensor | None = None, quantize: bool = False) -> torch.Tensor:
        """Normalized spectral windows from (quantized) latents and the RGB windows ``rgb (N, 3, H, W)`` in [0, 1]
        (ignored when the model does not use RGB); ``quantize`` looks the codes up first (a denoised latent)."""
        if quantize:
            zq = self.quantize(zq)[1]
        if self.config.use_rgb:
            if rgb is None:
                raise DataError("this autoencoder's decoder needs the RGB image")
            zq = torch.cat([zq, self.condition_encoder(rgb)], 1)
        features = self.decoder(zq)
        if self.config.use_rgb:
            features = torch.cat([features, rgb], 1)
        out = self.head(features)
        image = out.image if self.has_library else out
        return image - self.offset.view(1, -1, 1, 1).to(image.dtype)

    def forward(self, x: torch.Tensor, rgb: torch.Tensor | None = None) -> VQOutput:
        """Reconstruct ``x`` through the quantizer (straight-through gradients)."""
        z = self.encode(x)
        indices, zq = self.quantize(z)
        codebook = F.mse_loss(zq, z.detach())
        commitment = F.mse_loss(z, zq.detach())
        zq = z + (zq - z).detach()
        return VQOutput(self.decode(zq, rgb), codebook, commitment, indices)


DENOISER_RGB = ("folded", "features")


def denoiser_condition(model: HyperVQAutoencoder, rgb: torch.Tensor, kind: str = "folded") -> torch.Tensor:
    """The latent denoiser's RGB input for RGB windows ``rgb (N, 3, H, W)`` in [0, 1]: ``"folded"``
    (:func:`rgb_condition`, ``3 f^2`` channels) or ``"features"``, the features ``C(rgb)`` of ``model``'s
    condition encoder (``condition_channels`` channels on the latent grid; the paper's). Deterministic and
    without gradients to the autoencoder, identical at training and sampling."""
    if kind == "folded":
        return rgb_condition(rgb, model.downsampling)
    if kind != "features":
        raise DataError(f"unknown denoiser RGB input {kind!r}; choose from {', '.join(DENOISER_RGB)}")
    if model.condition_encoder is None:
        raise DataError("this autoencoder has no RGB condition encoder (use_rgb false): its denoiser takes 'folded'")
    with torch.no_grad():
        return model.condition_encoder(rgb.to(model.device, model.dtype)).to(rgb.dtype)


def denoiser_condition_channels(model: HyperVQAutoencoder, kind: str = "folded") -> int:
    """Channels of :func:`denoiser_condition`'s output."""
    return RGB_CHANNELS * model.downsampling**2 if kind == "folded" else model.config.condition_channels


def rgb_condition(rgb: torch.Tensor, downsampling: int) -> torch.Tensor:
    """The RGB condition of the latent denoiser: ``rgb (N, 3, H, W)`` in [0, 1], centred to [-1, 1] and folded
    onto the latent grid by space-to-depth (``pixel_unshuffle``) -> ``(N, 3 f^2, H/f, W/f)``: every pixel's
    colour, no parameter, identical at training and sampling; the denoiser's first layer learns the features."""
    return F.pixel_unshuffle(rgb * 2 - 1, downsampling)
