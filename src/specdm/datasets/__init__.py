"""Named data sets, one module each, and a registry to load them by name.

Every loader returns ``list[Scene]`` and raises
:class:`specdm.errors.DatasetNotFoundError` naming the missing file.
Files are looked for under :func:`data_root`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from specdm.errors import ConfigError, DatasetNotFoundError
from specdm.scene import Scene


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


# The loaders import data_root and dataset_file from this module, so they come after them.
from specdm.datasets.files import load_files  # noqa: E402
from specdm.datasets.indian_pines import load_indian_pines  # noqa: E402
from specdm.datasets.oscd import load_oscd  # noqa: E402
from specdm.datasets.sentinel2_demo import load_sentinel2_demo  # noqa: E402
from specdm.datasets.taizhou import load_taizhou  # noqa: E402
from specdm.datasets.unmixing import load_moffett, load_samson  # noqa: E402

DATASETS: dict[str, Callable[..., list[Scene]]] = {
    "indian_pines": load_indian_pines,
    "oscd": load_oscd,
    "taizhou": load_taizhou,
    "samson": load_samson,
    "moffett": load_moffett,
    "sentinel2_demo": load_sentinel2_demo,
}

__all__ = ["DATASETS", "data_root", "dataset_file", "load_files", "load_scenes"]


def load_scenes(name: str, root: str | Path | None = None, **kwargs) -> list[Scene]:
    """Load the named data set (a key of :data:`DATASETS`); ``kwargs`` go to its loader."""
    if name not in DATASETS:
        raise ConfigError(f"unknown data set '{name}'; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](root=root, **kwargs)
