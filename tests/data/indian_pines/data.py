"""Tiny fake Indian Pines in the real layout, written at test time (no binary files are kept).

``<root>/indian_pines/``:

- ``Indian_pines_corrected.mat``: MATLAB v5, variable ``indian_pines_corrected``,
  12x12x200 uint16 (the real cube is 145x145x200);
- ``Indian_pines_gt.mat``: variable ``indian_pines_gt``, 12x12 uint8, 0..16;
- ``92AV3C.spc``: a title line, a rule, then 220 tab-separated rows of centre,
  FWHM, centre uncertainty, FWHM uncertainty and channel number.

Band ``b`` (1-based, of 220) has centre ``400 + 10 (b - 1) + 0.25`` nm and FWHM
``5 + b / 100`` nm, so a band's number can be read back from its wavelength.

Run ``python data.py FOLDER`` to write the files into FOLDER.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io

SIZE = 12
ALL_BANDS = 220
DROPPED = (*range(104, 109), *range(150, 164), 220)  # 1-based, as in the real corrected cube
# (row, col) -> label, written on purpose so a test can check positions
KNOWN_LABELS = {(0, 0): 0, (0, 11): 16, (3, 5): 1, (11, 0): 9, (7, 2): 14}


def centre(band: int) -> float:
    return 400.0 + 10.0 * (band - 1) + 0.25


def fwhm(band: int) -> float:
    return 5.0 + band / 100.0


def write(root: Path) -> dict:
    """Write the files under ``root``; returns the arrays written and the kept band numbers."""
    folder = Path(root) / "indian_pines"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    kept = [b for b in range(1, ALL_BANDS + 1) if b not in DROPPED]
    cube = rng.integers(955, 9605, (SIZE, SIZE, len(kept)), dtype=np.uint16)
    gt = rng.integers(0, 17, (SIZE, SIZE)).astype(np.uint8)
    for (r, c), label in KNOWN_LABELS.items():
        gt[r, c] = label
    scipy.io.savemat(folder / "Indian_pines_corrected.mat", {"indian_pines_corrected": cube})
    scipy.io.savemat(folder / "Indian_pines_gt.mat", {"indian_pines_gt": gt})
    lines = ["FILE spectral_920530-930111.ascii", "---------------------------------"]
    lines += [f"{centre(b):f}\t{fwhm(b):f}\t0.920000\t0.500000\t{b + 1:f}" for b in range(1, ALL_BANDS + 1)]
    (folder / "92AV3C.spc").write_text("\n".join(lines) + "\n")
    return {"cube": cube, "gt": gt, "kept": kept}


if __name__ == "__main__":
    write(Path(sys.argv[1]))
