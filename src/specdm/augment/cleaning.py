"""The real-trained pixel scorer's verdicts applied to synthetic samples: pixel-level label cleaning and
hard-class steering.

**Cleaning** (FreeMask's rule, Yang et al., NeurIPS 2023, on the label-fidelity forest of
:mod:`specdm.augment.fidelity`): a synthetic pixel labelled ``k`` whose loss ``-log p(k | spectrum)`` under the
forest exceeds ``ratio`` times class ``k``'s mean loss on real pixels a forest did not train on (by default the
stored training pixels of scene blocks held out from it, :func:`~specdm.augment.fidelity.block_calibration`; or the
forest's out-of-bag pixels, :meth:`~specdm.augment.fidelity.LabelFidelity.oob_class_losses`, which are optimistic:
their neighbours are in the bag; at least ``MIN_THRESHOLD``, the loss of
p = 0.9, so that a class the forest separates perfectly does not reject a pixel for one dissenting tree) is
relabelled ``ignore_index``; no other pixel and no image value changes. A class without calibration pixels
(none among the forest's training pixels) cannot be vouched for: its pixels are relabelled too, and the class is
named in the record.

**Hard classes**: the same held-out losses say which classes a real-trained model finds hardest. Their
targets (:func:`hard_class_targets`) raise each labelled class's share of pixels in proportion to its loss; layout
models draw their layouts toward them (:class:`~specdm.conditions.layouts.RealLayouts`), joint models redraw a
sample with a probability that falls as its mask holds more of the hard classes (:class:`HardClassAcceptance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdm.augment.fidelity import LabelFidelity, _pixels
from specdm.errors import ConfigError

CLEAN_RULES = ("none", "loss_ratio")
MIN_THRESHOLD = float(-np.log(0.9))  # a pixel the forest gives p >= 0.9 for its label is never rejected


def no_ignore_index_error(where=None) -> ConfigError:
    """The refusal for data whose every pixel is labelled (OSCD's change maps): a cleaned pixel needs a value."""
    return ConfigError("pixel cleaning (sampling.clean, --clean) relabels rejected pixels as the ignore index, but "
                       "this model's classes have none: every pixel of its data is labelled (a change map). Filter "
                       "whole pairs instead (--filter), paint classes with --decode snap, or train on thinned labels "
                       "(data.labels_keep < 1 adds an 'unlabelled' class)", where)


@dataclass
class Cleaned:
    """What cleaning a batch gave: the cleaned ``masks`` (N, H, W), the ``rejected`` pixels (N, H, W) bool and per
    sample and class (N, K): ``labelled`` pixels before, ``agree`` (the forest's argmax is the label, before),
    ``relabelled`` pixels and ``agree_kept`` (agreeing pixels among those that keep their label)."""

    masks: np.ndarray
    rejected: np.ndarray
    labelled: np.ndarray
    agree: np.ndarray
    relabelled: np.ndarray
    agree_kept: np.ndarray

    def kept_share(self) -> np.ndarray:
        """Per sample, the share of its labelled pixels that keep their label (NaN without labelled pixels)."""
        n, r = self.labelled.sum(1), self.relabelled.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, 1 - r / np.maximum(n, 1), np.nan)


