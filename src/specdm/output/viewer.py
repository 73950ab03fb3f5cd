"""``specdm view DATASET``: one self-contained HTML page to browse a synthetic data set.

:func:`write_viewer` reads a data set written by :class:`~specdm.output.dataset.DatasetWriter`
and writes ``view.html`` (by default inside the data set folder). The page holds everything
it shows: no server state, no network, no external libraries (plain JavaScript, canvas and
SVG). Open it from disk, or serve the folder with ``python -m http.server -d DATASET``.

What the page shows
    * a grid of the samples (false-colour thumbnails) with a class filter (samples whose
      mask holds the class);
    * the selected sample in false colour, three band pickers (default: metadata
      ``rgb_bands``) and a date picker for change-detection sets;
    * its mask as an overlay in the class colours (:func:`specdm.data.plot.class_colors`;
      the ``ignore_index`` class is left transparent) with an opacity slider;
    * a click on a pixel plots its spectrum (x: wavelengths when known, else the band
      number) against the real and the synthetic mean spectrum of the pixel's class;
    * class histograms, real vs synthetic (shares of the labelled pixels).

How the data are embedded
    Images are in normalized units (metadata ``normalization``: the model's units, [0, 1]
    on the real training split) when the set has a normalization, else in the data's own
    units. Each band is quantized to uint16 over its range in the embedded samples
    (``value = low + q * scale``; the error is below 1/65535 of the band's range) and every
    sample-date is one base64 string (bands first, rows, cols, little-endian); masks are
    uint8 (uint16 when a class value exceeds 255). At most ``max_samples`` samples and
    about ``max_bytes`` of raw image bytes are embedded, the first ones in index order;
    the page says when it holds fewer than the set.

The colour stretch
    One stretch per band for all samples, so that brightness differences stay visible.
    With the real class statistics (and normalized units) it is the real training split's
    mean +- 2 standard deviations per band (pooled over the classes); otherwise the 2nd..98th
    percentiles of the embedded synthetic samples. The page names the one it uses.

The real statistics (counts and mean spectra per class, :meth:`ClassSpectra.to_dict
<specdm.metrics.spectral.ClassSpectra.to_dict>`) come from the ``real_stats`` argument,
else metadata ``real_stats`` (or ``info.real_stats``), else the model folder's
``specdm.json`` (metadata ``model.path`` as written, else the folder of that name beside
the data set, as in a run folder: ``model/`` and ``synthetic/``). Without them the page shows the synthetic side only. The synthetic
statistics are metadata ``synthetic_stats`` (the whole set), else computed from the
embedded samples.
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path

import numpy as np

from specdm.errors import DataError

TEMPLATE = Path(__file__).with_name("viewer.html")
PLACEHOLDER = "/*SPECDM_DATA*/"
VIEW_NAME = "view.html"
DEFAULT_MAX_BYTES = 64 * 2**20


def write_viewer(dataset_dir: str | Path, out: str | Path | None = None, max_samples: int = 200,
                 real_stats: dict | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """Write the viewer page of the data set in ``dataset_dir``; returns its path.

    ``out``: the HTML file (default ``DATASET/view.html``). ``max_samples``: embed at most
    this many samples (the first complete ones); ``max_bytes``: and stop adding samples
    once their quantized images pass this many bytes (the first sample always goes in).
    ``real_stats``: the real class statistics (``ClassSpectra.to_dict()``), when
    the data set's metadata and model folder do not hold them.
    """
    from specdm.output.dataset import SyntheticDataset

    dataset_dir = Path(dataset_dir)
    out = dataset_dir / VIEW_NAME if out is None else Path(out)
    if max_samples < 1:
        raise DataError(f"max_samples must be at least 1, got {max_samples}")
    ds = SyntheticDataset(dataset_dir)
    if not len(ds):
        raise DataError("holds no complete sample to view", dataset_dir)
    data = _page_data(ds, max_samples, max_bytes, real_stats)
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    html = TEMPLATE.read_text(encoding="utf-8").replace(PLACEHOLDER, payload, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as e:
        raise DataError(f"cannot write the viewer ({e.strerror or e})", out) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def _page_data(ds, max_samples: int, max_bytes: int, real_stats: dict | None) -> dict:
    """Everything the page shows, as JSON-able values."""
    from specdm.data.normalize import Normalizer
    from specdm.data.plot import class_colors

    meta = ds.meta
    norm = Normalizer.from_dict(meta["normalization"]) if meta.get("normalization") else None

    # the samples: normalized (band axis last for the normalizer), within the caps
    items, used = [], 0
    for k in range(min(len(ds), max_samples)):
        item = ds[k]
        ims = item["images"]  # (T, C, H, W)
        size = ims.size * 2 + (item["mask"].size if "mask" in item else 0)
        if items and used + size > max_bytes:
            break
        if norm is not None:
            ims = np.moveaxis(norm(np.moveaxis(ims, 1, -1)), -1, 1)
        items.append((ds.indices[k], np.asarray(ims, np.float32), item.get("mask")))
        used += size
    num_dates, num_bands = items[0][1].shape[:2]
    if len(ds) > len(items):
        why = f"--max-samples {max_samples}" if len(items) == max_samples else f"a size budget of {max_bytes / 2**20:.0f} MiB"
        cap = f"showing the first {len(items)} of {len(ds)} samples ({why})"
    else:
        cap = None

    band_names = [str(b) for b in (meta.get("band_names") or [])]
    if len(band_names) != num_bands:
        band_names = [f"band {b + 1}" for b in range(num_bands)]
    wavelengths = meta.get("wavelengths")
    if not wavelengths or len(wavelengths) != num_bands or not all(_finite(w) for w in wavelengths):
        wavelengths = None
    rgb = [int(b) for b in (meta.get("rgb_bands") or [])]
    if len(rgb) != 3 or not all(0 <= b < num_bands for b in rgb):
        rgb = [min(2, num_bands - 1), min(1, num_bands - 1), 0]

    has_masks = all(m is not None for _, _, m in items)
    class_names = [str(c) for c in (meta.get("class_names") or [])]
    if has_masks:
        top = max(int(m.max()) for _, _, m in items) + 1
        if len(class_names) < top:
            class_names += [f"class {c}" for c in range(len(class_names), top)]
    ignore = meta.get("ignore_index")
    ignore = int(ignore) if isinstance(ignore, int) and 0 <= ignore < max(len(class_names), 1) else None
    num_classes = len(class_names)

    # per-band quantization range over the embedded samples
    lo = np.full(num_bands, np.inf)
    hi = np.full(num_bands, -np.inf)
    for _, ims, _ in items:
        flat = np.moveaxis(ims, 1, 0).reshape(num_bands, -1)
        fin = np.isfinite(flat)
        lo = np.minimum(lo, np.where(fin, flat, np.inf).min(1))
        hi = np.maximum(hi, np.where(fin, flat, -np.inf).max(1))
    lo = np.where(np.isfinite(lo), lo, 0.0)
    hi = np.where(np.isfinite(hi) & (hi > lo), hi, lo + 1.0)
    scale = (hi - lo) / 65535.0

    samples = []
    for index, ims, mask in items:
        q = np.clip(np.round((np.nan_to_num(ims, nan=0.0) - lo[None, :, None, None]) / scale[None, :, None, None]),
                    0, 65535).astype("<u2")
        s = {"index": int(index), "h": int(ims.shape[2]), "w": int(ims.shape[3]),
             "images": [_b64(q[t]) for t in range(num_dates)]}
        if has_masks:
            m = np.asarray(mask)
            wide = m.max() > 255
            s["mask"] = _b64(m.astype("<u2" if wide else np.uint8))
            s["mask_bytes"] = 2 if wide else 1
            s["classes"] = [int(c) for c in np.unique(m)]
        samples.append(s)

    units = "normalized units" if norm is not None else "data units"
    real = _real_stats(real_stats, meta, ds.dir, num_classes, num_bands) if has_masks else None
    synth = _stats_shape(meta.get("synthetic_stats"), num_classes, num_bands) if has_masks else None
    synth_source = "metadata synthetic_stats (all samples)"
    if has_masks and synth is None:
        synth, synth_source = _embedded_stats(items, num_classes, num_bands), f"the {len(items)} embedded samples"

    stretch_lo, stretch_hi, stretch_source = None, None, None
    if real is not None and norm is not None and sum(real["counts"]) > 0:
        stretch_lo, stretch_hi = _pooled_stretch(real)
        stretch_source = "real training split: mean \u00b1 2 std per band"
    if stretch_lo is None:
        stretch_lo, stretch_hi = _percentile_stretch(items, num_bands)
        stretch_source = f"2nd..98th percentiles of the {len(items)} embedded synthetic samples"
    stretch_hi = np.where(stretch_hi > stretch_lo, stretch_hi, stretch_lo + 1e-6)

    means_ok = norm is not None  # the statistics are in normalized units
    colors = class_colors(max(num_classes, 1))[:num_classes] if num_classes else np.zeros((0, 3))
    return {
        "title": dataset_dir_name(ds.dir),
        "task": meta.get("task"),
        "method": meta.get("method"),
        "num_total": len(ds),
        "cap": cap,
        "bands": band_names,
        "wavelengths": wavelengths,
        "rgb": rgb,
        "dates": [f"date {t + 1}" for t in range(num_dates)] if num_dates > 1 else ["image"],
        "units": units,
        "has_masks": has_masks,
        "class_names": class_names if has_masks else [],
        "colors": [[int(round(255 * v)) for v in c[:3]] for c in colors] if has_masks else [],
        "ignore_index": ignore if has_masks else None,
        "qlo": lo.tolist(),
        "qscale": scale.tolist(),
        "stretch": {"lo": _floats(stretch_lo), "hi": _floats(stretch_hi), "source": stretch_source},
        "real": _summary(real, means_ok),
        "synthetic": _summary(synth, means_ok),
        "synthetic_source": synth_source if has_masks else None,
        "samples": samples,
    }


def dataset_dir_name(path: Path) -> str:
    """The data set's folder name (its parent too, which is usually the run)."""
    path = Path(path).resolve()
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _floats(a) -> list:
    """Plain floats, None where not finite (JSON has no NaN)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(a, np.float64).ravel()]


def _stats_shape(stats: dict | None, num_classes: int, num_bands: int) -> dict | None:
    """``stats`` (ClassSpectra.to_dict) when it fits this set's classes and bands, else None."""
    try:
        counts = np.asarray(stats["counts"], np.float64)
        mean = np.asarray(stats["mean"], np.float64)
        m2 = np.asarray(stats.get("m2", np.zeros_like(mean)), np.float64)
    except (TypeError, KeyError, ValueError):
        return None
    if counts.shape != (num_classes,) or mean.shape != (num_classes, num_bands) or m2.shape != mean.shape:
        return None
    return {"counts": counts, "mean": mean, "m2": m2}


