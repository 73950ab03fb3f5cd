"""Layouts (class or change masks) that layout-conditioned synthesis paints images for.

Sources:

- :class:`RealLayouts`: the real training masks under the 8 D4 transforms, drawn with
  weights that move the expected class shares toward ``targets``, and, with probability
  ``copy_paste``, one region of a rarer class pasted in from another window (at the
  same position, so shapes stay real).
- :func:`read_layouts`: a folder of the user's masks (PNG/TIFF/npy), drawn or edited by
  hand, checked for size and class values before any sampling starts.

Every draw is seeded per sample (``SeedSequence([seed, index, attempt])``), so sample
``i`` is the same in any batch, shard or resumed run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specdm.data.windows import d4
from specdm.errors import ConfigError, DataError

MASK_SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".bmp")
LAYOUTS_FILE = "real_layouts.safetensors"  # the real training windows' masks, kept in a model folder


def load_real_layouts(model_dir) -> np.ndarray:
    """The real training masks stored in a model folder by stage 1: (N, H, W) int64."""
    from safetensors.torch import load_file

    f = Path(model_dir) / LAYOUTS_FILE
    if not f.is_file():
        raise DataError(f"the model folder holds no {LAYOUTS_FILE} (trained before layouts were kept); "
                        "retrain stage 1 or give --masks DIR", model_dir)
    return load_file(str(f))["masks"].numpy().astype(np.int64)


def class_targets(spec: dict | None, balance: bool, class_names: list[str], ignore_index: int | None,
                  real_shares: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Target share of each class (K,) and which classes were asked for (K,) bool, or None for the real shares.

    ``spec`` maps class names or values to shares in (0, 1); the classes not named keep
    their real proportions among themselves and share what is left. ``balance`` gives
    every labelled class present in the real data the same share (the ignore class keeps
    its real share). Unknown names and shares that do not fit give a ConfigError.
    """
    k = len(class_names)
    if not spec and not balance:
        return None
    real = np.asarray(real_shares, dtype=np.float64)
    target = np.full(k, np.nan)
    if balance:
        present = [j for j in range(k) if real[j] > 0 and j != ignore_index]
        rest = 1.0 - (real[ignore_index] if ignore_index is not None else 0.0)
        if ignore_index is not None:
            target[ignore_index] = real[ignore_index]
        target[present] = rest / len(present)
    for key, share in (spec or {}).items():
        j = _class_index(key, class_names)
        if not 0 < float(share) < 1:
            raise ConfigError(f"class target for '{key}' is {share}; give a share between 0 and 1")
        if real[j] == 0:
            raise ConfigError(f"class '{class_names[j]}' does not occur in the real training windows; "
                              "layouts cannot be steered toward it")
        target[j] = float(share)
    fixed = ~np.isnan(target)
    left = 1.0 - target[fixed].sum()
    if left < -1e-9 or (left <= 0 and (~fixed & (real > 0)).any()):
        raise ConfigError(f"class targets add up to {target[fixed].sum():.3f}; they must leave room for the other classes")
    free = ~fixed
    target[free] = real[free] / real[free].sum() * left if real[free].sum() > 0 else 0.0
    steered = fixed.copy()
    if ignore_index is not None and balance:
        steered[ignore_index] = False
    return target, steered


def _class_index(key, class_names: list[str]) -> int:
    if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.lstrip("-").isdigit()):
        j = int(key)
        if not 0 <= j < len(class_names):
            raise ConfigError(f"class value {j} is outside 0..{len(class_names) - 1}")
        return j
    if key not in class_names:
        raise ConfigError(f"unknown class '{key}'; classes: {', '.join(class_names)}")
    return class_names.index(key)


