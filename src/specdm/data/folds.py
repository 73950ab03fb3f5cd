"""Spatial fold designs: k spatially disjoint train/test partitions of labelled scenes, kept as a versioned file.

**Blocks** (one scene): the scene is cut into square blocks of ``block`` pixels on a grid from its top-left
corner (the last row and column of blocks may be smaller). Every block that holds a labelled pixel goes to
one of ``k`` folds; blocks without any labelled pixel belong to no fold (fold -1) and are training image in
every fold. Fold ``i``'s **test part** is its blocks, every pixel of them, labelled or not. Its **training
part** is every other pixel farther than ``guard`` pixels (Chebyshev distance) from the test part. Training
windows are cut only where their whole footprint lies in the training part, so no training window reads a
test pixel, image or label, and with ``guard > 0`` none reads a pixel next to one either.

**Scenes** (several scenes, such as OSCD's cities): whole scenes go to folds; fold ``i``'s test part is
its scenes, its training part every other scene.

The assignment is searched (:func:`search_blocks`, :func:`search_scenes`), seeded, over many random starts.
The score, lower is better, is, in order of weight:

1. ``missing``: the (fold, class) pairs where a *required* class (one with at least ``min_pixels`` labelled
   pixels in the scene) has fewer than ``min_side`` labelled pixels in the test part, or fewer than
   ``min_side`` labelled pixels of the training part that a ``patch_size`` window can reach. Each pair
   costs 1, more than all terms below together.
2. ``share``: the mean over folds of the total variation distance between the test part's class shares
   and the scene's (over labelled pixels), times 0.3.
3. ``size``: the mean over folds of ``|test labelled pixels / all labelled pixels - 1/k| * k``, times 0.1.
4. ``loss``: the share of the folds' labelled training pixels that no training window reaches (the guard
   and the window rule cost them), times 0.3.

A design is a plain dict (the JSON file's content, see :func:`make_design`); :func:`fold_parts` turns it
into per-scene boolean masks of one fold's training and test parts.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import ndimage

from specdm.errors import ConfigError

FORMAT = "specdm.fold_design"
VERSION = 1
UNITS = ("blocks", "scenes")
PACKAGE_DIR = "folds"  # packaged designs: specdm/configs/folds/<name>.json

# score weights (module docstring)
W_SHARE, W_SIZE, W_LOSS = 0.3, 0.1, 0.3
DEFAULT_MIN_PIXELS = 50  # classes with this many labelled pixels must sit on both sides of every fold
DEFAULT_MIN_SIDE = 10  # labelled pixels that make a class present on one side of a fold
DEFAULT_K = 4
DEFAULT_GUARD = 2  # pixels: the training part keeps this far from the test part
DEFAULT_RESTARTS = 4


def default_block(patch_size: int) -> int:
    """A quarter of the patch size: on Indian Pines, blocks of the patch size (32) leave 5 x 5 blocks, too few to
    put single-field classes (Corn, Wheat) on both sides of 4 folds; 8-pixel blocks do (docs/folds.md)."""
    return max(1, patch_size // 4)


def defaults(unit: str, num_scenes: int, patch_size: int, k: int | None = None, block: int | None = None,
             guard: int | None = None) -> tuple[int, int | None, int]:
    """``(k, block, guard)`` with the defaults filled in: 4 folds (scenes: at most one per scene), blocks of
    :func:`default_block`, guard :data:`DEFAULT_GUARD` (scenes: no block, no guard)."""
    if unit == "scenes":
        return (k or min(DEFAULT_K, num_scenes)), None, 0
    return (k or DEFAULT_K), (block or default_block(patch_size)), (DEFAULT_GUARD if guard is None else guard)


# --------------------------------------------------------------------------- pixels and windows


def class_counts(labels: np.ndarray, num_classes: int, ignore_index: int | None, where: np.ndarray | None = None
                 ) -> np.ndarray:
    """Labelled pixels per class value (``ignore_index`` counted as 0), optionally only where ``where``."""
    v = labels if where is None else labels[where]
    n = np.bincount(v.ravel(), minlength=num_classes)[:num_classes].astype(np.int64)
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        n[ignore_index] = 0
    return n


def shares(counts: np.ndarray) -> np.ndarray:
    """``counts`` as shares of their sum (zeros when the sum is 0)."""
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def expand(grid: np.ndarray, block: int, shape: tuple[int, int]) -> np.ndarray:
    """A block grid as a pixel map of ``shape`` (blocks of ``block`` pixels from the top-left corner)."""
    return np.repeat(np.repeat(grid, block, 0), block, 1)[: shape[0], : shape[1]]


def grid_shape(shape: tuple[int, int], block: int) -> tuple[int, int]:
    return -(-shape[0] // block), -(-shape[1] // block)


def near(mask: np.ndarray, guard: int) -> np.ndarray:
    """Pixels within ``guard`` pixels (Chebyshev distance) of a True pixel of ``mask``, ``mask`` included."""
    if guard <= 0 or not mask.any():
        return mask.copy()
    return ndimage.maximum_filter(mask.view(np.uint8), size=2 * guard + 1, mode="constant", cval=0).view(bool)


def window_fit(allowed: np.ndarray, size: int) -> np.ndarray:
    """``(H - size + 1, W - size + 1)``: True where the ``size`` x ``size`` window with that top-left pixel
    lies wholly in ``allowed`` (empty when the window is larger than the scene)."""
    h, w = allowed.shape
    if size > h or size > w:
        return np.zeros((max(h - size + 1, 0), max(w - size + 1, 0)), bool)
    return _window_sums(allowed, size) == size * size


def window_cover(allowed: np.ndarray, size: int) -> np.ndarray:
    """Pixels of ``allowed`` that some ``size`` x ``size`` window lying wholly in ``allowed`` covers."""
    if size > allowed.shape[0] or size > allowed.shape[1]:
        return np.zeros(allowed.shape, bool)
    # a grey opening by a size x size box with the outside counted as 0: erosion finds the fitting windows,
    # dilation paints them back (tests/test_folds.py checks it against window_fit)
    a = np.ascontiguousarray(allowed, bool).view(np.uint8)
    return ndimage.grey_opening(a, size=(size, size), mode="constant", cval=0).view(bool)


def _integral(a: np.ndarray) -> np.ndarray:
    s = np.zeros((a.shape[0] + 1, a.shape[1] + 1), np.int64)
    s[1:, 1:] = a.astype(np.int64).cumsum(0).cumsum(1)
    return s


def _window_sums(a: np.ndarray, size: int) -> np.ndarray:
    """Sums of every ``size`` x ``size`` window of ``a`` (valid positions only)."""
    s = _integral(a)
    return s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]


# --------------------------------------------------------------------------- one fold's parts


def block_parts(grid: np.ndarray, block: int, shape: tuple[int, int], fold: int, guard: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Training and test part (boolean ``shape`` maps) of ``fold`` of a block grid."""
    test = expand(np.asarray(grid) == fold, block, shape)
    return ~near(test, guard), test


