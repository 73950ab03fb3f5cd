"""Choosing the strongest classical recipe on a validation part of the TRAINING data, never on test.

PROTOCOL: "real + the best classical recipe (...; chosen per network on a validation part of the training
data, never on test)". :func:`choose_recipe` trains one model per candidate recipe on training windows and
scores each on validation regions; :func:`carve_validation` cuts those from the training split of prepared
data (the last rows of every training region; windows reaching into them are left out of the choice's
training), reading nothing outside the training regions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from specdm.augment.classical import RECIPES
from specdm.data.datamodule import PreparedData
from specdm.errors import ConfigError, DataError
from specdm.evaluation.downstream import train_downstream
from specdm.evaluation.fit import predict_tiled
from specdm.evaluation.tasks import METRICS, score

__all__ = ["CHOICE_SEED", "OUTSIDE", "VALIDATION_SHARE", "carve_validation", "choose_recipe"]

VALIDATION_SHARE = 0.2  # share of the rows of every training region carved off as validation
CHOICE_SEED = 1000  # seed of the choice's trainings (not one of the benchmark's seeds 0..n-1)
OUTSIDE = -1  # target value of pixels of a scored image that are not to be scored (outside the scored part)


def carve_validation(data: PreparedData, share: float = VALIDATION_SHARE, task: str | None = None):
    """Validation regions carved from the training split of ``data``, and the training windows left for the
    choice.

    For every training region, its last ``max(1, round(share * height))`` rows are validation; the choice trains
    on the training windows (indices into ``data.train``, i.e. rows of the benchmark's real arrays) lying wholly
    above those rows of their region. Returns ``(train_indices, regions, record)``: regions as ``(image, mask)``
    with images ``(C, H, W)`` (segmentation) or ``(2, C, H, W)`` (change), normalized like the training windows.
    Reads the scenes only inside training regions.
    """
    if not 0.0 < share < 1.0:
        raise ConfigError(f"validation share {share} must be in (0, 1)")
    task = task or data.reference.task
    if data.parts is not None and data.parts.masked and data.parts.design is not None:
        return _carve_fold(data, task)
    size = data.train.size
    regions, cut = [], []
    for g in data.split["train"]:
        rows = max(1, round(share * g.height))
        top = g.r1 - rows
        cut.append((g, top))
        s = data.scenes[g.scene]
        ims = np.stack([data.normalizer(im[top : g.r1, g.c0 : g.c1]).transpose(2, 0, 1) for im in s.images])
        regions.append((ims[0] if task == "segmentation" else ims, s.mask[top : g.r1, g.c0 : g.c1]))

    def kept(w) -> bool:
        for g, top in cut:
            if w.scene == g.scene and g.r0 <= w.r and w.r + size <= g.r1 and g.c0 <= w.c and w.c + size <= g.c1:
                return w.r + size <= top
        return False

    train = np.array([i for i, w in enumerate(data.train.windows) if kept(w)], dtype=np.int64)
    if len(train) < 2:
        raise DataError(f"carving the last {share:.0%} of the training rows as validation leaves {len(train)} "
                        "training window(s); the classical choice needs at least 2",
                        data.reference.source, hint="pass a recipe name instead of 'auto'")  # fmt: skip
    record = {"share": share, "train_windows": int(len(train)),
              "regions": [{"scene": data.scenes[g.scene].name, "rows": [top, g.r1], "cols": [g.c0, g.c1]}
                          for g, top in cut]}  # fmt: skip
    return train, regions, record


def _carve_fold(data: PreparedData, task: str):
    """A fold split's validation part: the test part of the next fold of the same design ((i + 1) mod k), where
    it lies inside fold i's training part. Each validation scene is predicted whole with every pixel outside fold
    i's training part set to 0 (the test part's image is never read) and scored on the validation pixels only.

    The choice trains on the training windows: for a design of whole scenes, those outside the validation scenes;
    for a block design, whose small blocks lie in nearly every window, on every training window with the labels
    of the validation pixels and of the design's guard around them hidden (``ignore_index``; the record's
    ``hide`` holds them per window), so no validation label is learnt from. Without an ``ignore_index`` a block
    design's windows that touch the validation part are left out instead."""
    from specdm.data import folds

    design, fold = data.parts.design, int(data.parts.record["fold"])
    val_fold = (fold + 1) % design["k"]
    names, shapes = [s.name for s in data.scenes], [s.shape for s in data.scenes]
    _, val_tests = folds.fold_parts(design, val_fold, shapes, names)
    guard = int(design.get("guard", 0) or 0)
    size = data.train.size
    regions, blocked, pixels = [], [], 0
    for i, (scene, train, val) in enumerate(zip(data.scenes, data.train_masks, val_tests)):
        v = val & train
        blocked.append(folds.near(v, guard) if v.any() else v)
        if not v.any():
            continue
        pixels += int(v.sum())
        ims = data.scene_image(i) * train[None, None]
        regions.append((ims[0] if task == "segmentation" else ims, np.where(v, scene.mask, OUTSIDE)))
    windows = data.train.windows
    hide_labels = design.get("unit") == "blocks" and data.reference.ignore_index is not None
    if hide_labels:
        keep = list(range(len(windows)))
        hide = np.stack([blocked[w.scene][w.r : w.r + size, w.c : w.c + size] for w in windows])
    else:
        keep = [i for i, w in enumerate(windows) if not blocked[w.scene][w.r : w.r + size, w.c : w.c + size].any()]
        hide = None
    train_idx = np.array(keep, dtype=np.int64)
    if len(train_idx) < 2 or not regions:
        raise DataError(f"fold {val_fold}'s test part as validation leaves {len(train_idx)} training window(s) and "
                        f"{pixels} validation pixels; the classical choice needs at least 2 and some",
                        data.reference.source, hint="pass a recipe name instead of 'auto'")  # fmt: skip
    how = "labels hidden in the training windows" if hide_labels else "windows touching it left out"
    record = {"validation": f"fold {val_fold}'s test part inside fold {fold}'s training part (guard {guard} px; "
                            f"{how})", "train_windows": int(len(train_idx)), "validation_pixels": pixels}
    if hide is not None:
        record["hide"] = hide
        record["hidden_labels"] = int(sum((data.train.masks[w.scene][w.r : w.r + size, w.c : w.c + size][h]
                                           != data.reference.ignore_index).sum() for w, h in zip(windows, hide)))
    return train_idx, regions, record


