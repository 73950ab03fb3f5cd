"""Tiny fake Taizhou change pair in the real layout, written at test time.

``<root>/landsat_cd/Taizhou/``:

- ``2000TM`` and ``2003TM``: ENVI raw data, uint8 (data type 1), band
  sequential, 12x12x6 (the real images are 400x400x6), each with a header
  ``2000TM.HDR`` / ``2003TM.HDR`` spelt in capitals as in the real files,
  holding the real files' ``band names`` pattern and wavelengths in micrometres;
- ``change.bmp`` and ``unchanged.bmp``: 8-bit grey BMPs, 255 where a pixel is
  known to have changed / not changed, 0 elsewhere (most pixels are in neither).

Run ``python data.py FOLDER`` to write the files into FOLDER.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

SIZE, BANDS = 12, 6
WAVELENGTHS_UM = (0.4825, 0.565, 0.66, 0.825, 1.65, 2.22)
ETM_BANDS = (1, 2, 3, 4, 5, 7)

HEADER = """ENVI
description = {{
  File Resize Result, x resize factor: 1.000000, y resize factor: 1.000000.}}
samples = {cols}
lines   = {rows}
bands   = {bands}
header offset = 0
file type = ENVI Standard
data type = 1
interleave = bsq
sensor type = Landsat ETM
byte order = 0
wavelength units = Micrometers
band names = {{
{names}}}
wavelength = {{
 {wavelengths}}}
"""


def write(root: Path) -> dict:
    """Write the files under ``root``; returns the images (rows, cols, bands) and both marks."""
    folder = Path(root) / "landsat_cd" / "Taizhou"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(4)
    images = {}
    for year in ("2000", "2003"):
        image = rng.integers(0, 256, (SIZE, SIZE, BANDS), dtype=np.uint8)
        np.moveaxis(image, -1, 0).tofile(folder / f"{year}TM")  # band sequential
        names = ", \n".join(f" Resize (ETM+ Meta (Band {b}):L71119038_03820000317_MTL.txt)" for b in ETM_BANDS)
        (folder / f"{year}TM.HDR").write_text(HEADER.format(
            rows=SIZE, cols=SIZE, bands=BANDS, names=names, wavelengths=", ".join(f"{w:f}" for w in WAVELENGTHS_UM),
        ))
        images[year] = image
    change = np.zeros((SIZE, SIZE), np.uint8)
    unchanged = np.zeros((SIZE, SIZE), np.uint8)
    change[2:4, 3:6] = 255
    unchanged[8:11, 0:4] = 255
    unchanged[0, 11] = 255
    Image.fromarray(change, mode="L").save(folder / "change.bmp")
    Image.fromarray(unchanged, mode="L").save(folder / "unchanged.bmp")
    return {"2000": images["2000"], "2003": images["2003"], "change": change, "unchanged": unchanged}


if __name__ == "__main__":
    write(Path(sys.argv[1]))
