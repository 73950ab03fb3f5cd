"""Training a downstream model on real windows plus extra data: does synthetic data help?

Library side of ``specdm benchmark`` (see the shared benchmark PROTOCOL). Arrays
are numpy, channel-first float32 in [0, 1]:

- segmentation: ``x (N, C, H, W)``, ``y (N, H, W)`` int class values;
- change detection: ``x (N, 2, C, H, W)`` (the two dates on axis 1; a tuple
  of two ``(N, C, H, W)`` arrays is stacked on that axis), ``y (N, H, W)``
  with 1 = change, 0 = no change;
- pixel classification: ``x (N, C)`` spectra, ``y (N,)`` (or patches, as for
  segmentation).

Pairing (PROTOCOL "compare arms paired"): seed ``k`` fixes the network
initialization and the stream of real batch indices, whatever synthetic data
is added (:func:`~specdm.evaluation.fit.batch_indices`), and every arm takes
the same number of steps of the same size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from specdm.augment.classical import AUGMENTATIONS, TORCH_RECIPES, FastNoise
from specdm.errors import ConfigError, DataError
from specdm.evaluation.classification import PIXELS_PER_WINDOW, labelled_spectra
from specdm.evaluation.fit import batch_indices, check_lr_schedule, fit, seeded
from specdm.evaluation.tasks import BF16_HELPS, build_model

__all__ = ["train_downstream"]


def _as_set(x: np.ndarray, y: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Checks one ``(x, y)`` pair; spectra ``(N, C)`` become ``(N, C, 1, 1)`` patches."""
    if x.ndim == 2 and y.ndim == 1:
        x, y = x[:, :, None, None], y[:, None, None]
    if x.ndim not in (4, 5) or y.ndim != 3 or x.shape[0] != y.shape[0] or x.shape[-2:] != y.shape[-2:]:
        raise DataError(
            f"training set {i}: x {tuple(x.shape)} and y {tuple(y.shape)} must be (N, C), (N,) or "
            "(N, C, H, W) / (N, 2, C, H, W) and (N, H, W)"
        )
    return x, y


def _gather(sets: Sequence[tuple[np.ndarray, np.ndarray]], offsets: np.ndarray, idx: np.ndarray):
    """Samples ``idx`` of the concatenation of ``sets`` (without concatenating them), as float32 and int64."""
    which = np.searchsorted(offsets, idx, side="right") - 1
    x = np.empty((len(idx), *sets[0][0].shape[1:]), dtype=np.float32)
    y = np.empty((len(idx), *sets[0][1].shape[1:]), dtype=np.int64)
    for s in np.unique(which):
        here = which == s
        x[here], y[here] = sets[s][0][idx[here] - offsets[s]], sets[s][1][idx[here] - offsets[s]]
    return x, y


def _balanced_weights(y: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """``n / (K * n_k)`` from the labels ``y``; 1 for classes absent from ``y``."""
    labels = y[y != ignore_index] if ignore_index is not None else y.ravel()
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 1.0)


