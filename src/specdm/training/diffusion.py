"""Stage 2: train the denoiser on the channel-concatenated latents (z_x[, z_x2], z_y)."""

from __future__ import annotations

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


def train_denoiser(
    unet: torch.nn.Module,
    mean: torch.Tensor,
    std: torch.Tensor,
    scale: torch.Tensor,
    loop: LoopConfig,
    ckpt_dir: Path,
    schedule: dict | None = None,
    resume: bool = False,
) -> torch.nn.Module:
    """Epsilon-prediction DDPM training on scaled latents sampled from the stored posteriors."""
    sched = training_scheduler(**(schedule or {}))
    T = sched.config.num_train_timesteps
    shape = tuple(mean.shape[1:])
    scale4 = scale.view(1, -1, 1, 1)

    def step(net, items: torch.Tensor, rnd: StepRandom):
        idx = items.cpu()
        dev = rnd.device
        z = (mean[idx].to(dev) + std[idx].to(dev) * rnd.normal(*shape)) * scale4.to(dev)
        noise = rnd.normal(*shape)
        t = rnd.integers(T)
        zt = sched.add_noise(z, noise, t.cpu()).to(dev)
        pred = net(zt, t, encoder_hidden_states=None).sample
        loss = F.mse_loss(pred.float(), noise)
        return loss, {}

    return train_loop(unet, step, mean.shape[0], loop, ckpt_dir, resume, desc="stage 2 (diffusion)")


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


def denoising_loss(sched, pred: torch.Tensor, noise: torch.Tensor, x0: torch.Tensor, zt: torch.Tensor,
                   t: torch.Tensor, ssim_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """MSE to the scheduler's target (the noise, or the velocity under v prediction), plus
    ``ssim_weight * (1 - SSIM(x0_hat, x0))`` (:func:`ssim_term`) with ``x0_hat`` from the prediction
    (:func:`predicted_x0`) when the weight is positive."""
    v = sched.config.prediction_type == "v_prediction"
    target = sched.get_velocity(x0, noise, t.to(x0.device)) if v else noise
    loss = F.mse_loss(pred.float(), target)
    if not ssim_weight:
        return loss, {}
    term = ssim_term(predicted_x0(sched, zt, pred.float(), t), x0)
    return loss + ssim_weight * term, {"mse": loss.item(), "1-ssim": term.item()}


def train_conditional_denoiser(
    unet: torch.nn.Module,
    mean: torch.Tensor,
    std: torch.Tensor,
    scale: torch.Tensor,
    target_channels: int,
    loop: LoopConfig,
    ckpt_dir: Path,
    p_uncond: float = 0.1,
    schedule: dict | None = None,
    resume: bool = False,
    desc: str = "stage 2 (layout-conditioned)",
    ssim_weight: float = 0.0,
) -> torch.nn.Module:
    """Layout-conditioned training: the first ``target_channels`` of ``z`` are denoised, the rest of ``z``
    (the mask's latent, a fresh posterior sample, clean) is the condition, dropped in a share ``p_uncond``
    of the items, so that one network predicts both the conditional and the unconditional noise
    (classifier-free guidance at sampling). A U-Net gets the condition concatenated to its noisy input
    (zeros when dropped); a :class:`~specdm.models.denoisers.LatentControlledDenoiser` through its ControlNet
    (no residuals when dropped). The loss is :func:`denoising_loss` (``ssim_weight``: its SSIM term)."""
    from specdm.models.denoisers import LatentControlledDenoiser

    sched = training_scheduler(**(schedule or {}))
    T = sched.config.num_train_timesteps
    shape = tuple(mean.shape[1:])
    scale4 = scale.view(1, -1, 1, 1)
    keep_permille = round(1000 * (1.0 - p_uncond))
    controlled = isinstance(unet, LatentControlledDenoiser)  # decided before the engine wraps the module

    def step(net, items: torch.Tensor, rnd: StepRandom):
        idx = items.cpu()
        dev = rnd.device
        z = (mean[idx].to(dev) + std[idx].to(dev) * rnd.normal(*shape)) * scale4.to(dev)
        target, cond = z[:, :target_channels], z[:, target_channels:]
        keep = (rnd.integers(1000) < keep_permille).to(cond.dtype).view(-1, 1, 1, 1)
        noise = rnd.normal(target_channels, *shape[1:])
        t = rnd.integers(T)
        zt = sched.add_noise(target, noise, t.cpu()).to(dev)
        if controlled:
            pred = net(zt, t, cond, keep)
        else:
            pred = net(torch.cat([zt, cond * keep], 1), t, encoder_hidden_states=None).sample
        return denoising_loss(sched, pred, noise, target, zt, t, ssim_weight)

    return train_loop(unet, step, mean.shape[0], loop, ckpt_dir, resume, desc=desc)
