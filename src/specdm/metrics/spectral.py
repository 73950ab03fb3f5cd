"""Spectral metrics: spectral angles, class-mean spectra, sPr/sRec and diversity.

Conventions (``/work/shared/PROTOCOL.md``): spectra are compared in the same
normalized units; angles are in radians (degrees only beside them); zero-norm
spectra have no angle, so they are excluded and counted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse
import torch

from specdm.errors import DataError

from ._arrays import as_float64


def sad(a, b, axis: int = -1) -> np.ndarray:
    """Spectral angle (radians, in [0, pi]) between spectra ``a`` and ``b`` along ``axis``.

    ``arccos`` of the cosine similarity clipped to [-1, 1]; ``a`` and ``b``
    broadcast. A pair in which either spectrum has zero norm gives NaN.
    """
    a, b = np.broadcast_arrays(as_float64(a, "a", finite=False), as_float64(b, "b", finite=False))
    norms = np.linalg.norm(a, axis=axis) * np.linalg.norm(b, axis=axis)
    dot = np.sum(a * b, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(norms > 0, dot / norms, np.nan)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def sad_stats(a, b, axis: int = -1) -> dict:
    """Mean spectral angle over all spectrum pairs, zero-norm pairs excluded and counted.

    Returns ``mean_rad``, ``mean_deg`` (NaN when no pair is valid), ``n_valid``
    (pairs averaged) and ``n_zero_norm`` (pairs where either spectrum is all zeros).
    """
    angles = np.atleast_1d(sad(a, b, axis=axis))
    valid = ~np.isnan(angles)
    mean = float(angles[valid].mean()) if valid.any() else float("nan")
    return {
        "mean_rad": mean,
        "mean_deg": float(np.degrees(mean)),
        "n_valid": int(valid.sum()),
        "n_zero_norm": int((~valid).sum()),
    }


class ClassSpectra:
    """Streaming per-class pixel counts, mean spectra and spectral standard deviations.

    Feed (image, mask) pairs with :meth:`update`; statistics are merged exactly
    (Chan et al.'s parallel update of mean and sum of squared deviations, in
    float64), so any split of the pixels into updates gives the same result.

    Attributes: ``num_classes`` (K), ``num_bands`` (C), ``counts`` (K,) int64.
    """

    def __init__(self, num_classes: int, num_bands: int):
        self.num_classes = int(num_classes)
        self.num_bands = int(num_bands)
        self.counts = np.zeros(self.num_classes, dtype=np.int64)
        self._mean = np.zeros((self.num_classes, self.num_bands))
        self._m2 = np.zeros((self.num_classes, self.num_bands))

    def update(self, image, mask) -> None:
        """Add one pair: ``image`` (H, W, C) channel-last, ``mask`` (H, W) of class values 0..K-1."""
        x = as_float64(image, "image")
        m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        if x.shape != m.shape + (self.num_bands,):
            raise DataError(
                f"image {x.shape} and mask {m.shape} do not match (expected image = mask shape + ({self.num_bands},))"
            )
        if not (np.issubdtype(m.dtype, np.integer) or m.dtype == bool):
            raise DataError(f"mask must hold integer class values, got dtype {m.dtype}")
        m = m.reshape(-1).astype(np.int64)
        x = x.reshape(-1, self.num_bands)
        if m.size and (m.min() < 0 or m.max() >= self.num_classes):
            raise DataError(f"mask values {m.min()}..{m.max()} outside the classes 0..{self.num_classes - 1}")
        onehot = scipy.sparse.csr_matrix(
            (np.ones(m.size), (m, np.arange(m.size))), shape=(self.num_classes, m.size)
        )
        n_b = np.bincount(m, minlength=self.num_classes)
        present = n_b > 0
        mean_b = np.zeros_like(self._mean)
        mean_b[present] = (onehot @ x)[present] / n_b[present, None]
        m2_b = onehot @ (x - mean_b[m]) ** 2
        n_a = self.counts
        n = n_a + n_b
        delta = mean_b - self._mean
        frac_b = np.divide(n_b, n, out=np.zeros(len(n)), where=n > 0)[:, None]
        self._mean += delta * frac_b
        self._m2 += m2_b + delta**2 * n_a[:, None] * frac_b
        self.counts = n

    def means(self) -> np.ndarray:
        """Class-mean spectra (K, C); NaN rows for classes with no pixels."""
        return np.where(self.counts[:, None] > 0, self._mean, np.nan)

    def std(self) -> np.ndarray:
        """Per-class, per-band population standard deviation (ddof=0), (K, C); NaN rows for empty classes."""
        var = np.divide(self._m2, self.counts[:, None], out=np.full_like(self._m2, np.nan), where=self.counts[:, None] > 0)
        return np.sqrt(var)

    def proportions(self) -> np.ndarray:
        """Fraction of all pixels seen that belong to each class (K,); zeros before any update."""
        return self.counts / max(int(self.counts.sum()), 1)

    def to_dict(self) -> dict:
        """JSON-able state (plain ints, floats and lists)."""
        return {
            "num_classes": self.num_classes,
            "num_bands": self.num_bands,
            "counts": self.counts.tolist(),
            "mean": self._mean.tolist(),
            "m2": self._m2.tolist(),
        }

    @classmethod
    def of_windows(cls, x: np.ndarray, y: np.ndarray, num_classes: int) -> "ClassSpectra":
        """Statistics of windows ``x (N, T, C, H, W)`` (every date counts) with masks ``y (N, H, W)``."""
        stats = cls(num_classes, x.shape[2])
        for images, mask in zip(x, y):
            for im in images:
                stats.update(np.moveaxis(im, 0, -1), mask)
        return stats

    @classmethod
    def from_dict(cls, d: dict) -> "ClassSpectra":
        """Rebuild from :meth:`to_dict` output."""
        out = cls(d["num_classes"], d["num_bands"])
        out.counts = np.asarray(d["counts"], dtype=np.int64).reshape(out.num_classes)
        out._mean = np.asarray(d["mean"], dtype=np.float64).reshape(out.num_classes, out.num_bands)
        out._m2 = np.asarray(d["m2"], dtype=np.float64).reshape(out.num_classes, out.num_bands)
        return out


def per_class_sad(real: ClassSpectra, synth: ClassSpectra, classes=None) -> dict[int, float]:
    """SAD (radians) between the real and synthetic class-mean spectra, per class.

    ``classes`` defaults to all 0..K-1. A class with no pixels in either set, or
    whose mean spectrum has zero norm, gets NaN.
    """
    if (real.num_classes, real.num_bands) != (synth.num_classes, synth.num_bands):
        raise DataError(
            f"class statistics differ in shape: real has {real.num_classes} classes x {real.num_bands} bands, "
            f"synthetic {synth.num_classes} x {synth.num_bands}"
        )
    angles = sad(real.means(), synth.means())
    classes = range(real.num_classes) if classes is None else classes
    return {int(c): float(angles[c]) for c in classes}


def msad(real: ClassSpectra, synth: ClassSpectra, classes=None) -> float:
    """PROTOCOL's mSAD: mean of :func:`per_class_sad` over the classes present in both sets (NaN if none)."""
    values = np.array(list(per_class_sad(real, synth, classes).values()), dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def _kth_neighbour_radii(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    radii = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for s in range(0, len(x), chunk):
        radii[s : s + chunk] = torch.cdist(x[s : s + chunk], x).kthvalue(k + 1, dim=1).values
    return radii


def spectral_precision_recall(
    real, fake, k: int = 10, groups: int = 10, max_per_group: int | None = None, seed: int = 0, device=None
) -> dict:
    """Improved precision and recall (Kynkaanniemi et al. 2019) on per-pixel spectra (sPr/sRec).

    ``real`` (N, C) and ``fake`` (M, C). Both sets are cut to the same size
    ``n = min(N, M)`` (capped at ``groups * max_per_group``) by seeded random
    subsampling, then split into ``groups`` equal groups. Within a group, each
    spectrum's radius is the Euclidean distance to its k-th nearest neighbour in
    its own set (itself excluded). Precision is the fraction of fake spectra
    within the radius of some real spectrum, recall the fraction of real spectra
    within the radius of some fake spectrum; both are averaged over groups.

    Returns ``precision``, ``recall``, ``n_spectra`` (spectra used per set) and ``groups``.
    """
    real = as_float64(real, "real spectra")
    fake = as_float64(fake, "fake spectra")
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise DataError(f"spectra must be (N, C) with equal C, got real {real.shape} and fake {fake.shape}")
    rng = np.random.default_rng(seed)
    n = min(len(real), len(fake))
    if max_per_group is not None:
        n = min(n, groups * max_per_group)
    per_group = n // groups
    if per_group <= k:
        raise DataError(f"{n} spectra per set give {per_group} per group, need more than k={k}")
    n = per_group * groups
    real_t = torch.from_numpy(real[rng.permutation(len(real))[:n]]).to(device or "cpu")
    fake_t = torch.from_numpy(fake[rng.permutation(len(fake))[:n]]).to(device or "cpu")
    chunk = max(1, 2**23 // per_group)
    precisions, recalls = [], []
    for g in range(groups):
        r = real_t[g * per_group : (g + 1) * per_group]
        f = fake_t[g * per_group : (g + 1) * per_group]
        r_radii = _kth_neighbour_radii(r, k, chunk)
        f_radii = _kth_neighbour_radii(f, k, chunk)
        fake_inside = torch.zeros(per_group, dtype=torch.bool, device=r.device)
        real_covered = torch.zeros(per_group, dtype=torch.bool, device=r.device)
        for s in range(0, per_group, chunk):
            d = torch.cdist(f[s : s + chunk], r)
            fake_inside[s : s + chunk] = (d <= r_radii[None, :]).any(dim=1)
            real_covered |= (d <= f_radii[s : s + chunk, None]).any(dim=0)
        precisions.append(fake_inside.double().mean().item())
        recalls.append(real_covered.double().mean().item())
    return {"precision": float(np.mean(precisions)), "recall": float(np.mean(recalls)), "n_spectra": n, "groups": groups}


def _pairs_mean(values: np.ndarray) -> tuple[float, int]:
    """Mean over pixels of the per-pixel mean over pairs; ``values`` (pairs, P), NaN = invalid pair.

    Returns the mean and the number of pixels with at least one valid pair.
    """
    valid = ~np.isnan(values)
    count = valid.sum(axis=0)
    per_pixel = np.where(valid, values, 0.0).sum(axis=0)[count > 0] / count[count > 0]
    return (float(per_pixel.mean()) if per_pixel.size else float("nan")), int(per_pixel.size)


def spectral_diversity(
    samples, features: Callable[[np.ndarray], np.ndarray] | None = None, max_pixels: int | None = None, seed: int = 0
) -> dict:
    """HyperLDM-style diversity of N generated versions of the same scene: SD and SDM.

    Follows the description in HyperLDM (hyperspectral image generation from RGB
    with latent diffusion); its exact formulas were not available, so:

    - SD: for each pixel, the mean spectral angle (radians) over all pairs
      i < j of the N versions' spectra at that pixel; averaged over pixels.
      Pairs with a zero-norm spectrum are excluded (pixels with none left too).
    - SDM: the same with the Euclidean distance between the versions' features
      ``features(spectra)``, which maps spectra (P, C) to features (P, D) (HyperLDM:
      the penultimate layer of a pixel classifier trained on real labelled
      pixels, e.g. ``lambda s: extract_features(model, s)`` with a
      :class:`specdm.evaluation.classification.SpectralPixelClassifier`); NaN when
      ``features`` is None.

    ``samples``: (N, H, W, C) or (N, P, C), N >= 2, pixel-aligned versions.
    ``max_pixels`` evaluates a seeded random subset of pixels.
    Returns ``sd``, ``sdm``, ``n_versions`` and ``n_pixels`` (pixels averaged for SD).
    """
    x = as_float64(samples, "samples")
    if x.ndim not in (3, 4) or x.shape[0] < 2:
        raise DataError(f"samples must be (N, H, W, C) or (N, P, C) with N >= 2, got {x.shape}")
    n_versions, n_bands = x.shape[0], x.shape[-1]
    x = x.reshape(n_versions, -1, n_bands)
    if max_pixels is not None and x.shape[1] > max_pixels:
        x = x[:, np.sort(np.random.default_rng(seed).choice(x.shape[1], max_pixels, replace=False))]
    i, j = np.triu_indices(n_versions, k=1)
    sd, n_pixels = _pairs_mean(sad(x[i], x[j]))
    sdm = float("nan")
    if features is not None:
        feats = as_float64(features(x.reshape(-1, n_bands)), "features")
        if feats.ndim != 2 or len(feats) != n_versions * x.shape[1]:
            raise DataError(f"features must map {n_versions * x.shape[1]} spectra to (P, D), got {feats.shape}")
        feats = feats.reshape(n_versions, x.shape[1], -1)
        sdm, _ = _pairs_mean(np.linalg.norm(feats[i] - feats[j], axis=-1))
    return {"sd": sd, "sdm": sdm, "n_versions": n_versions, "n_pixels": n_pixels}
