"""Semantic segmentation: the compact U-Net, a tiny SegFormer, and their scores (mIoU, macro F1).

Models map ``(N, C, H, W)`` float32 to per-pixel logits ``(N, K, H, W)`` of the
input's height and width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from specdm.errors import ConfigError
from specdm.metrics.confusion import confusion_matrix, nanmean, per_class_f1, per_class_iou

__all__ = ["CompactUNet", "SegFormerSegmenter", "UNetDecoder", "UNetEncoder", "pad_to_multiple", "segmentation_scores"]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )  # fmt: skip


class UNetEncoder(nn.Module):
    """Conv blocks at widths ``w, 2w, 4w, ...``, max-pooled in between; returns all levels."""

    def __init__(self, in_channels: int, width: int, levels: int):
        super().__init__()
        widths = [width * 2**i for i in range(levels)]
        self.blocks = nn.ModuleList(_block(cin, cout) for cin, cout in zip([in_channels] + widths, widths))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        return feats


class UNetDecoder(nn.Module):
    """Upsamples the deepest level, concatenating each shallower skip, then a 1x1 classifier."""

    def __init__(self, num_classes: int, width: int, levels: int):
        super().__init__()
        widths = [width * 2**i for i in range(levels)]
        self.ups = nn.ModuleList(nn.ConvTranspose2d(w * 2, w, 2, stride=2) for w in widths[:-1])
        self.blocks = nn.ModuleList(_block(w * 2, w) for w in widths[:-1])
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, deepest: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        x = deepest
        for up, block, skip in zip(self.ups[::-1], self.blocks[::-1], skips[::-1]):
            x = block(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pads the last two axes up to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    lead = x.shape[:-3]
    x = F.pad(x.reshape(-1, *x.shape[-3:]), (0, pw, 0, ph), mode="replicate")
    return x.reshape(*lead, *x.shape[-3:])


class CompactUNet(nn.Module):
    """A small U-Net (Ronneberger et al. 2015): ``levels`` resolutions, widths ``width * 2**i``.

    Inputs of any size are replicate-padded to a multiple of ``2**(levels-1)``
    and the logits cropped back.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, levels: int = 3):
        super().__init__()
        self.levels = levels
        self.encoder = UNetEncoder(in_channels, width, levels)
        self.decoder = UNetDecoder(num_classes, width, levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        feats = self.encoder(pad_to_multiple(x, 2 ** (self.levels - 1)))
        return self.decoder(feats[-1], feats[:-1])[..., :h, :w]


class SegFormerSegmenter(nn.Module):
    """A tiny randomly initialized SegFormer (Xie et al. 2021) from ``transformers``.

    Four stages of widths 16-128, one block each, spatial-reduction ratios
    4, 2, 1, 1 (so 16-pixel patches work); the 1/4-resolution logits are
    bilinearly upsampled to the input size. Needs ``pip install specdm[segformer]``.
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        try:
            from transformers import SegformerConfig, SegformerForSemanticSegmentation
        except ImportError as e:
            raise ConfigError("model 'segformer' needs transformers", hint="pip install 'specdm[segformer]'") from e
        config = SegformerConfig(
            num_channels=in_channels,
            num_labels=num_classes,
            hidden_sizes=[16, 32, 64, 128],
            depths=[1, 1, 1, 1],
            num_attention_heads=[1, 1, 2, 4],
            sr_ratios=[4, 2, 1, 1],
            decoder_hidden_size=64,
        )
        self.segformer = SegformerForSemanticSegmentation(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.segformer(pixel_values=x).logits
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def segmentation_scores(
    pred: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
) -> dict:
    """mIoU and macro F1 of a class map against the labels, with per-class scores.

    IoU = TP / (TP + FP + FN), F1 = 2TP / (2TP + FP + FN), per class, NaN for
    a class neither labelled nor predicted (and for ``ignore_index``). ``miou``
    and ``f1`` average over ``classes`` when given (PROTOCOL: Indian Pines
    classes present in both regions), else over all classes, skipping NaN.
    """
    cm = confusion_matrix(pred, target, num_classes, ignore_index)
    iou, f1 = per_class_iou(cm), per_class_f1(cm)
    if ignore_index is not None:
        iou[ignore_index] = f1[ignore_index] = np.nan
    idx = np.arange(num_classes) if classes is None else np.asarray(classes)
    return {
        "miou": nanmean(iou[idx]),
        "f1": nanmean(f1[idx]),
        "per_class_iou": iou,
        "per_class_f1": f1,
        "confusion": cm,
    }
