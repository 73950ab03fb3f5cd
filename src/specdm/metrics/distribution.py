"""Distances between feature distributions: Frechet distance and KID.

Features come from encoders trained on the real training split only
(:mod:`specdm.evaluation.features`); report the encoder and its training seed.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from specdm.errors import DataError

from ._arrays import as_float64


def frechet_from_moments(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians N(mu1, S1) and N(mu2, S2).

    ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2))``, with scipy's sqrtm; if
    the root is not finite, ``eps * I`` is added to both covariances (as in
    pytorch-fid). The real part of the root is used.
    """
    mu1, mu2 = as_float64(mu1, "mu1"), as_float64(mu2, "mu2")
    s1, s2 = np.atleast_2d(as_float64(sigma1, "sigma1")), np.atleast_2d(as_float64(sigma2, "sigma2"))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise DataError(f"moment shapes do not match: {mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}")
    with warnings.catch_warnings():  # singular products are common; finiteness is checked below
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(s1)) * eps
            covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


def _features(x, name: str) -> np.ndarray:
    f = as_float64(x, name)
    if f.ndim != 2 or len(f) < 2:
        raise DataError(f"{name} must be (N, D) with N >= 2, got {f.shape}")
    return f


def frechet_distance(feats_a, feats_b) -> float:
    """Frechet distance between Gaussians fitted to features (N, D) and (M, D) (unbiased covariances)."""
    a, b = _features(feats_a, "features a"), _features(feats_b, "features b")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    return frechet_from_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def kid(
    feats_a, feats_b, subsets: int = 10, subset_size: int = 1000, degree: int = 3,
    gamma: float | None = None, coef0: float = 1.0, seed: int = 0,
) -> tuple[float, float]:  # fmt: skip
    """Kernel Inception Distance (Binkowski et al. 2018) between features (N, D) and (M, D).

    Unbiased MMD^2 with the polynomial kernel ``k(x, y) = (gamma x.y + coef0)^degree``
    (``gamma`` defaults to 1/D), on ``subsets`` seeded random subsets of
    ``min(subset_size, N, M)`` rows of each set drawn without replacement.
    Returns the mean and the standard deviation (ddof=0) over subsets.
    """
    a, b = _features(feats_a, "features a"), _features(feats_b, "features b")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (gamma * x @ x.T + coef0) ** degree
        kyy = (gamma * y @ y.T + coef0) ** degree
        kxy = (gamma * x @ y.T + coef0) ** degree
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        scores.append(within - 2 * kxy.mean())
    return float(np.mean(scores)), float(np.std(scores))
