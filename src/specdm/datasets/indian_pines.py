"""Indian Pines (AVIRIS, June 1992): 145x145 pixels, 200 bands, 16 classes plus unlabelled."""

from __future__ import annotations

from pathlib import Path

from specdm.datasets.paths import data_root, dataset_file
from specdm.errors import DataError
from specdm.io import read_mat, read_mask
from specdm.scene import Scene

CLASS_NAMES = [
    "unlabelled", "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
    "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
    "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers",
]
# 1-based bands of the 220-band image that the "corrected" cube leaves out (water absorption).
DROPPED_BANDS = (*range(104, 109), *range(150, 164), 220)


def load_indian_pines(root: str | Path | None = None) -> list[Scene]:
    """The corrected 200-band cube, its ground truth (0 = unlabelled, ignored) and
    band centres in nm from ``92AV3C.spc``.

    Band ``band_<n>`` is band n (1-based) of the 220-band image. The centres
    increase except at two joins of AVIRIS's spectrometers, which overlap by
    about 10 nm: band 31 (696.5 nm) is followed by 32 (686.9 nm), 94 (1282.6 nm)
    by 95 (1273.0 nm).
    """
    folder = data_root(root)
    cube_path = dataset_file(folder, "indian_pines/Indian_pines_corrected.mat", "Indian Pines")
    gt_path = dataset_file(folder, "indian_pines/Indian_pines_gt.mat", "Indian Pines")
    spc_path = dataset_file(folder, "indian_pines/92AV3C.spc", "Indian Pines")
    centres, fwhm = read_spc(spc_path)
    kept = [b for b in range(1, len(centres) + 1) if b not in DROPPED_BANDS]
    return [
        Scene(
            images=[read_mat(cube_path)],
            mask=read_mask(gt_path),
            class_names=list(CLASS_NAMES),
            ignore_index=0,
            band_names=[f"band_{b}" for b in kept],
            wavelengths=[centres[b - 1] for b in kept],
            name="indian_pines",
            source=str(cube_path),
            extra={"fwhm": [fwhm[b - 1] for b in kept], "sensor": "AVIRIS"},
        )
    ]


def read_spc(path: Path) -> tuple[list[float], list[float]]:
    """Band centres and FWHMs (nm) of the 220 AVIRIS bands from a ``92AV3C.spc`` table.

    Each data row holds: centre, FWHM, centre uncertainty, FWHM uncertainty,
    AVIRIS channel number; lines that are not five numbers (the title) are skipped.
    """
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            continue
        if len(values) == 5:
            rows.append(values)
    if len(rows) != 220:
        raise DataError(f"expected 220 band rows (centre, FWHM, ...), found {len(rows)}", path)
    return [r[0] for r in rows], [r[1] for r in rows]
