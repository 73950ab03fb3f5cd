"""RGB images that RGB-conditioned synthesis (HyperLDM) is conditioned on.

:func:`rgb_from_scene` makes the RGB image of a spectral scene, the same way at training
and at sampling time:

- ``"bands"``: the sensor's own red, green and blue bands: ``rgb_bands`` when given,
  else by name (Sentinel-2 B04/B03/B02), else the bands nearest 650/550/470 nm (each
  within 60 nm).
- ``"cie"``: a colour camera simulated on a hyperspectral cube: each pixel's spectrum
  (the piecewise-linear function through its bands) is integrated against the CIE 1931
  2-degree colour-matching functions to XYZ, then mapped to linear sRGB with the
  IEC 61966-2-1 (D65) matrix. The colour-matching functions are the analytic multi-lobe
  Gaussian fit of Wyman, Sloan and Shirley, "Simple Analytic Approximations to the CIE
  XYZ Color Matching Functions", JCGT 2(2), 2013 (their eq. 2; within the variability of
  the measured functions), so no table is embedded. The spectrum is taken as reflectance
  under an equal-energy light and the camera white-balanced to it: a flat spectrum gives
  R = G = B.
- ``"auto"``: ``"cie"`` when the wavelengths sample 400-700 nm densely (first band at most
  410 nm, last at least 690 nm, no gap over 30 nm), else ``"bands"``.

Both then clip negatives (colours outside the sRGB gamut), divide by a robust maximum
(the ``percentile``-th percentile of all three channels together, so colour balance is
kept; or a fixed ``scale``, e.g. fitted on the training scene, so that windows of one
scene share one brightness), clip to [0, 1] and, with ``srgb=True`` (default), apply the
sRGB transfer curve, so that the condition looks like the 8-bit photographs users give at
sampling time (:func:`read_rgb`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from specdm.data.spectra import response_matrix
from specdm.datasets.sensors import rgb_indices
from specdm.errors import ConfigError, DataError
from specdm.io.masks import TIFF_SUFFIXES, read_label_array

METHODS = ("auto", "bands", "cie")
RGB_TARGETS_NM = (650.0, 550.0, 470.0)
MAX_BAND_OFFSET_NM = 60.0  # a band further than this from 650/550/470 nm is not that colour
SENTINEL2_RGB = ("B04", "B03", "B02")
RGB_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".npy", *TIFF_SUFFIXES)

# Wyman, Sloan, Shirley (2013), multi-lobe fit of the CIE 1931 2-degree observer:
# per function, lobes (weight, mean nm, sigma below the mean, sigma above the mean).
CIE1931_LOBES = {
    "x": ((1.056, 599.8, 37.9, 31.0), (0.362, 442.0, 16.0, 26.7), (-0.065, 501.1, 20.4, 26.2)),
    "y": ((0.821, 568.8, 46.9, 40.5), (0.286, 530.9, 16.3, 31.1)),
    "z": ((1.217, 437.0, 11.8, 36.0), (0.681, 459.0, 26.0, 13.8)),
}
CIE_RANGE_NM = (360.0, 830.0)
# XYZ -> linear sRGB (IEC 61966-2-1, D65 white)
XYZ_TO_SRGB = np.array([
    [3.2406, -1.5372, -0.4986],
    [-0.9689, 1.8758, 0.0415],
    [0.0557, -0.2040, 1.0570],
])


def cie_1931(wavelengths) -> np.ndarray:
    """The CIE 1931 2-degree colour-matching functions at ``wavelengths`` (nm): ``(len, 3)`` (x, y, z)."""
    lam = np.asarray(wavelengths, dtype=np.float64)[..., None]
    out = []
    for lobes in CIE1931_LOBES.values():
        total = 0.0
        for weight, mean, below, above in lobes:
            sigma = np.where(lam < mean, below, above)
            total = total + weight * np.exp(-0.5 * ((lam - mean) / sigma) ** 2)
        out.append(total)
    return np.concatenate(out, axis=-1)


def rgb_from_scene(
    image,
    wavelengths: Sequence[float] | None = None,
    band_names: Sequence[str] | None = None,
    method: str = "auto",
    rgb_bands: Sequence[int] | None = None,
    percentile: float = 99.0,
    scale: float | None = None,
    srgb: bool = True,
    source=None,
) -> np.ndarray:
    """The RGB image of a spectral ``image`` ``(H, W, C)`` (any ``(..., C)``): ``(..., 3)`` float32 in [0, 1].

    See the module text for the methods. A method that the bands do not allow raises a
    :class:`DataError` naming ``source`` and what is missing.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown RGB method '{method}'; choose one of {', '.join(METHODS)}")
    x = np.asarray(image, dtype=np.float64)
    n = x.shape[-1]
    wl = None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)
    if wl is not None and len(wl) != n:
        raise DataError(f"{len(wl)} wavelengths for {n} bands", source)
    if band_names is not None and len(band_names) != n:
        raise DataError(f"{len(band_names)} band names for {n} bands", source)
    linear = linear_rgb(x, wl, band_names, method, rgb_bands, source)[0]
    top = float(scale) if scale is not None else float(np.percentile(linear, percentile)) if linear.size else 0.0
    rgb = np.clip(linear / top, 0.0, 1.0) if top > 0 else np.zeros_like(linear)
    if srgb:
        rgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    return rgb.astype(np.float32)


