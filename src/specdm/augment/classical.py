"""Classical augmentation of a training batch: the baseline that synthetic data has to beat."""

from __future__ import annotations

import numpy as np

__all__ = ["AUGMENTATIONS", "MIXUP_ALPHA", "NOISE_STD", "classical_augment"]

NOISE_STD = 0.01
MIXUP_ALPHA = 0.4


def classical_augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Classical augmentation of one batch ``x (B, ..., H, W)``, ``y (B, H, W)``.

    Per sample: horizontal and vertical flips (p = 0.5 each) and a rotation by
    a random multiple of 90 degrees (of 180 for non-square patches), applied
    to image, mask and both dates alike; then mixup with a random partner
    from the batch (p = 0.5): ``lam ~ Beta(0.4, 0.4)`` folded to ``lam >= 0.5``,
    image ``lam * x_i + (1 - lam) * x_j``, labels of the dominant sample ``i``
    kept; then Gaussian noise of std 0.01 (p = 0.5; drawn per pixel, band and
    date). The same number of random draws is made for every batch of a given
    shape, so paired arms share them.
    """
    b = len(x)
    flips = rng.random((b, 2)) < 0.5
    turns = rng.integers(4, size=b) if x.shape[-1] == x.shape[-2] else 2 * rng.integers(2, size=b)
    mixing = rng.random(b) < 0.5
    partner = rng.permutation(b)
    lam = rng.beta(MIXUP_ALPHA, MIXUP_ALPHA, size=b)
    lam = np.where(mixing, np.maximum(lam, 1.0 - lam), 1.0).astype(np.float32)
    noisy = rng.random(b) < 0.5
    noise = rng.standard_normal(x.shape, dtype=np.float32) * NOISE_STD

    def geometric(a: np.ndarray, i: int) -> np.ndarray:
        if flips[i, 0]:
            a = a[..., ::-1]
        if flips[i, 1]:
            a = a[..., ::-1, :]
        return np.rot90(a, turns[i], axes=(-2, -1))

    x = np.stack([geometric(x[i], i) for i in range(b)])
    y = np.stack([geometric(y[i], i) for i in range(b)])
    lam = lam.reshape(b, *[1] * (x.ndim - 1))
    x = lam * x + (1.0 - lam) * x[partner]
    x = x + noise * noisy.reshape(lam.shape)
    return x.astype(np.float32), np.ascontiguousarray(y)


AUGMENTATIONS = {"classical": classical_augment}
"""Batch augmentations by name, as :func:`specdm.evaluation.downstream.train_downstream` takes them."""
