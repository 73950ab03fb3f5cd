"""HyperLDM's trainers: the conditional VQ autoencoder (stage 1), the latents and RGB conditions of
stage 2, and the one-to-one RGB -> spectra baseline. All run on :func:`~specdm.training.engine.train_loop`;
the stage-2 denoiser itself trains with :func:`~specdm.training.diffusion.train_conditional_denoiser`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from specdm.data.datamodule import PatchSet
from specdm.models.autoencoders.hyper_vq import HyperVQAutoencoder, rgb_condition
from specdm.training.engine import LoopConfig, StepRandom, train_loop


def pair_batch(patches: PatchSet, rgb, indices, codes=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized windows ``(N, C, P, P)`` (first date) and their RGB ``(N, 3, P, P)`` in [0, 1], both under the
    same D4 transforms ``codes`` (the RGB is computed per pixel from the transformed window)."""
    x, _ = patches.batch(indices, codes)
    x = x[:, 0]
    return x, torch.from_numpy(rgb(x.numpy()))


def spectral_losses(rec: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean absolute error and mean ``1 - cosine`` between the spectra of ``rec`` and ``x`` (N, C, H, W)."""
    return (rec - x).abs().mean(), (1 - F.cosine_similarity(rec, x, dim=1, eps=1e-8)).mean()


@torch.no_grad()
def init_codebook(model: HyperVQAutoencoder, patches: PatchSet, rgb, seed: int = 0, windows: int = 64) -> None:
    """Set the codebook to latent vectors of up to ``windows`` training windows (drawn with replacement when there
    are fewer vectors than codes, plus 1 % noise), so that every code starts where the encoder's outputs lie."""
    gen = np.random.default_rng(seed)
    pick = gen.choice(len(patches), min(windows, len(patches)), replace=False)
    x, _ = pair_batch(patches, rgb, pick.tolist())
    z = model.encode(x.to(model.device))
    flat = z.movedim(1, -1).reshape(-1, z.shape[1])
    k = model.codebook.weight.shape[0]
    rows = torch.from_numpy(gen.choice(len(flat), k, replace=len(flat) < k)).to(flat.device)
    noise = torch.from_numpy(gen.standard_normal((k, z.shape[1])).astype(np.float32)).to(flat.device)
    model.codebook.weight.copy_(flat[rows] + 0.01 * flat.std() * noise)


def train_vq_autoencoder(
    patches: PatchSet,
    model: HyperVQAutoencoder,
    rgb,
    loop: LoopConfig,
    ckpt_dir: Path,
    l1_weight: float = 1.0,
    cosine_weight: float = 10.0,
    commitment_weight: float = 0.25,
    resume: bool = False,
) -> HyperVQAutoencoder:
    """``l1_weight * L1 + cosine_weight * (1 - cos) + codebook + commitment_weight * commitment`` on random D4
    transforms of the training windows and their RGB (``rgb``: :class:`~specdm.conditions.rgb.WindowRGB`)."""
    init_codebook(model, patches, rgb, loop.seed)

    def step(net, items: torch.Tensor, rnd: StepRandom):
        x, c = pair_batch(patches, rgb, items.tolist(), rnd.integers(8).tolist())
        x, c = x.to(rnd.device), c.to(rnd.device)
        out = net(x, c)
        l1, cos = spectral_losses(out.image.float(), x)
        loss = l1_weight * l1 + cosine_weight * cos + out.codebook_loss + commitment_weight * out.commitment_loss
        return loss, {"l1": l1.item(), "cos": cos.item(), "codes_used": int(out.indices.unique().numel())}

    return train_loop(model, step, len(patches), loop, ckpt_dir, resume, desc="stage 1 (VQ autoencoder)")


@torch.no_grad()
def encode_pairs(model: HyperVQAutoencoder, patches: PatchSet, rgb, augmentations: int = 8, batch_size: int = 32
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantized latents ``(N * augmentations, n_x, h, w)`` of every training window under the first
    ``augmentations`` D4 transforms, and the RGB condition of each (:func:`rgb_condition`)."""
    items = [(i, k) for i in range(len(patches)) for k in range(augmentations)]
    zs, conds = [], []
    for s in range(0, len(items), batch_size):
        chunk = items[s : s + batch_size]
        x, c = pair_batch(patches, rgb, [i for i, _ in chunk], [k for _, k in chunk])
        zs.append(model.quantize(model.encode(x.to(model.device)))[1].cpu())
        conds.append(rgb_condition(c, model.downsampling))
    return torch.cat(zs), torch.cat(conds)


def train_rgb_regressor(patches: PatchSet, model: torch.nn.Module, rgb, loop: LoopConfig, ckpt_dir: Path,
                        l1_weight: float = 1.0, cosine_weight: float = 10.0, resume: bool = False) -> torch.nn.Module:
    """The one-to-one baseline: ``model(rgb)`` regresses the spectra, with stage 1's reconstruction loss."""

    def step(net, items: torch.Tensor, rnd: StepRandom):
        x, c = pair_batch(patches, rgb, items.tolist(), rnd.integers(8).tolist())
        l1, cos = spectral_losses(net(c.to(rnd.device)).float(), x.to(rnd.device))
        return l1_weight * l1 + cosine_weight * cos, {"l1": l1.item(), "cos": cos.item()}

    return train_loop(model, step, len(patches), loop, ckpt_dir, resume, desc="RGB -> spectra baseline")
