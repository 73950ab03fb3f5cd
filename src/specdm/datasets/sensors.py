"""Band tables of the sensors the named data sets come from, and helpers to pick bands.

Sentinel-2: the 13 bands of the MultiSpectral Instrument with Sentinel-2A's
central wavelengths and bandwidths (nm; ESA, Sentinel-2 Spectral Response
Functions, COPE-GSEG-EOPG-TN-15-0007, v3.0; the bandwidth is the width of the
spectral response at half its maximum) and the ground sampling distance (m).
Sentinel-2B's centres differ by at most 17 nm (B12: 2185.7 nm).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from specdm.errors import ConfigError


@dataclass(frozen=True)
class Band:
    """One spectral band: ``name``, centre ``wavelength`` and ``fwhm`` in nm, ``resolution`` in m."""

    name: str
    wavelength: float
    fwhm: float
    resolution: int


# In band-number order (B8A, the narrow NIR band, after B08).
SENTINEL2: tuple[Band, ...] = (
    Band("B01", 442.7, 21.0, 60),   # coastal aerosol
    Band("B02", 492.4, 66.0, 10),   # blue
    Band("B03", 559.8, 36.0, 10),   # green
    Band("B04", 664.6, 31.0, 10),   # red
    Band("B05", 704.1, 15.0, 20),   # red edge 1
    Band("B06", 740.5, 15.0, 20),   # red edge 2
    Band("B07", 782.8, 20.0, 20),   # red edge 3
    Band("B08", 832.8, 106.0, 10),  # near infrared
    Band("B8A", 864.7, 21.0, 20),   # narrow near infrared
    Band("B09", 945.1, 20.0, 60),   # water vapour
    Band("B10", 1373.5, 31.0, 60),  # cirrus (SWIR)
    Band("B11", 1613.7, 91.0, 20),  # SWIR 1
    Band("B12", 2202.4, 175.0, 20),  # SWIR 2
)

# The SpecDM paper's ten bands: the surface bands at 10 and 20 m, in order of wavelength.
# The 60 m bands (B01 aerosol, B09 water vapour, B10 cirrus) sample the atmosphere.
SENTINEL2_SURFACE = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def sentinel2_bands(names: Iterable[str] | None = None, resolutions: Iterable[int] | None = None) -> tuple[Band, ...]:
    """Sentinel-2 bands named in ``names`` (in that order; all 13 in band-number order when None),
    keeping those whose resolution is in ``resolutions`` when given.

    An unknown name raises :class:`ConfigError` listing the known ones.
    """
    return select(SENTINEL2, names, resolutions, "Sentinel-2")


def select(
    table: tuple[Band, ...], names: Iterable[str] | None = None, resolutions: Iterable[int] | None = None,
    sensor: str = "sensor",
) -> tuple[Band, ...]:
    """The bands of ``table`` named in ``names`` (in that order; all when None) whose
    resolution is in ``resolutions`` (all when None)."""
    by_name = {b.name: b for b in table}
    if names is None:
        bands = table
    else:
        names = list(names)
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ConfigError(f"unknown {sensor} band(s) {unknown}; known: {', '.join(by_name)}")
        bands = tuple(by_name[n] for n in names)
    if resolutions is not None:
        keep = set(resolutions)
        bands = tuple(b for b in bands if b.resolution in keep)
    return bands


def band_names(bands: Iterable[Band]) -> list[str]:
    return [b.name for b in bands]


def wavelengths(bands: Iterable[Band]) -> list[float]:
    return [b.wavelength for b in bands]


def fwhms(bands: Iterable[Band]) -> list[float]:
    return [b.fwhm for b in bands]


def rgb_indices(names: list[str], red: str = "B04", green: str = "B03", blue: str = "B02") -> tuple[int, int, int]:
    """Positions of the red, green and blue bands in ``names`` (Sentinel-2 names by default)."""
    missing = [n for n in (red, green, blue) if n not in names]
    if missing:
        raise ConfigError(f"bands {missing} are needed for an RGB preview but not among {names}")
    return names.index(red), names.index(green), names.index(blue)
