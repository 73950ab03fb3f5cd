"""Class maps: PNG/BMP images, TIFF, NumPy and MATLAB arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from specdm.errors import DataError
from specdm.io.matlab import read_mat
from specdm.io.numpy import read_numpy

IMAGE_SUFFIXES = (".png", ".bmp", ".gif")
TIFF_SUFFIXES = (".tif", ".tiff")
ARRAY_SUFFIXES = (".npy", ".npz", ".mat")


def read_mask(path: str | Path, key: str | None = None) -> np.ndarray:
    """Read a class map as ``(rows, cols)`` int64.

    A palette image gives its palette indices; an RGB(A) image whose colour
    channels are all equal (a grey map saved as colour) is reduced to one
    channel, a constant alpha channel is dropped; a colour-coded map is refused.
    ``key`` picks the variable of a ``.mat``/``.npz`` file. Values must be
    whole numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        try:
            with Image.open(path) as im:
                array = np.array(im)
        except Exception as err:
            raise DataError(f"not a readable image, truncated or corrupt ({err})", path) from err
    elif suffix in TIFF_SUFFIXES:
        try:
            array = tifffile.imread(path)
        except Exception as err:
            raise DataError(f"not a readable TIFF, truncated or corrupt ({err})", path) from err
    elif suffix == ".mat":
        array = read_mat(path, key)
    elif suffix in (".npy", ".npz"):
        array = read_numpy(path, key)
    else:
        known = ", ".join(IMAGE_SUFFIXES + TIFF_SUFFIXES + ARRAY_SUFFIXES)
        raise DataError(f"unsupported mask format '{path.suffix}'; supported: {known}", path)
    return _to_class_map(np.asarray(array), path)


def _to_class_map(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 3 and array.shape[-1] in (2, 4):  # grey + alpha, RGBA
        alpha = array[..., -1]
        if np.all(alpha == alpha.flat[0]):
            array = array[..., :-1]
    if array.ndim == 3 and array.shape[-1] <= 4:
        if not all(np.array_equal(array[..., 0], array[..., c]) for c in range(1, array.shape[-1])):
            raise DataError(
                "mask has colour channels that differ; save class values as a single-channel image", path
            )
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(f"mask must be 2-D (rows, cols), got shape {array.shape}", path)
    if array.dtype.kind == "b":
        return array.astype(np.int64)
    if array.dtype.kind not in "iuf":
        raise DataError(f"mask holds {array.dtype} values, not class numbers", path)
    if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
        raise DataError("mask holds non-integer (or NaN) values", path)
    return array.astype(np.int64)
