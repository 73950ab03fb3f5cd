"""Stage 1: train the two-stream (or single-stream) spectral autoencoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from specdm.data.datamodule import PatchSet
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.losses import image_loss, kl_divergence, mask_loss
from specdm.training.engine import LoopConfig, StepRandom, train_loop


def class_weights(patches: PatchSet, num_classes: int, ignore_index: int | None) -> torch.Tensor:
    """Inverse square-root frequency weights of the training windows' classes, mean 1."""
    counts = np.zeros(num_classes)
    for w in patches.windows:
        m = patches.masks[w.scene][w.r : w.r + patches.size, w.c : w.c + patches.size]
        counts += np.bincount(m.ravel(), minlength=num_classes)
    if ignore_index is not None:
        counts[ignore_index] = 0
    present = counts > 0
    wts = np.zeros(num_classes)
    wts[present] = 1.0 / np.sqrt(counts[present])
    wts[present] /= wts[present].mean()
    return torch.tensor(wts, dtype=torch.float32)


def train_autoencoder(
    patches: PatchSet,
    model: SpectralAutoencoder,
    loop: LoopConfig,
    ckpt_dir: Path,
    sad_weight: float = 0.1,
    kl_weight: float = 1e-6,
    ignore_index: int | None = None,
    balance_classes: bool = False,
    resume: bool = False,
) -> SpectralAutoencoder:
    """Image branch: L1 + ``sad_weight`` * SAD; mask branch: cross-entropy; both + ``kl_weight`` * KL.

    ``ignore_index`` pixels are left out of the mask loss (the user's choice for
    "unlabelled"); ``balance_classes`` weights the cross-entropy by inverse
    square-root class frequency.
    """
    k = model.config["num_classes"]
    weights = class_weights(patches, k, ignore_index) if balance_classes and k else None
    f = model.downsampling
    zshape = (model.latent_channels, patches.size // f, patches.size // f)

    def step(net, items: torch.Tensor, rnd: StepRandom):
        codes = rnd.integers(8)
        x, y = patches.batch(items.tolist(), codes.tolist())
        x, y = x.to(rnd.device), y.to(rnd.device)
        rec, logits, mean, logvar = net(x, y, rnd.normal(*zshape))
        li, logs = image_loss(rec.float().flatten(0, 1), x.flatten(0, 1), sad_weight)  # float32 under bf16 autocast
        lm, logs_m = 0.0, {}
        if logits is not None:  # image-only autoencoders have no mask branch
            lm, logs_m = mask_loss(logits.float(), y, None if weights is None else weights.to(x.device), ignore_index)
        kl = kl_divergence(mean.float(), logvar.float())
        return li + lm + kl_weight * kl, {**logs, **logs_m, "kl": kl.item()}

    return train_loop(model, step, len(patches), loop, ckpt_dir, resume, desc="stage 1 (autoencoder)")


def kl_reconstruction(model: SpectralAutoencoder, patches: PatchSet):
    """The reconstruction function of a KL autoencoder (posterior mean -> decoders) for
    :func:`reconstruction_report`."""
    model.eval()

    def reconstruct(indices):
        x, y = patches.batch(indices)
        mean, _ = model.encode(x, y)
        rec, logits = model.decode(mean)
        agree = None if logits is None else (logits.argmax(1) == y).float().numpy()
        return x.numpy(), rec.clamp(0, 1).numpy(), agree

    return reconstruct


@torch.no_grad()
def reconstruction_report(reconstruct, count: int, max_windows: int = 64, batch_size: int = 16) -> dict:
    """How well stage 1 reconstructs ``max_windows`` of ``count`` windows, evenly spaced over them (neighbouring
    windows overlap; spacing them out covers the whole split), in normalized units: the stage-1 report of every
    method. ``reconstruct(indices)`` gives the windows ``(n, T, C, P, P)``, their reconstructions clipped to
    [0, 1] and, for autoencoders with a mask decoder, whether each mask pixel's argmax is right (else None)
    (:func:`kl_reconstruction`, :func:`specdm.training.hyperldm.vq_reconstruction`).

    ``l1``; ``psnr``/``ssim`` per band on [0, 1] averaged (PROTOCOL.md); ``sam_rad``; ``rmse``; ``mask_agreement``;
    ``edges``: :func:`~specdm.metrics.artifacts.edge_error_ratios` of the absolute error (ring / corners over
    interior; 1.0 = no border artefact).
    """
    from specdm.metrics.artifacts import edge_error_ratios
    from specdm.metrics.reference import psnr, rmse, ssim
    from specdm.metrics.spectral import sad_stats

    n = min(max_windows, count)
    chosen = np.unique(np.linspace(0, count - 1, n).round().astype(int)).tolist()
    xs, recs, agree = [], [], []
    for s in range(0, len(chosen), batch_size):
        x, rec, ok = reconstruct(chosen[s : s + batch_size])
        xs.append(x)
        recs.append(rec)
        if ok is not None:
            agree.append(ok)
    x, rec = np.concatenate(xs), np.concatenate(recs)  # (n, T, C, P, P)
    flat = lambda a: np.moveaxis(a.reshape(-1, *a.shape[2:]), 1, -1)  # noqa: E731  (n*T, P, P, C)
    p, r = flat(rec), flat(x)
    err = np.abs(rec - x).mean(axis=(1, 2))  # (n, P, P)
    return {
        "windows": len(chosen),
        "l1": float(np.abs(rec - x).mean()),
        "psnr": psnr(p, r),
        "ssim": ssim(p, r) if min(p.shape[1:3]) >= 11 else None,  # SSIM's 11x11 window must fit
        "sam_rad": sad_stats(p, r)["mean_rad"],
        "rmse": rmse(p, r),
        "mask_agreement": float(np.concatenate(agree).mean()) if agree else None,
        "edges": edge_error_ratios(err),
    }
