"""Class maps: PNG/BMP images, TIFF, NumPy and MATLAB arrays; label cubes to class maps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from specdm.errors import DataError
from specdm.io.matlab import read_mat_variable
from specdm.io.numpy import read_numpy_variable

IMAGE_SUFFIXES = (".png", ".bmp", ".gif")
TIFF_SUFFIXES = (".tif", ".tiff")
ARRAY_SUFFIXES = (".npy", ".npz", ".mat")
GDAL_NODATA = 42113  # TIFF tag in which GDAL writes the nodata value, as text


def read_mask(path: str | Path, key: str | None = None) -> np.ndarray:
    """Read a class map as ``(rows, cols)`` int64.

    A palette image gives its palette indices; an RGB(A) image whose colour
    channels are all equal (a grey map saved as colour) is reduced to one
    channel, a constant alpha channel is dropped; a colour-coded map is refused.
    ``key`` picks the variable of a ``.mat``/``.npz`` file. Values must be
    whole numbers.
    """
    array, _ = read_label_array(path, key)
    return to_class_map(array, path)


def read_label_array(path: str | Path, key: str | None = None, option: str = "key=") -> tuple[np.ndarray, dict]:
    """Read a mask file as stored, plus ``{"format", "nodata", "variable"}``.

    Images come as ``(rows, cols)`` or ``(rows, cols, channels)``; multi-band
    TIFFs as ``(rows, cols, bands)`` whether stored band after band or pixel
    after pixel; ``.mat``/``.npy``/``.npz`` arrays as they are (in MATLAB's
    orientation for ``.mat``). ``nodata`` is the GeoTIFF's nodata value (GDAL
    metadata), or None. ``key`` picks the variable of a ``.mat``/``.npz`` file
    (``option`` is its name in messages).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    suffix = path.suffix.lower()
    meta = {"nodata": None, "variable": None}
    if key is not None and suffix not in (".mat", ".npz"):
        raise DataError(f"{option.rstrip('=')} '{key}' applies to .mat and .npz files only", path)
    if suffix in IMAGE_SUFFIXES:
        meta["format"] = "image"
        try:
            with Image.open(path) as im:
                array = np.array(im)
        except Exception as err:
            raise DataError(f"not a readable image, truncated or corrupt ({err})", path) from err
    elif suffix in TIFF_SUFFIXES:
        meta["format"] = "tiff"
        array, meta["nodata"] = _read_tiff(path)
    elif suffix == ".mat":
        meta["format"] = "mat"
        meta["variable"], array = read_mat_variable(path, key, option)
    elif suffix in (".npy", ".npz"):
        meta["format"] = "numpy"
        meta["variable"], array = read_numpy_variable(path, key, option)
    else:
        known = ", ".join(IMAGE_SUFFIXES + TIFF_SUFFIXES + ARRAY_SUFFIXES)
        raise DataError(f"unsupported mask format '{path.suffix}'; supported: {known}", path)
    return np.asarray(array), meta


def _read_tiff(path: Path) -> tuple[np.ndarray, float | int | None]:
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            array, axes = series.asarray(), series.axes
            tag = tif.pages[0].tags.get(GDAL_NODATA)
    except Exception as err:
        raise DataError(f"not a readable TIFF, truncated or corrupt ({err})", path) from err
    if array.ndim == 3 and axes[-2:] == "YX":  # band after band (planar) or one page per band
        array = np.moveaxis(array, 0, -1)
    nodata = None
    if tag is not None:
        text = str(tag.value).strip().strip("\x00")
        try:
            nodata = float(text)
        except ValueError:
            raise DataError(f"GDAL nodata tag holds '{text}', not a number", path) from None
        if nodata.is_integer():
            nodata = int(nodata)
    return array, nodata


