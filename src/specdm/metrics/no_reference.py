"""No-reference image statistics: BRISQUE's natural-scene features and a NIQE-style distance to a real scene.

Why written here: of the PyPI packages that score images without a reference and without downloading weights,
none was usable (checked 2026-12): OpenCV-contrib's ``cv2.quality.QualityBRISQUE`` needs the LIVE model files
(``brisque_model_live.yml``, ``brisque_range_live.yml``), which its wheel does not ship; ``brisque`` 0.2.0 ships
the LIVE SVR model but fails on numpy 2 (``float()`` of one-element arrays in its feature scaling), unpickles its
normalization file and pulls scikit-image, libsvm and requests; ``absolutely-not-scikit-video``'s NIQE ships its
pristine model but needs images larger than 192x192 and exits the process on smaller ones; ``piq``, ``pyiqa`` and
``torch-fidelity`` need torchvision. And a model fitted to photographs of natural scenes says little about one band
of a hyperspectral scene anyway.

So: :func:`brisque_features` computes BRISQUE's 36 features (Mittal, Moorthy, Bovik 2012: mean-subtracted
contrast-normalized (MSCN) coefficients with a 7x7 Gaussian window of sigma 7/6, the generalized Gaussian fit of the
MSCN coefficients and the asymmetric generalized Gaussian fits of their four neighbour products, at the image's
scale and at half of it), and :func:`scene_niqe` is NIQE's distance (Mittal, Soundararajan, Bovik 2013) with the
*real scene* as the pristine model: multivariate Gaussians fitted to the features of patches of the real
native-resolution image and of the tested image, ``sqrt((mu1 - mu2)^T ((S1 + S2) / 2)^+ (mu1 - mu2))``. 0 means
the tested image has the real scene's local statistics; blurred (bicubic) or noisy images move away from it. It is a
relative score: compare methods against the same real scene with the same patch size.

Images are 2-D arrays in [0, 1] (a band, or the mean of the RGB bands: luminance).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, special

from specdm.errors import DataError

from ._arrays import as_float64

__all__ = ["aggd_fit", "brisque_features", "ggd_fit", "mscn", "patch_features", "scene_niqe"]

C_MSCN = 1.0 / 255.0  # BRISQUE's C = 1 on 0..255 images, for images in [0, 1]
_ALPHAS = np.arange(0.2, 10.0, 0.001)
_R_GGD = special.gamma(1 / _ALPHAS) * special.gamma(3 / _ALPHAS) / special.gamma(2 / _ALPHAS) ** 2
_R_AGGD = special.gamma(2 / _ALPHAS) ** 2 / (special.gamma(1 / _ALPHAS) * special.gamma(3 / _ALPHAS))


def mscn(image, sigma: float = 7 / 6) -> np.ndarray:
    """MSCN coefficients ``(I - mu) / (s + C)`` with local mean and deviation from a Gaussian window (sigma 7/6,
    truncated at 3 sigma: 7x7, BRISQUE's), edges reflected."""
    x = as_float64(image, "image")
    if x.ndim != 2:
        raise DataError(f"expected a 2-D image, got {x.shape}")
    mu = ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=3.0)
    var = ndimage.gaussian_filter(x * x, sigma, mode="reflect", truncate=3.0) - mu * mu
    return (x - mu) / (np.sqrt(np.maximum(var, 0)) + C_MSCN)


def ggd_fit(x) -> tuple[float, float]:
    """Shape ``alpha`` and variance of a zero-mean generalized Gaussian by moment matching (BRISQUE's)."""
    x = np.asarray(x, np.float64).ravel()
    var = float(np.mean(x * x))
    e = float(np.mean(np.abs(x)))
    if var == 0 or e == 0:
        return 0.2, 0.0
    rho = var / e**2
    return float(_ALPHAS[np.argmin((_R_GGD - rho) ** 2)]), var


def aggd_fit(x) -> tuple[float, float, float, float]:
    """Asymmetric generalized Gaussian (Lasmar et al.): shape ``alpha``, mean, left and right variances."""
    x = np.asarray(x, np.float64).ravel()
    left, right = x[x < 0], x[x >= 0]
    sl = float(np.sqrt(np.mean(left**2))) if left.size else 0.0
    sr = float(np.sqrt(np.mean(right**2))) if right.size else 0.0
    if sl == 0 or sr == 0 or not np.any(x):
        return 0.2, 0.0, sl**2, sr**2
    gamma = sl / sr
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x * x)
    big_r = r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2
    alpha = float(_ALPHAS[np.argmin((_R_AGGD - big_r) ** 2)])
    mean = (sr - sl) * special.gamma(2 / alpha) / special.gamma(1 / alpha) * np.sqrt(
        special.gamma(1 / alpha) / special.gamma(3 / alpha))
    return alpha, float(mean), sl**2, sr**2


def _one_scale(x: np.ndarray) -> list[float]:
    m = mscn(x)
    feats = list(ggd_fit(m))
    for a, b in ((m[:, :-1], m[:, 1:]), (m[:-1, :], m[1:, :]), (m[:-1, :-1], m[1:, 1:]), (m[1:, :-1], m[:-1, 1:])):
        feats += list(aggd_fit(a * b))  # horizontal, vertical, main and secondary diagonal neighbours
    return feats


def _half(x: np.ndarray) -> np.ndarray:
    """The image at half its size (2x2 means: a box filter, then every second pixel)."""
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    return x[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))


def brisque_features(image) -> np.ndarray:
    """BRISQUE's 36 features of a 2-D image (18 at its scale, 18 at half of it); images need at least 8x8 pixels."""
    x = as_float64(image, "image")
    if x.ndim != 2 or min(x.shape) < 8:
        raise DataError(f"BRISQUE features need a 2-D image of at least 8x8 pixels, got {x.shape}")
    return np.array(_one_scale(x) + _one_scale(_half(x)))


def patch_features(image, patch: int = 16, stride: int | None = None) -> np.ndarray:
    """BRISQUE features ``(P, 36)`` of every ``patch`` x ``patch`` patch ``stride`` apart (default ``patch // 2``)."""
    x = as_float64(image, "image")
    stride = stride or max(1, patch // 2)
    h, w = x.shape
    if h < patch or w < patch:
        raise DataError(f"an image of {h}x{w} pixels holds no {patch}x{patch} patch")
    return np.stack([brisque_features(x[r : r + patch, c : c + patch])
                     for r in range(0, h - patch + 1, stride) for c in range(0, w - patch + 1, stride)])


def scene_niqe(images, reference, patch: int = 16, stride: int | None = None) -> dict:
    """NIQE's distance between the patch features of ``images`` and those of ``reference`` (each a 2-D image or a
    list of them; the reference is the real scene at its native resolution): ``distance`` (0: the real scene's
    statistics), ``patches`` (tested, reference) and the mean of each feature group for inspection
    (``mscn_shape``: the GGD shape of the MSCN coefficients, about 2 for sharp natural images, larger when blurred)."""
    def feats(x):
        xs = [x] if np.ndim(x) == 2 else list(x)
        return np.concatenate([patch_features(im, patch, stride) for im in xs])

    f1, f2 = feats(images), feats(reference)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    cov = (np.cov(f1, rowvar=False) + np.cov(f2, rowvar=False)) / 2
    d = mu1 - mu2
    dist = float(np.sqrt(max(0.0, d @ np.linalg.pinv(cov) @ d)))
    return {"distance": dist, "patches": [len(f1), len(f2)], "mscn_shape": float(mu1[0]),
            "reference_mscn_shape": float(mu2[0])}
