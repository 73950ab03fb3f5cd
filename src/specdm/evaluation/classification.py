"""Pixel classification: a 1-D CNN over each spectrum, the labelled spectra it trains on, OA / AA / kappa."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from specdm.metrics.confusion import confusion_matrix, nanmean, safe_ratio

__all__ = ["PIXELS_PER_WINDOW", "SpectralPixelClassifier", "classification_scores", "labelled_spectra"]

PIXELS_PER_WINDOW = 64  # spectra per window and step that train the pixel classifier


class SpectralPixelClassifier(nn.Module):
    """A 1-D CNN over each pixel's spectrum (no spatial context), for OA/AA/kappa protocols.

    Two strided convolutions along the band axis, pooling to 4 positions,
    then a two-layer head; ``(N, C, H, W)`` is treated as ``N*H*W`` spectra.
    :meth:`features` gives the penultimate layer (after ReLU) of spectra
    ``(B, C)``, e.g. for the SDM diversity score
    (:func:`specdm.metrics.spectral_diversity`).
    """

    def __init__(self, num_bands: int, num_classes: int, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(1, width, 7, stride=2, padding=3), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
            nn.Conv1d(width, 2 * width, 5, stride=2, padding=2), nn.BatchNorm1d(2 * width), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool1d(4),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(8 * width, 64), nn.ReLU(inplace=True), nn.Linear(64, num_classes)
        )

    def features(self, spectra: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(B, 64)`` of spectra ``(B, C)``."""
        return self.head[:-1](self.body(spectra.unsqueeze(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, H, W)`` of every pixel of ``x (N, C, H, W)``, each spectrum on its own."""
        n, c, h, w = x.shape
        logits = self.head[-1](self.features(x.permute(0, 2, 3, 1).reshape(n * h * w, c)))
        return logits.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def labelled_spectra(
    x: np.ndarray, y: np.ndarray, ignore_index: int | None, per_window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``per_window * len(x)`` spectra of windows ``x (B, C, H, W)``, drawn without replacement from the
    labelled pixels (all pixels if none is labelled), as ``(n, C, 1, 1)`` and ``(n, 1, 1)``."""
    labels = y.reshape(-1)
    spectra = x.transpose(0, 2, 3, 1).reshape(len(labels), x.shape[1])
    pool = np.flatnonzero(labels != ignore_index) if ignore_index is not None else np.arange(len(labels))
    if not len(pool):
        pool = np.arange(len(labels))
    pick = rng.choice(pool, min(len(pool), per_window * len(x)), replace=False)
    return spectra[pick, :, None, None], labels[pick, None, None]


def classification_scores(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> dict:
    """Overall accuracy, average (per-class) accuracy and Cohen's kappa from the confusion matrix.

    AA averages the recall of the classes that have labelled pixels;
    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_e`` from the row and column sums.
    """
    cm = confusion_matrix(pred, target, num_classes, ignore_index)
    n = cm.sum()
    if n == 0:
        raise ValueError("no labelled pixels to score")
    rows, cols = cm.sum(1), cm.sum(0)
    per_class = safe_ratio(np.diag(cm).astype(np.float64), rows)
    oa = np.trace(cm) / n
    pe = float((rows.astype(np.float64) * cols).sum() / float(n) ** 2)
    kappa = (oa - pe) / (1 - pe) if pe < 1 else 1.0
    return {
        "oa": float(oa),
        "aa": nanmean(per_class),
        "kappa": float(kappa),
        "per_class_accuracy": per_class,
        "confusion": cm,
    }
