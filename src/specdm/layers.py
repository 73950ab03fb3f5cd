"""Plain torch building blocks shared by the generative models (``models/``) and the task models of the
benchmarks (``evaluation/``), which may not import each other: torch only."""

from __future__ import annotations

from torch import nn

__all__ = ["residual_body"]


def residual_body(width: int, blocks: int) -> nn.ModuleList:
    """``blocks`` residual blocks (3x3 conv, ReLU, 3x3 conv) of ``width`` channels; the caller adds each block's
    output to its input."""
    return nn.ModuleList(
        nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1))
        for _ in range(blocks))
