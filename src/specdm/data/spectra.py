"""Spectra from one sensor's bands to another's, and spectral libraries fitted to a scene.

Resampling (:func:`resample_spectra`) treats a source spectrum as the piecewise-linear
function through its samples (band centres sorted by wavelength; AVIRIS's overlapping
spectrometers give centres that go back by a few nm) and computes each target band as

- without a target FWHM: that function at the band centre (linear interpolation);
- with a target FWHM: its integral against the band's Gaussian spectral response,
  computed exactly segment by segment (no quadrature error), the response cut at
  +-4 sigma and normalized to 1. When the source FWHM is known too, the source samples
  are already averages over their own responses, so the target response applied to them
  is the Gaussian of width ``sqrt(dst_fwhm**2 - src_fwhm**2)`` (widths of Gaussians add
  in quadrature); a target band no wider than the source's gets plain linear
  interpolation (the source is too coarse to integrate over). As the response narrows
  below the source spacing, the integral tends to linear interpolation anyway.

A target band must lie inside the source range: its centre (linear interpolation) or its
half-maximum interval ``centre +- FWHM/2`` (Gaussian response; the tail beyond the range
is dropped and the rest renormalized). Bands that do not are reported by name and
wavelength (:class:`DataError`), or become NaN with ``extrapolate="nan"``: nothing is
extrapolated. Invalid source samples (NaN) are left out of a target band while they
carry at most ``max_missing`` of its response weight (the rest is renormalized); beyond
that the band is NaN for that spectrum.

All wavelengths are in nm. :func:`library_for_scene` reads ENVI libraries with
:func:`specdm.io.read_spectral_library`, which converts micrometres (the USGS
splib07 files' unit) to nm; wavelengths given with an array are converted the same
way when every one is below 30 (so they can only be micrometres).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from specdm.errors import ConfigError, DataError
from specdm.io import read_spectral_library
from specdm.io.envi import _nm_factor  # the one micrometre rule of the readers

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
RESPONSE_SIGMAS = 4.0  # Gaussian responses are cut at +-4 sigma (6e-5 of the weight left out)
SELECTIONS = ("all", "kmeans", "random")


def response_matrix(
    src_wavelengths: Sequence[float],
    dst_wavelengths: Sequence[float],
    dst_fwhm: Sequence[float] | None = None,
    src_fwhm: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``W`` (B_dst, B_src), each row summing to 1, such that ``spectra @ W.T`` resamples
    (see the module text), and a boolean (B_dst,) of the target bands outside the source range
    (their rows are zero)."""
    src = _wavelengths(src_wavelengths, "source wavelengths")
    dst = _wavelengths(dst_wavelengths, "target wavelengths")
    order = np.argsort(src, kind="stable")
    xs = src[order]
    sigma = np.zeros(len(dst))
    if dst_fwhm is not None:
        f_dst = _per_band(dst_fwhm, len(dst), "target FWHM")
        f_src = 0.0 if src_fwhm is None else np.interp(dst, xs, _per_band(src_fwhm, len(src), "source FWHM")[order])
        sigma = np.sqrt(np.maximum(f_dst**2 - np.square(f_src), 0.0)) * FWHM_TO_SIGMA
    half = sigma / FWHM_TO_SIGMA / 2.0  # half of the effective FWHM; 0 for linear interpolation
    outside = (dst - half < xs[0]) | (dst + half > xs[-1])
    w_sorted = np.zeros((len(dst), len(xs)))
    for k in np.flatnonzero(~outside):
        if sigma[k] > 0:
            w_sorted[k] = _gaussian_weights(xs, dst[k], sigma[k])
        else:
            w_sorted[k] = _linear_weights(xs, dst[k])
    weights = np.zeros_like(w_sorted)
    weights[:, order] = w_sorted
    return weights, outside


