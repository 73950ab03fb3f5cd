"""NumPy ``.npy`` and ``.npz`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specdm.errors import DataError


def read_numpy(path: str | Path, key: str | None = None) -> np.ndarray:
    """Read a ``.npy`` array, or one array of a ``.npz`` archive.

    For ``.npz``, ``key=None`` picks the single largest array. Pickled objects
    are refused.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:
        raise DataError(f"not a readable NumPy file, truncated or corrupt ({err})", path) from err
    if isinstance(loaded, np.ndarray):
        if key is not None:
            raise DataError(f"key='{key}' given, but a .npy file holds a single array", path)
        return loaded
    with loaded:
        names = list(loaded.files)
        if key is None:
            if not names:
                raise DataError("the archive holds no arrays", path)
            key = _largest(loaded, names, path)
        elif key not in names:
            raise DataError(f"no array '{key}'; arrays in the file: {', '.join(names) or 'none'}", path)
        try:
            return loaded[key]
        except Exception as err:
            raise DataError(f"array '{key}' is truncated or corrupt ({err})", path) from err


def _largest(archive: np.lib.npyio.NpzFile, names: list[str], path: Path) -> str:
    try:
        sizes = {n: archive[n].size for n in names}
    except Exception as err:
        raise DataError(f"archive is truncated or corrupt ({err})", path) from err
    largest = max(sizes.values())
    tied = [n for n, s in sizes.items() if s == largest]
    if len(tied) > 1:
        raise DataError(f"arrays {', '.join(tied)} are equally large; pass key= to pick one", path)
    return tied[0]
