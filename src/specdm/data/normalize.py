"""Per-band normalization to [0, 1], fitted on the training split only."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from specdm.errors import CheckpointError, DataError


class ConstantBandsWarning(UserWarning):
    """Some bands hold one value on the training split: they normalize to 0 and carry nothing."""


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
    def fit(cls, pixels: np.ndarray, percentiles=(0.0, 100.0), clip: bool = False,
            band_names: list[str] | None = None, source=None) -> "Normalizer":
        """Fit on ``pixels`` of shape ``(..., C)`` (training split only).

        Bands whose range is zero map to 0, with a :class:`ConstantBandsWarning`
        naming them (``band_names``, default ``band_1`` ..); when every band is
        constant there is nothing to learn: a :class:`DataError` naming ``source``
        (the image file).
        """
        flat = np.asarray(pixels, dtype=np.float64).reshape(-1, pixels.shape[-1])
        if flat.shape[0] == 0:
            raise DataError("cannot fit a normalization on zero pixels", source)
        constant = flat.max(0) == flat.min(0)
        names = list(band_names) if band_names is not None and len(band_names) == flat.shape[1] else \
            [f"band_{i + 1}" for i in range(flat.shape[1])]
        if constant.all():
            raise DataError(f"all {flat.shape[1]} bands are constant on the training split; there is nothing to learn",
                            source, hint="check the split (data.split) and the image's variable and layout")
        if constant.any():
            warnings.warn(constant_bands_message([n for n, c in zip(names, constant) if c]),
                          ConstantBandsWarning, stacklevel=2)
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


def constant_bands_message(names: list[str], limit: int = 10) -> str:
    """``bands band_3, band_7 are constant on the training split; they normalize to 0``."""
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    if len(names) > 1:
        return f"bands {shown} are constant on the training split; they normalize to 0"
    return f"band {shown} is constant on the training split; it normalizes to 0"