def linear_rgb(x: np.ndarray, wl: np.ndarray | None, band_names=None, method: str = "auto", rgb_bands=None,
               source=None) -> tuple[np.ndarray, str, list[int] | None]:
    """Linear, unscaled colours of spectra ``x (..., C)`` (negatives clipped): ``(linear, method, bands)`` with
    ``"auto"`` resolved and, for ``"bands"``, the band indices used."""
    if method == "auto":
        method = "cie" if wl is not None and covers_visible(wl) and rgb_bands is None else "bands"
    bands = None
    if method == "cie":
        if wl is None or not covers_visible(wl):
            got = "no wavelengths" if wl is None else f"bands at {_list_nm(wl)}"
            raise DataError(f"the CIE method needs bands sampling 400-700 nm densely (first <= 410 nm, last >= "
                            f"690 nm, no gap over 30 nm); the image has {got}", source,
                            hint="use method='bands'")
        linear = x @ cie_weights(wl).T
    else:
        bands = list(pick_rgb_bands(x.shape[-1], wl, band_names, rgb_bands, source))
        linear = x[..., bands]
    return np.maximum(linear, 0.0), method, bands


def fit_rgb(
    pixels,
    wavelengths: Sequence[float] | None = None,
    band_names: Sequence[str] | None = None,
    method: str = "auto",
    rgb_bands: Sequence[int] | None = None,
    percentile: float = 99.0,
    source=None,
) -> dict:
    """The settings of :func:`rgb_from_scene` fixed on training ``pixels`` ``(..., C)`` in the data's units:
    ``{"method", "rgb_bands", "scale", "srgb"}`` with ``"auto"`` resolved, the bands picked and one ``scale``
    (the ``percentile``-th percentile of the linear colours), so that every window of a scene, at training
    and at evaluation, gets its RGB the same way: ``rgb_from_scene(x, wavelengths, band_names, **settings)``."""
    if method not in METHODS:
        raise ConfigError(f"unknown RGB method '{method}'; choose one of {', '.join(METHODS)}")
    wl = None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)
    linear, method, bands = linear_rgb(np.asarray(pixels, dtype=np.float64), wl, band_names, method, rgb_bands, source)
    scale = float(np.percentile(linear, percentile))
    if not scale > 0:
        raise DataError(f"the training pixels' colours are all zero (the {percentile:g}th percentile is {scale:g})",
                        source)
    return {"method": method, "rgb_bands": bands, "scale": scale, "srgb": True}


def cie_weights(wavelengths: Sequence[float]) -> np.ndarray:
    """``(3, C)``: weights that map a spectrum sampled at ``wavelengths`` (nm) to linear sRGB,
    white-balanced so that a flat spectrum gives R = G = B = its value."""
    grid = np.arange(CIE_RANGE_NM[0], CIE_RANGE_NM[1] + 0.5, 1.0)
    wl = np.asarray(wavelengths, dtype=np.float64)
    grid = grid[(grid >= wl.min()) & (grid <= wl.max())]
    interp, _ = response_matrix(wl, grid)  # (grid, C): linear interpolation of the bands on a 1 nm grid
    xyz = cie_1931(grid).T @ interp  # (3, C), 1 nm steps
    rgb = XYZ_TO_SRGB @ xyz
    return rgb / rgb.sum(axis=1, keepdims=True)  # a flat spectrum (all ones) -> (1, 1, 1)


def covers_visible(wavelengths) -> bool:
    """Do the band centres (nm) sample 400-700 nm densely enough for the CIE method?"""
    wl = np.sort(np.asarray(wavelengths, dtype=np.float64))
    if wl.size < 2 or wl[0] > 410.0 or wl[-1] < 690.0:
        return False
    inside = wl[(wl >= 400.0) & (wl <= 700.0)]
    edges = np.concatenate([[max(wl[0], 400.0)], inside, [min(wl[-1], 700.0)]])
    return bool(np.diff(edges).max() <= 30.0)


