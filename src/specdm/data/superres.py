"""Super-resolved training scenes as extra training windows (``data.super_resolved``).

A data set written by ``specdm superres`` (or ``specdm apply super-resolve``) holds super-resolved copies of a
scene's training part (``metadata.json`` ``derived.kind``: ``super-resolved``), images in the data's own units and
masks upsampled by nearest neighbour. :func:`add_super_resolved` reads such sets, checks that their bands and classes
are those of the real data, normalizes them with the real training normalization (fitted on real pixels only),
cuts windows with the real windows' cleaning and appends them to the training windows; the record of what was added
(:attr:`PreparedData.super_resolved`) goes into the model folder's ``specdm.json`` and every data set's
``metadata.json`` and card.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from specdm.data.splits import Region
from specdm.data.windows import Window, make_windows
from specdm.errors import DataError
from specdm.scene import Scene

DERIVED_KIND = "super-resolved"


def read_super_resolved(folder: str | Path) -> tuple[dict, list[tuple[list[np.ndarray], np.ndarray | None, dict]]]:
    """The metadata and the complete scenes ``(images (H, W, C) per date, mask or None, sample record)`` of a
    super-resolved set; a folder that is not one is a :class:`DataError` naming it."""
    folder = Path(folder)
    meta_file = folder / "metadata.json"
    if not meta_file.is_file():
        raise DataError("is not a data set of super-resolved scenes (metadata.json missing)", folder,
                        hint="write one with specdm superres CONFIG, then give its scenes/ folder")
    meta = json.loads(meta_file.read_text())
    if (meta.get("derived") or {}).get("kind") != DERIVED_KIND:
        raise DataError("is a data set, but not of super-resolved scenes (metadata.json has no derived.kind "
                        f"'{DERIVED_KIND}')", folder)
    out = []
    for rec in meta["samples"]:
        i = rec["index"]
        mask = None
        if meta.get("masks"):
            m = folder / "masks" / f"{i:06d}.png"
            if not m.is_file():
                continue  # not written (yet)
            mask = np.array(Image.open(m)).astype(np.int64)
        ims = []
        for d in meta["images"]:
            p = folder / d / f"{i:06d}.tif"
            if not p.is_file():
                break
            im = tifffile.imread(p)
            ims.append(np.moveaxis(im[None] if im.ndim == 2 else im, 0, -1).astype(np.float32))
        if len(ims) == len(meta["images"]):
            out.append((ims, mask, rec))
    if not out:
        raise DataError("holds no complete super-resolved scene", folder)
    return meta, out


def add_super_resolved(data, folders: list[str], stride: int | None = None):
    """``data`` (a :class:`~specdm.data.datamodule.PreparedData`) with the windows of the super-resolved sets
    ``folders`` appended to its training windows; ``stride`` defaults to the real windows' times each scene's scale
    (so each scale adds about as many windows as the real training part has)."""
    from specdm.data.datamodule import PatchSet

    ref = data.reference
    train = data.train
    size = train.size
    c = data.cleaning
    base = c.get("stride", size)
    images, masks, windows = list(train.images), list(train.masks), list(train.windows)
    record = {"folders": [], "real_windows": len(train), "stride": stride or f"{base} x scale"}
    for folder in folders:
        meta, scenes = read_super_resolved(folder)
        if list(meta["band_names"]) != list(ref.band_names):
            raise DataError(f"holds {len(meta['band_names'])} bands ({meta['band_names'][0]} ..), the config's data "
                            f"{ref.num_bands} ({ref.band_names[0]} ..): super-resolve this config's scenes", folder)
        if meta.get("masks") and list(meta["class_names"]) != list(ref.class_names):
            raise DataError(f"has classes {meta['class_names']}, the config's data {ref.class_names}", folder)
        per_scale: dict[str, int] = {}
        for ims, mask, rec in scenes:
            scene = Scene(ims, mask if mask is not None else np.full(ims[0].shape[:2], ref.ignore_index or 0),
                          list(ref.class_names) or ["unlabelled"], ref.task if ref.task != "image" else "segmentation",
                          ref.ignore_index, list(ref.band_names), ref.wavelengths, tuple(ref.rgb_bands),
                          f"{rec['scene']}_x{rec['scale']}", str(folder))
            h, w = scene.shape
            if h < size or w < size:
                continue
            try:
                found = make_windows([scene], [Region(0, 0, h, 0, w)], size, stride or base * int(rec["scale"]),
                                     c.get("min_labelled", 0.0),
                                     c.get("max_blank", 1.0))
            except DataError:
                continue  # no window of this scene passes the cleaning
            k = len(images)
            images.append(np.stack([data.normalizer(im).transpose(2, 0, 1) for im in scene.images]))
            masks.append(scene.mask)
            windows += [Window(k, w_.r, w_.c) for w_ in found]
            key = f"x{rec['scale']}"
            per_scale[key] = per_scale.get(key, 0) + len(found)
        record["folders"].append({"path": str(folder), "windows": sum(per_scale.values()), "per_scale": per_scale,
                                  "model": meta.get("model"), "stages": (meta.get("derived") or {}).get("stages")})
    record["windows"] = sum(f["windows"] for f in record["folders"])
    if record["windows"] == 0:
        raise DataError(f"no window of {size}x{size} fits the super-resolved scenes after cleaning", folders[0])
    return replace(data, train=PatchSet(images, masks, windows, size), super_resolved=record)
