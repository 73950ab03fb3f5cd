"""HyperLDM's trainers: the conditional VQ autoencoder (stage 1), the latents and RGB conditions of
stage 2, and the one-to-one RGB -> spectra baseline. All run on :func:`~specdm.training.engine.train_loop`;
the stage-2 denoiser itself trains with the shared :func:`~specdm.training.diffusion.train_latent_denoiser`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from specdm.data.datamodule import PatchSet
from specdm.models.autoencoders.hyper_vq import HyperVQAutoencoder, denoiser_condition
from specdm.models.discriminators import Discriminators
from specdm.training.engine import AuxOptimizer, LoopConfig, StepRandom, train_loop


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


class AdversarialVQ(torch.nn.Module):
    """The autoencoder and its discriminators as one module for the engine (the discriminators are its
    :class:`~specdm.training.engine.AuxOptimizer` part): ``forward`` returns the autoencoder's output, its
    adversarial term and, when ``critic`` is set, the discriminators' hinge loss (else None)."""

    def __init__(self, autoencoder: HyperVQAutoencoder, discriminators: Discriminators):
        super().__init__()
        self.autoencoder, self.discriminators = autoencoder, discriminators

    def forward(self, x: torch.Tensor, c: torch.Tensor, offset: tuple[int, int], critic: bool):
        out = self.autoencoder(x, c)
        fake = out.image.float()
        d_loss = self.discriminators.discriminator_loss(x, fake, offset) if critic else None
        return out, self.discriminators.generator_loss(fake, offset), d_loss


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
    discriminators: Discriminators | None = None,
    discriminator_weight: float = 0.1,
    discriminator_every: int = 3,
) -> HyperVQAutoencoder:
    """``l1_weight * L1 + cosine_weight * (1 - cos) + codebook + commitment_weight * commitment`` on random D4
    transforms of the training windows and their RGB (``rgb``: :class:`~specdm.conditions.rgb.WindowRGB`).

    With ``discriminators``, ``+ discriminator_weight * adversarial`` (:class:`AdversarialVQ`), and the
    discriminators take an AdamW step (the loop's learning rate) on every ``discriminator_every``-th step;
    the spectral critic's pixel grid offset is drawn from the step's generator."""
    init_codebook(model, patches, rgb, loop.seed)

    def losses(out, x) -> tuple[torch.Tensor, dict]:
        l1, cos = spectral_losses(out.image.float(), x)
        loss = l1_weight * l1 + cosine_weight * cos + out.codebook_loss + commitment_weight * out.commitment_loss
        return loss, {"l1": l1.item(), "cos": cos.item(), "codes_used": int(out.indices.unique().numel())}

    def step(net, items: torch.Tensor, rnd: StepRandom):
        x, c = pair_batch(patches, rgb, items.tolist(), rnd.integers(8).tolist())
        x, c = x.to(rnd.device), c.to(rnd.device)
        return losses(net(x, c), x)

    def adversarial_step(net, items: torch.Tensor, rnd: StepRandom):
        x, c = pair_batch(patches, rgb, items.tolist(), rnd.integers(8).tolist())
        x, c = x.to(rnd.device), c.to(rnd.device)
        offset = tuple(torch.randint(0, discriminators.stride, (2,), generator=rnd.gen).tolist())
        out, g_loss, d_loss = net(x, c, offset, (rnd.step + 1) % discriminator_every == 0)
        loss, logs = losses(out, x)
        return loss + discriminator_weight * g_loss, {**logs, "adversarial": g_loss.item()}, d_loss

    desc = "stage 1 (VQ autoencoder)"
    if discriminators is None:
        return train_loop(model, step, len(patches), loop, ckpt_dir, resume, desc=desc)
    pair = train_loop(AdversarialVQ(model, discriminators), adversarial_step, len(patches), loop, ckpt_dir, resume,
                      desc=desc, aux=AuxOptimizer("discriminators", loop.lr))
    return pair.autoencoder


def vq_reconstruction(model: HyperVQAutoencoder, patches: PatchSet, rgb):
    """The reconstruction function of the VQ autoencoder (quantized, decoded with the windows' RGB) for
    :func:`~specdm.training.autoencoder.reconstruction_report`."""
    model.eval()

    def reconstruct(indices):
        x, c = pair_batch(patches, rgb, indices)
        rec = model(x.to(model.device), c.to(model.device)).image.clamp(0, 1).cpu()
        return x[:, None].numpy(), rec[:, None].numpy(), None

    return reconstruct


@torch.no_grad()
def encode_pairs(model: HyperVQAutoencoder, patches: PatchSet, rgb, augmentations: int = 8, batch_size: int = 32,
                 condition: str = "folded") -> tuple[torch.Tensor, torch.Tensor]:
    """Quantized latents ``(N * augmentations, n_x, h, w)`` of every training window under the first
    ``augmentations`` D4 transforms, and the denoiser's RGB input of each (:func:`denoiser_condition` of kind
    ``condition``)."""
    items = [(i, k) for i in range(len(patches)) for k in range(augmentations)]
    zs, conds = [], []
    for s in range(0, len(items), batch_size):
        chunk = items[s : s + batch_size]
        x, c = pair_batch(patches, rgb, [i for i, _ in chunk], [k for _, k in chunk])
        zs.append(model.quantize(model.encode(x.to(model.device)))[1].cpu())
        conds.append(denoiser_condition(model, c, condition).cpu())
    return torch.cat(zs), torch.cat(conds)


def train_rgb_regressor(patches: PatchSet, model: torch.nn.Module, rgb, loop: LoopConfig, ckpt_dir: Path,
                        l1_weight: float = 1.0, cosine_weight: float = 10.0, resume: bool = False) -> torch.nn.Module:
    """The one-to-one baseline: ``model(rgb)`` regresses the spectra, with stage 1's reconstruction loss."""

    def step(net, items: torch.Tensor, rnd: StepRandom):
        x, c = pair_batch(patches, rgb, items.tolist(), rnd.integers(8).tolist())
        l1, cos = spectral_losses(net(c.to(rnd.device)).float(), x.to(rnd.device))
        return l1_weight * l1 + cosine_weight * cos, {"l1": l1.item(), "cos": cos.item()}

    return train_loop(model, step, len(patches), loop, ckpt_dir, resume, desc="RGB -> spectra baseline")
