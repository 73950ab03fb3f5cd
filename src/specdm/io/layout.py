"""Array layouts of ``.mat``/``.npy``/``.npz`` files, brought to ``(rows, cols, bands)``.

- ``rows_cols_bands``: ``(rows, cols, bands)`` (a 2-D array is one band);
- ``bands_rows_cols``: ``(bands, rows, cols)``;
- ``bands_pixels``: ``(bands, rows * cols)``, as unmixing scenes store ``Y``;
- ``pixels_bands``: ``(rows * cols, bands)``.

Pixel layouts need ``rows`` and ``cols`` and the pixel order: ``"F"`` (column
after column, as MATLAB writes ``Y(:, :)``) or ``"C"`` (row after row).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specdm.errors import DataError

LAYOUTS = ("rows_cols_bands", "bands_rows_cols", "bands_pixels", "pixels_bands")
PIXEL_LAYOUTS = ("bands_pixels", "pixels_bands")
ARRAY_SUFFIXES = (".mat", ".npy", ".npz")


def to_rows_cols_bands(
    array: np.ndarray,
    layout: str = "rows_cols_bands",
    rows: int | None = None,
    cols: int | None = None,
    order: str = "F",
    path: str | Path | None = None,
    what: str = "the array",
) -> np.ndarray:
    """``array`` in ``layout`` as ``(rows, cols, bands)``; a :class:`DataError` naming ``path``
    and the shapes when the sizes do not fit. ``what`` names the array in messages
    (``variable 'Y'``)."""
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout '{layout}'; choose one of {', '.join(LAYOUTS)}", path)
    if order not in ("F", "C"):
        raise DataError(f"unknown pixel order '{order}'; choose F (column-major, MATLAB) or C (row-major)", path)
    array = np.asarray(array)
    shape = tuple(array.shape)
    if layout in ("rows_cols_bands", "bands_rows_cols"):
        if array.ndim == 2:
            return array[..., None]
        if array.ndim != 3:
            hint = None
            if array.ndim == 1 or (array.ndim == 2 and 1 in shape):
                hint = "a vector of pixels needs layout bands_pixels or pixels_bands with rows and cols"
            raise DataError(f"{what} has shape {shape}; layout {layout} needs a 3-D array "
                            f"({layout.replace('_', ', ')}) or a 2-D one (one band)", path, hint=hint)
        return array if layout == "rows_cols_bands" else np.moveaxis(array, 0, -1)
    if rows is None or cols is None:
        raise DataError(f"layout {layout} needs rows and cols", path)
    n = rows * cols
    bands_first = layout == "bands_pixels"
    if array.ndim == 1:
        array = array[None, :] if bands_first else array[:, None]
    want = f"(bands, {rows}*{cols}={n})" if bands_first else f"({rows}*{cols}={n}, bands)"
    pixel_axis = 1 if bands_first else 0
    if array.ndim != 2 or array.shape[pixel_axis] != n:
        hint = None
        if array.ndim == 2 and array.shape[1 - pixel_axis] == n:
            other = "pixels_bands" if bands_first else "bands_pixels"
            hint = f"its {'first' if bands_first else 'second'} axis has {n} entries: use layout {other}"
        elif array.ndim == 2:
            hint = f"rows*cols must equal the number of pixels ({array.shape[pixel_axis]} here); check rows and cols"
        elif array.ndim == 3:
            hint = "a 3-D array is already an image: use layout rows_cols_bands or bands_rows_cols"
        raise DataError(f"{what} has shape {shape}; layout {layout} with rows {rows} and cols {cols} "
                        f"needs {want}", path, hint=hint)
    pixels = array.T if bands_first else array
    return pixels.reshape(rows, cols, pixels.shape[1], order=order)
