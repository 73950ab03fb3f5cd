"""Building blocks of HyperLDM's conditional VQ autoencoder: the library mixing head and the L1 code lookup.

HyperLDM's decoder does not output the spectral image directly: it outputs, per pixel,
abundances ``A`` (a softmax over the ``n_g`` spectra of a spectral library ``R``, shape
``(n_g, C)``) and a per-band scale ``t``; the image is the linear mixture
``x = t * (A @ R)``. The mixing has no trainable parameter: the library is a buffer
(saved in the state dict, so a model folder carries the spectra it was trained with;
a model rebuilt from its config can take ``torch.zeros(n_g, C)`` and load them).

Its quantizer looks codes up by L1 distance. diffusers' ``VectorQuantizer``
(``diffusers.models.autoencoders.vae``) uses ``torch.cdist`` with its default p = 2 and
exposes no choice, so :func:`nearest_code` does the lookup for any p.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from specdm.errors import ConfigError, DataError

SCALES = ("softplus", "exp")


class MixingOutput(NamedTuple):
    """``image`` (N, C, H, W), ``abundances`` (N, n_g, H, W) summing to 1 over the spectra, ``scale`` (N, C, H, W)."""

    image: torch.Tensor
    abundances: torch.Tensor
    scale: torch.Tensor


def mix(abundances: torch.Tensor, library: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """The linear mixture per pixel: ``image[n, c] = scale[n, c] * sum_g abundances[n, g] * library[g, c]``.

    ``abundances`` (N, n_g, H, W), ``library`` (n_g, C), ``scale`` (N, C, H, W) or None -> (N, C, H, W).
    """
    image = torch.einsum("nghw,gc->nchw", abundances, library)
    return image if scale is None else image * scale


class LibraryMixingHead(nn.Module):
    """Decoder head: features (N, in_channels, H, W) -> :class:`MixingOutput`.

    A 1x1 convolution gives ``n_g`` abundance logits and ``C`` scale logits per pixel;
    ``abundances = softmax(logits)`` over the spectra and ``scale = softplus(logits)``
    (``scale="exp"``: ``exp``), so the scale is positive. ``library`` (n_g, C) is a
    buffer, not a parameter.
    """

    def __init__(self, library, in_channels: int, scale: str = "softplus"):
        super().__init__()
        lib = torch.as_tensor(library, dtype=torch.float32)
        if lib.ndim != 2 or lib.shape[0] < 1 or lib.shape[1] < 1:
            raise DataError(f"a spectral library is (spectra, bands), got shape {tuple(lib.shape)}")
        if not torch.isfinite(lib).all():
            raise DataError("the spectral library holds NaN or Inf values")
        if scale not in SCALES:
            raise ConfigError(f"unknown scale activation '{scale}'; choose one of {', '.join(SCALES)}")
        self.register_buffer("library", lib.clone())
        self.num_spectra, self.num_bands = lib.shape
        self.scale_activation = scale
        self.proj = nn.Conv2d(in_channels, self.num_spectra + self.num_bands, kernel_size=1)

    def forward(self, features: torch.Tensor) -> MixingOutput:
        logits = self.proj(features)
        a_logits, t_logits = logits.split([self.num_spectra, self.num_bands], dim=1)
        abundances = a_logits.softmax(dim=1)
        scale = F.softplus(t_logits) if self.scale_activation == "softplus" else t_logits.exp()
        return MixingOutput(mix(abundances, self.library.to(abundances.dtype), scale), abundances, scale)


def nearest_code(z: torch.Tensor, codebook: torch.Tensor, p: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest codebook entry of every latent vector by the ``p``-norm distance (HyperLDM: p = 1).

    ``z``: (N, D, H, W) feature maps or (M, D) vectors; ``codebook``: (K, D).
    Returns ``(indices, quantized)``: indices (N, H, W) or (M,) int64 (the first code on a
    tie) and the codes, shaped like ``z`` (differentiable with respect to the codebook, not to
    ``z``: a quantizer adds the straight-through estimate ``z + (quantized - z).detach()`` itself).
    """
    if codebook.ndim != 2 or z.ndim not in (2, 4) or z.shape[1] != codebook.shape[1]:
        raise DataError(f"z must be (N, D, H, W) or (M, D) with D = the codebook's {tuple(codebook.shape)}[1], "
                        f"got {tuple(z.shape)}")
    flat = z.movedim(1, -1).reshape(-1, z.shape[1]) if z.ndim == 4 else z
    with torch.no_grad():
        indices = torch.cdist(flat.to(codebook.dtype), codebook, p=p).argmin(dim=1)
    quantized = codebook[indices]
    if z.ndim == 4:
        n, _, h, w = z.shape
        return indices.reshape(n, h, w), quantized.reshape(n, h, w, -1).movedim(-1, 1)
    return indices, quantized
