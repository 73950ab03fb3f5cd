"""NumPy ``.npy`` and ``.npz`` files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from specdm.errors import DataError
from specdm.io.matlab import choose_variable


def read_numpy(path: str | Path, key: str | None = None, option: str = "key=") -> np.ndarray:
    """Read a ``.npy`` array, or one array of a ``.npz`` archive.

    For ``.npz``, ``key=None`` reads the only array of the archive (scalars do
    not count); with several, a :class:`DataError` lists them with their shapes
    and asks for ``option`` (such as ``data.image_variable``). Pickled objects
    are refused.
    """
    return read_numpy_variable(path, key, option)[1]


def read_numpy_variable(
    path: str | Path, key: str | None = None, option: str = "key="
) -> tuple[str | None, np.ndarray]:
    """:func:`read_numpy`, returning ``(array name or None for .npy, array)``."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:
        raise DataError(f"not a readable NumPy file, truncated or corrupt ({err})", path) from err
    if isinstance(loaded, np.ndarray):
        if key is not None:
            raise DataError(f"{option.rstrip('=')} '{key}' given, but a .npy file holds a single array", path)
        return None, loaded
    with loaded:
        names = list(loaded.files)
        if not names:
            raise DataError("the archive holds no arrays", path)
        key = choose_variable(npz_arrays(path), names, key, path, option, kind="array")
        try:
            return key, loaded[key]
        except Exception as err:
            raise DataError(f"array '{key}' is truncated or corrupt ({err})", path) from err


def npz_arrays(path: str | Path) -> dict[str, tuple]:
    """Shapes of the numeric arrays of a ``.npz`` archive, read from their headers only."""
    path = Path(path)
    shapes = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f)
                if dtype.kind in "biuf":
                    shapes[info.filename[:-4]] = tuple(shape)
    except Exception as err:
        raise DataError(f"archive is truncated or corrupt ({err})", path) from err
    return shapes
