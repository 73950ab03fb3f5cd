"""Small downstream models that score real and synthetic training data.

Every model maps a float32 batch to per-pixel logits ``(N, K, H, W)`` of the
input's height and width:

- ``"unet"``: :class:`CompactUNet`, semantic segmentation of ``(N, C, H, W)``.
- ``"segformer"``: :class:`SegFormerSegmenter`, the same task with a tiny
  SegFormer from ``transformers`` (random initialization, nothing downloaded).
- ``"siamdiff"``: :class:`SiamDiff`, change detection of an image pair
  ``(N, 2, C, H, W)`` (date axis second).
- ``"pixel"``: :class:`SpectralPixelClassifier`, a 1-D CNN applied to every
  pixel's spectrum on its own (``(N, C, 1, 1)`` holds ``N`` spectra).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from specdm.errors import ConfigError

__all__ = [
    "MODEL_NAMES",
    "CompactUNet",
    "SegFormerSegmenter",
    "SiamDiff",
    "SpectralPixelClassifier",
    "build_model",
]

MODEL_NAMES = ("unet", "segformer", "siamdiff", "pixel")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class _Encoder(nn.Module):
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


class _Decoder(nn.Module):
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


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
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
        self.encoder = _Encoder(in_channels, width, levels)
        self.decoder = _Decoder(num_classes, width, levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        feats = self.encoder(_pad_to_multiple(x, 2 ** (self.levels - 1)))
        return self.decoder(feats[-1], feats[:-1])[..., :h, :w]


class SiamDiff(nn.Module):
    """FC-Siam-diff (Caye Daudt et al. 2018) for change detection of ``(N, 2, C, H, W)`` pairs.

    One encoder (shared weights) sees both dates; as in the paper, the decoder
    starts from the second date's deepest features and its skip connections
    carry ``|f1 - f2|`` at every shallower level.
    """

    def __init__(self, in_channels: int, num_classes: int = 2, width: int = 32, levels: int = 3):
        super().__init__()
        self.levels = levels
        self.encoder = _Encoder(in_channels, width, levels)
        self.decoder = _Decoder(num_classes, width, levels)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        if pair.ndim != 5 or pair.shape[1] != 2:
            raise ValueError(f"SiamDiff expects (N, 2, C, H, W), got {tuple(pair.shape)}")
        h, w = pair.shape[-2:]
        pair = _pad_to_multiple(pair, 2 ** (self.levels - 1))
        f1, f2 = self.encoder(pair[:, 0]), self.encoder(pair[:, 1])
        skips = [(a - b).abs() for a, b in zip(f1[:-1], f2[:-1])]
        return self.decoder(f2[-1], skips)[..., :h, :w]


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


class SpectralPixelClassifier(nn.Module):
    """A 1-D CNN over each pixel's spectrum (no spatial context), for OA/AA/kappa protocols.

    Two strided convolutions along the band axis, pooling to 4 positions,
    then a two-layer head; ``(N, C, H, W)`` is treated as ``N*H*W`` spectra.
    """

    def __init__(self, num_bands: int, num_classes: int, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, width, 7, stride=2, padding=3), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
            nn.Conv1d(width, 2 * width, 5, stride=2, padding=2), nn.BatchNorm1d(2 * width), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool1d(4),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(8 * width, 64), nn.ReLU(inplace=True), nn.Linear(64, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        spectra = x.permute(0, 2, 3, 1).reshape(n * h * w, 1, c)
        logits = self.head(self.features(spectra))
        return logits.reshape(n, h, w, -1).permute(0, 3, 1, 2)


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
