"""The super-resolver's two stages (``specdm superres``), trained on what the user has: the scene's own training part.

Every pair is made the same way: a high-resolution window, downsampled by the scale (antialiased bicubic,
:func:`~specdm.models.superres.downsample`) and upsampled back by bicubic interpolation; the networks learn the
difference. The RGB stage learns it for the scene's RGB bands (and for crops of high-resolution RGB images the user
gives) with the shared denoiser step (:func:`~specdm.training.diffusion.train_latent_denoiser`, the residual denoised,
the bicubic RGB concatenated as its condition); the guided stage learns it for every band with the window's true
RGB as guidance (L1, AdamW with a cosine from ``lr`` to ``lr_min``), on the shared engine, drawing window, D4
transform, date and scale per step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from specdm.data.datamodule import PatchSet
from specdm.models.superres import downsample, upsample
from specdm.training.diffusion import Latents
from specdm.training.engine import LoopConfig, StepRandom, train_loop

__all__ = ["rgb_crops", "rgb_of", "rgb_pairs", "train_guided", "train_plain"]


def rgb_of(x: torch.Tensor, rgb_bands) -> torch.Tensor:
    """The RGB view of normalized spectral images ``(N, C, H, W)``: bands ``rgb_bands`` clipped to [0, 1]."""
    return x[:, list(rgb_bands)].clamp(0, 1)


def rgb_crops(images: list[np.ndarray], size: int, per_image: int, seed: int = 0) -> np.ndarray:
    """``per_image`` random ``size`` x ``size`` crops of every RGB image ``(H, W, 3)`` in [0, 1] that is large enough,
    as ``(N, 3, size, size)`` float32 (seeded; none: an empty array)."""
    rng = np.random.default_rng(seed)
    out = []
    for im in images:
        h, w = im.shape[:2]
        if h < size or w < size:
            continue
        for _ in range(per_image):
            r, c = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            out.append(np.moveaxis(im[r : r + size, c : c + size], -1, 0))
    return np.stack(out).astype(np.float32) if out else np.zeros((0, 3, size, size), np.float32)


@torch.no_grad()
def rgb_pairs(patches: PatchSet, rgb_bands, scales: list[int], augmentations: int = 8,
              extra: np.ndarray | None = None) -> tuple[Latents, float]:
    """The RGB stage's table: for every window (each date) under the first ``augmentations`` D4 transforms, and for
    every crop of ``extra`` RGB images, at every scale: the residual ``hr - up(down(hr))`` and the condition
    ``2 up(down(hr)) - 1`` as one 6-channel row; the residual's scale (1 / its standard deviation) comes back too."""
    rows = []
    for i in range(len(patches)):
        for code in range(augmentations):
            img, _ = patches.get(i, code)
            rows.append(rgb_of(torch.from_numpy(np.ascontiguousarray(img)), rgb_bands))  # (T, 3, P, P)
    hr = torch.cat(rows) if rows else torch.zeros(0, 3, patches.size, patches.size)
    if extra is not None and len(extra):
        hr = torch.cat([hr, torch.from_numpy(extra)])
    out = []
    for s in scales:
        cond = upsample(downsample(hr, s), hr.shape[-2:]).clamp(0, 1)
        out.append(torch.cat([hr - cond, 2 * cond - 1], 1))
    table = torch.cat(out).float()
    scale = 1.0 / table[:, :3].std().clamp_min(1e-6).item()
    vector = torch.tensor([scale] * 3 + [1.0] * 3)
    return Latents(table, torch.zeros_like(table), vector), scale


def _hsi_batch(patches: PatchSet, items: torch.Tensor, rnd: StepRandom, scales: list[int]):
    """High-resolution windows (one random date each, random D4) and this step's scale."""
    codes = rnd.integers(8).cpu().numpy()
    dates = rnd.integers(patches.images[0].shape[0]).cpu().numpy() if patches.images else None
    x, _ = patches.batch(items.cpu().numpy(), codes)  # (N, T, C, P, P)
    x = x[torch.arange(len(x)), torch.as_tensor(dates)] if x.shape[1] > 1 else x[:, 0]
    scale = scales[int(torch.randint(len(scales), (1,), generator=rnd.gen))]
    return x.to(rnd.device), scale


def _guided_step(rgb_bands, scales: list[int], patches: PatchSet, guided: bool):
    def step(model, items, rnd):
        hr, s = _hsi_batch(patches, items, rnd, scales)
        x_up = upsample(downsample(hr, s), hr.shape[-2:])
        pred = model(x_up, rgb_of(hr, rgb_bands)) if guided else model(x_up)
        loss = F.l1_loss(pred.float(), hr)
        return loss, {"x%d" % s: loss.item()}

    return step


def train_guided(patches: PatchSet, net: torch.nn.Module, rgb_bands, scales: list[int], loop: LoopConfig,
                 ckpt_dir: Path, resume: bool = False, desc: str = "guided stage (super-resolution)"):
    """Train the guided network (:class:`~specdm.models.superres.GuidedSuperResolver`) on the windows' every band,
    guided by their true high-resolution RGB."""
    return train_loop(net, _guided_step(rgb_bands, scales, patches, True), len(patches), loop, ckpt_dir, resume,
                      desc=desc)


def train_plain(patches: PatchSet, net: torch.nn.Module, scales: list[int], loop: LoopConfig, ckpt_dir: Path,
                resume: bool = False, desc: str = "plain CNN (super-resolution)"):
    """Train the plain CNN baseline (:class:`~specdm.models.superres.PlainSuperResolver`) on the same pairs."""
    return train_loop(net, _guided_step(None, scales, patches, False), len(patches), loop, ckpt_dir, resume,
                      desc=desc)