def resample_spectra(
    spectra,
    src_wavelengths: Sequence[float],
    dst_wavelengths: Sequence[float],
    dst_fwhm: Sequence[float] | None = None,
    src_fwhm: Sequence[float] | None = None,
    extrapolate: str = "error",
    max_missing: float = 0.05,
    dst_names: Sequence[str] | None = None,
    source=None,
) -> np.ndarray:
    """Spectra ``(N, B_src)`` (or any ``(..., B_src)``) resampled to the target bands: ``(..., B_dst)``.

    ``extrapolate="error"`` (default) raises a :class:`DataError` naming ``source`` and
    listing the target bands outside the source range (``dst_names``, else ``band_<i>``,
    with their wavelengths); ``"nan"`` returns NaN for them. NaN source samples: see the
    module text (``max_missing``). The result has the input's float dtype (float64 for
    integer input).
    """
    if extrapolate not in ("error", "nan"):
        raise ConfigError(f"extrapolate must be 'error' or 'nan', got '{extrapolate}'")
    x = np.asarray(spectra)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    x = x.astype(np.float64)
    weights, outside = response_matrix(src_wavelengths, dst_wavelengths, dst_fwhm, src_fwhm)
    if x.shape[-1] != weights.shape[1]:
        raise DataError(f"spectra have {x.shape[-1]} bands but {weights.shape[1]} source wavelengths were given",
                        source)
    if outside.any() and extrapolate == "error":
        dst = np.asarray(dst_wavelengths, dtype=float)
        names = list(dst_names) if dst_names is not None else [f"band_{i + 1}" for i in range(len(dst))]
        listed = [f"{names[i]} ({dst[i]:g} nm)" for i in np.flatnonzero(outside)]
        src = np.asarray(src_wavelengths, dtype=float)
        more = f" and {len(listed) - 20} more" if len(listed) > 20 else ""
        raise DataError(
            f"{len(listed)} target band(s) lie outside the source range {src.min():g}..{src.max():g} nm"
            f"{' (with half their FWHM)' if dst_fwhm is not None else ''}: {', '.join(listed[:20])}{more}",
            source, hint="drop those bands, or pass extrapolate='nan' to get NaN for them",
        )
    valid = np.isfinite(x)
    covered = valid.astype(np.float64) @ weights.T
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.where(valid, x, 0.0) @ weights.T) / covered
    out[(covered < 1.0 - max_missing) | outside] = np.nan
    return out.astype(dtype)