def _real_stats(given: dict | None, meta: dict, dataset_dir: Path, num_classes: int, num_bands: int) -> dict | None:
    """The real class statistics: argument, metadata, or the model folder's specdm.json."""
    candidates = [given, meta.get("real_stats"), (meta.get("info") or {}).get("real_stats")]
    model = (meta.get("model") or {}).get("path")
    if model:
        for folder in (Path(model), dataset_dir.parent / Path(model).name):  # as written, or a sibling folder
            f = folder / "specdm.json"
            if f.is_file():
                try:
                    candidates.append(json.loads(f.read_text()).get("real_stats"))
                except (OSError, ValueError):
                    pass
                break
    for c in candidates:
        stats = _stats_shape(c, num_classes, num_bands) if c else None
        if stats is not None:
            return stats
    return None


def _embedded_stats(items, num_classes: int, num_bands: int) -> dict:
    """Class counts and mean spectra of the embedded samples (every date counts)."""
    counts = np.zeros(num_classes)
    sums = np.zeros((num_classes, num_bands))
    for _, ims, mask in items:
        m = np.asarray(mask).ravel()
        for im in ims:
            x = np.nan_to_num(im.reshape(num_bands, -1).T.astype(np.float64))
            counts += np.bincount(m, minlength=num_classes)[:num_classes]
            for b in range(num_bands):
                sums[:, b] += np.bincount(m, weights=x[:, b], minlength=num_classes)[:num_classes]
    mean = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
    return {"counts": counts, "mean": mean, "m2": np.zeros_like(mean)}


