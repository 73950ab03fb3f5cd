"""Named data sets, one module each, and a registry to load them by name.

Every loader returns ``list[Scene]`` and raises
:class:`specdm.errors.DatasetNotFoundError` naming the missing file.
Files are looked for under :func:`data_root` (defined in
:mod:`specdm.datasets.paths`, which the loaders import, so that no loader
imports this package). Sensor band tables live in :mod:`specdm.datasets.sensors`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from specdm.datasets.files import load_files
from specdm.datasets.indian_pines import load_indian_pines
from specdm.datasets.oscd import load_oscd
from specdm.datasets.paths import data_root, dataset_file
from specdm.datasets.sentinel2_demo import load_sentinel2_demo
from specdm.datasets.taizhou import load_taizhou
from specdm.datasets.unmixing import load_moffett, load_samson
from specdm.errors import ConfigError
from specdm.scene import Scene

DATASETS: dict[str, Callable[..., list[Scene]]] = {
    "indian_pines": load_indian_pines,
    "oscd": load_oscd,
    "taizhou": load_taizhou,
    "samson": load_samson,
    "moffett": load_moffett,
    "sentinel2_demo": load_sentinel2_demo,
}

__all__ = ["DATASETS", "check_options", "data_root", "dataset_file", "load_files", "load_scenes", "loader_options"]


def loader_options(name: str) -> list[str]:
    """The options the named data set's loader takes (its keyword parameters but ``root``)."""
    _check_name(name)
    params = inspect.signature(DATASETS[name]).parameters.values()
    return [p.name for p in params if p.name != "root" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_options(name: str, options: dict | None = None) -> None:
    """Raise :class:`ConfigError` for an unknown data set or an option its loader does not take."""
    _check_name(name)
    params = inspect.signature(DATASETS[name]).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    valid = loader_options(name)
    unknown = sorted(set(options or {}) - set(valid))
    if unknown:
        raise ConfigError(
            f"data set '{name}' has no option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(valid) or 'none'}"
        )


def load_scenes(name: str, root: str | Path | None = None, **options) -> list[Scene]:
    """Load the named data set (a key of :data:`DATASETS`); ``options`` go to its loader."""
    check_options(name, options)
    return DATASETS[name](root=root, **options)


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ConfigError(f"unknown data set '{name}'; known: {', '.join(sorted(DATASETS))}")
