"""Stage 2: the one denoiser training step of every method, on stored latents.

:func:`train_latent_denoiser` draws, per step and for the whole batch (``(seed, step)``, each process its slice):
a posterior sample of each item's latent, scaled; the :class:`Conditioning`'s split into the part to denoise and
its condition, and its dropout; the noise and the timestep. The loss is :func:`denoising_loss`: MSE to the
schedule's target (the noise, or the velocity under v prediction, with or without zero terminal SNR), plus an
optional SSIM term on the implied clean latent. So every method trains epsilon or v prediction alike.

The conditionings: :class:`Unconditional` (SpecDM: the whole latent), :class:`LatentCondition` (the last channels of
the latent are the condition: the mask latent of layout models, the RGB of HyperLDM; concatenated to the noisy
input or through a ControlNet) and, in :mod:`specdm.training.controllable`, the condition tables of controllable
synthesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from specdm.data.datamodule import PatchSet
from specdm.metrics.reference import ssim_torch
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.schedulers import training_scheduler
from specdm.training.engine import LoopConfig, StepRandom, train_loop


@torch.no_grad()
def encode_patches(
    ae: SpectralAutoencoder, patches: PatchSet, augmentations: int = 8, batch_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations of every window under the first
    ``augmentations`` D4 transforms: ``(N * augmentations, Cz, h, w)`` each."""
    items = [(i, k) for i in range(len(patches)) for k in range(augmentations)]
    means, stds = [], []
    for s in tqdm(range(0, len(items), batch_size), desc="encoding latents", leave=False):
        chunk = items[s : s + batch_size]
        x, y = patches.batch([i for i, _ in chunk], [k for _, k in chunk])
        m, lv = ae.encode(x, y)
        means.append(m)
        stds.append(torch.exp(0.5 * lv.clamp(-30, 20)))
    return torch.cat(means), torch.cat(stds)


