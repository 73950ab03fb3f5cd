"""Change detection of image pairs: FC-Siam-diff and its scores (F1, IoU of the change class, mIoU)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from specdm.evaluation.segmentation import UNetDecoder, UNetEncoder, pad_to_multiple
from specdm.metrics.confusion import confusion_matrix, nanmean, outcomes, per_class_f1, per_class_iou, safe_ratio

__all__ = ["SiamDiff", "change_scores"]


class SiamDiff(nn.Module):
    """FC-Siam-diff (Caye Daudt et al. 2018) for change detection of ``(N, 2, C, H, W)`` pairs.

    One encoder (shared weights) sees both dates; as in the paper, the decoder
    starts from the second date's deepest features and its skip connections
    carry ``|f1 - f2|`` at every shallower level. Logits ``(N, K, H, W)``.
    """

    def __init__(self, in_channels: int, num_classes: int = 2, width: int = 32, levels: int = 3):
        super().__init__()
        self.levels = levels
        self.encoder = UNetEncoder(in_channels, width, levels)
        self.decoder = UNetDecoder(num_classes, width, levels)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        if pair.ndim != 5 or pair.shape[1] != 2:
            raise ValueError(f"SiamDiff expects (N, 2, C, H, W), got {tuple(pair.shape)}")
        h, w = pair.shape[-2:]
        pair = pad_to_multiple(pair, 2 ** (self.levels - 1))
        f1, f2 = self.encoder(pair[:, 0]), self.encoder(pair[:, 1])
        skips = [(a - b).abs() for a, b in zip(f1[:-1], f2[:-1])]
        return self.decoder(f2[-1], skips)[..., :h, :w]


def change_scores(pred: np.ndarray, target: np.ndarray) -> dict:
    """Change-detection scores of binary maps (1 = change): F1, IoU, precision and recall of
    the change class, and mIoU over {no change, change} (PROTOCOL, OSCD). A predicted value above 1 (the
    "unlabelled" class a label-scarce setting adds to a fully labelled scene, never a target) counts as no change."""
    pred = np.where(np.asarray(pred) > 1, 0, pred)
    cm = confusion_matrix(pred, target, 2)
    tp, fp, fn = outcomes(cm)
    iou = per_class_iou(cm)
    return {
        "f1_change": float(per_class_f1(cm)[1]),
        "iou_change": float(iou[1]),
        "miou": nanmean(iou),
        "precision_change": float(safe_ratio(tp[1], tp[1] + fp[1])),
        "recall_change": float(safe_ratio(tp[1], tp[1] + fn[1])),
        "confusion": cm,
    }
