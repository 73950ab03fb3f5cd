"""Taizhou (Landsat ETM+, 2000 and 2003): a 400x400x6 change pair with a partial reference map."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from specdm.datasets.paths import data_root, dataset_file
from specdm.errors import DataError
from specdm.io import read_envi, read_mask
from specdm.scene import Scene

CLASS_NAMES = ["unknown", "no change", "change"]


def load_taizhou(root: str | Path | None = None) -> list[Scene]:
    """The 2000/2003 pair; ``change.bmp`` and ``unchanged.bmp`` mark known pixels
    (255; 0 = not marked), giving classes 1 "no change" and 2 "change"; pixels in
    neither are 0 "unknown" (ignored)."""
    folder = data_root(root)
    images, metas = [], []
    for year in ("2000", "2003"):
        image, meta = read_envi(_header(folder, f"landsat_cd/Taizhou/{year}TM"))
        images.append(image)
        metas.append(meta)
    change_path = dataset_file(folder, "landsat_cd/Taizhou/change.bmp", "Taizhou")
    unchanged_path = dataset_file(folder, "landsat_cd/Taizhou/unchanged.bmp", "Taizhou")
    change, unchanged = read_mask(change_path) != 0, read_mask(unchanged_path) != 0
    if change.shape != unchanged.shape:
        raise DataError(f"shape {change.shape} differs from unchanged.bmp's {unchanged.shape}", change_path)
    both = change & unchanged
    if both.any():
        raise DataError(f"{int(both.sum())} pixels are marked both changed and unchanged", change_path)
    mask = np.where(change, 2, np.where(unchanged, 1, 0))
    return [
        Scene(
            images=images,
            mask=mask,
            class_names=list(CLASS_NAMES),
            task="change",
            ignore_index=0,
            band_names=_band_names(metas[0].get("band_names")),
            wavelengths=metas[0]["wavelengths"],
            name="taizhou",
            source=metas[0]["path"],
            extra={"sensor": "Landsat 7 ETM+", "dates": ["2000", "2003"]},
        )
    ]


def _header(folder: Path, stem: str) -> Path:
    """The ENVI header, spelt ``.HDR`` in the distributed files, or ``.hdr``."""
    for suffix in (".HDR", ".hdr"):
        if (folder / (stem + suffix)).is_file():
            return folder / (stem + suffix)
    return dataset_file(folder, stem + ".HDR", "Taizhou")


def _band_names(names: list[str] | None) -> list[str] | None:
    """``B1``..``B7`` from header names such as ``Resize (ETM+ Meta (Band 7):...)``."""
    if names is None:
        return None
    found = [re.search(r"Band (\d+)", n) for n in names]
    return [f"B{m.group(1)}" for m in found] if all(found) else names