def _class_weights(class_weights, y: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray | None:
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ConfigError(f"unknown class_weights {class_weights!r}", hint="use 'balanced' or one weight per class")
        return _balanced_weights(np.asarray(y), num_classes, ignore_index)
    if class_weights is None:
        return None
    weight = np.asarray(class_weights, dtype=np.float64)
    if weight.shape != (num_classes,):
        raise ConfigError(f"class_weights needs {num_classes} values, got {weight.shape}")
    return weight


def _loss(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None, ignore_index: int | None) -> torch.Tensor:
    """Cross-entropy averaged over labelled pixels (weighted by class); 0 if none is labelled."""
    ignore = -100 if ignore_index is None else ignore_index
    total = F.cross_entropy(logits, y, weight=weight, ignore_index=ignore, reduction="sum")
    valid = y[y != ignore]
    norm = weight[valid].sum() if weight is not None else torch.tensor(float(valid.numel()))
    return total / norm.clamp_min(1e-12)


def train_downstream(
    model_name: str,
    train_sets: Sequence[tuple[np.ndarray, np.ndarray]],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    ignore_index: int | None = None,
    mix: float | None = None,
    augment: str | None = None,
    real_order_seed: int | None = None,
    *,
    num_classes: int | None = None,
    class_weights: str | Sequence[float] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    on_batch: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    lr_schedule: str = "cosine",
    init: nn.Module | None = None,
    speed: str = "plain",
) -> nn.Module:
    """Trains model ``model_name`` with Adam for ``steps`` batches of ``batch_size`` (:func:`~.fit.fit`).

    ``init``: a model of the same kind whose weights the training starts from (fine-tuning; a fresh
    optimizer and schedule), instead of a seeded initialization. ``speed``: ``"plain"`` or ``"fast"``
    (:func:`~.fit.fit`; bf16 only for the models of :data:`~.tasks.BF16_HELPS`).

    ``lr_schedule``: ``"cosine"`` (``lr`` annealed to 0 over the steps, torch's
    CosineAnnealingLR) or ``"constant"``.

    ``train_sets[0]`` is the real training set, any further sets are pooled as
    synthetic data, each batch taking a share ``mix`` of them (see
    :func:`~.fit.batch_indices`; ``mix`` is ignored without synthetic sets). ``seed``
    fixes the initialization, the synthetic stream and the augmentation draws;
    ``real_order_seed`` (default ``seed``) the real batch order.
    ``augment``: ``None`` or a recipe of :data:`specdm.augment.classical.RECIPES` (``"classical"``:
    :func:`specdm.augment.classical.classical_augment`; ``"flips"``, ``"spectral"``, ``"copypaste"``,
    ``"all"``), called as ``recipe(x, y, rng, ignore_index=ignore_index)`` on every batch.
    ``"pixel"`` trains on spectra: up to :data:`~.classification.PIXELS_PER_WINDOW` labelled
    pixels of each window of a batch (:func:`~.classification.labelled_spectra`, seeded by ``seed``).
    Loss: cross-entropy over pixels whose label is not ``ignore_index``;
    ``class_weights="balanced"`` weights class ``k`` by ``n / (K * n_k)``
    counted on the real set only (so all arms share the weights; meant for
    change detection), or pass ``K`` weights. ``num_classes`` defaults to
    1 + the largest label in any set; pass it when a class may be absent.
    ``on_batch(step, real_idx, synthetic_idx)`` is called before every step.
    Returns the model in eval mode; the caller's torch RNG state is untouched.
    """
    if augment is not None and augment not in AUGMENTATIONS:
        names = ", ".join(map(repr, AUGMENTATIONS))
        raise ConfigError(f"unknown augmentation {augment!r}", hint=f"use None or {names}")
    check_lr_schedule(lr_schedule)
    if not train_sets:
        raise DataError("no training set given")
    sets = [_as_set(np.stack(x, axis=1) if isinstance(x, tuple) else x, y, i) for i, (x, y) in enumerate(train_sets)]
    shapes = {(x.shape[1:], y.shape[1:]) for x, y in sets}
    if len(shapes) > 1:
        raise DataError(f"training sets differ in sample shape: {sorted(shapes)}")
    x0 = sets[0][0]
    if (model_name == "siamdiff") != (x0.ndim == 5):
        raise DataError(
            f"model {model_name!r} got samples of shape {tuple(x0.shape[1:])}; "
            "siamdiff takes (2, C, H, W), the others (C, H, W)"
        )
    if num_classes is None:
        num_classes = 1 + int(max(y.max() for _, y in sets))
    weight = _class_weights(class_weights, sets[0][1], num_classes, ignore_index)
    weight_t = None if weight is None else torch.as_tensor(weight, dtype=torch.float32, device=device)

    real, synthetic = sets[0], sets[1:]
    offsets = np.cumsum([0] + [len(x) for x, _ in synthetic])
    stream = batch_indices(
        len(real[0]), int(offsets[-1]), steps, batch_size, mix if synthetic else 0.0,
        seed=seed if real_order_seed is None else real_order_seed, synthetic_seed=seed,
    )  # fmt: skip
    transform = AUGMENTATIONS[augment] if augment else None
    aug_rng, pixel_rng = np.random.default_rng([seed, 2]), np.random.default_rng([seed, 3])
    fast = speed == "fast"
    if fast:  # the augmentations' noise from torch, only where it is added (augment.classical.FastNoise)
        aug_rng = FastNoise(aug_rng, int(np.random.SeedSequence([seed, 4]).generate_state(1)[0]))

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step, (real_idx, syn_idx) in enumerate(stream):
            if on_batch is not None:
                on_batch(step, real_idx, syn_idx)
            x, y = _gather([real], np.zeros(1, dtype=np.int64), real_idx)
            if len(syn_idx):
                xs, ys = _gather(synthetic, offsets, syn_idx)
                x, y = np.concatenate([x, xs]), np.concatenate([y, ys])
            if model_name == "pixel" and fast and x.shape[-2:] != (1, 1):  # fast: augment the drawn spectra only
                x, y = labelled_spectra(x, y, ignore_index, PIXELS_PER_WINDOW, pixel_rng)
            if transform is not None and fast and augment in TORCH_RECIPES and x.shape[-2:] != (1, 1):
                xt, y = TORCH_RECIPES[augment](torch.from_numpy(x), y, aug_rng)
                yield xt.to(device), torch.from_numpy(y).to(device)
                continue
            if transform is not None:
                x, y = transform(x, y, aug_rng, ignore_index=ignore_index)
            if model_name == "pixel" and x.shape[-2:] != (1, 1):
                x, y = labelled_spectra(x, y, ignore_index, PIXELS_PER_WINDOW, pixel_rng)
            yield torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    with seeded(seed):
        model = build_model(model_name, x0.shape[-3], num_classes).to(device)
        if init is not None:
            model.load_state_dict(init.state_dict())
        fit(
            model, batches(), lambda b: _loss(model(b[0]), b[1], weight_t, ignore_index), steps, lr,
            lr_schedule=lr_schedule, progress=progress, desc=f"{model_name} seed {seed}", speed=speed,
            mixed_precision="auto" if BF16_HELPS[model_name] else "no",
        )  # fmt: skip
    return model
