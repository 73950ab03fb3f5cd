"""GeoTIFF rasters: one multi-band file, or one file per band resampled to one grid."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import reproject

from specdm.errors import ConfigError, DataError

PIXEL_CRS = "EPSG:3857"


def read_geotiff(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read every band of a GeoTIFF as ``(rows, cols, bands)`` in the file's dtype.

    The dict holds ``path``, ``shape``, ``crs`` (such as ``EPSG:32631``, or None),
    ``transform`` (affine coefficients a..f), ``bounds``, ``nodata`` and
    ``band_names`` (the band descriptions, when every band has one).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    try:
        with _quiet(), rasterio.open(path) as src:
            array = src.read()
            meta = _grid(src)
            if all(src.descriptions):
                meta["band_names"] = list(src.descriptions)
    except Exception as err:
        raise DataError(f"not a readable GeoTIFF, truncated or corrupt ({err})", path) from err
    meta["path"] = str(path)
    return np.moveaxis(array, 0, -1), meta


def read_band_files(
    paths: list[str | Path], reference: str | Path | int = 0, resampling: str = "bilinear"
) -> tuple[np.ndarray, dict]:
    """Read one single-band file per band and resample each to the reference grid.

    ``reference`` is an index into ``paths`` or the path of any raster whose
    grid (shape, bounds) the result takes; the result is ``(rows, cols,
    len(paths))`` float32 with the reference's rows and cols. Every file must
    cover the reference's ground extent (as the bands of a Sentinel-2 tile do);
    a georeferenced file whose bounds differ from the reference's by more than
    half a reference pixel is refused. ``resampling`` names a
    ``rasterio.enums.Resampling`` method (``nearest``, ``bilinear``, ``cubic``, ...).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no band files given")
    try:
        method = Resampling[resampling]
    except KeyError:
        known = ", ".join(m.name for m in Resampling)
        raise ConfigError(f"unknown resampling '{resampling}'; choose one of: {known}") from None
    ref_path = paths[reference] if isinstance(reference, int) else Path(reference)
    ref = _grid_of(ref_path)
    out = np.empty((*ref["shape"], len(paths)), dtype=np.float32)
    shapes = []
    for k, path in enumerate(paths):
        if not path.is_file():
            raise DataError("file not found", path)
        try:
            with _quiet(), rasterio.open(path) as src:
                grid, count = _grid(src), src.count
                band = src.read(1).astype(np.float32)
        except Exception as err:
            raise DataError(f"not a readable GeoTIFF, truncated or corrupt ({err})", path) from err
        if count != 1:
            raise DataError(f"holds {count} bands; expected one band per file", path)
        _check_extent(grid, ref, path, ref_path)
        shapes.append(grid["shape"])
        out[..., k] = band if band.shape == ref["shape"] else _resample(band, ref["shape"], method)
    meta = {k: ref[k] for k in ("crs", "transform")}
    meta.update(band_files=[str(p) for p in paths], source_shapes=shapes, reference=str(ref_path))
    return out, meta


def _resample(band: np.ndarray, shape: tuple[int, int], method: Resampling) -> np.ndarray:
    """Stretch ``band`` over ``shape`` (same extent), interpolating in float32.

    GDAL warps between pixel grids expressed in one placeholder CRS (EPSG:3857 on
    both sides, so nothing is reprojected); ``read(out_shape=...)`` would
    interpolate in the file's integer dtype and round.
    """
    out = np.empty(shape, dtype=np.float32)
    scale = Affine.scale(shape[1] / band.shape[1], shape[0] / band.shape[0])
    reproject(
        band, out, src_transform=scale, src_crs=PIXEL_CRS,
        dst_transform=Affine.identity(), dst_crs=PIXEL_CRS, resampling=method,
    )
    return out


def _grid_of(path: Path) -> dict:
    if not path.is_file():
        raise DataError("file not found", path)
    try:
        with _quiet(), rasterio.open(path) as src:
            return _grid(src)
    except Exception as err:
        raise DataError(f"not a readable GeoTIFF, truncated or corrupt ({err})", path) from err


def _grid(src) -> dict:
    return {
        "shape": (src.height, src.width),
        "crs": None if src.crs is None else src.crs.to_string(),
        "transform": tuple(src.transform)[:6],
        "bounds": tuple(src.bounds),
        "nodata": src.nodata,
    }


def _check_extent(grid: dict, ref: dict, path: Path, ref_path: Path) -> None:
    if grid["crs"] is None or ref["crs"] is None:
        return
    if grid["crs"] != ref["crs"]:
        raise DataError(f"CRS {grid['crs']} differs from the reference's {ref['crs']} ({ref_path.name})", path)
    half_pixel = 0.5 * min(abs(ref["transform"][0]), abs(ref["transform"][4]))
    if np.max(np.abs(np.subtract(grid["bounds"], ref["bounds"]))) > half_pixel:
        raise DataError(
            f"bounds {grid['bounds']} differ from the reference's {ref['bounds']} ({ref_path.name}); "
            "per-band files must cover the same extent",
            path,
        )


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence rasterio's warning for plain (non-georeferenced) TIFFs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield
