"""Downstream tasks: does synthetic data help a model trained on real data?

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
is added. Every step draws ``batch_size`` real indices from a generator of its
own; an arm with synthetic data keeps the first ``batch_size - n_syn`` of
them and fills the rest from a separate synthetic generator. So the real
samples an arm sees at step ``t`` are a prefix of the real-only arm's batch at
step ``t``, and every arm takes the same number of steps of the same size.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn
from tqdm.auto import tqdm

from specdm.errors import ConfigError, DataError
from specdm.evaluation.tasks import build_model

__all__ = [
    "batch_indices",
    "build_model",
    "change_scores",
    "classical_augment",
    "classification_scores",
    "confusion_matrix",
    "paired_summary",
    "predict_tiled",
    "segmentation_scores",
    "train_downstream",
]

NOISE_STD = 0.01
MIXUP_ALPHA = 0.4
LR_SCHEDULES = ("cosine", "constant")
PIXELS_PER_WINDOW = 64  # spectra per window and step that train the pixel classifier


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


# --------------------------------------------------------------------------- training


def classical_augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Classical augmentation of one batch ``x (B, ..., H, W)``, ``y (B, H, W)``.

    Per sample: horizontal and vertical flips (p = 0.5 each) and a rotation by
    a random multiple of 90 degrees (of 180 for non-square patches), applied
    to image, mask and both dates alike; then mixup with a random partner
    from the batch (p = 0.5): ``lam ~ Beta(0.4, 0.4)`` folded to ``lam >= 0.5``,
    image ``lam * x_i + (1 - lam) * x_j``, labels of the dominant sample ``i``
    kept; then Gaussian noise of std 0.01 (p = 0.5; drawn per pixel, band and
    date). The same number of random draws is made for every batch of a given
    shape, so paired arms share them.
    """
    b = len(x)
    flips = rng.random((b, 2)) < 0.5
    turns = rng.integers(4, size=b) if x.shape[-1] == x.shape[-2] else 2 * rng.integers(2, size=b)
    mixing = rng.random(b) < 0.5
    partner = rng.permutation(b)
    lam = rng.beta(MIXUP_ALPHA, MIXUP_ALPHA, size=b)
    lam = np.where(mixing, np.maximum(lam, 1.0 - lam), 1.0).astype(np.float32)
    noisy = rng.random(b) < 0.5
    noise = rng.standard_normal(x.shape, dtype=np.float32) * NOISE_STD

    def geometric(a: np.ndarray, i: int) -> np.ndarray:
        if flips[i, 0]:
            a = a[..., ::-1]
        if flips[i, 1]:
            a = a[..., ::-1, :]
        return np.rot90(a, turns[i], axes=(-2, -1))

    x = np.stack([geometric(x[i], i) for i in range(b)])
    y = np.stack([geometric(y[i], i) for i in range(b)])
    lam = lam.reshape(b, *[1] * (x.ndim - 1))
    x = lam * x + (1.0 - lam) * x[partner]
    x = x + noise * noisy.reshape(lam.shape)
    return x.astype(np.float32), np.ascontiguousarray(y)


