"""Tiny fake OSCD (Onera Satellite Change Detection) in the real layout, written at test time.

``<root>/oscd/``:

- ``images/<city>/imgs_1/<product>_<band>.tif`` and ``imgs_2/...``: one
  single-band uint16 GeoTIFF per Sentinel-2 band (all 13: B01..B12 and B8A),
  10, 20 or 60 m; every band of a date covers the same bounds, so the coarser
  grids have fewer, larger pixels (and, when the 10 m size does not divide,
  pixels a little larger than 20 or 60 m, as in the real files). Product names
  follow the real ones (``S2A_OPER_MSI_L1C_TL_..._T30UWU`` for date 1,
  ``T30UWU_<date>`` for date 2);
- ``images/<city>/dates.txt``: ``date_1: YYYYMMDD`` and ``date_2: ...``;
- ``train_labels/<city>/cm/<city>-cm.tif``: uint8 change map, 1 = no change,
  2 = change, without georeferencing.

Two cities: ``rennes`` (12x12 at 10 m, dates and map the same size) and
``hongkong`` (date 1 and the map 12x14, date 2 10x12, as the real Hong Kong
pair differs by a few pixels). B05 (20 m) holds the ramp ``1000 + 100 row +
10 col`` so that resampling to 10 m can be checked; the other bands are random.

Run ``python data.py FOLDER`` to write the files into FOLDER.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import rasterio
import tifffile
from affine import Affine

from specdm.datasets.sensors import SENTINEL2

RESOLUTION = {band.name: band.resolution for band in SENTINEL2}  # all 13 bands, m
CITIES = {  # city: (date 1 shape, date 2 shape, change map shape) at 10 m
    "rennes": ((12, 12), (12, 12), (12, 12)),
    "hongkong": ((12, 14), (10, 12), (12, 14)),
}
DATES = ("20150821", "20170621")
PRODUCTS = ("S2A_OPER_MSI_L1C_TL_EPA__20150821T155721_A000849_T30UWU", "T30UWU_20170621T110651")
CHANGED = (slice(4, 7), slice(2, 6))  # rows, cols marked 2 (change) in every map
LEFT, TOP = 600000.0, 5340000.0


def ramp(shape: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (1000 + 100 * rows + 10 * cols).astype(np.uint16)


def _transform(bounds: tuple[float, float, float, float], shape: tuple[int, int]) -> Affine:
    """Pixels of ``shape`` stretched over ``bounds`` (left, bottom, right, top)."""
    left, bottom, right, top = bounds
    return Affine((right - left) / shape[1], 0.0, left, 0.0, -(top - bottom) / shape[0], top)


def write(root: Path) -> dict:
    """Write both cities under ``root``; returns ``{city: {"imgs_1": {band: array}, "imgs_2": ..., "cm": array}}``."""
    folder = Path(root) / "oscd"
    rng = np.random.default_rng(5)
    written = {}
    for city, (shape1, shape2, cm_shape) in CITIES.items():
        written[city] = {}
        for date, product, shape in zip(("imgs_1", "imgs_2"), PRODUCTS, (shape1, shape2)):
            date_dir = folder / "images" / city / date
            date_dir.mkdir(parents=True, exist_ok=True)
            bounds = (LEFT, TOP - 10 * shape[0], LEFT + 10 * shape[1], TOP)
            bands = {}
            for band, res in RESOLUTION.items():
                factor = res // 10
                band_shape = (math.ceil(shape[0] / factor), math.ceil(shape[1] / factor))
                array = ramp(band_shape) if band == "B05" else rng.integers(1, 5000, band_shape, dtype=np.uint16)
                profile = {"driver": "GTiff", "dtype": "uint16", "count": 1, "height": band_shape[0],
                           "width": band_shape[1], "crs": "EPSG:32630",
                           "transform": _transform(bounds, band_shape)}
                with rasterio.open(date_dir / f"{product}_{band}.tif", "w", **profile) as dst:
                    dst.write(array, 1)
                bands[band] = array
            written[city][date] = bands
        (folder / "images" / city / "dates.txt").write_text(f"date_1: {DATES[0]}\ndate_2: {DATES[1]}\n")
        cm = np.ones(cm_shape, np.uint8)
        cm[CHANGED] = 2
        cm_dir = folder / "train_labels" / city / "cm"
        cm_dir.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(cm_dir / f"{city}-cm.tif", cm)
        written[city]["cm"] = cm
    return written


if __name__ == "__main__":
    write(Path(sys.argv[1]))
