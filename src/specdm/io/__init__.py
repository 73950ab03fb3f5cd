"""Readers, one module per file format; :func:`read_cube` picks one by suffix.

Every reader raises :class:`specdm.errors.DataError` naming the file for a
missing, truncated or malformed file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specdm.errors import DataError
from specdm.io.envi import read_envi, read_spectral_library
from specdm.io.geotiff import read_band_files, read_geotiff
from specdm.io.layout import ARRAY_SUFFIXES, LAYOUTS, PIXEL_LAYOUTS, to_rows_cols_bands
from specdm.io.masks import labels_from_cube, read_label_array, read_mask
from specdm.io.matlab import read_mat, read_mat_variable
from specdm.io.numpy import read_numpy, read_numpy_variable

__all__ = [
    "LAYOUTS", "PIXEL_LAYOUTS", "labels_from_cube", "read_array", "read_band_files", "read_cube", "read_envi",
    "read_geotiff", "read_label_array", "read_mask", "read_mat", "read_numpy", "read_scalar",
    "read_spectral_library", "to_rows_cols_bands",
]

CUBE_SUFFIXES = (".mat", ".hdr", ".tif", ".tiff", ".npy", ".npz")


def read_cube(
    path: str | Path,
    key: str | None = None,
    layout: str = "rows_cols_bands",
    rows: int | str | None = None,
    cols: int | str | None = None,
    order: str = "F",
    option: str = "key=",
) -> tuple[np.ndarray, dict]:
    """Read an image cube as ``(rows, cols, bands)`` float32 plus a metadata dict.

    The format follows the suffix: ``.mat`` (v5 or v7.3), ``.hdr``/``.HDR``
    (ENVI; an ENVI data file with a header beside it works too), ``.tif``/``.tiff``,
    ``.npy``/``.npz``. Arrays in ``.mat``/``.npy``/``.npz`` are in ``layout``
    (see :mod:`specdm.io.layout`; a 2-D array is one band); the pixel layouts
    need ``rows`` and ``cols``, numbers or names of scalar variables of the same
    file, and the pixel ``order``. ``key`` picks the variable of a ``.mat``/``.npz``
    file (``option`` is its name in messages, such as ``data.image_variable``).
    The dict always holds ``path``, ``format`` and ``wavelengths`` (nm, or None),
    and ``variable`` for ``.mat``/``.npz``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    suffix = path.suffix.lower()
    header = _envi_header_beside(path)
    if key is not None and suffix not in (".mat", ".npz"):
        raise DataError(f"{_opt(option)} '{key}' applies to .mat and .npz files only", path)
    if suffix in ARRAY_SUFFIXES:
        name, array = read_array(path, key, option)
        meta = {"format": "mat" if suffix == ".mat" else "numpy"}
        if name is not None:
            meta["variable"] = name
        what = "the array" if name is None else f"variable '{name}'"
        if layout in PIXEL_LAYOUTS:
            prefix = option.rpartition(".")[0] + "." if "." in option else ""
            rows = read_scalar(path, rows, prefix + "rows") if isinstance(rows, str) else rows
            cols = read_scalar(path, cols, prefix + "cols") if isinstance(cols, str) else cols
        array = to_rows_cols_bands(array, layout, rows, cols, order, path, what)
    elif suffix in (".tif", ".tiff"):
        _native(layout, "a GeoTIFF", path)
        array, meta = read_geotiff(path)
        meta["format"] = "geotiff"
    elif suffix == ".hdr" or header is not None:
        _native(layout, "an ENVI image", path)
        array, meta = read_envi(header or path)
        meta["format"] = "envi"
    else:
        raise DataError(f"unsupported image format '{path.suffix}'; supported: {', '.join(CUBE_SUFFIXES)}", path)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise DataError(f"expected a (rows, cols, bands) or (rows, cols) array, got shape {array.shape}", path)
    if array.dtype.kind not in "biuf":
        raise DataError(f"holds {array.dtype} values, not numbers", path)
    meta.setdefault("wavelengths", None)
    meta["path"] = str(path)
    return array.astype(np.float32, copy=False), meta


def read_array(path: str | Path, key: str | None = None, option: str = "key=") -> tuple[str | None, np.ndarray]:
    """``(name, array)`` of a ``.mat``, ``.npz`` (name of the variable) or ``.npy`` (name None) file."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return read_mat_variable(path, key, option)
    return read_numpy_variable(path, key, option)


def read_scalar(path: str | Path, name: str, option: str = "key=") -> int:
    """The positive whole number held by the scalar variable ``name`` of a ``.mat``/``.npz`` file
    (such as ``nRow``); ``option`` names the setting in messages (``data.rows``)."""
    path = Path(path)
    if path.suffix.lower() not in (".mat", ".npz"):
        raise DataError(f"{_opt(option)} names a variable '{name}', but only .mat and .npz files hold "
                        f"named variables; give a number", path)
    _, value = read_array(path, name, option)
    value = np.asarray(value)
    if value.size != 1:
        raise DataError(f"variable '{name}' (set by {_opt(option)}) has shape {value.shape}, not a single number", path)
    number = value.reshape(()).item()
    if isinstance(number, bool) or not float(number).is_integer() or number < 1:
        raise DataError(f"variable '{name}' (set by {_opt(option)}) holds {number}, not a positive whole number", path)
    return int(number)


def _opt(option: str) -> str:
    return option.rstrip("=")


def _native(layout: str, kind: str, path: Path) -> None:
    if layout != "rows_cols_bands":
        raise DataError(f"layout {layout} applies to arrays in .mat/.npy/.npz files; {kind} is read as "
                        f"(rows, cols, bands) already", path, hint="leave the layout at rows_cols_bands")


def _envi_header_beside(path: Path) -> Path | None:
    """The ENVI header of a data file such as ``2000TM`` or ``cube.img``, if any."""
    if path.suffix.lower() in CUBE_SUFFIXES:
        return None
    for candidate in (path.with_suffix(".hdr"), path.with_suffix(".HDR"),
                      path.with_name(path.name + ".hdr"), path.with_name(path.name + ".HDR")):
        if candidate.is_file():
            return candidate
    return None