def latent_scale(ae: SpectralAutoencoder, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-channel factors that give each part (images, mask) of ``z`` unit variance (as LDM's 0.18215,
    but estimated from the data, one factor per part)."""
    z = mean + std * torch.randn(mean.shape, generator=torch.Generator().manual_seed(0))
    c = ae.config["latent_channels"]
    parts = (ae.num_dates, 1) if ae.kind == "two_stream" else (ae.num_dates + 1,)
    parts = parts if ae.has_masks else (ae.num_dates,)
    scales, start = [], 0
    for p in parts:
        s = 1.0 / z[:, start : start + p * c].std().clamp_min(1e-6)
        scales += [s.item()] * (p * c)
        start += p * c
    return torch.tensor(scales)


def predicted_x0(sched, zt: torch.Tensor, pred: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The clean latent the network's output implies at timesteps ``t``: from the predicted noise,
    ``(z_t - sqrt(1 - a) eps) / sqrt(a)``; from a v prediction, ``sqrt(a) z_t - sqrt(1 - a) v``
    (``a = alpha_bar_t`` of the scheduler ``sched``)."""
    a = sched.alphas_cumprod.to(zt.device)[t.to(zt.device)].view(-1, 1, 1, 1)
    if sched.config.prediction_type == "v_prediction":
        return a.sqrt() * zt - (1 - a).sqrt() * pred
    return (zt - (1 - a).sqrt() * pred) / a.sqrt()


def ssim_term(x0_hat: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM(x0_hat, x0)`` over the latent grid (:func:`~specdm.metrics.reference.ssim_torch`: a Gaussian
    window as wide as the grid allows, at most 11, odd; data range that of ``x0``), averaged over the batch."""
    side = min(11, *x0.shape[2:])
    window = side - (side + 1) % 2
    data_range = (x0.max() - x0.min()).clamp_min(1e-6).item()
    return 1 - ssim_torch(x0_hat.float(), x0.float(), data_range, window).mean()


def loss_target(sched, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the network learns to predict: the noise, or under v prediction the velocity
    ``sqrt(a) noise - sqrt(1 - a) x0`` (diffusers' ``get_velocity``)."""
    if sched.config.prediction_type == "v_prediction":
        return sched.get_velocity(x0, noise, t.to(x0.device))
    return noise


def denoising_loss(sched, pred: torch.Tensor, noise: torch.Tensor, x0: torch.Tensor, zt: torch.Tensor,
                   t: torch.Tensor, ssim_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """MSE to the scheduler's target (:func:`loss_target`), plus ``ssim_weight * (1 - SSIM(x0_hat, x0))``
    (:func:`ssim_term`) with ``x0_hat`` from the prediction (:func:`predicted_x0`) when the weight is positive."""
    loss = F.mse_loss(pred.float(), loss_target(sched, x0, noise, t))
    if not ssim_weight:
        return loss, {}
    term = ssim_term(predicted_x0(sched, zt, pred.float(), t), x0)
    return loss + ssim_weight * term, {"mse": loss.item(), "1-ssim": term.item()}




@dataclass
class Latents:
    """What stage 2 trains on: the stored posterior ``mean`` and ``std`` of every training row (``std`` zeros for a
    deterministic latent), the per-channel ``scale``, and ``rows``: the rows the items index (None: every row once;
    e.g. scene-balanced draws)."""

    mean: torch.Tensor
    std: torch.Tensor
    scale: torch.Tensor
    rows: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.mean.shape[0] if self.rows is None else len(self.rows)


class Conditioning:
    """How a denoiser sees its condition in training. :meth:`split` parts the scaled latent into what is denoised
    and the condition, :meth:`dropout` draws and applies the condition's dropout (right after the latent sample when
    ``dropout_first``, else after the timestep: the order each trainer drew in before they were merged, kept so
    that every method's models are the same bit for bit), :meth:`predict` runs the network."""

    dropout_first = False

    def bind(self, net: torch.nn.Module) -> None:
        """Look at the network before the engine wraps it."""

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return z, None

    def dropout(self, rnd: StepRandom, rows: torch.Tensor, condition):
        return condition

    def predict(self, net, zt: torch.Tensor, t: torch.Tensor, condition) -> torch.Tensor:
        return net(zt, t, encoder_hidden_states=None).sample


class Unconditional(Conditioning):
    """The whole latent is denoised (SpecDM: images and masks jointly)."""


class LatentCondition(Conditioning):
    """The first ``target_channels`` of the latent are denoised, the rest (a mask latent, a fresh posterior sample,
    clean; or HyperLDM's RGB input) is the condition, dropped in a share ``p_uncond`` of the items so that one
    network predicts both the conditional and the unconditional noise (classifier-free guidance). A U-Net gets the
    condition concatenated to its noisy input (zeros when dropped); a
    :class:`~specdm.models.denoisers.LatentControlledDenoiser` through its ControlNet (no residuals when dropped)."""

    dropout_first = True

    def __init__(self, target_channels: int, p_uncond: float = 0.1):
        self.target_channels = target_channels
        self.keep_permille = round(1000 * (1.0 - p_uncond))
        self.controlled = False

    def bind(self, net: torch.nn.Module) -> None:
        from specdm.models.denoisers import LatentControlledDenoiser

        self.controlled = isinstance(net, LatentControlledDenoiser)

    def split(self, z):
        return z[:, : self.target_channels], z[:, self.target_channels :]

    def dropout(self, rnd, rows, condition):
        keep = (rnd.integers(1000) < self.keep_permille).to(condition.dtype).view(-1, 1, 1, 1)
        return condition, keep

    def predict(self, net, zt, t, condition):
        cond, keep = condition
        if self.controlled:
            return net(zt, t, cond, keep)
        return net(torch.cat([zt, cond * keep], 1), t, encoder_hidden_states=None).sample


def train_latent_denoiser(
    net: torch.nn.Module,
    latents: Latents,
    conditioning: Conditioning,
    loop: LoopConfig,
    ckpt_dir: Path,
    schedule: dict | None = None,
    resume: bool = False,
    desc: str = "stage 2 (diffusion)",
    ssim_weight: float = 0.0,
) -> torch.nn.Module:
    """Train ``net`` to denoise ``latents`` under ``conditioning`` with the schedule ``schedule`` (its prediction
    type: epsilon or v; :func:`denoising_loss`, ``ssim_weight`` its SSIM term): the one stage-2 step of every
    method."""
    sched = training_scheduler(**(schedule or {}))
    T = sched.config.num_train_timesteps
    mean, std = latents.mean, latents.std
    shape = tuple(mean.shape[1:])
    scale4 = latents.scale.view(1, -1, 1, 1)
    rows = None if latents.rows is None else torch.as_tensor(latents.rows, dtype=torch.long)
    conditioning.bind(net)

    def step(model, items: torch.Tensor, rnd: StepRandom):
        idx = items.cpu() if rows is None else rows[items.cpu()]
        dev = rnd.device
        z = (mean[idx].to(dev) + std[idx].to(dev) * rnd.normal(*shape)) * scale4.to(dev)
        target, condition = conditioning.split(z)
        if conditioning.dropout_first:
            condition = conditioning.dropout(rnd, idx, condition)
        noise = rnd.normal(*target.shape[1:])
        t = rnd.integers(T)
        zt = sched.add_noise(target, noise, t.cpu()).to(dev)
        if not conditioning.dropout_first:
            condition = conditioning.dropout(rnd, idx, condition)
        pred = conditioning.predict(model, zt, t, condition)
        return denoising_loss(sched, pred, noise, target, zt, t, ssim_weight)

    return train_loop(net, step, len(latents), loop, ckpt_dir, resume, desc=desc)
