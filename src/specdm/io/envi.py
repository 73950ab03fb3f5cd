"""ENVI images and spectral libraries (header + raw data file), via ``spectral``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from spectral.io import envi

from specdm.errors import DataError

DATA_SUFFIXES = ("", ".img", ".dat", ".raw", ".bin", ".bsq", ".bil", ".bip", ".sli")
MICROMETRE_UNITS = {"micrometers", "micrometer", "micrometres", "micrometre", "microns", "micron", "um", "µm"}
NANOMETRE_UNITS = {"nanometers", "nanometer", "nanometres", "nanometre", "nm"}


def read_envi(hdr_path: str | Path) -> tuple[np.ndarray, dict]:
    """Read an ENVI image as ``(rows, cols, bands)`` float32.

    The data file is looked for beside the header: same name without the
    header's suffix (``2000TM`` for ``2000TM.HDR``) or with a usual data suffix
    (``.img``, ``.dat``, ...). Returns the array and a dict with ``wavelengths``
    (nm, or None), ``fwhm`` (nm, when given), ``band_names`` (when given),
    ``path`` and ``data_file``.
    """
    path, header, data_path = _open_header(hdr_path)
    if header.get("file type") == "ENVI Spectral Library":
        raise DataError("is an ENVI spectral library, not an image; use read_spectral_library", path)
    try:
        image = envi.open(str(path), str(data_path))
        array = np.array(image.load(), dtype=np.float32)
    except Exception as err:
        raise DataError(f"cannot read the ENVI image ({err})", data_path) from err
    wavelengths = _numbers(header, "wavelength", path)
    factor = _nm_factor(wavelengths, header.get("wavelength units"))
    meta = {
        "path": str(path),
        "data_file": str(data_path),
        "wavelengths": None if wavelengths is None else np.round(wavelengths * factor, 6).tolist(),
    }
    fwhm = _numbers(header, "fwhm", path)
    if fwhm is not None:
        meta["fwhm"] = np.round(fwhm * factor, 6).tolist()
    if "band names" in header:
        meta["band_names"] = [str(n).strip() for n in header["band names"]]
    return array, meta


def read_spectral_library(hdr_path: str | Path) -> tuple[np.ndarray, list[float] | None, list[str]]:
    """Read an ENVI spectral library (``.sli``) as ``(spectra (N, B) float32, wavelengths nm, names)``.

    What is dropped or changed, so that every returned row is a material spectrum:

    - records named ``Wavelengths ...``, ``Resolution ...`` or ``Bandpass ...``
      (USGS libraries keep the band centres and FWHMs as records 0 and 1); when
      the header has no ``wavelength`` field, the ``Wavelengths`` record gives them;
    - records named ``error bars to preceding`` (uncertainties of the record before,
      not spectra);
    - values equal to the header's ``data ignore value`` (USGS: -1.23e34, stored with
      float32 rounding) become NaN.
    """
    path, header, data_path = _open_header(hdr_path)
    if header.get("file type") != "ENVI Spectral Library":
        raise DataError(f"file type is '{header.get('file type')}', not 'ENVI Spectral Library'", path)
    try:
        library = envi.open(str(path), str(data_path))
    except Exception as err:
        raise DataError(f"cannot read the ENVI spectral library ({err})", data_path) from err
    spectra = np.array(library.spectra, dtype=np.float32)
    names = [" ".join(str(n).split()) for n in header.get("spectra names", [])]
    if not names:
        names = [f"spectrum_{i}" for i in range(len(spectra))]
    if len(names) != len(spectra):
        raise DataError(f"{len(names)} spectra names for {len(spectra)} spectra", path)
    ignore = header.get("data ignore value")
    if ignore is not None:
        spectra[np.isclose(spectra, float(ignore), rtol=1e-4, atol=0.0)] = np.nan
    lowered = [n.lower() for n in names]
    wavelengths = _numbers(header, "wavelength", path)
    if wavelengths is None and any(n.startswith("wavelengths") for n in lowered):
        wavelengths = spectra[[n.startswith("wavelengths") for n in lowered].index(True)].astype(float)
    if wavelengths is not None:
        wavelengths = wavelengths * _nm_factor(wavelengths, header.get("wavelength units"))
    keep = [
        i for i, n in enumerate(lowered)
        if not n.startswith(("wavelengths", "resolution", "bandpass", "error bars to preceding"))
    ]
    wl = None if wavelengths is None else np.round(wavelengths, 6).tolist()
    return spectra[keep], wl, [names[i] for i in keep]


def _open_header(hdr_path: str | Path) -> tuple[Path, dict, Path]:
    """Parse the header, find the data file and check that it is complete."""
    path = Path(hdr_path)
    if not path.is_file():
        raise DataError("file not found", path)
    try:
        header = envi.read_envi_header(str(path))
        params = envi.gen_params(header)
    except Exception as err:
        raise DataError(f"not a valid ENVI header ({err})", path) from err
    stem = path.with_suffix("") if path.suffix.lower() == ".hdr" else path
    candidates = [stem.with_name(stem.name + s) for s in DATA_SUFFIXES]
    candidates += [stem.with_name(stem.name + s.upper()) for s in DATA_SUFFIXES if s]
    data_path = next((c for c in candidates if c.is_file() and c != path), None)
    if data_path is None:
        looked = ", ".join(c.name for c in candidates[: len(DATA_SUFFIXES)])
        raise DataError(f"no data file beside the header (looked for {looked})", path)
    needed = params.offset + params.nrows * params.ncols * params.nbands * np.dtype(params.dtype).itemsize
    size = data_path.stat().st_size
    if size < needed:
        raise DataError(
            f"data file holds {size} bytes but the header ({path.name}) needs {needed}: truncated?", data_path
        )
    return path, header, data_path


def _numbers(header: dict, field: str, path: Path) -> np.ndarray | None:
    if field not in header:
        return None
    try:
        return np.array([float(v) for v in header[field]])
    except ValueError as err:
        raise DataError(f"header field '{field}' holds non-numeric values ({err})", path) from err


def _nm_factor(wavelengths: np.ndarray | None, units: str | None) -> float:
    """1000 when wavelengths are in micrometres: the units say so or, when the
    units are missing or unknown, every wavelength is below 30; else 1."""
    unit = (units or "").strip().lower()
    if unit in MICROMETRE_UNITS:
        return 1000.0
    if unit not in NANOMETRE_UNITS and wavelengths is not None and wavelengths.max() < 30:
        return 1000.0
    return 1.0
