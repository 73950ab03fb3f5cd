"""Spectral alignment: resample scenes of different sensors onto one wavelength grid.

HSIGene trains one model on several hyperspectral data sets by aligning all of them to
48 bands from 400 to 1000 nm by linear interpolation (:func:`wavelength_grid` gives that
grid). The resampling itself is :func:`specdm.data.spectra.resample_spectra`, pixel by
pixel; this module decides how, which bands, and makes the new :class:`Scene`:

- **linear** (the paper's, and the default when the scene's band widths are unknown):
  each grid band is the piecewise-linear spectrum through the band centres at its centre.
  A spectrum linear in wavelength is reproduced exactly.
- **gaussian** (``method="auto"`` when ``scene.extra["fwhm"]`` is known, or asked for):
  each grid band integrates that spectrum under a Gaussian response of the target width
  (``fwhm``, by default the grid spacing) minus, in quadrature, the scene's own width; a
  grid band no wider than the scene's bands there is linearly interpolated. This keeps
  narrow features from aliasing when e.g. 200 AVIRIS bands of ~10 nm go onto 12.8 nm steps.

Coverage (:func:`coverage`): a grid band is covered when its centre lies between the
scene's first and last band centres, with Gaussian responses also its half-maximum
interval, and, with ``max_gap``, not inside a gap wider than ``max_gap`` nm between two
neighbouring centres (e.g. Sentinel-2's 865 -> 1614 nm). Uncovered bands are an error
unless ``outside="drop"`` (leave them out) or ``outside="mask"`` (keep every grid band,
fill the uncovered ones with 0 and record ``extra["band_valid"]``, for losses that skip
them). ``outside="nan"`` exists for arrays (:func:`align_images`) only: a :class:`Scene`
refuses NaN pixels.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from specdm.data.spectra import resample_spectra, response_matrix
from specdm.errors import ConfigError, DataError
from specdm.scene import Scene

OUTSIDE = ("error", "drop", "mask", "nan")
METHODS = ("auto", "linear", "gaussian")


def wavelength_grid(start: float = 400.0, stop: float = 1000.0, bands: int = 48) -> np.ndarray:
    """``bands`` band centres (nm) evenly spaced from ``start`` to ``stop`` inclusive (HSIGene: 400-1000, 48)."""
    if bands < 1 or (bands > 1 and not stop > start):
        raise ConfigError(f"a wavelength grid needs bands >= 1 and stop > start; got {start}-{stop} nm, {bands} bands")
    return np.linspace(float(start), float(stop), int(bands))


def band_name(wavelength: float) -> str:
    """``"660nm"`` (``"412.8nm"`` when not a whole number of nanometres)."""
    w = float(wavelength)
    return f"{w:.0f}nm" if abs(w - round(w)) < 0.05 else f"{w:.1f}nm"


def target_widths(grid, fwhm=None) -> np.ndarray:
    """Width (nm) of each grid band: ``fwhm`` (a number or one per band), else the grid spacing."""
    grid = np.asarray(grid, dtype=np.float64)
    if fwhm is None:
        return np.gradient(grid) if len(grid) > 1 else np.zeros(len(grid))
    v = np.asarray(fwhm, dtype=np.float64)
    if v.ndim and v.shape != grid.shape:
        raise ConfigError(f"{v.size} target band widths for {len(grid)} grid bands")
    return np.broadcast_to(v, grid.shape).copy()


def coverage(scene_wavelengths, grid, max_gap: float | None = None, fwhm=None, scene_fwhm=None) -> dict:
    """Which bands of ``grid`` a scene with band centres ``scene_wavelengths`` covers.

    Returns ``{"covered": [...], "uncovered": [...], "below": [...], "above": [...],
    "in_gaps": [...], "at_edges": [...], "range": (first, last), "fraction": covered share}``
    (centres in nm). ``below``/``above``/``in_gaps``/``at_edges`` split ``uncovered``;
    ``at_edges`` (centre inside, Gaussian response reaching past an end) is only filled when
    ``fwhm`` (target widths: Gaussian bands) is given, with ``scene_fwhm`` as in :func:`align_images`.
    """
    src = np.unique(np.asarray(scene_wavelengths, dtype=np.float64))
    grid = np.asarray(grid, dtype=np.float64)
    lo, hi = float(src[0]), float(src[-1])
    below, above = grid < lo, grid > hi
    in_gap = np.zeros(len(grid), dtype=bool)
    if max_gap is not None and len(src) > 1:
        i = np.clip(np.searchsorted(src, grid, side="right") - 1, 0, len(src) - 2)
        in_gap = ~below & ~above & (src[i + 1] - src[i] > max_gap) & ~np.isin(grid, src)
    at_edges = np.zeros(len(grid), dtype=bool)
    if fwhm is not None:
        outside = response_matrix(scene_wavelengths, grid, target_widths(grid, fwhm), scene_fwhm)[1]
        at_edges = outside & ~below & ~above & ~in_gap
    out = below | above | in_gap | at_edges
    return {
        "covered": grid[~out].tolist(),
        "uncovered": grid[out].tolist(),
        "below": grid[below].tolist(),
        "above": grid[above].tolist(),
        "in_gaps": grid[in_gap].tolist(),
        "at_edges": grid[at_edges].tolist(),
        "range": (lo, hi),
        "fraction": float((~out).mean()),
    }


def align_images(images, scene_wavelengths, grid, scene_fwhm=None, fwhm=None, method: str = "auto",
                 outside: str = "error", max_gap: float | None = None, source=None) -> tuple[np.ndarray, np.ndarray]:
    """Resample an array ``(..., C)`` to ``grid``: ``(aligned (..., G'), kept grid centres (G',))``.

    ``method``: ``"auto"`` (Gaussian bands when ``scene_fwhm`` is known, else linear),
    ``"linear"`` or ``"gaussian"``. ``outside``: ``"error"`` (DataError listing the uncovered
    grid bands), ``"drop"``, ``"mask"`` (uncovered bands 0) or ``"nan"`` (uncovered bands NaN).
    ``source`` is named in errors. Float input keeps its dtype.
    """
    if outside not in OUTSIDE:
        raise ConfigError(f"unknown outside='{outside}'; choose one of {', '.join(OUTSIDE)}")
    images = np.asarray(images)
    grid = np.asarray(grid, dtype=np.float64)
    widths, cov = _plan(scene_wavelengths, grid, scene_fwhm, fwhm, method, max_gap)
    valid = np.isin(grid, cov["covered"])
    if outside == "error" and not valid.all():
        raise DataError(
            f"{len(cov['uncovered'])} of {len(grid)} target bands lie outside the scene's coverage "
            f"{cov['range'][0]:g}-{cov['range'][1]:g} nm"
            + (f" (or in gaps over {max_gap:g} nm)" if max_gap is not None else "")
            + f": {', '.join(band_name(w) for w in cov['uncovered'])}",
            source,
            hint="align with outside='drop' (leave them out) or outside='mask' (fill with 0, extra['band_valid'])",
        )
    keep = valid if outside == "drop" else np.ones(len(grid), dtype=bool)
    aligned = resample_spectra(images, scene_wavelengths, grid[keep], dst_fwhm=None if widths is None else widths[keep],
                               src_fwhm=None if widths is None else scene_fwhm, extrapolate="nan",
                               dst_names=[band_name(w) for w in grid[keep]], source=source)
    if outside in ("mask", "nan"):
        aligned[..., ~valid] = 0.0 if outside == "mask" else np.nan
    return aligned, grid[keep]


def align_scene(scene: Scene, grid=None, fwhm=None, method: str = "auto", outside: str = "error",
                max_gap: float | None = None) -> Scene:
    """A new scene whose every image is resampled to ``grid`` (default: :func:`wavelength_grid`).

    Bands are named ``"660nm"``; the mask, RGB, conditions and text are kept;
    ``extra["fwhm"]`` becomes the grid bands' widths, ``extra["aligned_from"]`` keeps the
    original band centres, and with ``outside="mask"`` ``extra["band_valid"]`` says which
    bands hold data. See :func:`align_images` for ``fwhm``, ``method``, ``outside``, ``max_gap``.
    """
    src = scene.source or scene.name
    if scene.wavelengths is None:
        raise DataError(f"scene '{scene.name}' has no wavelengths: alignment to a wavelength grid needs the "
                        "band centres (nm)", src, hint="give data.wavelengths, or leave this scene out")
    if outside == "nan":
        raise ConfigError("outside='nan' cannot make a Scene (scenes refuse NaN pixels); use outside='mask', "
                          "which fills uncovered bands with 0 and records extra['band_valid'], or align_images")
    grid = wavelength_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    scene_fwhm = scene.extra.get("fwhm")
    aligned = [align_images(im, scene.wavelengths, grid, scene_fwhm, fwhm, method, outside, max_gap, src)
               for im in scene.images]
    kept = aligned[0][1]
    if not len(kept):
        raise DataError(f"scene '{scene.name}' ({min(scene.wavelengths):g}-{max(scene.wavelengths):g} nm) covers "
                        f"none of the target bands {grid[0]:g}-{grid[-1]:g} nm", src)
    extra = dict(scene.extra, fwhm=target_widths(grid, fwhm)[np.isin(grid, kept)].tolist(),
                 aligned_from=list(scene.wavelengths))
    if outside == "mask":
        extra["band_valid"] = np.isin(grid, align_coverage(scene, grid, fwhm, method, max_gap)["covered"]).tolist()
    return replace(scene, images=[a for a, _ in aligned], band_names=[band_name(w) for w in kept],
                   wavelengths=kept.tolist(), rgb_bands=None, conditions=dict(scene.conditions), extra=extra)


def align_coverage(scene: Scene, grid=None, fwhm=None, method: str = "auto", max_gap: float | None = None) -> dict:
    """:func:`coverage` of ``scene`` on ``grid`` as :func:`align_scene` with these options judges it."""
    grid = wavelength_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    return _plan(scene.wavelengths, grid, scene.extra.get("fwhm"), fwhm, method, max_gap)[1]


def _plan(scene_wavelengths, grid: np.ndarray, scene_fwhm, fwhm, method: str, max_gap) -> tuple[np.ndarray | None, dict]:
    """The grid bands' widths (None: linear interpolation) and the coverage they lead to."""
    if method not in METHODS:
        raise ConfigError(f"unknown alignment method '{method}'; choose one of {', '.join(METHODS)}")
    gaussian = method == "gaussian" or (method == "auto" and scene_fwhm is not None)
    widths = target_widths(grid, fwhm) if gaussian else None
    return widths, coverage(scene_wavelengths, grid, max_gap, widths, scene_fwhm if gaussian else None)
