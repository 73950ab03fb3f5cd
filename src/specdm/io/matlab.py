"""MATLAB ``.mat`` files: v4/v5/v7 through scipy, v7.3 (HDF5) through h5py."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io

from specdm.errors import DataError

NUMERIC_CLASSES = {
    "double", "single", "logical",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
}


def read_mat(path: str | Path, key: str | None = None) -> np.ndarray:
    """Read one numeric variable from a ``.mat`` file, in MATLAB's orientation.

    ``key=None`` picks the largest numeric variable (names starting with ``_``
    or ``#`` are private and skipped). v7.3 files are HDF5, which stores arrays
    with their axes reversed; they are transposed back, so a ``145x145x200``
    MATLAB array comes back as ``(145, 145, 200)`` from either version.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    if h5py.is_hdf5(path):
        return _read_v73(path, key)
    return _read_v5(path, key)


def _read_v5(path: Path, key: str | None) -> np.ndarray:
    try:
        entries = scipy.io.whosmat(path)
    except Exception as err:
        raise DataError(f"not a readable MATLAB file ({err})", path) from err
    shapes = {name: shape for name, shape, cls in entries if cls in NUMERIC_CLASSES}
    name = _choose(shapes, [e[0] for e in entries], key, path)
    try:
        array = scipy.io.loadmat(path, variable_names=[name])[name]
    except Exception as err:
        raise DataError(f"variable '{name}' is truncated or corrupt ({err})", path) from err
    return np.asarray(array)


def _read_v73(path: Path, key: str | None) -> np.ndarray:
    try:
        with h5py.File(path, "r") as f:
            names = list(f.keys())
            shapes = {n: d.shape[::-1] for n, d in f.items() if isinstance(d, h5py.Dataset) and _is_numeric(d)}
    except Exception as err:
        raise DataError(f"not a readable MATLAB v7.3 (HDF5) file ({err})", path) from err
    name = _choose(shapes, names, key, path)
    try:
        with h5py.File(path, "r") as f:
            array = f[name][()]
    except Exception as err:
        raise DataError(f"variable '{name}' is truncated or corrupt ({err})", path) from err
    return np.asarray(array).T


def _is_numeric(dataset: h5py.Dataset) -> bool:
    cls = dataset.attrs.get("MATLAB_class")
    if isinstance(cls, bytes):
        cls = cls.decode()
    return dataset.dtype.kind in "biuf" and (cls is None or cls in NUMERIC_CLASSES)


def _choose(shapes: dict[str, tuple], names: list[str], key: str | None, path: Path) -> str:
    """The variable to read: ``key`` if given, else the single largest numeric one."""
    public = [n for n in names if not n.startswith(("_", "#"))]
    if key is not None:
        if key not in names:
            raise DataError(f"no variable '{key}'; variables in the file: {', '.join(public) or 'none'}", path)
        if key not in shapes:
            raise DataError(f"variable '{key}' is not a numeric array", path)
        return key
    numeric = {n: s for n, s in shapes.items() if not n.startswith(("_", "#"))}
    if not numeric:
        raise DataError(f"holds no numeric array; variables: {', '.join(public) or 'none'}", path)
    sizes = {n: int(np.prod(s)) for n, s in numeric.items()}
    largest = max(sizes.values())
    tied = [n for n, s in sizes.items() if s == largest]
    if len(tied) > 1:
        raise DataError(f"variables {', '.join(tied)} are equally large; pass key= to pick one", path)
    return tied[0]
