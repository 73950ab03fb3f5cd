"""Training losses of stage 1 (torch, differentiable)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def spectral_angle(a: torch.Tensor, b: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Per-pixel spectral angle (radians) between ``a`` and ``b`` along ``dim``."""
    cos = (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim)).clamp_min(eps)
    return torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q || N(0, I)) summed over latent elements, averaged over the batch."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1).mean()


def image_loss(recon: torch.Tensor, target: torch.Tensor, sad_weight: float) -> tuple[torch.Tensor, dict]:
    """L1 + ``sad_weight`` * mean spectral angle (SpecDM's image-branch loss); channels on dim 1."""
    l1 = F.l1_loss(recon, target)
    sad = spectral_angle(recon, target).mean()
    return l1 + sad_weight * sad, {"l1": l1.item(), "sad": sad.item()}


def mask_loss(
    logits: torch.Tensor, mask: torch.Tensor, class_weights: torch.Tensor | None, ignore_index: int | None
) -> tuple[torch.Tensor, dict]:
    """Cross-entropy of the mask branch; ``ignore_index`` pixels do not count when given."""
    ce = F.cross_entropy(
        logits, mask, weight=class_weights, ignore_index=-100 if ignore_index is None else ignore_index
    )
    acc = (logits.argmax(1) == mask).float().mean()
    return ce, {"ce": ce.item(), "mask_acc": acc.item()}