def fold_parts(design: dict, fold: int, shapes: list[tuple[int, int]], names: list[str] | None = None
               ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-scene training and test masks of ``fold``; ``shapes`` (and ``names``, for scene designs) of the
    loaded scenes, in their order. The design must have been checked against them (:func:`check_design`)."""
    if design["unit"] == "blocks":
        train, test = block_parts(np.asarray(design["grid"]), design["block"], tuple(shapes[0]), fold, design["guard"])
        return [train], [test]
    fold_of = {s["name"]: s["fold"] for s in design["scenes"]}
    tests = [np.full(tuple(sh), fold_of[n] == fold) for n, sh in zip(names, shapes)]
    return [~t for t in tests], tests


# --------------------------------------------------------------------------- scoring


class _Scorer:
    """Fold statistics and the score of an assignment (module docstring)."""

    def __init__(self, total: np.ndarray, k: int, required: list[int], min_side: int):
        self.total, self.k, self.required, self.min_side = total, k, list(required), min_side
        self.q = shares(total)
        self.n = int(total.sum())

    def score(self, test: np.ndarray, reach: np.ndarray) -> tuple[float, dict]:
        """``test``, ``reach``: ``(k, K)`` labelled test pixels and window-reachable training pixels per class."""
        req = self.required
        missing = int((test[:, req] < self.min_side).sum() + (reach[:, req] < self.min_side).sum())
        tv = float(np.mean([0.5 * np.abs(shares(t) - self.q).sum() for t in test]))
        size = float(np.mean([abs(t.sum() / self.n - 1 / self.k) * self.k for t in test])) if self.n else 0.0
        train_labelled = self.n * self.k - test.sum()
        loss = float(1 - reach.sum() / train_labelled) if train_labelled else 0.0
        value = missing + W_SHARE * tv + W_SIZE * size + W_LOSS * loss
        return value, {"missing": missing, "share": round(tv, 4), "size": round(size, 4), "loss": round(loss, 4),
                       "value": round(value, 4)}


def required_classes(total: np.ndarray, min_pixels: int, ignore_index: int | None) -> list[int]:
    return [c for c, n in enumerate(total) if n >= min_pixels and c != ignore_index]


# --------------------------------------------------------------------------- block search


def search_blocks(labels: np.ndarray, num_classes: int, ignore_index: int | None, *, k: int, block: int,
                  guard: int, patch_size: int, seed: int = 0, min_pixels: int = DEFAULT_MIN_PIXELS,
                  min_side: int = DEFAULT_MIN_SIDE, restarts: int = DEFAULT_RESTARTS, steps: int | None = None
                  ) -> tuple[np.ndarray, dict]:
    """Search an assignment of the blocks of ``labels`` to ``k`` folds (module docstring).

    Every restart deals tiles of ``patch_size / block`` x ``patch_size / block`` blocks to the folds at random,
    then moves single blocks by simulated annealing (``steps`` moves, default 80 per labelled block, at most
    20000). While a required class is missing from a fold, 30 % of the moves aim at it: a block holding the
    class joins the fold's test part, or a test block of the fold near the class leaves it (to free windows
    over the class); of the other moves half give a block the fold of a neighbouring block (keeping parts
    compact, so that windows fit), half a random other fold. Every move is scored exactly: the training
    part's window reach is recomputed around the moved block. Returns the best grid (folds numbered in
    order of first appearance; ``-1``: a block without labelled pixels) and a record of the search.
    """
    labels = np.asarray(labels)
    shape = labels.shape
    if k < 2:
        raise ConfigError(f"a fold design needs k >= 2 folds, got {k}")
    if block < 1 or guard < 0 or patch_size < 1:
        raise ConfigError(f"block {block} and patch size {patch_size} must be positive and guard {guard} not negative")
    labelled = np.ones(shape, bool) if ignore_index is None else labels != ignore_index
    total = class_counts(labels, num_classes, ignore_index)
    required = required_classes(total, min_pixels, ignore_index)
    gr, gc = grid_shape(shape, block)
    index = expand(np.arange(gr * gc).reshape(gr, gc), block, shape)
    per_block = np.zeros((gr * gc, num_classes), np.int64)
    np.add.at(per_block, (index[labelled], labels[labelled]), 1)
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        per_block[:, ignore_index] = 0
    live = np.flatnonzero(np.bincount(index[labelled].ravel(), minlength=gr * gc) > 0)
    if len(live) < k:
        raise ConfigError(f"only {len(live)} blocks of {block} pixels hold labels; {k} folds need at least {k}")
    scorer = _Scorer(total, k, required, min_side)
    counted = np.where(labelled, labels, num_classes)  # unlabelled pixels land in an extra bin
    reach_margin = guard + patch_size - 1  # a block's move changes the window reach this far around it

    def cover_of(grid: np.ndarray, fold: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """The window reach of ``fold``'s training part over rows r0:r1, columns c0:c1 (exact: computed on a
        crop wide enough that every window covering the region and every test pixel near it are inside)."""
        a0, a1 = max(r0 - reach_margin, 0), min(r1 + reach_margin, shape[0])
        b0, b1 = max(c0 - reach_margin, 0), min(c1 + reach_margin, shape[1])
        rows, cols = np.arange(a0, a1) // block, np.arange(b0, b1) // block
        test = grid[rows[:, None], cols[None, :]] == fold
        train = ~near(test, guard)
        # pixels of the crop edge that are not the scene's edge: the opening must not see an edge there, so
        # only windows whose footprint lies in rows a0+guard..a1-guard are used: crop the guard band off first
        g0, g1 = (guard if a0 > 0 else 0), (guard if a1 < shape[0] else 0)
        h0, h1 = (guard if b0 > 0 else 0), (guard if b1 < shape[1] else 0)
        inner = train[g0 : train.shape[0] - g1, h0 : train.shape[1] - h1]
        cover = window_cover(inner, patch_size)
        return cover[r0 - a0 - g0 : r1 - a0 - g0, c0 - b0 - h0 : c1 - b0 - h0]

    def reach_counts(cover: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return np.bincount(counted[r0:r1, c0:c1][cover], minlength=num_classes + 1)[:num_classes]

    # per class: the blocks holding it, and the blocks whose move can change its window reach
    holding = {c: np.flatnonzero(per_block[:, c] > 0) for c in required}
    reach_blocks = -(-reach_margin // block)
    around = {}
    for c in required:
        has_c = (per_block[:, c] > 0).reshape(gr, gc)
        around[c] = np.flatnonzero(ndimage.maximum_filter(has_c.view(np.uint8), size=2 * reach_blocks + 1,
                                                          mode="constant").ravel() > 0)
    rng = np.random.default_rng(seed)
    steps = steps if steps is not None else min(80 * len(live), 20000)
    tile = max(1, round(patch_size / block))
    best, best_value, best_parts, trace = None, np.inf, None, []
    for _ in range(restarts):
        grid = np.full((gr, gc), -1, np.int64)
        tr, tc = -(-gr // tile), -(-gc // tile)
        deal = expand(rng.permutation(np.arange(tr * tc) % k).reshape(tr, tc), tile, (gr, gc))
        grid.flat[live] = deal.flat[live]
        for f in range(k):  # every fold gets a block
            if not (grid == f).any():
                grid.flat[rng.choice(live)] = f
        test = np.stack([per_block[grid.ravel() == f].sum(0) for f in range(k)])
        covers = [cover_of(grid, f, 0, shape[0], 0, shape[1]) for f in range(k)]
        reach = np.stack([reach_counts(c, 0, shape[0], 0, shape[1]) for c in covers])
        value, parts = scorer.score(test, reach)
        run_best, run_value, run_parts = grid.copy(), value, parts
        t0, t1 = 0.05, 0.0005
        for s in range(steps):
            temp = t0 * (t1 / t0) ** (s / max(steps - 1, 1))
            b = int(live[rng.integers(len(live))])
            r, c = divmod(b, gc)
            old = int(grid[r, c])
            lacking = np.argwhere(test[:, required] < min_side), np.argwhere(reach[:, required] < min_side)
            kind = rng.integers(2) if len(lacking[0]) and len(lacking[1]) else (0 if len(lacking[0]) else 1)
            if len(lacking[kind]) and rng.random() < 0.3:  # a move aimed at a missing (fold, class) pair
                f, j = lacking[kind][rng.integers(len(lacking[kind]))]
                if kind == 0:  # a block holding the class joins the fold's test part
                    pool, new = holding[required[j]], int(f)
                else:  # a test block of the fold near the class leaves it, to free windows over the class
                    pool = around[required[j]][grid.flat[around[required[j]]] == f]
                    new = int((f + rng.integers(1, k)) % k)
                if not len(pool):
                    continue
                b = int(pool[rng.integers(len(pool))])
                r, c = divmod(b, gc)
                old = int(grid[r, c])
                if old == new:
                    continue
            elif rng.random() < 0.5:  # join a neighbour's fold: keeps parts compact, so windows still fit
                dr, dc = _NEIGHBOURS[rng.integers(8)]
                if not (0 <= r + dr < gr and 0 <= c + dc < gc) or grid[r + dr, c + dc] in (-1, old):
                    continue
                new = int(grid[r + dr, c + dc])
            else:
                new = int((old + rng.integers(1, k)) % k)
            if (grid == old).sum() == 1:
                continue  # a fold keeps at least one block
            grid[r, c] = new
            r0, r1 = max(r * block - reach_margin, 0), min((r + 1) * block + reach_margin, shape[0])
            c0, c1 = max(c * block - reach_margin, 0), min((c + 1) * block + reach_margin, shape[1])
            t2, r2, fresh = test.copy(), reach.copy(), {}
            t2[old] -= per_block[b]
            t2[new] += per_block[b]
            for f in (old, new):
                fresh[f] = cover_of(grid, f, r0, r1, c0, c1)
                r2[f] += reach_counts(fresh[f], r0, r1, c0, c1) - reach_counts(covers[f][r0:r1, c0:c1], r0, r1, c0, c1)
            v2, p2 = scorer.score(t2, r2)
            if v2 <= value or rng.random() < np.exp(-(v2 - value) / temp):
                test, reach, value, parts = t2, r2, v2, p2
                for f in (old, new):
                    covers[f][r0:r1, c0:c1] = fresh[f]
                if value < run_value:
                    run_best, run_value, run_parts = grid.copy(), value, parts
            else:
                grid[r, c] = old
        trace.append(run_parts)
        if run_value < best_value:
            best, best_value, best_parts = run_best, run_value, run_parts
    record = {"method": "tiles of patch_size dealt at random, then simulated annealing of single blocks",
              "restarts": restarts, "steps": steps, "score": best_parts, "restart_scores": trace}
    return _first_seen(best), record


_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


# --------------------------------------------------------------------------- scene search


def search_scenes(masks: list[np.ndarray], num_classes: int, ignore_index: int | None, *, k: int, seed: int = 0,
                  min_pixels: int = DEFAULT_MIN_PIXELS, min_side: int = DEFAULT_MIN_SIDE, restarts: int = 200
                  ) -> tuple[list[int], dict]:
    """Search an assignment of whole scenes to ``k`` folds of (nearly) equal numbers of scenes: random
    balanced deals, each improved by swapping scenes of two folds while the score drops. Returns the fold
    of every scene and a record of the search."""
    n = len(masks)
    if not 2 <= k <= n:
        raise ConfigError(f"a scene fold design needs 2 <= k <= {n} (the number of scenes), got {k}")
    counts = np.stack([class_counts(m, num_classes, ignore_index) for m in masks])
    total = counts.sum(0)
    required = required_classes(total, min_pixels, ignore_index)
    scorer = _Scorer(total, k, required, min_side)

    def value_of(folds: np.ndarray) -> tuple[float, dict]:
        test = np.stack([counts[folds == f].sum(0) for f in range(k)])
        return scorer.score(test, total[None] - test)

    rng = np.random.default_rng(seed)
    best, best_value, best_parts = None, np.inf, None
    for _ in range(restarts):
        folds = rng.permutation(np.arange(n) % k)
        value, parts = value_of(folds)
        improved = True
        while improved:
            improved = False
            for i in range(n):
                for j in range(i + 1, n):
                    if folds[i] == folds[j]:
                        continue
                    folds[[i, j]] = folds[[j, i]]
                    v2, p2 = value_of(folds)
                    if v2 < value - 1e-12:
                        value, parts, improved = v2, p2, True
                    else:
                        folds[[i, j]] = folds[[j, i]]
        if value < best_value - 1e-12:
            best, best_value, best_parts = folds.copy(), value, parts
    record = {"method": "random balanced deals, then swaps of two scenes while the score drops",
              "restarts": restarts, "score": best_parts}
    return [int(f) for f in _first_seen(best)], record


def _first_seen(assignment: np.ndarray) -> np.ndarray:
    """Folds renumbered in the order they first appear (-1 stays), so equal partitions read the same."""
    order = [f for f in dict.fromkeys(np.asarray(assignment).ravel().tolist()) if f >= 0]
    lookup = {f: i for i, f in enumerate(order)}
    return np.vectorize(lambda f: lookup.get(f, -1), otypes=[np.int64])(assignment)


# --------------------------------------------------------------------------- the design record


def make_design(*, unit: str, scenes: list[tuple[str, np.ndarray]], class_names: list[str],
                ignore_index: int | None, k: int, seed: int, patch_size: int, min_pixels: int, min_side: int,
                block: int | None = None, guard: int = 0, grid: np.ndarray | None = None,
                scene_folds: list[int] | None = None, search: dict | None = None, name: str | None = None,
                note: str | None = None) -> dict:
    """The design as a dict (the file's content): its settings, its assignment and, per fold, the labelled
    pixels per class of the training part (``train_pixels``), of the training part that a ``patch_size``
    window reaches (``window_pixels``) and of the test part (``test_pixels``), their shares, the classes on
    both sides (``both_sides``: at least ``min_side`` window-reachable training and test pixels) and the
    required classes that are not (``missing``). ``scenes``: (name, label map) of every scene."""
    num_classes = len(class_names)
    design: dict = {"format": FORMAT, "version": VERSION, "name": name, "unit": unit, "k": int(k), "seed": int(seed)}
    if note:
        design["note"] = note
    design.update(ignore_index=ignore_index, class_names=list(class_names), patch_size=int(patch_size),
                  min_pixels=int(min_pixels), min_side=int(min_side))
    if unit == "blocks":
        (scene_name, labels), = scenes
        grid = np.asarray(grid, np.int64)
        if grid.shape != grid_shape(labels.shape, block):
            raise ConfigError(f"block grid {grid.shape} does not match a {labels.shape} scene in {block}-pixel blocks")
        design.update(scene=scene_name, shape=list(labels.shape), block=int(block), guard=int(guard),
                      grid=grid.tolist())
    elif unit == "scenes":
        design.update(scenes=[{"name": n, "shape": list(m.shape), "fold": int(f)}
                              for (n, m), f in zip(scenes, scene_folds)])
    else:
        raise ConfigError(f"unknown fold design unit '{unit}' (use {' or '.join(UNITS)})")
    total = sum(class_counts(m, num_classes, ignore_index) for _, m in scenes)
    design["scene_pixels"] = total.tolist()
    design["scene_shares"] = _round(shares(total))
    required = required_classes(total, min_pixels, ignore_index)
    design["required_classes"] = required
    design["label_sha256"] = labels_hash([m for _, m in scenes])
    design["folds"] = [_fold_record(design, f, scenes, num_classes, ignore_index, patch_size, min_side, required)
                       for f in range(k)]
    design["search"] = search or {}
    return design


def _fold_record(design: dict, fold: int, scenes, num_classes, ignore_index, patch_size, min_side, required) -> dict:
    train_masks, test_masks = fold_parts(design, fold, [m.shape for _, m in scenes], [n for n, _ in scenes])
    train = test = window = np.zeros(num_classes, np.int64)
    for (_, labels), tr, te in zip(scenes, train_masks, test_masks):
        train = train + class_counts(labels, num_classes, ignore_index, tr)
        window = window + class_counts(labels, num_classes, ignore_index, window_cover(tr, patch_size))
        test = test + class_counts(labels, num_classes, ignore_index, te)
    both = [c for c in range(num_classes) if c != ignore_index and window[c] >= min_side and test[c] >= min_side]
    rec = {"fold": fold}
    if design["unit"] == "blocks":
        rec["test_blocks"] = int((np.asarray(design["grid"]) == fold).sum())
    else:
        rec["test_scenes"] = [s["name"] for s in design["scenes"] if s["fold"] == fold]
    rec.update(train_pixels=train.tolist(), window_pixels=window.tolist(), test_pixels=test.tolist(),
               train_shares=_round(shares(train)), test_shares=_round(shares(test)), both_sides=both,
               missing=[c for c in required if c not in both])
    return rec


def _round(a) -> list[float]:
    return [round(float(x), 4) for x in a]


def labels_hash(masks: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for m in masks:
        h.update(np.ascontiguousarray(m, np.int64).tobytes())
    return h.hexdigest()


def design_table(design: dict, classes: str = "all") -> str:
    """A markdown table of the design's class pixels per fold: ``train / test`` pixels and the test share,
    for every class with labelled pixels (``classes="required"``: only the required ones)."""
    names = design["class_names"]
    keep = design["required_classes"] if classes == "required" else \
        [c for c, n in enumerate(design["scene_pixels"]) if n > 0 and c != design["ignore_index"]]
    k = design["k"]
    head = "| class | pixels | share | " + " | ".join(f"fold {f}: train / test (test share)" for f in range(k)) + " |"
    lines = [head, "|---|---:|---:|" + "---:|" * k]
    for c in keep:
        mark = "" if c in design["required_classes"] else " (not required)"
        cells = []
        for rec in design["folds"]:
            cell = f"{rec['window_pixels'][c]} / {rec['test_pixels'][c]} ({rec['test_shares'][c]:.3f})"
            cells.append(cell if c in rec["both_sides"] else f"**{cell}**")
        lines.append(f"| {c} {names[c]}{mark} | {design['scene_pixels'][c]} | {design['scene_shares'][c]:.3f} | "
                     + " | ".join(cells) + " |")
    tot = [f"{sum(r['window_pixels'])} / {sum(r['test_pixels'])}" for r in design["folds"]]
    lines.append(f"| all labelled | {sum(design['scene_pixels'])} | 1 | " + " | ".join(tot) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- files


def dumps(design: dict) -> str:
    """JSON with one line per list of numbers (a block grid reads as a picture)."""
    text = json.dumps(design, indent=1)
    return re.sub(r"\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def save_design(design: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(design))
    return path


def packaged_designs() -> list[str]:
    folder = resources.files("specdm.configs").joinpath(PACKAGE_DIR)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json")) if folder.is_dir() else []


def resolve_design(name_or_path: str) -> tuple[str, str]:
    """``(text, source)`` of a design file path or packaged design name; a :class:`ConfigError` naming the
    file (or listing the packaged names) when there is none."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists() or len(path.parts) > 1:
        if not path.is_file():
            raise ConfigError("fold design file not found", path)
        return path.read_text(), str(path)
    if name_or_path in packaged_designs():
        f = resources.files("specdm.configs").joinpath(PACKAGE_DIR, f"{name_or_path}.json")
        return f.read_text(), str(f)
    raise ConfigError(f"'{name_or_path}' is neither a fold design file (.json) nor a packaged design "
                      f"({', '.join(packaged_designs()) or 'none'})")


def load_design(name_or_path: str) -> dict:
    """Read and check a design file (format, version, assignment); ``design["source"]`` is where it came from."""
    text, source = resolve_design(name_or_path)
    try:
        design = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"is not valid JSON: {e}", source) from None
    check_format(design, source)
    design["source"] = source
    design["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return design


def check_format(design: dict, source=None) -> None:
    """The file is a fold design of a version this code reads, and its assignment is consistent."""
    if not isinstance(design, dict) or design.get("format") != FORMAT:
        raise ConfigError(f"is not a fold design (its 'format' is not '{FORMAT}')", source)
    if design.get("version") != VERSION:
        raise ConfigError(f"is a fold design of version {design.get('version')}; this specdm reads version {VERSION}",
                          source)
    try:
        k, unit = int(design["k"]), design["unit"]
        design["class_names"], design["folds"]
        if k < 1 or len(design["folds"]) != k:
            raise ConfigError(f"declares k = {k} folds and describes {len(design['folds'])}", source)
        if unit == "blocks":
            grid = np.asarray(design["grid"], np.int64)
            block, shape = int(design["block"]), tuple(design["shape"])
            if grid.shape != grid_shape(shape, block) or int(design["guard"]) < 0:
                raise ConfigError(f"block grid {grid.shape} does not cut a {shape} scene into {block}-pixel blocks",
                                  source)
            folds = grid[grid >= 0]
            bad = grid[(grid < -1) | (grid >= k)]
        elif unit == "scenes":
            folds = np.asarray([int(s["fold"]) for s in design["scenes"]], np.int64)
            bad = folds[(folds < -1) | (folds >= k)]
            folds = folds[folds >= 0]
        else:
            raise ConfigError(f"unknown unit '{unit}' (use {' or '.join(UNITS)})", source)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"fold design is incomplete or malformed ({type(e).__name__}: {e})", source) from None
    if len(bad):
        raise ConfigError(f"assigns folds {sorted(set(bad.tolist()))}, outside 0..{k - 1}", source)
    if set(folds.tolist()) != set(range(k)):
        raise ConfigError(f"declares k = {k} folds but assigns {sorted(set(folds.tolist()))}", source)


