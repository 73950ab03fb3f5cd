"""Tiny fake Samson unmixing scene in the real layout, written at test time.

``<root>/unmixing/Samson.mat`` (MATLAB v5) holds, as the real file does:
``Y`` (156 bands x pixels, float64 in [0, 1], pixels in column-major order),
``GT`` (3 endmembers x 156 bands), ``S_GT`` (rows x cols x 3 abundances),
``lines`` and ``cols`` (1x1 uint8). The real scene is 95x95; this one is 12x10
(not square, so a row-major reshape would put pixels in the wrong place).
The loader names 156 evenly spaced wavelengths, so the band count stays 156.

Run ``python data.py FOLDER`` to write the file into FOLDER.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io

ROWS, COLS, BANDS = 12, 10, 156


def write_unmixing(path: Path, rows: int, cols: int, bands: int, seed: int) -> dict:
    """One unmixing ``.mat`` file; the dominant endmember of pixel (r, c) is ``(r + 2 c) % 3``."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    endmembers = rng.uniform(0.05, 0.95, (3, bands))
    dominant = (np.arange(rows)[:, None] + 2 * np.arange(cols)[None, :]) % 3
    abundances = rng.uniform(0.0, 0.3, (rows, cols, 3))
    np.put_along_axis(abundances, dominant[..., None], 1.0, axis=-1)
    abundances /= abundances.sum(-1, keepdims=True)
    cube = abundances @ endmembers  # (rows, cols, bands), within [0, 1]
    y = cube.reshape(rows * cols, bands, order="F").T  # bands x pixels, column-major pixels
    scipy.io.savemat(path, {
        "Y": y, "GT": endmembers, "S_GT": abundances,
        "lines": np.array([[rows]], np.uint8), "cols": np.array([[cols]], np.uint8),
    })
    return {"Y": y, "GT": endmembers, "S_GT": abundances, "dominant": dominant}


def write(root: Path) -> dict:
    return write_unmixing(Path(root) / "unmixing" / "Samson.mat", ROWS, COLS, BANDS, seed=2)


if __name__ == "__main__":
    write(Path(sys.argv[1]))
