"""Texture: how much spatial detail windows carry, the same way for real and synthetic sets.

Every statistic is computed per image window in normalized units (``(N, C, H, W)``; a change pair gives one
window per date) and averaged over windows:

- ``within_window_std``: per band, the standard deviation of the window's pixels; mean over bands;
- ``edge_density``: the share of pixels whose Sobel gradient magnitude (per band image, reflected borders, then
  the mean over bands) exceeds a threshold fitted on the real windows
  (:func:`edge_threshold`: the real magnitudes' ``EDGE_QUANTILE`` quantile, so the real density is about
  ``1 - EDGE_QUANTILE``);
- ``power``: radially averaged spatial power spectra per band (window minus its mean, ``|FFT2|^2 / (H W)``),
  averaged in a few frequency bins (``POWER_BINS``, cycles per pixel; the DC term left out; None for a bin no
  frequency of the window size falls in);

and per class, the ``class_spread`` of pixel spectra: the mean over bands of the per-band standard deviation of
the class's pixels (from :class:`~specdm.metrics.spectral.ClassSpectra`). :func:`compare_texture` sets real and
synthetic values side by side with their ratio (synthetic / real).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from specdm.errors import DataError

EDGE_QUANTILE = 0.9
POWER_BINS = ((1 / 32, 1 / 16), (1 / 16, 1 / 8), (1 / 8, 1 / 4), (1 / 4, 1 / 2))
TOLERANCE = 0.1  # the target: within 10 % of real


def _windows(x: np.ndarray) -> np.ndarray:
    """(N, T, C, H, W) or (N, C, H, W) -> (N*T, C, H, W) float64."""
    x = np.asarray(x)
    if x.ndim == 5:
        x = x.reshape(-1, *x.shape[2:])
    if x.ndim != 4:
        raise DataError(f"texture statistics take windows (N, [T,] C, H, W), got shape {x.shape}")
    return x.astype(np.float64, copy=False)


def _sobel(w: np.ndarray, axis: int) -> np.ndarray:
    """The Sobel derivative of every band image along ``axis`` (-2 or -1), smoothed along the other spatial axis
    only (``ndimage.sobel`` would smooth across windows and bands too)."""
    other = -1 if axis == -2 else -2
    d = ndimage.correlate1d(w, [-1.0, 0.0, 1.0], axis=axis, mode="reflect")
    return ndimage.correlate1d(d, [1.0, 2.0, 1.0], axis=other, mode="reflect")


def gradient_magnitude(x: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of each window, the mean over bands: (N*T, H, W)."""
    w = _windows(x)
    return np.sqrt(_sobel(w, -2) ** 2 + _sobel(w, -1) ** 2).mean(axis=1)


def edge_threshold(x: np.ndarray, quantile: float = EDGE_QUANTILE) -> float:
    """The gradient magnitude that the share ``1 - quantile`` of the (real) windows' pixels exceed."""
    return float(np.quantile(gradient_magnitude(x), quantile))


def radial_power(x: np.ndarray, bins=POWER_BINS) -> np.ndarray:
    """Mean spatial power per window, band and frequency bin: (N*T, C, len(bins))."""
    w = _windows(x)
    h, wd = w.shape[-2:]
    f = np.fft.fft2(w - w.mean(axis=(-2, -1), keepdims=True))
    p = (f.real**2 + f.imag**2) / (h * wd)
    r = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(wd), indexing="ij"))
    out = np.full((*w.shape[:2], len(bins)), np.nan)  # NaN: no frequency of the window falls in the bin
    for j, (lo, hi) in enumerate(bins):
        sel = (r >= lo) & (r < hi if j < len(bins) - 1 else r <= np.sqrt(0.5))
        if sel.any():
            out[..., j] = p[..., sel].mean(axis=-1)
    return out


class TextureStats:
    """Streaming texture statistics of windows (module docstring): feed batches with :meth:`update`, read
    :meth:`summary`. ``threshold``: the edge threshold (fitted on real windows); None leaves the edge density out."""

    def __init__(self, num_bands: int, threshold: float | None = None, bins=POWER_BINS):
        self.num_bands, self.threshold, self.bins = int(num_bands), threshold, tuple(tuple(b) for b in bins)
        self.windows = 0
        self._std = 0.0
        self._edges = 0.0
        self._power = np.zeros((self.num_bands, len(self.bins)))

    def update(self, x: np.ndarray) -> "TextureStats":
        w = _windows(x)
        if w.shape[1] != self.num_bands:
            raise DataError(f"windows have {w.shape[1]} bands, the statistics {self.num_bands}")
        self.windows += len(w)
        self._std += float(w.std(axis=(-2, -1)).mean(axis=1).sum())
        if self.threshold is not None:
            self._edges += float((gradient_magnitude(w) > self.threshold).mean(axis=(-2, -1)).sum())
        self._power += radial_power(w, self.bins).sum(axis=0)
        return self

    def summary(self) -> dict:
        n = max(self.windows, 1)
        power = self._power / n

        def listed(a):
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {"windows": self.windows, "within_window_std": self._std / n,
                "edge_density": None if self.threshold is None else self._edges / n,
                "edge_threshold": self.threshold, "power_bins": [list(b) for b in self.bins],
                "power": listed(power.mean(axis=0)), "power_per_band": [listed(b) for b in power]}