def labelled_spectra(
    x: np.ndarray, y: np.ndarray, ignore_index: int | None, per_window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``per_window * len(x)`` spectra of windows ``x (B, C, H, W)``, drawn without replacement from the
    labelled pixels (all pixels if none is labelled), as ``(n, C, 1, 1)`` and ``(n, 1, 1)``."""
    labels = y.reshape(-1)
    spectra = x.transpose(0, 2, 3, 1).reshape(len(labels), x.shape[1])
    pool = np.flatnonzero(labels != ignore_index) if ignore_index is not None else np.arange(len(labels))
    if not len(pool):
        pool = np.arange(len(labels))
    pick = rng.choice(pool, min(len(pool), per_window * len(x)), replace=False)
    return spectra[pick, :, None, None], labels[pick, None, None]


def _balanced_weights(y: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """``n / (K * n_k)`` from the labels ``y``; 1 for classes absent from ``y``."""
    labels = y[y != ignore_index] if ignore_index is not None else y.ravel()
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 1.0)


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
) -> nn.Module:
    """Trains model ``model_name`` with Adam for ``steps`` batches of ``batch_size``.

    ``lr_schedule``: ``"cosine"`` (``lr`` annealed to 0 over the steps, torch's
    CosineAnnealingLR) or ``"constant"``.

    ``train_sets[0]`` is the real training set, any further sets are pooled as
    synthetic data, each batch taking a share ``mix`` of them (see
    :func:`batch_indices`; ``mix`` is ignored without synthetic sets). ``seed``
    fixes the initialization, the synthetic stream and the augmentation draws;
    ``real_order_seed`` (default ``seed``) the real batch order.
    ``augment``: ``None`` or ``"classical"`` (:func:`classical_augment`).
    ``"pixel"`` trains on spectra: up to :data:`PIXELS_PER_WINDOW` labelled
    pixels of each window of a batch (:func:`labelled_spectra`, seeded by ``seed``).
    Loss: cross-entropy over pixels whose label is not ``ignore_index``;
    ``class_weights="balanced"`` weights class ``k`` by ``n / (K * n_k)``
    counted on the real set only (so all arms share the weights; meant for
    change detection), or pass ``K`` weights. ``num_classes`` defaults to
    1 + the largest label in any set; pass it when a class may be absent.
    ``on_batch(step, real_idx, synthetic_idx)`` is called before every step.
    Returns the model in eval mode; the caller's torch RNG state is untouched.
    """
    if augment not in (None, "classical"):
        raise ConfigError(f"unknown augmentation {augment!r}", hint="use None or 'classical'")
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"unknown lr schedule {lr_schedule!r}", hint=f"use one of {', '.join(LR_SCHEDULES)}")
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
    weight = None
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ConfigError(f"unknown class_weights {class_weights!r}", hint="use 'balanced' or one weight per class")
        weight = _balanced_weights(np.asarray(sets[0][1]), num_classes, ignore_index)
    elif class_weights is not None:
        weight = np.asarray(class_weights, dtype=np.float64)
        if weight.shape != (num_classes,):
            raise ConfigError(f"class_weights needs {num_classes} values, got {weight.shape}")
    weight_t = None if weight is None else torch.as_tensor(weight, dtype=torch.float32, device=device)

    real, synthetic = sets[0], sets[1:]
    offsets = np.cumsum([0] + [len(x) for x, _ in synthetic])
    stream = batch_indices(
        len(real[0]), int(offsets[-1]), steps, batch_size, mix if synthetic else 0.0,
        seed=seed if real_order_seed is None else real_order_seed, synthetic_seed=seed,
    )
    aug_rng, pixel_rng = np.random.default_rng([seed, 2]), np.random.default_rng([seed, 3])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(model_name, x0.shape[-3], num_classes).to(device)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if lr_schedule == "cosine" else None
        bar = tqdm(stream, total=steps, desc=f"{model_name} seed {seed}", disable=not progress)
        for step, (real_idx, syn_idx) in enumerate(bar):
            if on_batch is not None:
                on_batch(step, real_idx, syn_idx)
            x, y = _gather([real], np.zeros(1, dtype=np.int64), real_idx)
            if len(syn_idx):
                xs, ys = _gather(synthetic, offsets, syn_idx)
                x, y = np.concatenate([x, xs]), np.concatenate([y, ys])
            if augment == "classical":
                x, y = classical_augment(x, y, aug_rng)
            if model_name == "pixel" and x.shape[-2:] != (1, 1):
                x, y = labelled_spectra(x, y, ignore_index, PIXELS_PER_WINDOW, pixel_rng)
            loss = _loss(model(torch.from_numpy(x).to(device)), torch.from_numpy(y).to(device), weight_t, ignore_index)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
    return model.eval()


# --------------------------------------------------------------------------- inference


def _starts(n: int, tile: int, stride: int) -> list[int]:
    """Tile origins along an axis of length ``n >= tile``; the last tile ends at ``n``."""
    starts = list(range(0, n - tile + 1, stride))
    return starts if starts[-1] == n - tile else starts + [n - tile]


@torch.no_grad()
def predict_tiled(
    model: nn.Module,
    image: np.ndarray | tuple[np.ndarray, np.ndarray],
    tile: int = 32,
    overlap: int = 8,
    batch_size: int = 64,
) -> np.ndarray:
    """Class map ``(H, W)`` of a whole scene from overlapping ``tile`` x ``tile`` windows.

    ``image`` is ``(C, H, W)``, or a pair as ``(2, C, H, W)`` or a tuple of two
    ``(C, H, W)`` for change detection. Windows advance by ``tile - overlap``
    and the last one in each axis is aligned to the scene's edge, so every
    pixel is covered; softmax probabilities of overlapping windows are
    averaged. Scenes smaller than a tile are edge-padded. The model runs in
    eval mode on its own device and is left in the mode it was in.
    """
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
    windows = [(r, c) for r in _starts(h + ph, tile, tile - overlap) for c in _starts(w + pw, tile, tile - overlap)]
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
    return (probs / count).argmax(0)[:h, :w].astype(np.int64)


# --------------------------------------------------------------------------- scores


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """``(K, K)`` int64 counts, rows = target class, columns = predicted; pixels labelled ``ignore_index`` left out."""
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"pred has {pred.size} pixels, target {target.size}")
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    for name, a in (("pred", pred), ("target", target)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} has values outside 0..{num_classes - 1}")
    flat = target.astype(np.int64) * num_classes + pred
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where ``den == 0``."""
    return np.divide(num, den, out=np.full(np.shape(num), np.nan), where=den > 0)


def _nanmean(a: np.ndarray) -> float:
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else float("nan")


def segmentation_scores(
    pred: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
) -> dict:
    """mIoU and macro F1 of a class map against the labels, with per-class scores.

    IoU = TP / (TP + FP + FN), F1 = 2TP / (2TP + FP + FN), per class, NaN for
    a class neither labelled nor predicted (and for ``ignore_index``). ``miou``
    and ``f1`` average over ``classes`` when given (PROTOCOL: Indian Pines
    classes present in both regions), else over all classes, skipping NaN.
    """
    cm = confusion_matrix(pred, target, num_classes, ignore_index)
    tp = np.diag(cm).astype(np.float64)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    iou, f1 = _ratio(tp, tp + fp + fn), _ratio(2 * tp, 2 * tp + fp + fn)
    if ignore_index is not None:
        iou[ignore_index] = f1[ignore_index] = np.nan
    idx = np.arange(num_classes) if classes is None else np.asarray(classes)
    return {
        "miou": _nanmean(iou[idx]),
        "f1": _nanmean(f1[idx]),
        "per_class_iou": iou,
        "per_class_f1": f1,
        "confusion": cm,
    }


def change_scores(pred: np.ndarray, target: np.ndarray) -> dict:
    """Change-detection scores of binary maps (1 = change): F1, IoU, precision and recall of
    the change class, and mIoU over {no change, change} (PROTOCOL, OSCD)."""
    cm = confusion_matrix(pred, target, 2)
    tp = np.diag(cm).astype(np.float64)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    iou = _ratio(tp, tp + fp + fn)
    return {
        "f1_change": float(_ratio(2 * tp[1], 2 * tp[1] + fp[1] + fn[1])),
        "iou_change": float(iou[1]),
        "miou": _nanmean(iou),
        "precision_change": float(_ratio(tp[1], tp[1] + fp[1])),
        "recall_change": float(_ratio(tp[1], tp[1] + fn[1])),
        "confusion": cm,
    }


def classification_scores(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> dict:
    """Overall accuracy, average (per-class) accuracy and Cohen's kappa from the confusion matrix.

    AA averages the recall of the classes that have labelled pixels;
    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_e`` from the row and column sums.
    """
    cm = confusion_matrix(pred, target, num_classes, ignore_index)
    n = cm.sum()
    if n == 0:
        raise ValueError("no labelled pixels to score")
    rows, cols = cm.sum(1), cm.sum(0)
    per_class = _ratio(np.diag(cm).astype(np.float64), rows)
    oa = np.trace(cm) / n
    pe = float((rows.astype(np.float64) * cols).sum() / float(n) ** 2)
    kappa = (oa - pe) / (1 - pe) if pe < 1 else 1.0
    return {
        "oa": float(oa),
        "aa": _nanmean(per_class),
        "kappa": float(kappa),
        "per_class_accuracy": per_class,
        "confusion": cm,
    }


# --------------------------------------------------------------------------- summary


def paired_summary(results: Mapping[str, Mapping[int, float]], reference_arm: str = "real") -> dict[str, dict]:
    """Mean and std over seeds of each arm, and of its per-seed difference to ``reference_arm``.

    ``results[arm][seed]`` is one score. Every arm must have exactly the
    reference's seeds. Standard deviations use ``ddof=1`` (NaN for one seed);
    ``diff_ci95`` is the Student-t 95 % interval of the mean difference.
    """
    if reference_arm not in results:
        raise ValueError(f"reference arm {reference_arm!r} not in results ({', '.join(results)})")
    seeds = sorted(results[reference_arm])
    ref = np.array([results[reference_arm][s] for s in seeds], dtype=np.float64)
    n = len(seeds)
    summary = {}
    for arm, by_seed in results.items():
        if sorted(by_seed) != seeds:
            raise ValueError(f"arm {arm!r} has seeds {sorted(by_seed)}, reference {reference_arm!r} has {seeds}")
        values = np.array([by_seed[s] for s in seeds], dtype=np.float64)
        diff = values - ref
        std = float(values.std(ddof=1)) if n > 1 else float("nan")
        diff_std = float(diff.std(ddof=1)) if n > 1 else float("nan")
        half = float(stats.t.ppf(0.975, n - 1) * diff_std / np.sqrt(n)) if n > 1 else float("nan")
        summary[arm] = {
            "mean": float(values.mean()),
            "std": std,
            "diff_mean": float(diff.mean()),
            "diff_std": diff_std,
            "diff_ci95": (float(diff.mean()) - half, float(diff.mean()) + half),
            "n": n,
        }
    return summary
