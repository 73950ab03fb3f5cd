"""Per-band normalization to [0, 1], fitted on the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdm.errors import CheckpointError, DataError


@dataclass
class Normalizer:
    """Maps each band linearly so that its ``low``..``high`` percentiles become 0..1.

    ``clip`` limits normalized values to [0, 1]; :meth:`inverse` maps back to the
    data's own units (values clipped on the way in stay clipped).
    """

    low: np.ndarray
    high: np.ndarray
    percentiles: tuple[float, float] = (0.0, 100.0)
    clip: bool = False

    @classmethod
    def fit(cls, pixels: np.ndarray, percentiles=(0.0, 100.0), clip: bool = False) -> "Normalizer":
        """Fit on ``pixels`` of shape ``(..., C)`` (training split only)."""
        flat = np.asarray(pixels, dtype=np.float64).reshape(-1, pixels.shape[-1])
        if flat.shape[0] == 0:
            raise DataError("cannot fit a normalization on zero pixels")
        lo, hi = np.percentile(flat, list(percentiles), axis=0)
        span = hi - lo
        hi = np.where(span > 0, hi, lo + 1.0)  # constant bands map to 0
        return cls(lo.astype(np.float32), hi.astype(np.float32), tuple(map(float, percentiles)), clip)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = (np.asarray(x, dtype=np.float32) - self.low) / (self.high - self.low)
        return np.clip(y, 0.0, 1.0) if self.clip else y

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float32) * (self.high - self.low) + self.low

    def to_dict(self) -> dict:
        return {
            "method": "percentile_minmax",
            "low": self.low.tolist(),
            "high": self.high.tolist(),
            "percentiles": list(self.percentiles),
            "clip": self.clip,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        try:
            return cls(
                np.asarray(d["low"], np.float32),
                np.asarray(d["high"], np.float32),
                tuple(d["percentiles"]),
                bool(d["clip"]),
            )
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"normalization record is incomplete ({e})") from None
