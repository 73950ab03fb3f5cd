"""Full-reference scores of reconstructions against references.

Arrays are channel-last, (H, W, C) or (N, H, W, C), numpy or torch. ``data_range``
is the span of valid values (1.0 for data scaled to [0, 1] by the training
split's normalization, as PROTOCOL requires for PSNR and SSIM). Band-wise
scores are computed per image and band, then averaged over bands and images.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from specdm.errors import DataError

from ._arrays import as_float64, same_shape
from .spectral import sad_stats


def _pair(pred, ref) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64 (N, H, W, C)."""
    p, r = as_float64(pred, "prediction"), as_float64(ref, "reference")
    same_shape(p, r, "prediction and reference")
    if p.ndim not in (3, 4):
        raise DataError(f"expected (H, W, C) or (N, H, W, C) arrays, got {p.shape}")
    return (p[None], r[None]) if p.ndim == 3 else (p, r)


def _band_mse(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Mean squared error per image and band, (N, C)."""
    return ((p - r) ** 2).mean(axis=(1, 2))


def psnr(pred, ref, data_range: float = 1.0) -> float:
    """PSNR in dB, ``10 log10(data_range^2 / MSE)`` per image and band, averaged (inf if identical)."""
    p, r = _pair(pred, ref)
    with np.errstate(divide="ignore"):
        return float(np.mean(10 * np.log10(data_range**2 / _band_mse(p, r))))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def ssim(pred, ref, data_range: float = 1.0) -> float:
    """SSIM (Wang et al. 2004) per image and band, averaged.

    Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03; local statistics
    over the windows lying wholly inside the image (no padding), weighted
    (biased) variances as in the reference MATLAB code; each band's SSIM is
    the mean of its SSIM map. Images must be at least 11x11.
    """
    p, r = _pair(pred, ref)
    h, w = p.shape[1:3]
    if h < 11 or w < 11:
        raise DataError(f"SSIM needs images of at least 11x11 pixels, got {h}x{w}")
    x, y = (torch.from_numpy(a).permute(0, 3, 1, 2) for a in (p, r))
    return float(ssim_torch(x, y, data_range).mean())


def ssim_torch(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11) -> torch.Tensor:
    """Differentiable SSIM of channel-first tensors ``(N, C, H, W)``: one value per image, the mean over
    bands of each band's SSIM map (as :func:`ssim`, which it computes, with a ``window``-pixel Gaussian of
    sigma 1.5; the images must be at least ``window`` pixels on each side)."""
    n, c, h, w = x.shape
    g = _gaussian_window(window).to(x.dtype)

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(z, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))

    x, y = x.reshape(n * c, 1, h, w), y.reshape(n * c, 1, h, w)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return ssim_map.mean(dim=(1, 2, 3)).view(n, c).mean(1)


def sam(pred, ref) -> float:
    """Mean spectral angle in radians over pixels; zero-norm spectra excluded (see :func:`sad_stats`)."""
    p, r = _pair(pred, ref)
    return sad_stats(p, r)["mean_rad"]


def rmse(pred, ref) -> float:
    """Root mean squared error over all values, in data units."""
    p, r = _pair(pred, ref)
    return float(np.sqrt(np.mean((p - r) ** 2)))


def mrae(pred, ref, eps: float = 1e-6) -> float:
    """Mean relative absolute error ``mean(|pred - ref| / (|ref| + eps))`` over all values."""
    p, r = _pair(pred, ref)
    return float(np.mean(np.abs(p - r) / (np.abs(r) + eps)))


def ergas(pred, ref, ratio: float = 1.0) -> float:
    """ERGAS ``100 * ratio * sqrt(mean_b (RMSE_b / mean(ref_b))^2)`` per image, averaged over images.

    ``ratio`` is the pixel size of the high-resolution image over that of the
    low-resolution one (1 for same-resolution reconstruction, 1/4 for 4x
    super-resolution). Unitless; 0 for a perfect reconstruction.
    """
    p, r = _pair(pred, ref)
    rel = _band_mse(p, r) / r.mean(axis=(1, 2)) ** 2
    return float(np.mean(100 * ratio * np.sqrt(rel.mean(axis=1))))


def reference_scores(pred, ref, data_range: float = 1.0) -> dict:
    """All full-reference scores: ``psnr`` (dB), ``ssim``, ``sam_rad``, ``sam_deg``, ``rmse``, ``mrae``, ``ergas``
    (``ratio`` 1), and ``n_zero_norm`` (pixels excluded from SAM)."""
    p, r = _pair(pred, ref)
    angles = sad_stats(p, r)
    return {
        "psnr": psnr(p, r, data_range),
        "ssim": ssim(p, r, data_range),
        "sam_rad": angles["mean_rad"],
        "sam_deg": angles["mean_deg"],
        "n_zero_norm": angles["n_zero_norm"],
        "rmse": rmse(p, r),
        "mrae": mrae(p, r),
        "ergas": ergas(p, r),
    }
