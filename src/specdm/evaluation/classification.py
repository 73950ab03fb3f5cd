"""Pixel classification: a 1-D CNN over each spectrum, the labelled spectra it trains on, OA / AA / kappa."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from specdm.evaluation.fit import fit, random_batches, seeded
from specdm.metrics.confusion import confusion_matrix, nanmean, safe_ratio

__all__ = ["PIXEL_BATCH", "PIXEL_LR", "PIXELS_PER_WINDOW", "SpectralPixelClassifier", "classification_scores",
           "labelled_spectra", "predict_pixels", "train_pixel_classifier"]

PIXELS_PER_WINDOW = 64  # spectra per window and step that train the pixel classifier
PIXEL_BATCH = 256  # spectra per step of train_pixel_classifier
PIXEL_LR = 2e-3  # its initial Adam learning rate (cosine-annealed to 0)


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


def train_pixel_classifier(
    x: np.ndarray, y: np.ndarray, num_classes: int, seed: int, steps: int, progress: bool = False
) -> SpectralPixelClassifier:
    """:class:`SpectralPixelClassifier` trained on spectra ``x (P, C)`` (normalized, or RGB) with labels ``y (P,)``.

    ``steps`` Adam steps from :data:`PIXEL_LR`, cosine-annealed to 0, each on :data:`PIXEL_BATCH` spectra drawn
    with replacement (:func:`~specdm.evaluation.fit.random_batches`); ``seed`` fixes the initialization and the
    draws (the protocol of the HyperLDM classification table, ``specdm benchmark --rgb-model``). Left in eval mode.
    """
    with seeded(seed):
        net = SpectralPixelClassifier(x.shape[1], num_classes)
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    batches = ((xt[i][:, :, None, None], yt[i][:, None, None]) for i in
               random_batches(len(xt), PIXEL_BATCH, steps, torch.Generator().manual_seed(seed)))
    loss = nn.CrossEntropyLoss()
    fit(net, batches, lambda b: loss(net(b[0]), b[1]), steps, PIXEL_LR, lr_schedule="cosine", progress=progress)
    return net


@torch.no_grad()
def predict_pixels(net: nn.Module, x: np.ndarray) -> np.ndarray:
    """Predicted classes ``(P,)`` of spectra ``x (P, C)``."""
    return net(torch.from_numpy(x.astype(np.float32))[:, :, None, None]).argmax(1).reshape(-1).numpy()
