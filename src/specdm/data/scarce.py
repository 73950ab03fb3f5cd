"""Label-scarce settings: the training part's labels thinned to a share, kept as whole square cells.

The training part's labelled pixels are counted; square cells of ``cell`` pixels on a grid from each
scene's top-left corner are drawn at random (seeded) among those that hold a labelled training pixel and
touch no test pixel, until the kept labelled training pixels reach ``keep`` of the count. Every other
label outside the test part becomes ``ignore_index``; the test part keeps its labels (it is scored), the
image stays whole. The kept share overshoots the target by less than one cell's labelled pixels
(less than ``cell ** 2``), and falls short only when the eligible cells hold too few labels (reported).

This runs in data preparation (:func:`specdm.data.datamodule.prepare`), before anything else reads a
mask, so generators, filters and task models see only the kept labels.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from specdm.errors import ConfigError
from specdm.scene import Scene


UNLABELLED = "unlabelled"  # the class name of the value a thinned, fully labelled scene gets for its unkept pixels


def thin_labels(scenes: list[Scene], train: list[np.ndarray], test: list[np.ndarray], keep: float, cell: int,
                seed: int) -> tuple[list[Scene], dict]:
    """Scenes whose training labels are thinned to about ``keep`` of them (module docstring), and a record:
    the requested and kept shares, counted pixels, kept pixels per class, the classes kept and lost
    (``keep`` 1: the scenes as they are, and the record of all training labels)."""
    if not 0 < keep <= 1:
        raise ConfigError(f"data.labels_keep {keep} must be a share in (0, 1]")
    if cell < 1:
        raise ConfigError(f"data.labels_cell {cell} must be a positive number of pixels")
    for s in scenes:
        if s.mask is None:
            raise ConfigError(f"data.labels_keep {keep:g} thins labels, but scene '{s.name}' has no mask", s.source)
    if keep < 1 and any(s.ignore_index is None for s in scenes):
        # every pixel labelled (OSCD's change maps): the thinned pixels need a value of their own, one past the
        # classes, named "unlabelled" (as the own-files reader does for an ignore_index past every class)
        k0 = scenes[0].num_classes
        scenes = [replace(s, class_names=[*s.class_names, UNLABELLED], ignore_index=k0) for s in scenes]
    ref = scenes[0]
    k = ref.num_classes
    # every eligible cell of every scene: (scene, row, col, labelled training pixels in it)
    cells, in_train = [], []
    for i, s in enumerate(scenes):
        lab = train[i] if s.ignore_index is None else (s.mask != s.ignore_index) & train[i]
        in_train.append(lab)
        if keep >= 1:
            continue
        n = _cell_sums(lab, cell)
        touches = _cell_sums(test[i], cell) > 0
        for r, c in zip(*np.nonzero((n > 0) & ~touches)):
            cells.append((i, int(r), int(c), int(n[r, c])))
    total = int(sum(m.sum() for m in in_train))
    target = keep * total
    order = np.random.default_rng(seed).permutation(len(cells)) if cells else np.zeros(0, int)
    kept_cells, kept = [], 0
    if keep < 1:
        for j in order:
            if kept >= target:
                break
            kept_cells.append(cells[j])
            kept += cells[j][3]
    keep_mask = [np.zeros(s.shape, bool) for s in scenes]
    for i, r, c, _ in kept_cells:
        keep_mask[i][r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = True
    out, per_class, train_class = [], np.zeros(k, np.int64), np.zeros(k, np.int64)
    for i, s in enumerate(scenes):
        if keep >= 1:
            kept_here = in_train[i]
            out.append(s)
        else:
            kept_here = keep_mask[i] & in_train[i]
            mask = np.where(kept_here | test[i], s.mask, s.ignore_index)
            out.append(replace(s, mask=mask, conditions=dict(s.conditions), extra=dict(s.extra, labels_thinned=keep)))
        per_class += np.bincount(s.mask[kept_here], minlength=k)[:k]
        train_class += np.bincount(s.mask[in_train[i]], minlength=k)[:k]
    kept = int(per_class.sum())
    names = ref.class_names
    record = {
        "keep": keep, "cell": cell, "seed": seed,
        "labelled_train_pixels": total, "target_pixels": int(round(target)), "kept_pixels": kept,
        "kept_share": round(kept / total, 6) if total else 0.0, "cells": len(kept_cells), "eligible_cells": len(cells),
        "reached": kept >= target,
        "train_pixels_per_class": {names[c]: int(train_class[c]) for c in range(k) if train_class[c]},
        "kept_pixels_per_class": {names[c]: int(per_class[c]) for c in range(k) if train_class[c]},
        "classes_kept": [names[c] for c in range(k) if per_class[c]],
        "classes_lost": [names[c] for c in range(k) if train_class[c] and not per_class[c]],
    }
    return out, record


def _cell_sums(a: np.ndarray, cell: int) -> np.ndarray:
    """Sums of ``a`` over the cells of a ``cell``-pixel grid from the top-left corner (edge cells smaller)."""
    h, w = a.shape
    padded = np.zeros((-(-h // cell) * cell, -(-w // cell) * cell), np.int64)
    padded[:h, :w] = a
    return padded.reshape(padded.shape[0] // cell, cell, padded.shape[1] // cell, cell).sum((1, 3))