def texture_stats(x: np.ndarray, threshold: float | None = None, bins=POWER_BINS, batch: int = 16) -> dict:
    """:class:`TextureStats` of windows ``x`` (N, [T,] C, H, W), in batches."""
    w = np.asarray(x)
    w = w.reshape(-1, *w.shape[2:]) if w.ndim == 5 else w
    stats = TextureStats(w.shape[1], threshold, bins)
    for s in range(0, len(w), batch):
        stats.update(w[s : s + batch])
    return stats.summary()


def class_spread(std: np.ndarray) -> np.ndarray:
    """Per class, the mean over bands of the per-band standard deviation of its pixels (K,), from
    :meth:`ClassSpectra.std` (K, C); NaN for classes without pixels."""
    std = np.asarray(std, dtype=np.float64)
    out = np.full(len(std), np.nan)
    ok = np.isfinite(std).all(axis=1)
    out[ok] = std[ok].mean(axis=1)
    return out


def _ratio(real, synth):
    if real is None or synth is None or not np.isfinite(real) or not np.isfinite(synth) or real == 0:
        return None
    return float(synth / real)


def compare_texture(real: dict, synth: dict, real_spread=None, synth_spread=None, class_names=None,
                    ignore_index: int | None = None) -> dict:
    """Real and synthetic texture statistics (:meth:`TextureStats.summary`) and per-class spreads (K,) side by
    side: each with ``real``, ``synthetic`` and ``ratio`` (synthetic / real), ``within_tolerance`` (ratio within
    ``TOLERANCE`` of 1) and the classes whose spread is."""
    def row(a, b):
        r = _ratio(a, b)
        return {"real": a, "synthetic": b, "ratio": r, "within_tolerance": None if r is None else abs(r - 1) <= TOLERANCE}

    out = {"tolerance": TOLERANCE,
           "within_window_std": row(real["within_window_std"], synth["within_window_std"]),
           "edge_density": {**row(real.get("edge_density"), synth.get("edge_density")),
                            "threshold": real.get("edge_threshold"), "quantile": EDGE_QUANTILE},
           "power": {"bins": real["power_bins"],
                     "rows": [row(a, b) for a, b in zip(real["power"], synth["power"])]},
           "windows": {"real": real["windows"], "synthetic": synth["windows"]}}
    if real_spread is not None and synth_spread is not None:
        names = class_names or [str(k) for k in range(len(real_spread))]
        rows = []
        for k, name in enumerate(names):
            a, b = real_spread[k], synth_spread[k]
            if k == ignore_index or not (np.isfinite(a) and np.isfinite(b)):
                continue
            rows.append({"class": k, "name": name, **row(float(a), float(b))})
        out["class_spread"] = rows
    return out


def texture_markdown(t: dict) -> list[str]:
    """The ``## Texture`` section of a report (``specdm evaluate``, the dataset card) from
    :func:`compare_texture`'s result."""

    def f(v, spec: str = ".4g") -> str:
        return "n/a" if v is None else format(v, spec)

    edges = t["edge_density"]
    rows = [("within-window standard deviation", t["within_window_std"]),
            (f"edge density (Sobel magnitude above the real {edges.get('quantile')} quantile, "
             f"{f(edges.get('threshold'))})", edges)]
    rows += [(f"spatial power, {lo:.3g}-{hi:.3g} cycles/pixel (mean over bands)", r)
             for (lo, hi), r in zip(t["power"]["bins"], t["power"]["rows"])]
    lines = ["## Texture", "",
             f"Per window (each date one window), normalized units; {t['windows']['real']} real and "
             f"{t['windows']['synthetic']} synthetic windows. Target: ratio within {t['tolerance']:.0%} of 1.", "",
             "| statistic | real | synthetic | ratio |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {f(r['real'])} | {f(r['synthetic'])} | {f(r['ratio'], '.3f')} |" for name, r in rows]
    if t.get("class_spread"):
        lines += ["", "Per class, the spread of pixel spectra (mean over bands of the per-band standard deviation):",
                  "", "| value | class | real | synthetic | ratio |", "|---:|---|---:|---:|---:|"]
        lines += [f"| {r['class']} | {r['name']} | {f(r['real'])} | {f(r['synthetic'])} | {f(r['ratio'], '.3f')} |"
                  for r in t["class_spread"]]
    return lines


__all__ = ["EDGE_QUANTILE", "POWER_BINS", "TOLERANCE", "TextureStats", "class_spread", "compare_texture",
           "edge_threshold", "gradient_magnitude", "radial_power", "texture_markdown", "texture_stats"]
