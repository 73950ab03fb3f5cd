"""Where the named data sets' files are looked for; the loaders import from here.

Kept apart from ``specdm.datasets`` (which imports every loader) so that a
loader never imports the package that imports it.
"""

from __future__ import annotations

import os
from pathlib import Path

from specdm.errors import DatasetNotFoundError


def data_root(root: str | Path | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$SPECDM_DATA_DIR``, else ``../shared/data``
    relative to the current working directory."""
    if root is not None:
        return Path(root)
    env = os.environ.get("SPECDM_DATA_DIR")
    if env:
        return Path(env)
    return (Path.cwd() / ".." / "shared" / "data").resolve()


def dataset_file(root: Path, relative: str, dataset: str) -> Path:
    """``root / relative``, or :class:`DatasetNotFoundError` saying how to point at it."""
    path = root / relative
    if not path.exists():
        raise DatasetNotFoundError(
            f"{dataset} file not found",
            path,
            hint=f"pass root= (the folder that holds '{relative}') or set SPECDM_DATA_DIR; looked in {root}",
        )
    return path
