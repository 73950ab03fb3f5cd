"""Unmixing scenes (Samson, Moffett Field) with reference endmembers and abundances.

The ``.mat`` files hold ``Y`` (bands x pixels, in [0, 1]), ``GT`` (endmembers x
bands), ``S_GT`` (rows x cols x endmembers), ``lines`` and ``cols``. Pixels are
in column-major order: ``Y.T.reshape(rows, cols, bands, order="F")`` puts them
where ``S_GT`` has them (the mean spectral angle between ``S_GT @ GT`` and the
cube is 0.04 rad for Samson, 0.09 for Moffett; 0.36 with row-major order). The
class map is the argmax of the abundances.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specdm.datasets.paths import data_root, dataset_file
from specdm.errors import DataError
from specdm.io import read_mat
from specdm.scene import Scene

# Endmember order in GT, checked on the spectra: Samson 0 rises steadily with wavelength
# (soil), 1 has a red edge (tree), 2 peaks in the visible and is dark in the NIR (water).
SAMSON_CLASSES = ["rock/soil", "tree", "water"]
# Moffett: 0 is dark everywhere (water), 1 rises steadily (soil), 2 has a red edge (vegetation).
MOFFETT_CLASSES = ["water", "soil", "vegetation"]


def load_samson(root: str | Path | None = None) -> list[Scene]:
    """Samson, 95x95x156. Wavelengths are nominal: the data set is described as
    156 channels from 401 to 889 nm, taken here as evenly spaced."""
    path = dataset_file(data_root(root), "unmixing/Samson.mat", "Samson")
    wavelengths = np.round(np.linspace(401.0, 889.0, 156), 3).tolist()
    return [_load(path, "samson", SAMSON_CLASSES, wavelengths)]


def load_moffett(root: str | Path | None = None) -> list[Scene]:
    """Moffett Field (AVIRIS), 50x50x184; which AVIRIS bands were kept is not
    recorded in the file, so wavelengths are None."""
    path = dataset_file(data_root(root), "unmixing/moffett.mat", "Moffett Field")
    return [_load(path, "moffett", MOFFETT_CLASSES, None)]


def _load(path: Path, name: str, class_names: list[str], wavelengths: list[float] | None) -> Scene:
    y = read_mat(path, "Y")
    endmembers = read_mat(path, "GT")
    abundances = read_mat(path, "S_GT")
    rows, cols = int(read_mat(path, "lines").item()), int(read_mat(path, "cols").item())
    bands = y.shape[0]
    if y.shape != (bands, rows * cols):
        raise DataError(f"Y has shape {y.shape}; expected (bands, {rows}*{cols})", path)
    if endmembers.shape != (len(class_names), bands):
        raise DataError(f"GT has shape {endmembers.shape}; expected ({len(class_names)}, {bands})", path)
    if abundances.shape != (rows, cols, len(class_names)):
        raise DataError(f"S_GT has shape {abundances.shape}; expected ({rows}, {cols}, {len(class_names)})", path)
    return Scene(
        images=[y.T.reshape(rows, cols, bands, order="F")],
        mask=abundances.argmax(-1),
        class_names=list(class_names),
        ignore_index=None,
        wavelengths=wavelengths,
        name=name,
        source=str(path),
        extra={"endmembers": endmembers.astype(np.float32), "abundances": abundances.astype(np.float32)},
    )
