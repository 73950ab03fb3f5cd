"""Tiny fake Moffett Field unmixing scene in the real layout, written at test time.

``<root>/unmixing/moffett.mat`` (MATLAB v5), the same variables as Samson's
(``Y``, ``GT``, ``S_GT``, ``lines``, ``cols``; see ``../samson/data.py``). The
real scene is 50x50x184; this one is 9x12x8: the loader records no wavelengths
for Moffett, so any band count loads.

Run ``python data.py FOLDER`` to write the file into FOLDER.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROWS, COLS, BANDS = 9, 12, 8


def _samson():
    spec = importlib.util.spec_from_file_location("fake_samson_data", Path(__file__).parents[1] / "samson" / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(root: Path) -> dict:
    return _samson().write_unmixing(Path(root) / "unmixing" / "moffett.mat", ROWS, COLS, BANDS, seed=3)


if __name__ == "__main__":
    write(Path(sys.argv[1]))