def _pooled_stretch(stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Mean +- 2 std per band of all pixels behind ``stats`` (classes pooled exactly)."""
    n = stats["counts"]
    total = n.sum()
    mu = (n[:, None] * stats["mean"]).sum(0) / total
    m2 = stats["m2"].sum(0) + (n[:, None] * (stats["mean"] - mu) ** 2).sum(0)
    sd = np.sqrt(np.maximum(m2 / total, 0.0))
    return mu - 2 * sd, mu + 2 * sd


def _percentile_stretch(items, num_bands: int, max_pixels: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """2nd..98th percentiles per band of the embedded samples (an even subsample of their pixels)."""
    px = np.concatenate([np.moveaxis(ims, 1, -1).reshape(-1, num_bands) for _, ims, _ in items])
    px = px[:: max(1, len(px) // max_pixels)]
    with np.errstate(all="ignore"):
        lo, hi = np.nanpercentile(px, [2.0, 98.0], axis=0) if np.isfinite(px).any() else (np.zeros(num_bands),) * 2
    lo = np.nan_to_num(lo)
    hi = np.nan_to_num(hi)
    return lo, np.where(hi > lo, hi, lo + 1.0)


def _summary(stats: dict | None, means: bool) -> dict | None:
    """Counts (and mean spectra when in the page's units; None rows for empty classes) for the page."""
    if stats is None:
        return None
    counts = stats["counts"]
    mean = [_floats(row) if c > 0 else None for row, c in zip(stats["mean"], counts)] if means else None
    return {"counts": [int(c) for c in counts], "mean": mean}
