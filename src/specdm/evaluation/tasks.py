"""The registry of downstream models: which task each serves, how it is built and scored.

- ``"unet"``: :class:`~specdm.evaluation.segmentation.CompactUNet`, semantic segmentation of ``(N, C, H, W)``;
- ``"segformer"``: :class:`~specdm.evaluation.segmentation.SegFormerSegmenter`, the same task with a tiny
  SegFormer from ``transformers`` (random initialization, nothing downloaded);
- ``"siamdiff"``: :class:`~specdm.evaluation.change.SiamDiff`, change detection of an image pair
  ``(N, 2, C, H, W)`` (date axis second);
- ``"pixel"``: :class:`~specdm.evaluation.classification.SpectralPixelClassifier`, a 1-D CNN applied to every
  pixel's spectrum on its own (``(N, C, 1, 1)`` holds ``N`` spectra).

Every model maps a float32 batch to per-pixel logits ``(N, K, H, W)`` of the input's height and width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from specdm.errors import ConfigError
from specdm.evaluation.change import SiamDiff, change_scores
from specdm.evaluation.classification import SpectralPixelClassifier, classification_scores
from specdm.evaluation.segmentation import CompactUNet, SegFormerSegmenter, segmentation_scores

__all__ = ["BF16_HELPS", "METRICS", "MODEL_NAMES", "TASK_MODELS", "build_model", "score"]

MODEL_NAMES = ("unet", "segformer", "siamdiff", "pixel")
TASK_MODELS = {"segmentation": ("unet", "segformer", "pixel"), "change": ("siamdiff",)}
METRICS = {  # the summary metrics of each model; the first one decides the benchmark's verdict column
    "unet": ("miou", "f1"),
    "segformer": ("miou", "f1"),
    "pixel": ("oa", "aa", "kappa"),
    "siamdiff": ("f1_change", "iou_change", "miou"),
}


# whether bf16 autocast + channels-last speeds the model's training step up where the CPU runs bf16 natively
# (bench/step_speed.py, docs/performance.md): the convolutional networks gain 2-3x; the SegFormer's and the pixel
# classifier's small operations do not, so in fast mode they keep float32 and only take the fused optimizer
BF16_HELPS = {"unet": True, "siamdiff": True, "segformer": False, "pixel": False}


def build_model(name: str, in_channels: int, num_classes: int) -> nn.Module:
    """The model called ``name`` (one of :data:`MODEL_NAMES`); ``in_channels`` is per date for ``"siamdiff"``."""
    if name == "unet":
        return CompactUNet(in_channels, num_classes)
    if name == "segformer":
        return SegFormerSegmenter(in_channels, num_classes)
    if name == "siamdiff":
        return SiamDiff(in_channels, num_classes)
    if name == "pixel":
        return SpectralPixelClassifier(in_channels, num_classes)
    raise ConfigError(f"unknown downstream model {name!r}", hint=f"choose one of {', '.join(MODEL_NAMES)}")


def score(name: str, pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None,
          classes: Sequence[int] | None = None) -> dict:  # fmt: skip
    """The scores of model ``name``'s class map ``pred`` against ``target``: change scores for ``siamdiff``,
    OA / AA / kappa for ``pixel``, mIoU / F1 over ``classes`` for the segmenters."""
    if name == "siamdiff":
        return change_scores(pred, target)
    if name == "pixel":
        return classification_scores(pred, target, num_classes, ignore_index)
    return segmentation_scores(pred, target, num_classes, ignore_index, classes)
