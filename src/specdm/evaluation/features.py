"""Feature encoders for the learned distribution metrics (Frechet distance, KID), and their storage.

:class:`PatchEncoder` is a compact 2-D CNN with global average pooling; its
features feed :func:`specdm.metrics.frechet_distance` and :func:`specdm.metrics.kid`.
Train it on the REAL TRAINING split only and store it with the results
(:func:`save_encoder`: ``config.json`` with the training seed and steps, plus
``model.safetensors``), so that numbers stay comparable across runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from specdm.errors import CheckpointError, DataError
from specdm.evaluation.fit import fit, random_batches, seeded

__all__ = ["PatchEncoder", "extract_features", "load_encoder", "mask_one_hot", "save_encoder", "train_encoder"]


class PatchEncoder(nn.Module):
    """Compact CNN mapping patches (N, in_channels, H, W) to features (N, feature_dim).

    Three 3x3 convolutions (the last two with stride 2), ReLU, global average pooling.
    """

    def __init__(self, in_channels: int, feature_dim: int = 64):
        super().__init__()
        self.config = {"in_channels": in_channels, "feature_dim": feature_dim}
        self.train_info: dict = {}
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, feature_dim, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, feature_dim)."""
        return self.body(x)

    features = forward


_MODELS = {"PatchEncoder": PatchEncoder}


def mask_one_hot(masks, num_classes: int) -> np.ndarray:
    """Class masks (N, H, W) of values 0..K-1 as float32 one-hot (N, K, H, W), the mask encoder's input."""
    m = np.asarray(masks, dtype=np.int64)
    if m.size and (m.min() < 0 or m.max() >= num_classes):
        raise DataError(f"mask values {m.min()}..{m.max()} outside the classes 0..{num_classes - 1}")
    return np.moveaxis(np.eye(num_classes, dtype=np.float32)[m], -1, 1)


def _quadrant_histograms(masks: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class fractions in each quadrant of masks (N, H, W): (N, 4, K)."""
    h, w = masks.shape[1] // 2, masks.shape[2] // 2
    quads = [masks[:, :h, :w], masks[:, :h, w:], masks[:, h:, :w], masks[:, h:, w:]]
    hists = [F.one_hot(q.reshape(len(q), -1), num_classes).float().mean(1) for q in quads]
    return torch.stack(hists, 1)


def train_encoder(
    patches, targets, steps: int = 1000, seed: int = 0, num_classes: int | None = None,
    feature_dim: int = 64, batch_size: int = 64, lr: float = 1e-3,
) -> PatchEncoder:  # fmt: skip
    """Train a :class:`PatchEncoder` on a supervised proxy task, from REAL TRAINING patches only.

    ``patches`` (N, C, H, W) float32: images, or one-hot masks (:func:`mask_one_hot`)
    for a mask encoder. ``targets`` picks the proxy task (a temporary linear head
    on the features, dropped afterwards):

    - labels (N,) in 0..K-1: classify the patch (cross-entropy);
    - masks (N, H, W) in 0..K-1: predict the class fractions in each of the
      patch's four quadrants (cross-entropy against the soft histograms), which
      asks the features for class content and coarse layout.

    Adam (:func:`~specdm.evaluation.fit.fit`), ``steps`` random batches drawn with
    replacement; ``seed`` fixes the initialization and the batches (global torch
    random state is left untouched).
    """
    x = torch.as_tensor(np.asarray(patches, dtype=np.float32))
    t = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    if x.ndim != 4 or t.ndim not in (1, 3) or len(t) != len(x):
        raise DataError(f"need patches (N, C, H, W) and targets (N,) or (N, H, W), got {tuple(x.shape)} and {tuple(t.shape)}")
    k = int(t.max()) + 1 if num_classes is None else num_classes
    with seeded(seed):
        model = PatchEncoder(x.shape[1], feature_dim)
        gen = torch.Generator().manual_seed(seed)
        if t.ndim == 1:
            task = "patch classification"
            head = nn.Linear(feature_dim, k)

            def loss_fn(idx):
                return F.cross_entropy(head(model.features(x[idx])), t[idx])
        else:
            task = "quadrant class histograms"
            head = nn.Linear(feature_dim, 4 * k)
            hist = _quadrant_histograms(t, k)

            def loss_fn(idx):
                out = head(model.features(x[idx]))
                return -(hist[idx] * F.log_softmax(out.view(-1, 4, k), -1)).sum(-1).mean()

        params = {id(p): p for p in [*model.parameters(), *head.parameters()]}
        loss = fit(model, random_batches(len(x), batch_size, steps, gen), loss_fn, steps, lr, params=params.values())
    model.train_info = {
        "task": task, "num_classes": k, "steps": steps, "seed": seed, "batch_size": batch_size,
        "lr": lr, "n_train": len(x), "final_loss": loss,
    }  # fmt: skip
    return model


@torch.no_grad()
def extract_features(model: nn.Module, x, batch_size: int = 1024) -> np.ndarray:
    """``model.features`` of ``x`` (N, ...) in eval mode and batches, as float64 (N, D)."""
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    was_training = model.training
    model.eval()
    out = [model.features(x[s : s + batch_size].to(device)).double().cpu() for s in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0))


def save_encoder(model: nn.Module, directory) -> Path:
    """Write ``config.json`` (class, constructor arguments, training info incl. seed and steps)
    and ``model.safetensors`` into ``directory``; returns the directory."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    config = {"class": type(model).__name__, "config": model.config, "training": model.train_info}
    (d / "config.json").write_text(json.dumps(config, indent=2))
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(d / "model.safetensors"))
    return d


def load_encoder(directory) -> nn.Module:
    """Rebuild a model saved by :func:`save_encoder` (CPU, eval mode)."""
    d = Path(directory)
    try:
        config = json.loads((d / "config.json").read_text())
        model = _MODELS[config["class"]](**config["config"])
        model.load_state_dict(load_file(str(d / "model.safetensors")))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"cannot load feature encoder: {e}", d) from e
    model.train_info = config.get("training", {})
    return model.eval()