class PixelCleaner:
    """FreeMask's loss-ratio rule on a forest fitted with ``oob=True`` (module docstring)."""

    rule = "loss_ratio"

    def __init__(self, scorer: LabelFidelity, ratio: float = 1.25, calibration=None,
                 source: str = "the forest's out-of-bag real pixels"):
        self.scorer, self.ratio, self.ignore_index, self.source = scorer, float(ratio), scorer.ignore_index, source
        calibration = scorer.oob_class_losses() if calibration is None else calibration
        self.class_loss, self.real_recall, self.calibration_pixels = calibration
        # NaN: no calibration pixel -> every pixel of the class is rejected
        self.thresholds = np.where(np.isfinite(self.class_loss), np.maximum(self.ratio * self.class_loss,
                                                                            MIN_THRESHOLD), np.nan)

    def rejects(self, pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Whether the rule rejects each pixel (n, T*C) for its label (n,) (bool; labels of classes the forest
        was not calibrated on are rejected). Needs no ignore index: class-aware decoding keeps only the real
        reference spectra it accepts (``snap_pool: accepted``)."""
        labels = np.asarray(labels, np.int64)
        loss = self.scorer.pixel_losses(self.scorer.class_probabilities(pixels), labels)
        return ~(loss <= self.thresholds[labels])

    def __call__(self, x: np.ndarray, y: np.ndarray) -> Cleaned:
        """Clean masks ``y`` (N, H, W) of normalized windows ``x`` (N, T, C, H, W)."""
        if self.ignore_index is None:
            raise no_ignore_index_error()
        k = self.scorer.num_classes
        y = np.asarray(y, np.int64)
        flat = y.reshape(-1)
        labelled = flat != self.ignore_index
        proba = self.scorer.class_probabilities(_pixels(x)[labelled])
        lab = flat[labelled]
        loss = self.scorer.pixel_losses(proba, lab)
        limit = self.thresholds[lab]
        bad = ~(loss <= limit)  # NaN limit (uncalibrated class) rejects
        rejected = np.zeros(flat.shape, bool)
        rejected[np.flatnonzero(labelled)[bad]] = True
        rejected = rejected.reshape(y.shape)
        masks = np.where(rejected, self.ignore_index, y)
        sample = np.repeat(np.arange(len(y)), y[0].size)[labelled]
        agree_px = proba.argmax(1) == lab

        def count(sel):
            return np.bincount(sample[sel] * k + lab[sel], minlength=len(y) * k).reshape(len(y), k)

        return Cleaned(masks, rejected, count(np.ones(len(lab), bool)), count(agree_px), count(bad),
                       count(agree_px & ~bad))

    def record(self, class_names: list[str]) -> dict:
        """The rule and its per-class calibration, for ``metadata.json``."""
        rows = {}
        for k, name in enumerate(class_names):
            if k == self.ignore_index:
                continue
            rows[name] = {"mean_real_loss": _num(self.class_loss[k]), "threshold": _num(self.thresholds[k]),
                          "real_recall": _num(self.real_recall[k]), "calibration_pixels": int(self.calibration_pixels[k])}
        return {"rule": f"a synthetic pixel labelled k whose loss -log p(k) under the random forest of the real "
                        f"training pixels exceeds {self.ratio:g} x class k's mean loss on {self.source} (at least "
                        f"{MIN_THRESHOLD:.3f}, the loss of p = 0.9) is relabelled ignore_index (FreeMask's rule); a "
                        "class without calibration pixels cannot be vouched for and is relabelled too",
                "ratio": self.ratio, "ignore_index": self.ignore_index, "calibrated_on": self.source,
                "calibration": rows,
                "uncalibrated_classes": [n for k, n in enumerate(class_names)
                                         if k != self.ignore_index and not np.isfinite(self.thresholds[k])]}


def _num(v) -> float | None:
    return float(v) if np.isfinite(v) else None


def hard_class_targets(class_loss: np.ndarray, real_shares: np.ndarray, ignore_index: int | None,
                       strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Target pixel shares that spend samples on the classes a real-trained model finds hardest: each labelled
    class with real pixels and a loss gets ``real share x (loss / mean loss) ** strength`` (mean weighted by the
    real shares), rescaled so that the labelled classes keep their total share; the ignore class and classes
    without a loss keep their real share. Returns ``(targets (K,), steered (K,) bool)`` as
    :class:`~specdm.conditions.layouts.RealLayouts` takes them."""
    real = np.asarray(real_shares, np.float64)
    loss = np.asarray(class_loss, np.float64)
    steered = (real > 0) & np.isfinite(loss)
    if ignore_index is not None:
        steered[ignore_index] = False
    target = real.copy()
    if steered.sum() < 2:
        raise ConfigError("hard-class steering needs at least two labelled classes with real pixels the scorer "
                          "was calibrated on")
    floor = max(float(loss[steered].max()) * 1e-3, 1e-6)  # a class the forest never errs on keeps a share
    mean = float((real[steered] * loss[steered]).sum() / real[steered].sum())
    w = real[steered] * (np.maximum(loss[steered], floor) / max(mean, 1e-12)) ** strength
    target[steered] = w / w.sum() * real[steered].sum()
    return target, steered


class HardClassAcceptance:
    """Steering for samples whose masks cannot be chosen (joint models): a drawn sample is kept with probability
    ``sum_k f_k r_k / max_k r_k`` (``f_k``: its share of class k, ``r_k``: target / real share; 1 for classes not
    steered), else drawn again; the last try is always kept. In expectation this moves the drawn class shares
    toward the targets (rejection sampling with the weight ``sum_k f_k r_k``)."""

    def __init__(self, targets: np.ndarray, steered: np.ndarray, real_shares: np.ndarray):
        real = np.asarray(real_shares, np.float64)
        self.r = np.ones(len(real))
        sel = steered & (real > 0)
        self.r[sel] = targets[sel] / real[sel]
        self.max_r = float(self.r.max())

    def probability(self, masks: np.ndarray) -> np.ndarray:
        m = np.asarray(masks, np.int64)
        k = len(self.r)
        f = np.stack([np.bincount(x.ravel(), minlength=k)[:k] / x.size for x in m])
        return np.clip(f @ self.r / self.max_r, 0.0, 1.0)


__all__ = ["CLEAN_RULES", "Cleaned", "HardClassAcceptance", "PixelCleaner", "hard_class_targets",
           "no_ignore_index_error"]
