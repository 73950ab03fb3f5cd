"""Confusion matrices and the per-class ratios read from them (IoU, F1).

Shared by the downstream task scores (:mod:`specdm.evaluation.segmentation`,
:mod:`specdm.evaluation.change`, :mod:`specdm.evaluation.classification`) and
the benchmark report, which recomputes per-class IoU from stored matrices.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """``(K, K)`` int64 counts, rows = target class, columns = predicted; pixels labelled ``ignore_index`` left out."""
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"pred has {pred.size} pixels, target {target.size}")
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    for name, a in (("pred", pred), ("target", target)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} has values outside 0..{num_classes - 1}")
    flat = target.astype(np.int64) * num_classes + pred
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def safe_ratio(num, den) -> np.ndarray:
    """``num / den`` with NaN where ``den == 0``."""
    return np.divide(num, den, out=np.full(np.shape(num), np.nan), where=np.asarray(den) > 0)


def nanmean(a: np.ndarray) -> float:
    """Mean of the non-NaN values of ``a``; NaN when there is none."""
    a = np.asarray(a)
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else float("nan")


def outcomes(cm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives per class of a confusion matrix, as float64."""
    cm = np.asarray(cm)
    tp = np.diag(cm).astype(np.float64)
    return tp, cm.sum(0) - tp, cm.sum(1) - tp


def per_class_iou(cm) -> np.ndarray:
    """IoU ``TP / (TP + FP + FN)`` per class; NaN for a class neither labelled nor predicted."""
    tp, fp, fn = outcomes(cm)
    return safe_ratio(tp, tp + fp + fn)


def per_class_f1(cm) -> np.ndarray:
    """F1 ``2TP / (2TP + FP + FN)`` per class; NaN for a class neither labelled nor predicted."""
    tp, fp, fn = outcomes(cm)
    return safe_ratio(2 * tp, 2 * tp + fp + fn)
