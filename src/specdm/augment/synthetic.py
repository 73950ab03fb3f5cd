"""A synthetic data set as training arrays, checked against the real data it is meant to stand beside.

One loader for every reader: the benchmark's synthetic arms and ``specdm
evaluate``. Samples are brought to the real data's normalized units through the
normalization recorded in their own ``metadata.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from specdm.data.datamodule import PreparedData
from specdm.data.normalize import Normalizer
from specdm.errors import CheckpointError, DataError
from specdm.output.dataset import SyntheticDataset

__all__ = ["SyntheticArrays", "load_synthetic", "open_synthetic", "same_normalization"]


def same_normalization(a: Normalizer, b: Normalizer) -> bool:
    """Whether two normalizations map values alike (bounds equal to float32 precision, same clipping)."""
    return (
        a.low.shape == b.low.shape
        and np.allclose(a.low, b.low, rtol=1e-5, atol=1e-6)
        and np.allclose(a.high, b.high, rtol=1e-5, atol=1e-6)
        and a.clip == b.clip
    )


def open_synthetic(path, min_samples: int = 1) -> SyntheticDataset:
    """The data set at ``path``; :class:`DataError` naming it when its metadata is unusable or it holds
    fewer than ``min_samples`` complete samples."""
    try:
        ds = SyntheticDataset(path)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"metadata.json is incomplete or invalid ({e})", path) from None
    if len(ds) < min_samples:
        problem = f"holds {len(ds)} complete sample(s)" if len(ds) else "holds no complete sample"
        raise DataError(problem + (f"; at least {min_samples} are needed" if min_samples > 1 else ""), path)
    return ds


@dataclass
class SyntheticArrays:
    """The first samples of a synthetic set: ``x (M, T, C, H, W)`` float32 in normalized units,
    ``y (M, H, W)`` int64 masks, the set they come from and what did not match the real data."""

    x: np.ndarray
    y: np.ndarray
    dataset: SyntheticDataset
    warnings: list[str] = field(default_factory=list)

    def info(self) -> dict:
        """What to record about the set: its path, sample counts and generator."""
        meta = self.dataset.meta
        return {"path": str(self.dataset.dir), "samples": len(self.dataset), "loaded": len(self.x),
                "sampler": meta.get("sampler"), "seed": meta.get("seed"), "model": meta.get("model")}  # fmt: skip


def load_synthetic(
    source: SyntheticDataset | str | Path,
    real: PreparedData,
    limit: int | None,
    config_name: str,
    strict: bool = False,
    min_samples: int = 1,
) -> SyntheticArrays:
    """The first ``limit`` complete samples of a synthetic set (a path or an opened set), normalized by
    its own recorded normalization, after checking them against the prepared real data ``real``.

    Always errors (:class:`DataError` naming the set): unreadable metadata, fewer than ``min_samples``
    samples, other bands, dates or class count than the real data, no recorded normalization, mask
    values outside the real classes. Other class names and incomplete samples are warnings. A recorded
    normalization unlike the real training split's, or another patch size, is an error with ``strict``
    (training data must share units and shape) and a warning without (scores stay computable).
    """
    ds = source if isinstance(source, SyntheticDataset) else open_synthetic(source, min_samples)
    path, meta, ref = ds.dir, ds.meta, real.reference
    real_src = f"the real data of config '{config_name}' ({ref.source or ref.name})"
    first = ds[0]["images"]
    if first.shape[1] != ref.num_bands:
        raise DataError(f"has {first.shape[1]} bands but {real_src} has {ref.num_bands}", path)
    if first.shape[0] != len(ref.images):
        raise DataError(f"has {first.shape[0]} date(s) per sample but {real_src} has {len(ref.images)}", path)
    names = meta.get("class_names")
    if names is not None and len(names) != ref.num_classes:
        raise DataError(f"has {len(names)} classes but {real_src} has {ref.num_classes}", path)
    if "normalization" not in meta:
        raise DataError("metadata.json records no normalization", path)
    try:
        norm = Normalizer.from_dict(meta["normalization"])
    except CheckpointError as e:
        raise DataError(f"metadata.json is incomplete or invalid ({e.problem})", path) from None
    warnings = []
    if not same_normalization(norm, real.normalizer):
        if strict:
            raise DataError(f"its recorded normalization differs from the one fitted on the real training split of "
                            f"config '{config_name}': it was made from other data or another split", path)
        warnings.append("the data set's recorded normalization differs from the one fitted on the real training "
                        "split of this config: the synthetic data may come from other data or another split")
    if names is not None and list(names) != list(ref.class_names):
        warnings.append(f"class names differ: synthetic {names}, real {ref.class_names}")
    if meta.get("num_samples") not in (None, len(ds)):
        warnings.append(f"only {len(ds)} of {meta['num_samples']} samples are complete")
    x, y = ds.arrays(limit, norm)
    size = real.train.size
    if x.shape[-2:] != (size, size):
        if strict:
            raise DataError(f"samples are {tuple(x.shape[1:])} (dates, bands, rows, cols), the real training "
                            f"windows {(len(ref.images), ref.num_bands, size, size)}", path)
        warnings.append(f"synthetic samples are {x.shape[-1]} pixels wide, real windows {size}: "
                        "feature distances compare different fields of view")
    if len(y) and y.max() >= ref.num_classes:
        raise DataError(f"masks hold class {int(y.max())}, the real data has classes 0..{ref.num_classes - 1}", path)
    return SyntheticArrays(x, y, ds, warnings)
