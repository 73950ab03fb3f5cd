"""Self-training: pseudo labels from a model trained on real labels, the control for any generator that saw
the unlabelled training image (PROTOCOL "self-training on the unlabelled training image").

A real-only model predicts the unlabelled training images (whole images, tiled, or windows); every pixel whose
largest softmax probability reaches ``threshold`` gets the predicted class, every other pixel ``ignore_index``
(or :data:`UNLABELLED` when the data have none), and a pixel that carries a real label keeps it. The benchmark's
``self_training`` arm (:mod:`specdm.evaluation.benchmark.plan`) trains a fresh model on the real windows plus
these pseudo-labelled windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from specdm.evaluation.fit import predict_proba_tiled

__all__ = ["PSEUDO_THRESHOLD", "UNLABELLED", "pseudo_label_images", "pseudo_label_windows", "pseudo_labels",
           "window_probabilities"]  # fmt: skip

PSEUDO_THRESHOLD = 0.9
UNLABELLED = -100  # the label of pixels left without one when the data have no ignore_index (cross-entropy skips it)


def pseudo_labels(probs: np.ndarray, labels: np.ndarray | None = None, threshold: float = PSEUDO_THRESHOLD,
                  ignore_index: int | None = None) -> np.ndarray:  # fmt: skip
    """Labels from class probabilities ``probs (..., K, H, W)``: the most probable class where its probability is
    at least ``threshold``, else ``ignore_index`` (:data:`UNLABELLED` if None); where ``labels (..., H, W)``
    holds a real label (not ``ignore_index`` / :data:`UNLABELLED`) that label is kept."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    fill = UNLABELLED if ignore_index is None else ignore_index
    probs = np.asarray(probs)
    out = np.where(probs.max(axis=-3) >= threshold, probs.argmax(axis=-3), fill).astype(np.int64)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != out.shape:
            raise ValueError(f"labels {labels.shape} do not match the predictions {out.shape}")
        out = np.where(labels != fill, labels, out)
    return out


@torch.no_grad()
def window_probabilities(model: nn.Module, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Softmax probabilities ``(N, K, H, W)`` of windows ``x (N, C, H, W)`` / ``(N, 2, C, H, W)``, each window
    whole (as a one-tile :func:`~.fit.predict_proba_tiled`); the model runs in eval mode on its device and is
    left in the mode it was in."""
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32)).to(device)
        out.append(torch.softmax(model(batch).float(), dim=1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out)


def pseudo_label_windows(model: nn.Module, x: np.ndarray, labels: np.ndarray | None = None,
                         threshold: float = PSEUDO_THRESHOLD, ignore_index: int | None = None,
                         batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, dict]:  # fmt: skip
    """Pseudo-labelled windows ``(x, y)`` from unlabelled windows ``x`` (:func:`window_probabilities`,
    :func:`pseudo_labels`; ``labels``: the real labels to keep, ``ignore_index`` where none), and a record
    (pixels, real labels kept, pseudo labels added, share of pixels labelled)."""
    probs = window_probabilities(model, x, batch_size)
    y = pseudo_labels(probs, labels, threshold, ignore_index)
    return x, y, _record(y, labels, threshold, ignore_index)


def pseudo_label_images(model: nn.Module, images: Sequence[np.ndarray], labels: Sequence[np.ndarray] | None = None,
                        threshold: float = PSEUDO_THRESHOLD, ignore_index: int | None = None, tile: int = 32,
                        overlap: int = 8) -> tuple[list[np.ndarray], dict]:  # fmt: skip
    """Pseudo-label maps ``(H, W)`` of whole images ``(C, H, W)`` / ``(2, C, H, W)`` predicted tiled
    (:func:`~.fit.predict_proba_tiled`), real ``labels`` kept; the caller cuts windows from them. Also the
    record of :func:`pseudo_label_windows`."""
    maps = [pseudo_labels(predict_proba_tiled(model, im, tile, overlap), None if labels is None else labels[i],
                          threshold, ignore_index) for i, im in enumerate(images)]  # fmt: skip
    flat = np.concatenate([m.ravel() for m in maps])
    kept = None if labels is None else np.concatenate([np.asarray(m).ravel() for m in labels])
    return maps, _record(flat, kept, threshold, ignore_index)


def _record(y: np.ndarray, labels: np.ndarray | None, threshold: float, ignore_index: int | None) -> dict:
    fill = UNLABELLED if ignore_index is None else ignore_index
    real = 0 if labels is None else int((np.asarray(labels) != fill).sum())
    labelled = int((y != fill).sum())
    return {"threshold": threshold, "pixels": int(y.size), "real_labels_kept": real,
            "pseudo_labels_added": labelled - real, "labelled_share": labelled / max(y.size, 1)}  # fmt: skip
