"""Class-aware decoding: synthetic images painted with their mask known per pixel, at full resolution.

A latent model decodes every pixel through one decoder that does not know the pixel's class, at a quarter of the
mask's resolution, so class boundaries and small classes blur and a spectrum can drift to a neighbour's. Given a
sample's mask (sampled with it, or the layout it was painted for), :class:`ClassPainter` repaints each class
region from real training data of that class:

- ``residual``: per-class residual patches, real minus stage-1 reconstruction of real training windows (what
  stage 1 smooths away), cut where the class covers most of the patch, tiled over each class region (random
  offset, patch and D4 transform per tile) and added: the detail stage 1 loses, spatially coherent, drawn from
  the class itself;
- ``snap``: each pixel's spectrum blended (weight ``alpha``; 1 = replaced) with one of its ``k`` nearest real
  training spectra of its label's class (Euclidean, normalized units, all dates side by side), chosen at random:
  the class's real spectra and their pixel-to-pixel variability, so the label fits the spectrum by construction;
  with ``pool="accepted"`` (the writer's ``snap_pool``) only reference spectra the label-cleaning rule accepts
  for their class are drawn (nearest neighbours of a wrong decoded spectrum are otherwise the class's most
  ambiguous pixels);
- ``snap+residual``: snapping, then the residual patches on top (the class's spectra from snapping, the class's
  spatial detail from the residuals).

Pixels of a class without references (e.g. absent from the training windows) are left as decoded. Random draws
are per sample (``SeedSequence([seed, index, PAINT_STREAM])``), so a sample is painted the same in any batch.
Stage 1 stores the references in the model folder (:func:`build_class_references`, ``class_references.safetensors``)
with the real windows' texture statistics (``real_texture.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specdm.data.windows import d4
from specdm.errors import ConfigError, DataError

REFERENCES_FILE = "class_references.safetensors"
TEXTURE_FILE = "real_texture.json"
DECODE_MODES = ("none", "residual", "snap", "snap+residual")
PAINT_STREAM = 0x9A17  # the painter's random stream beside a sample's noise


@dataclass
class ClassReferences:
    """Real training data per class, in normalized units: ``pixels`` (n, T*C) with ``labels`` (n,) (every class,
    the ignore class too), and residual ``patches`` (m, T*C, p, p) of real minus reconstructed windows, each cut
    for class ``patch_classes`` (m,) with that class's share ``patch_cover`` (m,) of its pixels."""

    pixels: np.ndarray
    labels: np.ndarray
    patches: np.ndarray
    patch_classes: np.ndarray
    patch_cover: np.ndarray

    def save(self, model_dir) -> None:
        import torch
        from safetensors.torch import save_file

        t = {"pixels": torch.from_numpy(np.ascontiguousarray(self.pixels, np.float32)),
             "labels": torch.from_numpy(np.ascontiguousarray(self.labels, np.int64)),
             "patches": torch.from_numpy(np.ascontiguousarray(self.patches, np.float16)),
             "patch_classes": torch.from_numpy(np.ascontiguousarray(self.patch_classes, np.int64)),
             "patch_cover": torch.from_numpy(np.ascontiguousarray(self.patch_cover, np.float32))}
        save_file(t, str(Path(model_dir) / REFERENCES_FILE))

    @classmethod
    def load(cls, model_dir) -> "ClassReferences":
        from safetensors.torch import load_file

        f = Path(model_dir) / REFERENCES_FILE
        if not f.is_file():
            raise DataError(f"the model folder holds no {REFERENCES_FILE} (its stage 1 was trained before class-aware "
                            "decoding existed); retrain stage 1 (specdm train-autoencoder) to decode by class",
                            model_dir)
        d = load_file(str(f))
        return cls(d["pixels"].numpy(), d["labels"].numpy(), d["patches"].float().numpy(),
                   d["patch_classes"].numpy(), d["patch_cover"].numpy())

    def subset(self, keep: np.ndarray) -> "ClassReferences":
        """The references with only the pixels ``keep`` (bool (n,)); the patches stay."""
        return ClassReferences(self.pixels[keep], self.labels[keep], self.patches, self.patch_classes, self.patch_cover)

    def summary(self, class_names: list[str]) -> dict:
        k = len(class_names)
        px = np.bincount(self.labels, minlength=k)[:k]
        pt = np.bincount(self.patch_classes, minlength=k)[:k]
        return {"pixels_per_class": {n: int(px[j]) for j, n in enumerate(class_names)},
                "patches_per_class": {n: int(pt[j]) for j, n in enumerate(class_names)},
                "patch_size": int(self.patches.shape[-1]) if len(self.patches) else None}