def check_design(design: dict, fold: int, names: list[str], masks: list[np.ndarray], class_names: list[str],
                 ignore_index: int | None) -> None:
    """A :class:`ConfigError` naming the design file unless it fits the loaded scenes (names, shapes, classes and
    label maps) and has fold ``fold``."""
    source = design.get("source") or design.get("name")
    k = design["k"]
    if not 0 <= fold < k:
        raise ConfigError(f"data.split.fold {fold} is out of range: the design has folds 0..{k - 1}", source)
    if design["unit"] == "blocks":
        if len(masks) != 1:
            raise ConfigError(f"is a block design for one scene ('{design['scene']}'); {len(masks)} scenes are loaded "
                              f"({', '.join(names)})", source)
        if tuple(design["shape"]) != masks[0].shape:
            raise ConfigError(f"design is for a {tuple(design['shape'])} scene ('{design['scene']}'); scene "
                              f"'{names[0]}' is {masks[0].shape}", source)
    else:
        listed = {s["name"]: tuple(s["shape"]) for s in design["scenes"]}
        if set(listed) != set(names):
            raise ConfigError(f"design assigns scenes {sorted(listed)}; the loaded scenes are {sorted(names)}", source)
        for n, m in zip(names, masks):
            if listed[n] != m.shape:
                raise ConfigError(f"design is for a {listed[n]} scene '{n}'; the loaded one is {m.shape}", source)
    if list(design["class_names"]) != list(class_names) or design.get("ignore_index") != ignore_index:
        raise ConfigError(f"design is for classes {design['class_names']} (ignore_index {design.get('ignore_index')}), "
                          f"the data has {list(class_names)} (ignore_index {ignore_index})", source)
    if design.get("label_sha256") and design["label_sha256"] != labels_hash(
            [masks[names.index(s["name"])] for s in design["scenes"]] if design["unit"] == "scenes" else masks):
        raise ConfigError("design was made for other labels of this scene (its label_sha256 differs); make one for "
                          "these labels with `specdm folds`", source)
