"""Restoration task models: does a generator help a denoiser or a super-resolver, not only a classifier?

HSIGene's Tables 8 and 9 train denoisers (Gaussian noise, sigma 0.2) and x4 super-resolvers on real, synthetic and
real + synthetic patches. Here both are compact CNNs trained by the one small training loop of task models
(:func:`~specdm.evaluation.fit.fit`), on windows ``(N, C, P, P)`` in the real data's normalized units ([0, 1] on
the training split):

- ``denoise``: input ``clean + N(0, sigma^2)`` (fresh noise every step, a fixed draw at test time), output the clean
  image: :class:`CompactDenoiser` (DnCNN-like layers predicting the clean image directly);
- ``sr4``: input the bicubic upsampling of ``clean`` downsampled x4 (antialiased bicubic), output the clean image:
  :class:`CompactSuperResolver` (residual CNN on the bicubic image).

Scores (:func:`restoration_scores`): PSNR and SSIM per band on data scaled to [0, 1] by the training split's
normalization, averaged over bands (PROTOCOL), and SAM in radians, of the restored image clipped to [0, 1] against
the clean one; the input's own scores (the noisy image, the bicubic image) are the floor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from specdm.errors import ConfigError, DataError
from specdm.evaluation.fit import batch_indices, fit, seeded
from specdm.layers import residual_body
from specdm.metrics.reference import psnr, sam, ssim

__all__ = ["TASKS", "CompactDenoiser", "CompactSuperResolver", "degrade", "restoration_scores", "restore",
           "train_restorer"]

TASKS = ("denoise", "sr4")
SR_SCALE = 4
DEFAULT_SIGMA = 0.2  # HSIGene's Gaussian noise level


class CompactDenoiser(nn.Module):
    """DnCNN-like: ``depth`` 3x3 convolutions of ``width`` channels (ReLU between), the last predicting the clean
    image. Not DnCNN's residual (noise) prediction: the noise of every band is independent, so a noise-predicting
    network must carry all of it through its width, while the clean spectra are correlated across bands; on Indian
    Pines (48 aligned bands, sigma 0.2, 300 steps) the residual form reached 15.8 dB, this one 26.0 dB (a 5x5 box
    filter: 23.5 dB)."""

    def __init__(self, num_bands: int, width: int = 48, depth: int = 6):
        super().__init__()
        layers = [nn.Conv2d(num_bands, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(width, num_bands, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class CompactSuperResolver(nn.Module):
    """A residual CNN on the bicubic-upsampled image (input and output at the high resolution)."""

    def __init__(self, num_bands: int, width: int = 48, blocks: int = 4):
        super().__init__()
        self.head = nn.Conv2d(num_bands, width, 3, padding=1)
        self.body = residual_body(width, blocks)
        self.tail = nn.Conv2d(width, num_bands, 3, padding=1)

    def forward(self, x):
        f = self.head(x)
        for b in self.body:
            f = f + b(f)
        return x + self.tail(f)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ConfigError(f"unknown restoration task '{task}'; choose one of {', '.join(TASKS)}")


def build_restorer(task: str, num_bands: int) -> nn.Module:
    _check_task(task)
    return CompactDenoiser(num_bands) if task == "denoise" else CompactSuperResolver(num_bands)


def degrade(clean: torch.Tensor, task: str, sigma: float = DEFAULT_SIGMA, generator: torch.Generator | None = None
            ) -> torch.Tensor:
    """The network's input for clean images ``(N, C, H, W)``: noisy (``denoise``) or the bicubic upsampling of the
    x4-downsampled image (``sr4``; H and W multiples of 4)."""
    _check_task(task)
    if task == "denoise":
        noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32)
        return clean + sigma * noise.to(clean.device)
    h, w = clean.shape[-2:]
    if h % SR_SCALE or w % SR_SCALE:
        raise DataError(f"x{SR_SCALE} super-resolution needs sides that are multiples of {SR_SCALE}, got {h}x{w}")
    low = F.interpolate(clean, size=(h // SR_SCALE, w // SR_SCALE), mode="bicubic", antialias=True,
                        align_corners=False)
    return F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)


def train_restorer(task: str, sets: Sequence[np.ndarray], steps: int, batch_size: int, lr: float, seed: int,
                   mix: float | None = None, sigma: float = DEFAULT_SIGMA, lr_schedule: str = "cosine",
                   device="cpu", progress: bool = False) -> nn.Module:
    """Train a compact restorer on windows ``sets[0]`` (``(N, C, P, P)``) and, pooled, ``sets[1:]`` (a share
    ``mix`` of each batch; None: the pool's share of all windows). Pairing as for the task models
    (:func:`~specdm.evaluation.fit.batch_indices`): seed ``k`` fixes the initialization, the order of ``sets[0]``'s
    batches, the D4 transforms and the noise draws, whatever else is added. L1 loss, Adam, cosine learning rate."""
    if not sets or not len(sets[0]):
        raise DataError("the restoration training set is empty")
    first, rest = sets[0], list(sets[1:])
    pool = np.concatenate(rest) if rest else np.zeros((0, *first.shape[1:]), np.float32)
    if pool.shape[1:] != first.shape[1:] and len(pool):
        raise DataError(f"synthetic windows {pool.shape[1:]} differ from the real ones {first.shape[1:]}")
    stream = batch_indices(len(first), len(pool), steps, batch_size, mix if len(pool) else 0.0, seed=seed)
    aug = np.random.default_rng([seed, 2])
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 5]).generate_state(1)[0]))

    def batches():
        for real_idx, syn_idx in stream:
            x = np.concatenate([first[real_idx], pool[syn_idx]]) if len(syn_idx) else first[real_idx]
            k = int(aug.integers(8))
            x = np.rot90(x, k % 4, axes=(-2, -1))
            x = np.ascontiguousarray(x[..., ::-1] if k >= 4 else x)
            clean = torch.from_numpy(x).float()
            yield degrade(clean, task, sigma, gen).to(device), clean.to(device)

    with seeded(seed):
        model = build_restorer(task, first.shape[1]).to(device)
        fit(model, batches(), lambda b: F.l1_loss(model(b[0]), b[1]), steps, lr, lr_schedule=lr_schedule,
            progress=progress, desc=f"{task} seed {seed}")
    return model


@torch.no_grad()
def restore(model: nn.Module | None, degraded: np.ndarray, tile: int = 128) -> np.ndarray:
    """``model`` on a degraded image ``(C, H, W)`` (None: the input itself), in ``tile`` x ``tile`` pieces with a
    margin of 8 pixels; returns ``(C, H, W)``."""
    if model is None:
        return degraded
    device = next(model.parameters()).device
    c, h, w = degraded.shape
    out = np.empty_like(degraded)
    m = 8
    for r in range(0, h, tile):
        for s in range(0, w, tile):
            r0, s0 = max(0, r - m), max(0, s - m)
            r1, s1 = min(h, r + tile + m), min(w, s + tile + m)
            y = model(torch.from_numpy(np.ascontiguousarray(degraded[:, r0:r1, s0:s1]))[None].float().to(device))
            y = y[0].float().cpu().numpy()
            out[:, r : min(h, r + tile), s : min(w, s + tile)] = y[:, r - r0 : r - r0 + min(tile, h - r),
                                                                   s - s0 : s - s0 + min(tile, w - s)]
    return out


def restoration_scores(restored: np.ndarray, clean: np.ndarray) -> dict:
    """PSNR (dB), SSIM (per band on [0, 1], averaged) and SAM (rad) of ``restored`` against ``clean``, both
    ``(C, H, W)`` in normalized units and both clipped to [0, 1] (the training split's range)."""
    p = np.clip(np.moveaxis(restored, 0, -1), 0, 1)
    r = np.clip(np.moveaxis(clean, 0, -1), 0, 1)
    return {"psnr": psnr(p, r, 1.0), "ssim": ssim(p, r, 1.0), "sam_rad": sam(p, r)}