def library_for_scene(
    library,
    scene_wavelengths: Sequence[float],
    scene_fwhm: Sequence[float] | None = None,
    max_spectra: int | None = None,
    select: str = "all",
    seed: int = 0,
    library_wavelengths: Sequence[float] | None = None,
    library_fwhm: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """A spectral library resampled to a scene's bands: ``(spectra (n_g, C) float32, names)``.

    ``library``: the header of an ENVI spectral library (path), or an array ``(N, B)`` with
    ``library_wavelengths`` (nm; micrometres are converted) and optional ``names``.
    Records are dropped when, after resampling, any band is NaN (ignore values or gaps
    where the scene needs them: see :func:`resample_spectra`), negative, or the spectrum
    is all zeros. Then, with ``max_spectra`` below the number left:

    - ``select="kmeans"``: k-means (scikit-learn, ``random_state=seed``) on the spectra
      divided by their Euclidean norm (shape, not brightness), keeping per cluster the
      real spectrum nearest its centre;
    - ``select="random"``: a seeded random subset.

    The kept spectra are returned in library order. Target bands outside the library's
    range raise a :class:`DataError` listing them.
    """
    if select not in SELECTIONS:
        raise ConfigError(f"unknown library selection '{select}'; choose one of {', '.join(SELECTIONS)}")
    if select == "all" and max_spectra is not None:
        raise ConfigError("max_spectra needs select='kmeans' or 'random' (select='all' keeps every spectrum)")
    if max_spectra is not None and max_spectra < 1:
        raise ConfigError(f"max_spectra must be at least 1, got {max_spectra}")
    source = None
    if isinstance(library, (str, Path)):
        source = str(library)
        spectra, wavelengths, names = read_spectral_library(library)
        if wavelengths is None:
            raise DataError("the library gives no wavelengths (no 'wavelength' field, no 'Wavelengths' record)",
                            source)
    else:
        spectra = np.asarray(library, dtype=np.float32)
        if spectra.ndim != 2:
            raise DataError(f"a spectral library is (spectra, bands), got shape {spectra.shape}")
        if library_wavelengths is None:
            raise ConfigError("give library_wavelengths (nm) with a library array")
        wavelengths = np.asarray(library_wavelengths, dtype=float)
        factor = _nm_factor(wavelengths, None)  # 1000 when they are micrometres
        wavelengths = wavelengths * factor
        if library_fwhm is not None:
            library_fwhm = np.asarray(library_fwhm, dtype=float) * factor
        names = list(names) if names is not None else [f"spectrum_{i}" for i in range(len(spectra))]
        if len(names) != len(spectra):
            raise DataError(f"{len(names)} names for {len(spectra)} spectra")
    resampled = resample_spectra(spectra, wavelengths, scene_wavelengths, dst_fwhm=scene_fwhm, src_fwhm=library_fwhm,
                                 source=source)
    ok = np.isfinite(resampled).all(1) & (resampled >= 0).all(1) & (np.abs(resampled).sum(1) > 0)
    if not ok.any():
        raise DataError(f"none of the {len(spectra)} spectra is valid over the scene's bands "
                        f"({min(scene_wavelengths):g}..{max(scene_wavelengths):g} nm)", source)
    keep = np.flatnonzero(ok)
    if max_spectra is not None and max_spectra < len(keep):
        keep = keep[_pick(resampled[keep], max_spectra, select, seed)]
    return resampled[keep].astype(np.float32), [names[i] for i in keep]


def _pick(spectra: np.ndarray, k: int, select: str, seed: int) -> np.ndarray:
    """Sorted positions of ``k`` representative rows of ``spectra``."""
    if select == "random":
        return np.sort(np.random.default_rng(seed).choice(len(spectra), k, replace=False))
    from sklearn.cluster import KMeans

    shapes = spectra / np.linalg.norm(spectra, axis=1, keepdims=True)
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(shapes)
    picks = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        dist = np.linalg.norm(shapes[members] - km.cluster_centers_[c], axis=1)
        picks.append(members[np.argmin(dist)])
    return np.sort(np.asarray(picks))


def _linear_weights(xs: np.ndarray, x: float) -> np.ndarray:
    """Weights of the sorted samples ``xs`` that interpolate linearly at ``x`` (inside the range)."""
    w = np.zeros(len(xs))
    if len(xs) == 1:
        w[0] = 1.0
        return w
    i = int(np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2))
    gap = xs[i + 1] - xs[i]
    t = (x - xs[i]) / gap if gap > 0 else 0.0
    w[i] += 1.0 - t
    w[i + 1] += t
    return w


def _gaussian_weights(xs: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    """Weights of the sorted samples ``xs``: the exact integral of the piecewise-linear function through
    them against a Gaussian (``centre``, ``sigma``) cut at +-4 sigma and the sample range, normalized."""
    a, b = xs[:-1], xs[1:]
    lo = np.clip(centre - RESPONSE_SIGMAS * sigma, a, b)
    hi = np.clip(centre + RESPONSE_SIGMAS * sigma, a, b)
    alpha, beta = (lo - centre) / sigma, (hi - centre) / sigma
    mass = ndtr(beta) - ndtr(alpha)  # integral of the response over [lo, hi]
    first = centre * mass + sigma * (_phi(alpha) - _phi(beta))  # integral of lambda * response
    gap = b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        to_a = np.where(gap > 0, (b * mass - first) / gap, 0.0)
        to_b = np.where(gap > 0, (first - a * mass) / gap, 0.0)
    w = np.zeros(len(xs))
    np.add.at(w, np.arange(len(a)), to_a)
    np.add.at(w, np.arange(1, len(xs)), to_b)
    w = np.maximum(w, 0.0)  # rounding of the clipped end segments
    return w / w.sum()


def _phi(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def _wavelengths(values, what: str) -> np.ndarray:
    w = np.asarray(values, dtype=float).reshape(-1)
    if w.size == 0 or not np.isfinite(w).all():
        raise DataError(f"{what} must be finite numbers (nm), got {w.size} values")
    return w


def _per_band(values, n: int, what: str) -> np.ndarray:
    v = np.asarray(values, dtype=float).reshape(-1)
    if v.size == 1:
        v = np.full(n, float(v[0]))
    if v.size != n or not np.isfinite(v).all() or (v < 0).any():
        raise DataError(f"{what}: need {n} non-negative numbers (nm), got {v.size}")
    return v