def to_class_map(array: np.ndarray, path: str | Path | None) -> np.ndarray:
    """A mask array as ``(rows, cols)`` int64 (grey-as-colour and constant alpha channels reduced)."""
    array = reduce_channels(np.asarray(array), path)
    if array.dtype.kind == "b":
        return array.astype(np.int64)
    if array.dtype.kind not in "iuf":
        raise DataError(f"mask holds {array.dtype} values, not class numbers", path)
    if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
        bad = ~(np.mod(array, 1) == 0)
        r, c = np.argwhere(bad)[0]
        raise DataError(f"mask holds non-integer (or NaN) values ({int(bad.sum())} pixels, first {array[r, c]} "
                        f"at row {r}, col {c})", path)
    return array.astype(np.int64)


def reduce_channels(array: np.ndarray, path: str | Path | None) -> np.ndarray:
    """``(rows, cols)`` from a grey map saved with equal colour channels and/or a constant alpha."""
    if array.ndim == 3 and array.shape[-1] in (2, 4):  # grey + alpha, RGBA
        alpha = array[..., -1]
        if np.all(alpha == alpha.flat[0]):
            array = array[..., :-1]
    if array.ndim == 3 and array.shape[-1] <= 4:
        if not all(np.array_equal(array[..., 0], array[..., c]) for c in range(1, array.shape[-1])):
            raise DataError(
                "mask has colour channels that differ; save class values as a single-channel image", path,
                hint="if it holds one channel per class (a label cube), set data.labels to one_hot or abundances",
            )
        array = array[..., 0]
    if array.ndim != 2:
        hint = None
        if array.ndim == 3:
            hint = "a stack of per-class maps is a label cube: set data.labels to one_hot or abundances"
        raise DataError(f"mask must be 2-D (rows, cols), got shape {array.shape}", path, hint=hint)
    return array


def labels_from_cube(
    cube: np.ndarray,
    kind: str = "abundances",
    min_fraction: float | None = None,
    path: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A ``(rows, cols, K)`` label cube as ``(classes, unlabelled)``: the argmax class of
    every pixel (int64) and a boolean map of the pixels without a class.

    ``kind="one_hot"``: values must be 0 or 1 with at most one 1 per pixel; pixels
    with none are unlabelled. ``kind="abundances"``: fractions (any non-negative
    scale); pixels whose largest fraction is below ``min_fraction`` are
    unlabelled. Pixels with NaN in any channel are unlabelled in both.
    """
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise DataError(f"a label cube must be 3-D (rows, cols, classes), got shape {cube.shape}", path)
    if cube.shape[-1] < 2:
        raise DataError(f"a label cube needs one channel per class (at least 2), got shape {cube.shape}", path)
    if cube.dtype.kind not in "biuf":
        raise DataError(f"label cube holds {cube.dtype} values, not numbers", path)
    values = cube.astype(np.float64)
    invalid = ~np.isfinite(values).all(-1)
    values = np.where(np.isfinite(values), values, 0.0)
    if kind == "one_hot":
        odd = (values != 0) & (values != 1)
        if odd.any():
            r, c, k = np.argwhere(odd)[0]
            raise DataError(f"one-hot label cube holds {values[r, c, k]:g} at row {r}, col {c}, channel {k}; "
                            "one-hot values are 0 or 1", path, hint="for fractions set data.labels: abundances")
        count = values.sum(-1)
        if (count > 1).any():
            r, c = np.argwhere(count > 1)[0]
            raise DataError(f"one-hot label cube sets {int(count[r, c])} classes at row {r}, col {c} "
                            f"({int((count > 1).sum())} such pixels); one-hot pixels have at most one", path)
        unlabelled = invalid | (count == 0)
    elif kind == "abundances":
        unlabelled = invalid.copy()
        if min_fraction is not None:
            unlabelled |= values.max(-1) < min_fraction
    else:
        raise DataError(f"unknown label cube kind '{kind}'; choose one_hot or abundances", path)
    return values.argmax(-1).astype(np.int64), unlabelled


def is_nodata(array: np.ndarray, nodata: float | int | None) -> np.ndarray | None:
    """Boolean map of the pixels equal to ``nodata`` (NaN matches NaN), or None without a nodata value."""
    if nodata is None:
        return None
    array = np.asarray(array)
    if isinstance(nodata, float) and math.isnan(nodata):
        return np.isnan(array) if array.dtype.kind == "f" else np.zeros(array.shape, bool)
    return array == nodata
