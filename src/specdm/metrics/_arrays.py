"""Array helpers shared by the metric modules."""

from __future__ import annotations

import numpy as np
import torch

from specdm.errors import DataError


def as_float64(x, name: str, finite: bool = True) -> np.ndarray:
    """``x`` (numpy array, torch tensor or nested list) as a float64 numpy array.

    With ``finite=True`` a NaN or infinite value raises :class:`DataError`.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if finite and not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or infinite values")
    return arr


def same_shape(a: np.ndarray, b: np.ndarray, names: str) -> None:
    """Raise :class:`DataError` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise DataError(f"{names} have different shapes {a.shape} and {b.shape}")
