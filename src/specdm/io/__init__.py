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
from specdm.io.masks import read_mask
from specdm.io.matlab import read_mat
from specdm.io.numpy import read_numpy

__all__ = [
    "read_band_files", "read_cube", "read_envi", "read_geotiff", "read_mask",
    "read_mat", "read_numpy", "read_spectral_library",
]

CUBE_SUFFIXES = (".mat", ".hdr", ".tif", ".tiff", ".npy", ".npz")


def read_cube(path: str | Path, key: str | None = None) -> tuple[np.ndarray, dict]:
    """Read an image cube as ``(rows, cols, bands)`` float32 plus a metadata dict.

    The format follows the suffix: ``.mat`` (v5 or v7.3), ``.hdr``/``.HDR``
    (ENVI; an ENVI data file with a header beside it works too), ``.tif``/``.tiff``,
    ``.npy``/``.npz``. Arrays in ``.mat``/``.npy``/``.npz`` must already be
    ``(rows, cols, bands)``; a 2-D array is one band. ``key`` picks the variable
    of a ``.mat``/``.npz`` file. The dict always holds ``path``, ``format`` and
    ``wavelengths`` (nm, or None).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    suffix = path.suffix.lower()
    header = _envi_header_beside(path)
    if key is not None and suffix not in (".mat", ".npz"):
        raise DataError(f"key='{key}' applies to .mat and .npz files only", path)
    if suffix == ".mat":
        array, meta = read_mat(path, key), {"format": "mat"}
    elif suffix in (".npy", ".npz"):
        array, meta = read_numpy(path, key), {"format": "numpy"}
    elif suffix in (".tif", ".tiff"):
        array, meta = read_geotiff(path)
        meta["format"] = "geotiff"
    elif suffix == ".hdr" or header is not None:
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


def _envi_header_beside(path: Path) -> Path | None:
    """The ENVI header of a data file such as ``2000TM`` or ``cube.img``, if any."""
    if path.suffix.lower() in CUBE_SUFFIXES:
        return None
    for candidate in (path.with_suffix(".hdr"), path.with_suffix(".HDR"),
                      path.with_name(path.name + ".hdr"), path.with_name(path.name + ".HDR")):
        if candidate.is_file():
            return candidate
    return None