def choose_recipe(
    model_name: str,
    train: tuple[np.ndarray, np.ndarray],
    validation: Sequence[tuple[np.ndarray, np.ndarray]],
    candidates: Sequence[str],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int = CHOICE_SEED,
    ignore_index: int | None = None,
    *,
    num_classes: int,
    classes: Sequence[int] | None = None,
    class_weights: str | None = None,
    lr_schedule: str = "cosine",
    tile: int | None = None,
    overlap: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    speed: str = "plain",
) -> dict:
    """The candidate recipe whose model scores best on validation, and every candidate's score.

    One model per recipe (:func:`train_downstream`, the same ``seed``, steps, batch size and optimizer for all)
    on ``train`` windows; each is scored on the ``validation`` regions ``(image, mask)``, predicted tiled
    (``tile`` defaults to the window size, ``overlap`` to a quarter of it) and pooled into one confusion matrix,
    by the model's first metric (:data:`~specdm.evaluation.tasks.METRICS`: mIoU for the segmenters, F1 of the
    change class for siamdiff, OA for pixel); segmentation averages ``classes`` (default: those labelled in both
    the training windows and the validation regions). Ties go to the earlier candidate; a NaN score never wins
    (all NaN: ``classical``).
    Returns ``{"recipe", "metric", "scores", "seed", "steps"}``.
    """
    unknown = [c for c in candidates if c not in RECIPES]
    if not candidates or unknown:
        raise ConfigError(f"unknown classical recipe(s) {', '.join(unknown) or '(none given)'}",
                          hint=f"choose from {', '.join(RECIPES)}")  # fmt: skip
    if not validation:
        raise DataError("no validation region to choose the classical recipe on")
    x, y = train
    tile = tile or x.shape[-1]
    overlap = tile // 4 if overlap is None else overlap
    metric = METRICS[model_name][0]
    target = np.concatenate([np.asarray(m).ravel() for _, m in validation])
    scored = target != OUTSIDE  # whole images may carry pixels that are not validation pixels
    target = target[scored]
    if classes is None:
        classes = sorted(({int(c) for c in np.unique(y)} & {int(c) for c in np.unique(target)}) - {ignore_index})
    scores = {}
    for name in candidates:
        net = train_downstream(model_name, [(x, y)], steps, batch_size, lr, seed, ignore_index, None, name,
                               num_classes=num_classes, class_weights=class_weights, device=device,
                               progress=progress, lr_schedule=lr_schedule, speed=speed)  # fmt: skip
        pred = np.concatenate([predict_tiled(net, image, tile, overlap).ravel() for image, _ in validation])[scored]
        value = score(model_name, pred, target, num_classes, ignore_index, classes or None)[metric]
        scores[name] = math.nan if value is None else float(value)
    scored = [c for c in candidates if not math.isnan(scores[c])]
    if scored:  # ties go to the earlier candidate
        best = max(scored, key=lambda c: (scores[c], -list(candidates).index(c)))
    else:  # nothing scored (e.g. no change predicted anywhere): the default recipe
        best = "classical" if "classical" in candidates else candidates[0]
    return {"recipe": best, "metric": metric, "scores": scores, "seed": seed, "steps": steps}
