"""The one training loop of the evaluation models, their batch streams and their tiled inference.

:func:`fit` trains the downstream task models
(:func:`specdm.evaluation.downstream.train_downstream`) and the feature encoders
(:func:`specdm.evaluation.features.train_encoder`); :func:`seeded` fixes their
initialization without touching the caller's random state.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from specdm.data.windows import positions
from specdm.errors import ConfigError, DataError
from specdm.speed import resolve_speed, to_channels_last

__all__ = ["LR_SCHEDULES", "batch_indices", "check_lr_schedule", "fit", "predict_proba_tiled", "predict_tiled",
           "random_batches", "seeded"]

LR_SCHEDULES = ("cosine", "constant")


@contextmanager
def seeded(seed: int):
    """Context in which torch's CPU random state is seeded, restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def check_lr_schedule(lr_schedule: str) -> None:
    """:class:`ConfigError` unless ``lr_schedule`` is one of :data:`LR_SCHEDULES`."""
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"unknown lr schedule {lr_schedule!r}", hint=f"use one of {', '.join(LR_SCHEDULES)}")


def fit(
    model: nn.Module,
    batches: Iterable,
    loss_fn: Callable[[object], torch.Tensor],
    steps: int,
    lr: float,
    params: Iterable[nn.Parameter] | None = None,
    lr_schedule: str = "constant",
    progress: bool = False,
    desc: str | None = None,
    speed: str = "plain",
    mixed_precision: str = "auto",
) -> float:
    """Adam from ``lr`` on ``loss_fn(batch)`` for each of the ``steps`` items of ``batches``; returns the last loss.

    ``params`` default to the model's (pass them to train a temporary head too);
    ``lr_schedule``: ``"constant"`` or ``"cosine"`` (``lr`` annealed to 0 over
    the steps, torch's CosineAnnealingLR). ``batches`` is consumed lazily, one
    item per step, so the random draws of a batch happen right before its step.
    ``speed``: ``"plain"`` (float32, torch's default Adam: bit for bit the earlier path) or ``"fast"``
    (bf16 autocast and channels-last where the hardware runs bf16 natively, fused Adam;
    :mod:`specdm.speed`); ``mixed_precision`` "no" keeps float32 in fast mode. The model trains in train mode
    and is left in eval mode, in its own layout.
    """
    check_lr_schedule(lr_schedule)
    device = next(model.parameters(), torch.empty(0)).device
    spd = resolve_speed(speed, mixed_precision, False, device)
    undo_layout = to_channels_last(model) if spd.channels_last else None
    model.train()
    params = model.parameters() if params is None else params
    opt = torch.optim.Adam(params, lr=lr, fused=True) if spd.fused else torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if lr_schedule == "cosine" else None
    loss = torch.tensor(float("nan"))
    bar = tqdm(batches, total=steps, desc=desc, disable=not progress)
    for step, batch in enumerate(bar):
        with spd.autocast(device):
            loss = loss_fn(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if progress and step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    if undo_layout is not None:
        undo_layout()
    model.eval()
    return float(loss.item())


# --------------------------------------------------------------------------- batches


def _epoch_stream(n: int, rng: np.random.Generator) -> Iterator[int]:
    """Indices ``0..n-1`` in a fresh random order every epoch, forever."""
    while True:
        yield from rng.permutation(n)


def batch_indices(
    num_real: int,
    num_synthetic: int,
    steps: int,
    batch_size: int,
    mix: float | None = None,
    seed: int = 0,
    synthetic_seed: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields ``(real_idx, synthetic_idx)`` for each of ``steps`` batches.

    ``mix`` is the share of each batch taken from the synthetic pool
    (``round(mix * batch_size)`` samples); ``None`` means the pool's share of
    all samples, as if the sets were concatenated. The real stream depends
    only on ``seed``, ``num_real`` and ``batch_size``; the synthetic stream
    uses ``synthetic_seed`` (default ``seed``) through a separate generator.
    Pairing (PROTOCOL "compare arms paired"): every step draws ``batch_size``
    real indices and an arm with synthetic data keeps the first
    ``batch_size - n_syn`` of them, so the real samples it sees at step ``t``
    are a prefix of the real-only arm's batch at step ``t``.
    """
    if mix is None:
        mix = num_synthetic / (num_real + num_synthetic)
    if not 0.0 <= mix <= 1.0 or (mix > 0 and num_synthetic == 0):
        raise ConfigError(f"mix={mix} needs 0 <= mix <= 1 and synthetic samples when > 0")
    if num_real == 0:
        raise DataError("the real training set is empty")
    n_syn = round(mix * batch_size)
    real = _epoch_stream(num_real, np.random.default_rng(seed))
    synthetic_seed = seed if synthetic_seed is None else synthetic_seed
    synthetic = _epoch_stream(num_synthetic, np.random.default_rng([synthetic_seed, 1]))
    for _ in range(steps):
        real_idx = np.fromiter(itertools.islice(real, batch_size), dtype=np.int64)
        yield real_idx[: batch_size - n_syn], np.fromiter(itertools.islice(synthetic, n_syn), dtype=np.int64)


def random_batches(n: int, batch_size: int, steps: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """``steps`` batches of ``min(batch_size, n)`` indices drawn with replacement from ``0..n-1``."""
    for _ in range(steps):
        yield torch.randint(n, (min(batch_size, n),), generator=generator)


# --------------------------------------------------------------------------- inference

SceneImage = np.ndarray | tuple[np.ndarray, np.ndarray]  # (C, H, W), or a date pair: (2, C, H, W) or two (C, H, W)


@torch.no_grad()
def predict_tiled(model: nn.Module, image: SceneImage, tile: int = 32, overlap: int = 8,
                  batch_size: int = 64) -> np.ndarray:
    """Class map ``(H, W)`` of a whole scene from overlapping ``tile`` x ``tile`` windows.

    ``image`` is ``(C, H, W)``, or a pair as ``(2, C, H, W)`` or a tuple of two
    ``(C, H, W)`` for change detection. Windows advance by ``tile - overlap``
    and the last one in each axis is aligned to the scene's edge, so every
    pixel is covered; softmax probabilities of overlapping windows are
    averaged (:func:`predict_proba_tiled`) and the most probable class taken. Scenes smaller than a tile are
    edge-padded. The model runs in eval mode on its own device and is left in the mode it was in.
    """
    return predict_proba_tiled(model, image, tile, overlap, batch_size).argmax(0).astype(np.int64)


@torch.no_grad()
def predict_proba_tiled(model: nn.Module, image: SceneImage, tile: int = 32, overlap: int = 8,
                        batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(K, H, W)`` (float32) of a whole scene: the softmax of every overlapping
    ``tile`` x ``tile`` window, averaged where windows overlap; windows as in :func:`predict_tiled`."""
    if not 0 <= overlap < tile:
        raise ValueError(f"need 0 <= overlap < tile, got overlap={overlap}, tile={tile}")
    image = np.stack(image) if isinstance(image, (tuple, list)) else np.asarray(image)
    h, w = image.shape[-2:]
    ph, pw = max(tile - h, 0), max(tile - w, 0)
    if ph or pw:
        image = np.pad(image, [(0, 0)] * (image.ndim - 2) + [(0, ph), (0, pw)], mode="edge")
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    stride = tile - overlap
    windows = [(r, c) for r in positions(h + ph, tile, stride) for c in positions(w + pw, tile, stride)]
    probs = count = None
    for i in range(0, len(windows), batch_size):
        chunk = windows[i : i + batch_size]
        batch = np.stack([image[..., r : r + tile, c : c + tile] for r, c in chunk]).astype(np.float32)
        out = torch.softmax(model(torch.from_numpy(batch).to(device)).float(), dim=1).cpu().numpy()
        if probs is None:
            probs = np.zeros((out.shape[1], h + ph, w + pw), dtype=np.float32)
            count = np.zeros((h + ph, w + pw), dtype=np.float32)
        for (r, c), p in zip(chunk, out):
            probs[:, r : r + tile, c : c + tile] += p
            count[r : r + tile, c : c + tile] += 1
    model.train(was_training)
    return (probs / count)[:, :h, :w]
