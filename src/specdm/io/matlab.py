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


def read_mat(path: str | Path, key: str | None = None, option: str = "key=") -> np.ndarray:
    """Read one numeric variable from a ``.mat`` file, in MATLAB's orientation.

    ``key=None`` reads the only array of the file: when the file holds several
    numeric arrays (scalars such as ``nRow`` do not count; names starting with
    ``_`` or ``#`` are private and skipped), a :class:`DataError` lists them with
    their shapes and asks for ``option`` (such as ``data.image_variable``).
    v7.3 files are HDF5, which stores arrays with their axes reversed; they are
    transposed back, so a ``145x145x200`` MATLAB array comes back as
    ``(145, 145, 200)`` from either version.
    """
    return read_mat_variable(path, key, option)[1]


def read_mat_variable(path: str | Path, key: str | None = None, option: str = "key=") -> tuple[str, np.ndarray]:
    """:func:`read_mat`, returning ``(variable name, array)``."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    if h5py.is_hdf5(path):
        return _read_v73(path, key, option)
    return _read_v5(path, key, option)


def mat_variables(path: str | Path) -> dict[str, tuple]:
    """Shapes of the public numeric variables of a ``.mat`` file, in MATLAB's orientation."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    if h5py.is_hdf5(path):
        return {n: s for n, s in _v73_entries(path)[1].items() if not n.startswith(("_", "#"))}
    return {n: s for n, s in _v5_entries(path)[1].items() if not n.startswith(("_", "#"))}


def _v5_entries(path: Path) -> tuple[list[str], dict[str, tuple]]:
    try:
        entries = scipy.io.whosmat(path)
    except Exception as err:
        raise DataError(f"not a readable MATLAB file ({err})", path) from err
    return [e[0] for e in entries], {name: tuple(shape) for name, shape, cls in entries if cls in NUMERIC_CLASSES}


def _v73_entries(path: Path) -> tuple[list[str], dict[str, tuple]]:
    try:
        with h5py.File(path, "r") as f:
            names = list(f.keys())
            shapes = {n: d.shape[::-1] for n, d in f.items() if isinstance(d, h5py.Dataset) and _is_numeric(d)}
    except Exception as err:
        raise DataError(f"not a readable MATLAB v7.3 (HDF5) file ({err})", path) from err
    return names, shapes


def _read_v5(path: Path, key: str | None, option: str) -> tuple[str, np.ndarray]:
    names, shapes = _v5_entries(path)
    name = choose_variable(shapes, names, key, path, option)
    try:
        array = scipy.io.loadmat(path, variable_names=[name])[name]
    except Exception as err:
        raise DataError(f"variable '{name}' is truncated or corrupt ({err})", path) from err
    return name, np.asarray(array)


def _read_v73(path: Path, key: str | None, option: str) -> tuple[str, np.ndarray]:
    names, shapes = _v73_entries(path)
    name = choose_variable(shapes, names, key, path, option)
    try:
        with h5py.File(path, "r") as f:
            array = f[name][()]
    except Exception as err:
        raise DataError(f"variable '{name}' is truncated or corrupt ({err})", path) from err
    return name, np.asarray(array).T


def _is_numeric(dataset: h5py.Dataset) -> bool:
    cls = dataset.attrs.get("MATLAB_class")
    if isinstance(cls, bytes):
        cls = cls.decode()
    return dataset.dtype.kind in "biuf" and (cls is None or cls in NUMERIC_CLASSES)


def describe(shapes: dict[str, tuple]) -> str:
    """``Y (156x9025), nRow (1x1)``: variables with their shapes, for messages."""
    return ", ".join(f"{n} ({'x'.join(map(str, s)) or 'scalar'})" for n, s in shapes.items()) or "none"


def choose_variable(shapes: dict[str, tuple], names: list[str], key: str | None, path: Path,
                    option: str = "key=", kind: str = "variable") -> str:
    """The variable to read: ``key`` if given, else the only numeric array (more than one value).

    ``shapes`` maps the numeric variables to their shapes, ``names`` lists every
    variable; ``option`` is what the user sets to pick one (``data.image_variable``).
    """
    public = {n: s for n, s in shapes.items() if not n.startswith(("_", "#"))}
    by = "" if option == "key=" else f" (set by {option})"
    if key is not None:
        if key not in names:
            others = describe(public) if public else ", ".join(n for n in names if not n.startswith(("_", "#")))
            raise DataError(f"no {kind} '{key}'{by}; {kind}s in the file: {others or 'none'}", path)
        if key not in shapes:
            raise DataError(f"{kind} '{key}'{by} is not a numeric array", path)
        return key
    candidates = [n for n, s in public.items() if int(np.prod(s, dtype=np.int64)) > 1]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        listed = describe(public) if public else ", ".join(n for n in names if not n.startswith(("_", "#"))) or "none"
        raise DataError(f"holds no numeric array to read; {kind}s: {listed}", path)
    listed = describe({n: public[n] for n in candidates})
    if option == "key=":
        raise DataError(f"holds {len(candidates)} arrays: {listed}; pass key= to pick one", path)
    raise DataError(f"holds {len(candidates)} arrays: {listed}; set {option} to the one to read", path,
                    hint=f"for example {option}: {candidates[0]}")