class RealLayouts:
    """Layouts drawn from real training masks ``masks`` (N, H, W) with D4 transforms and copy-paste."""

    def __init__(self, masks: np.ndarray, num_classes: int, targets: tuple[np.ndarray, np.ndarray] | None = None,
                 copy_paste: float = 0.0, ignore_index: int | None = None, seed: int = 0):
        self.masks = np.asarray(masks, dtype=np.int64)
        if self.masks.ndim != 3 or not len(self.masks):
            raise DataError(f"need real masks (N, H, W), got {self.masks.shape}")
        self.k, self.ignore_index, self.copy_paste, self.seed = num_classes, ignore_index, copy_paste, seed
        self.fractions = np.stack([np.bincount(m.ravel(), minlength=num_classes) / m.size for m in self.masks])
        self.real_shares = self.fractions.mean(0)
        self.targets, self.steered = targets if targets is not None else (None, None)
        self.weights = self._weights()

    def _weights(self, iterations: int = 500) -> np.ndarray:
        """Window weights whose expected shares of the asked-for classes approach their targets
        (multiplicative updates on those classes only; the others follow)."""
        n = len(self.masks)
        w = np.full(n, 1.0 / n)
        if self.targets is None:
            return w
        for _ in range(iterations):
            current = w @ self.fractions
            ratio = np.ones(self.k)
            s = self.steered & (current > 0)
            ratio[s] = self.targets[s] / current[s]
            w = w * np.exp(self.fractions @ np.log(ratio) / max(self.fractions[:, s].sum(1).max(), 1e-12))
            w /= w.sum()
        return w

    def expected_shares(self) -> np.ndarray:
        """Class shares of the drawn windows before copy-paste."""
        return self.weights @ self.fractions

    def draw(self, index: int, attempt: int = 0) -> np.ndarray:
        """The layout of sample ``index`` (attempt ``attempt``): (H, W) int64."""
        rng = np.random.default_rng([self.seed, index, attempt])
        m = d4(self.masks[rng.choice(len(self.masks), p=self.weights)], int(rng.integers(8))).copy()
        if self.copy_paste > 0 and rng.random() < self.copy_paste:
            self._paste(m, rng)
        return m

    def _paste(self, m: np.ndarray, rng: np.random.Generator) -> None:
        """Paste the pixels of one class from another window (D4-transformed) onto ``m``: the class is drawn
        by how far its target exceeds its real share (asked-for classes), or by its rarity without targets."""
        present = self.real_shares > 0
        if self.targets is not None:
            need = np.where(self.steered & present, np.clip(self.targets - self.real_shares, 0, None), 0.0)
        else:
            need = np.where(present, 1.0 / np.maximum(self.real_shares, 1e-12), 0.0)
        if self.ignore_index is not None:
            need[self.ignore_index] = 0
        if need.sum() <= 0:
            return
        cls = int(rng.choice(self.k, p=need / need.sum()))
        donors = np.flatnonzero(self.fractions[:, cls] > 0)
        src = d4(self.masks[rng.choice(donors)], int(rng.integers(8)))
        m[src == cls] = cls

    def layouts(self, indices, attempt: int = 0) -> np.ndarray:
        return np.stack([self.draw(i, attempt) for i in indices])


def read_layouts(folder: str | Path, size: int, num_classes: int) -> tuple[list[Path], np.ndarray]:
    """The user's masks in ``folder`` (sorted by name): (N, size, size) int64, each checked for its
    shape and class values; one clear error naming the first bad file."""
    from specdm.io import read_mask

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("mask folder not found", folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MASK_SUFFIXES)
    if not files:
        raise DataError(f"holds no mask file ({', '.join(MASK_SUFFIXES)})", folder)
    out = []
    for f in files:
        m = np.asarray(read_mask(f))
        if m.ndim != 2:
            raise DataError(f"a layout must be one 2-D class map, got shape {m.shape}", f)
        if m.shape != (size, size):
            raise DataError(f"is {m.shape[0]}x{m.shape[1]} pixels; the model paints {size}x{size} layouts", f,
                            hint="crop or resize the masks to the model's patch size")
        if not np.issubdtype(m.dtype, np.integer) and not np.all(np.mod(m, 1) == 0):
            raise DataError("holds non-integer values; a layout holds class values", f)
        bad = sorted(set(np.unique(m).astype(np.int64).tolist()) - set(range(num_classes)))
        if bad:
            raise DataError(f"holds values {bad[:10]} outside the model's {num_classes} classes 0..{num_classes - 1}", f)
        out.append(m.astype(np.int64))
    return files, np.stack(out)
