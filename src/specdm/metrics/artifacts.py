"""Border and corner artefacts of reconstructions: where in a window the error sits.

A decoder that pads with zeros, or an encoder that pads one side only, reconstructs
a window's border worse than its interior; per-class statistics (mSAD) cannot see
it. These ratios can: error of the outer ring, and of each corner, over the error of
the interior.
"""

from __future__ import annotations

import numpy as np

from specdm.errors import DataError

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")


def edge_error_ratios(error: np.ndarray, ring: int = 2, interior_margin: int = 4, corner: int = 4) -> dict:
    """Mean of ``error`` (N, ..., H, W; e.g. absolute reconstruction error) in the outer ``ring`` pixels
    and in each ``corner`` x ``corner`` corner, each divided by its mean over the interior (pixels
    ``interior_margin`` or more from every edge). 1.0 means no artefact; returns
    ``{"ring": r, "interior": mean, "top_left": ..., "top_right": ..., "bottom_left": ..., "bottom_right": ...}``."""
    e = np.asarray(error, dtype=np.float64)
    if e.ndim < 2:
        raise DataError(f"need errors (..., H, W), got shape {e.shape}")
    h, w = e.shape[-2:]
    if min(h, w) <= 2 * interior_margin or min(h, w) < 2 * corner:
        raise DataError(f"windows of {h}x{w} pixels are too small for a ring, corners and an interior")
    e = e.reshape(-1, h, w).mean(0)
    interior = e[interior_margin : h - interior_margin, interior_margin : w - interior_margin].mean()
    ring_mask = np.zeros((h, w), bool)
    ring_mask[:ring], ring_mask[-ring:], ring_mask[:, :ring], ring_mask[:, -ring:] = True, True, True, True
    out = {"interior": float(interior), "ring": float(e[ring_mask].mean() / interior)}
    blocks = {"top_left": e[:corner, :corner], "top_right": e[:corner, -corner:],
              "bottom_left": e[-corner:, :corner], "bottom_right": e[-corner:, -corner:]}
    out.update({k: float(v.mean() / interior) for k, v in blocks.items()})
    return out
