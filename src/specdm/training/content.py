"""Controllable synthesis's content encoder, trained on the real training windows before stage 2.

Objective (no labels): from a window's RGB view (:func:`~specdm.conditions.controls.window_rgb`: the
grid bands nearest 650/550/470 nm, clipped to [0, 1]) predict its per-band mean and standard
deviation over pixels on the aligned grid, in normalized units, through a linear head on the unit
embedding (:class:`~specdm.models.encoders.content.ContentEncoder`). Windows are drawn uniformly from
``patches`` (the recipe passes them scene-balanced) under a random D4 transform, which leaves the target
unchanged, so the embedding describes what the window holds rather than where.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from specdm.data.datamodule import PatchSet
from specdm.models.encoders import ContentEncoder
from specdm.training.engine import LoopConfig, StepRandom, train_loop


def content_target(x: torch.Tensor) -> torch.Tensor:
    """The target of windows ``(N, C, H, W)``: per-band mean, then per-band standard deviation -> ``(N, 2C)``."""
    return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def content_loss(model: ContentEncoder, x: torch.Tensor, rgb_bands) -> torch.Tensor:
    """Mean squared error of the target predicted from the RGB view of windows ``(N, C, H, W)`` (normalized units)."""
    rgb = x[:, list(rgb_bands)].clamp(0.0, 1.0)
    return F.mse_loss(model.predict(model(rgb)), content_target(x))


def train_content_encoder(patches: PatchSet, model: ContentEncoder, rgb_bands, loop: LoopConfig, ckpt_dir: Path,
                          resume: bool = False) -> ContentEncoder:
    """Train ``model`` with :func:`content_loss` on the first date of ``patches``' windows (random D4 each)."""

    def step(net, items: torch.Tensor, rnd: StepRandom):
        x, _ = patches.batch(items.tolist(), rnd.integers(8).tolist())
        return content_loss(net, x[:, 0].to(rnd.device), rgb_bands), {}

    return train_loop(model, step, len(patches), loop, ckpt_dir, resume, desc="content encoder")