def build_class_references(x: np.ndarray, y: np.ndarray, reconstruct, num_classes: int, per_class: int = 1000,
                           patches_per_class: int = 16, patch: int = 8, seed: int = 0,
                           batch_size: int = 16) -> ClassReferences:
    """References of real training windows ``x`` (N, T, C, H, W, normalized) with masks ``y`` (N, H, W):
    up to ``per_class`` pixels of each class drawn at random (seeded), and up to ``patches_per_class`` residual
    patches of ``patch`` pixels per class, at positions half a patch apart where the class covers most of the
    patch (the purest first, at random among equals). ``reconstruct(indices)`` gives stage 1's
    reconstructions (n, T, C, H, W) of windows ``indices``; only windows that give a patch are reconstructed."""
    n, t, c, h, w = x.shape
    rng = np.random.default_rng([seed, PAINT_STREAM])
    flat_y = y.reshape(-1)
    pick_px = []
    for k in range(num_classes):
        idx = np.flatnonzero(flat_y == k)
        if len(idx) > per_class:
            idx = np.sort(rng.choice(idx, per_class, replace=False))
        pick_px.append(idx)
    pick_px = np.concatenate(pick_px)
    px = np.moveaxis(x.reshape(n, t * c, h * w), 1, -1).reshape(-1, t * c)[pick_px]
    patch = min(patch, h, w)
    step = max(patch // 2, 1)
    pos = [(i, r, q) for i in range(n) for r in range(0, h - patch + 1, step) for q in range(0, w - patch + 1, step)]
    cover = np.zeros((len(pos), num_classes))
    for j, (i, r, q) in enumerate(pos):
        cover[j] = np.bincount(y[i, r : r + patch, q : q + patch].ravel(), minlength=num_classes)[:num_classes]
    cover /= patch * patch
    chosen, classes = [], []
    tiebreak = rng.random(len(pos))
    for k in range(num_classes):
        have = np.flatnonzero(cover[:, k] > 0)
        sel = have[np.lexsort((tiebreak[have], -cover[have, k]))][:patches_per_class]  # purest first, random ties
        chosen += [int(j) for j in sel]
        classes += [k] * len(sel)
    windows = sorted({pos[j][0] for j in chosen})
    residual = {}
    for s in range(0, len(windows), batch_size):
        part = windows[s : s + batch_size]
        rec = np.asarray(reconstruct(part))
        for i, r in zip(part, rec):
            residual[i] = (x[i] - r).reshape(t * c, h, w)
    patches = np.stack([residual[pos[j][0]][:, pos[j][1] : pos[j][1] + patch, pos[j][2] : pos[j][2] + patch]
                        for j in chosen]) if chosen else np.zeros((0, t * c, patch, patch), np.float32)
    cov = np.array([cover[j, k] for j, k in zip(chosen, classes)], np.float32)
    return ClassReferences(px.astype(np.float32), flat_y[pick_px].astype(np.int64), patches.astype(np.float32),
                           np.asarray(classes, np.int64), cov)


def save_real_texture(model_dir, x: np.ndarray, max_windows: int = 256) -> dict:
    """The texture statistics of real windows ``x`` (N, T, C, H, W; at most ``max_windows``, evenly spaced), with
    the edge threshold fitted on them, as ``real_texture.json`` (the dataset card compares samples with them)."""
    from specdm.metrics.texture import edge_threshold, texture_stats

    pick = np.unique(np.linspace(0, len(x) - 1, min(max_windows, len(x))).round().astype(int))
    sub = x[pick]
    stats = texture_stats(sub, edge_threshold(sub))
    (Path(model_dir) / TEXTURE_FILE).write_text(json.dumps(stats, indent=1))
    return stats


def load_real_texture(model_dir) -> dict | None:
    f = Path(model_dir) / TEXTURE_FILE if model_dir is not None else None
    return json.loads(f.read_text()) if f is not None and f.is_file() else None


class ClassPainter:
    """Class-aware decoding of normalized images with their masks (module docstring)."""

    def __init__(self, refs: ClassReferences, mode: str = "snap", alpha: float = 1.0, k: int = 5,
                 pool: str = "all"):
        if mode not in DECODE_MODES or mode == "none":
            raise ConfigError(f"unknown class-aware decoding '{mode}'; choose {', '.join(DECODE_MODES[1:])}")
        self.refs, self.mode, self.alpha, self.k, self.pool = refs, mode, float(alpha), int(k), pool
        self.residual = "residual" in mode
        self.snap = "snap" in mode
        self._nn = {}
        if self.snap:
            from sklearn.neighbors import NearestNeighbors

            for cls in np.unique(refs.labels):
                pool = refs.pixels[refs.labels == cls]
                self._nn[int(cls)] = (pool, NearestNeighbors(n_neighbors=min(self.k, len(pool)),
                                                             algorithm="brute").fit(pool))
        self._pools = {int(cls): np.flatnonzero(refs.patch_classes == cls) for cls in np.unique(refs.patch_classes)}

    def record(self, class_names: list[str]) -> dict:
        what = {"residual": "per-class residual patches (real minus stage-1 reconstruction of real training "
                            "windows of the class) tiled over each class region and added",
                "snap": f"each pixel blended (alpha {self.alpha:g}; 1 = replaced) with one of its {self.k} nearest "
                        "real training spectra of its label's class, drawn at random",
                "snap+residual": f"each pixel blended (alpha {self.alpha:g}) with one of its {self.k} nearest real "
                                 "training spectra of its label's class, then per-class residual patches tiled over "
                                 "each class region and added"}[self.mode]
        pool = {"all": "every reference spectrum of the class",
                "accepted": "the reference spectra of the class that the label-cleaning rule accepts for it (the "
                            "real-pixel forest and its per-class calibration)"}.get(self.pool, self.pool)
        return {"mode": self.mode, "alpha": self.alpha if self.snap else None, "k": self.k if self.snap else None,
                "pool": self.pool if self.snap else None,
                "rule": what + (f"; the spectra are drawn from {pool}" if self.snap else "") + "; pixels of classes "
                        "without references are left as decoded; values clipped to [0, 1] in normalized units",
                "references": self.refs.summary(class_names)}

    def __call__(self, x: np.ndarray, y: np.ndarray, rngs: list[np.random.Generator]) -> np.ndarray:
        """Paint normalized images ``x`` (N, T, C, H, W) for masks ``y`` (N, H, W); ``rngs``: one generator per
        sample. Returns the painted images clipped to [0, 1]."""
        n, t, c, h, w = x.shape
        flat = np.moveaxis(np.asarray(x, np.float64).reshape(n, t * c, h * w), 1, -1)  # (N, HW, D)
        y = np.asarray(y, np.int64).reshape(n, h * w)
        draws = [(g.random(h * w), g) for g in rngs]  # the snap choice first, then the residual tiles
        out = flat.copy()
        if self.snap:
            for cls, (pool, nn) in self._nn.items():
                sel = y == cls
                if not sel.any():
                    continue
                idx = nn.kneighbors(flat[sel], return_distance=False)
                u = np.concatenate([draws[i][0][sel[i]] for i in range(n)])
                pick = pool[idx[np.arange(len(idx)), np.minimum((u * idx.shape[1]).astype(int), idx.shape[1] - 1)]]
                out[sel] = (1 - self.alpha) * out[sel] + self.alpha * pick
        if self.residual:
            for i, (_, g) in enumerate(draws):
                out[i] += self._residual_field(y[i].reshape(h, w), g).reshape(t * c, h * w).T
        out = np.clip(out, 0.0, 1.0)
        return np.moveaxis(out, -1, 1).reshape(n, t, c, h, w).astype(np.float32)

    def _residual_field(self, mask: np.ndarray, g: np.random.Generator) -> np.ndarray:
        """The residual of one sample (D, H, W): per class present, its patches tiled over the window (random
        offset, patch and D4 transform per tile), kept inside the class's region."""
        h, w = mask.shape
        d = self.refs.pixels.shape[1] if len(self.refs.patches) == 0 else self.refs.patches.shape[1]
        field = np.zeros((d, h, w))
        if len(self.refs.patches) == 0:
            return field
        p = self.refs.patches.shape[-1]
        for cls in np.unique(mask):
            pool = self._pools.get(int(cls))
            if pool is None or not len(pool):
                continue
            oy, ox = g.integers(p, size=2)
            tile = np.zeros((d, h + p, w + p))
            for r in range(0, h + p, p):
                for q in range(0, w + p, p):
                    tile[:, r : r + p, q : q + p] = d4(self.refs.patches[pool[g.integers(len(pool))]], int(g.integers(8)))
            region = mask == cls
            field[:, region] = tile[:, oy : oy + h, ox : ox + w][:, region]
        return field


def painter_rngs(seed: int, indices) -> list[np.random.Generator]:
    """One generator per sample for the painter (batch-independent)."""
    return [np.random.default_rng([seed, int(i), PAINT_STREAM]) for i in indices]


__all__ = ["DECODE_MODES", "REFERENCES_FILE", "TEXTURE_FILE", "ClassPainter", "ClassReferences",
           "build_class_references", "load_real_texture", "painter_rngs", "save_real_texture"]
