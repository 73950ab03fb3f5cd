"""Onera Satellite Change Detection (OSCD): Sentinel-2 image pairs of cities with change maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specdm.datasets.paths import data_root, dataset_file
from specdm.datasets.sensors import SENTINEL2_SURFACE, fwhms, rgb_indices, sentinel2_bands, wavelengths
from specdm.errors import DataError, DatasetNotFoundError
from specdm.io import read_band_files, read_mask
from specdm.scene import Scene

OSCD_TRAIN_CITIES = ("abudhabi", "aguasclaras", "bercy", "bordeaux", "nantes", "paris")
OSCD_TEST_CITIES = ("hongkong", "rennes")
# The SpecDM paper's ten bands (10 m: B02 B03 B04 B08; 20 m: B05 B06 B07 B8A B11 B12),
# in order of wavelength; centres and widths from the Sentinel-2A table in sensors.py.
BANDS = SENTINEL2_SURFACE
REFERENCE_BAND = "B02"
CLASS_NAMES = ["no change", "change"]
LICENCE = ("CC-BY-NC-SA (the OSCD change maps, Caye Daudt et al., IGARSS 2018); the images contain modified "
           "Copernicus Sentinel data 2015-2018")


def load_oscd(root: str | Path | None = None, cities: list[str] | tuple[str, ...] | None = None) -> list[Scene]:
    """One change scene per city (train cities, then test cities, by default).

    Each date's ten bands are resampled (bilinear) to that date's 10 m B02 grid.
    The change map (``<city>-cm.tif``: 1 = no change, 2 = change) becomes class
    0 "no change" / 1 "change". Where the two dates or the map differ in size
    (hongkong, abudhabi), all three are cut to the common top-left extent and
    ``scene.extra["cropped"]`` records the original shapes.
    """
    folder = data_root(root)
    names = list(OSCD_TRAIN_CITIES + OSCD_TEST_CITIES) if cities is None else list(cities)
    return [_load_city(folder, city) for city in names]


def _load_city(folder: Path, city: str) -> Scene:
    images, metas = [], []
    for date in ("imgs_1", "imgs_2"):
        date_dir = dataset_file(folder, f"oscd/images/{city}/{date}", "OSCD")
        paths = [_band_file(date_dir, band) for band in BANDS]
        image, meta = read_band_files(paths, reference=BANDS.index(REFERENCE_BAND), resampling="bilinear")
        images.append(image)
        metas.append(meta)
    cm_path = dataset_file(folder, f"oscd/train_labels/{city}/cm/{city}-cm.tif", "OSCD")
    raw = read_mask(cm_path)
    if not set(np.unique(raw).tolist()) <= {1, 2}:
        raise DataError(
            f"change map holds values {np.unique(raw).tolist()[:10]}; expected 1 (no change) and 2 (change)", cm_path
        )
    mask = (raw == 2).astype(np.int64)
    shapes = {"image1": images[0].shape[:2], "image2": images[1].shape[:2], "mask": mask.shape}
    rows = min(s[0] for s in shapes.values())
    cols = min(s[1] for s in shapes.values())
    extra = {"dates": _dates(folder / f"oscd/images/{city}/dates.txt"), "crs": metas[0]["crs"],
             "transform": metas[0]["transform"], "fwhm": fwhms(sentinel2_bands(BANDS)), "sensor": "Sentinel-2"}
    if any(s != (rows, cols) for s in shapes.values()):
        extra["cropped"] = {**shapes, "to": (rows, cols)}
    return Scene(
        images=[im[:rows, :cols] for im in images],
        mask=mask[:rows, :cols],
        class_names=list(CLASS_NAMES),
        task="change",
        ignore_index=None,
        band_names=list(BANDS),
        wavelengths=wavelengths(sentinel2_bands(BANDS)),
        rgb_bands=rgb_indices(list(BANDS)),
        name=f"oscd_{city}",
        source=str(cm_path),
        extra=extra,
    )


def _band_file(date_dir: Path, band: str) -> Path:
    matches = sorted(date_dir.glob(f"*_{band}.tif"))
    if not matches:
        raise DatasetNotFoundError(
            f"no file for band {band} (*_{band}.tif)", date_dir, hint="OSCD ships one GeoTIFF per band"
        )
    if len(matches) > 1:
        raise DataError(f"{len(matches)} files match band {band}: {[m.name for m in matches]}", date_dir)
    return matches[0]


def _dates(path: Path) -> list[str] | None:
    """``["20160927", "20180323"]`` from ``dates.txt`` (``date_1: ...`` lines), if present."""
    if not path.is_file():
        return None
    return [line.split(":", 1)[1].strip() for line in path.read_text().splitlines() if ":" in line]