def pick_rgb_bands(num_bands: int, wavelengths=None, band_names=None, rgb_bands=None, source=None) -> tuple[int, int, int]:
    """Indices of the red, green and blue bands: ``rgb_bands``, else by Sentinel-2 name
    (B04/B03/B02), else nearest 650/550/470 nm (each within 60 nm)."""
    if rgb_bands is not None:
        idx = tuple(int(b) for b in rgb_bands)
        if len(idx) != 3 or any(not 0 <= b < num_bands for b in idx):
            raise ConfigError(f"rgb_bands must be 3 band indices in 0..{num_bands - 1}, got {list(rgb_bands)}")
        return idx  # type: ignore[return-value]
    if band_names is not None and all(n in band_names for n in SENTINEL2_RGB):
        return rgb_indices(list(band_names), *SENTINEL2_RGB)
    if wavelengths is not None:
        wl = np.asarray(wavelengths, dtype=np.float64)
        idx = tuple(int(np.argmin(np.abs(wl - t))) for t in RGB_TARGETS_NM)
        far = [f"{t:g} nm (nearest {wl[i]:g} nm)" for t, i in zip(RGB_TARGETS_NM, idx)
               if abs(wl[i] - t) > MAX_BAND_OFFSET_NM]
        if far:
            raise DataError(f"no band within {MAX_BAND_OFFSET_NM:g} nm of {', '.join(far)}: the sensor has no "
                            "red, green and blue bands", source, hint="give rgb_bands, or an RGB image")
        return idx  # type: ignore[return-value]
    raise DataError("cannot tell the red, green and blue bands: no wavelengths and no Sentinel-2 band names "
                    f"({', '.join(SENTINEL2_RGB)})", source, hint="give wavelengths or rgb_bands")


def read_rgb(path: str | Path) -> np.ndarray:
    """An RGB image file as ``(H, W, 3)`` float32 in [0, 1]: PNG, JPEG, BMP (Pillow), (Geo)TIFF (tifffile) or
    ``.npy`` (an ``(H, W, 3)`` array, read without pickles).

    Integer values are divided by their type's maximum (255 for 8 bits, 65535 for 16);
    float values must already lie in [0, 1]. A palette image gives its colours; an alpha
    channel is dropped when it is constant (opaque). Any other number of channels, or an
    alpha channel that varies, raises a :class:`DataError` naming the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RGB_SUFFIXES:
        raise DataError(f"unsupported RGB image format '{path.suffix}'; supported: {', '.join(RGB_SUFFIXES)}", path)
    if suffix in TIFF_SUFFIXES:
        array, _ = read_label_array(path)  # tifffile; bands stored one after another come channel-last
    elif not path.is_file():
        raise DataError("file not found", path)
    elif suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise DataError(f"not a readable .npy array, truncated or corrupt ({err})", path) from None
    else:
        try:
            with Image.open(path) as im:
                if im.mode == "P":  # a palette image: its colours, not its indices
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                array = np.array(im)
        except Exception as err:
            raise DataError(f"not a readable image, truncated or corrupt ({err})", path) from err
    channels = 1 if array.ndim == 2 else array.shape[-1]
    if array.ndim == 3 and channels == 4 and np.all(array[..., 3] == array[0, 0, 3]):
        array, channels = array[..., :3], 3
    if array.ndim != 3 or channels != 3:
        what = "a varying alpha channel" if channels == 4 else f"{channels} channel(s)"
        raise DataError(f"an RGB image needs 3 channels (red, green, blue); this one has {what} "
                        f"(shape {array.shape})", path)
    if array.dtype.kind in "iu":
        return (array.astype(np.float64) / np.iinfo(array.dtype).max).clip(0, 1).astype(np.float32)
    if array.dtype.kind == "b":
        return array.astype(np.float32)
    if array.dtype.kind != "f":
        raise DataError(f"holds {array.dtype} values, not colours", path)
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise DataError(f"float colours must lie in [0, 1], got {np.nanmin(array):g}..{np.nanmax(array):g} "
                        f"(or NaN)", path, hint="scale the image to [0, 1] or store it as 8 or 16 bits")
    return array.astype(np.float32)


def _list_nm(wl: np.ndarray, most: int = 8) -> str:
    text = ", ".join(f"{w:g}" for w in wl[:most])
    return f"{text}{', ...' if len(wl) > most else ''} nm"


class WindowRGB:
    """The RGB of normalized spectral windows, made the same way at training and at evaluation.

    ``windows (N, C, H, W)`` in normalized units are mapped back to the data's units
    (``normalizer.inverse``) and through :func:`rgb_from_scene` with the ``settings`` of
    :func:`fit_rgb` -> ``(N, 3, H, W)`` float32 in [0, 1].
    """

    def __init__(self, normalizer, wavelengths, band_names, settings: dict):
        self.normalizer, self.wavelengths, self.band_names = normalizer, wavelengths, band_names
        self.settings = dict(settings)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        spectra = self.normalizer.inverse(np.moveaxis(np.asarray(windows, np.float32), 1, -1))
        rgb = rgb_from_scene(spectra, self.wavelengths, self.band_names, **self.settings)
        return np.ascontiguousarray(np.moveaxis(rgb, -1, 1))
