"""Classical augmentation of a training batch: the baselines that synthetic data has to beat.

Every function takes a batch ``x``, ``y`` and a numpy ``rng`` and returns the augmented
``(x float32, y)``; ``ignore_index`` names unlabelled pixels (None: every pixel is labelled).
Batches are windows ``x (B, C, H, W)`` with masks ``y (B, H, W)``, change-detection pairs
``x (B, 2, C, H, W)`` (both dates get the same transform; noise is drawn per date) or spectra
``x (B, C)`` with labels ``y (B,)`` (treated as 1 x 1 windows).

The pieces, from the hyperspectral literature:

- :func:`flip_rotate`: the dihedral group D4 (flips, quarter turns) per sample;
- :func:`radiation_noise`: per sample ``alpha * x + beta * n``, ``alpha ~ U(0.9, 1.1)``,
  ``n ~ N(0, 1)`` per pixel, band and date, ``beta = 1/25`` (DeepHyperX's radiation noise,
  Nalepa et al.);
- :func:`mixture_noise`: every labelled pixel mixed with a random pixel of the SAME class drawn from the
  batch (or a given pool): ``(a1 * x + a2 * x_partner) / (a1 + a2) + beta * n`` with
  ``a1, a2 ~ U(0.01, 1)`` per sample (DeepHyperX's mixture noise, Chen et al., TGRS 2016); labels unchanged,
  unlabelled pixels left alone;
- :func:`copy_paste`: one class region (a connected component of one class) of a partner window pasted
  with its labels into each window, at the same place;
- :func:`cutmix`: a random rectangle of a partner window pasted with its labels (CutMix for masks);
- :func:`mixup` and :func:`gaussian_noise`: as in :func:`classical_augment`.

:data:`RECIPES` (also :data:`AUGMENTATIONS`, the name ``train_downstream(augment=NAME)`` reads) combines
them under names; ``"classical"`` is :func:`classical_augment`, the benchmark's original baseline,
unchanged. In the recipes every piece after D4 acts on a sample with probability :data:`P_STEP` (0.5;
DeepHyperX uses 0.1 for radiation and 0.2 for mixture noise; the benchmark's validation choice decides
between recipes, not between these chances). Each
function makes the same number of random draws for every batch of a given shape (class-region choice
included), so paired arms share them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from scipy import ndimage

__all__ = ["AUGMENTATIONS", "TORCH_RECIPES", "FastNoise", "MIXTURE_BETA", "MIXUP_ALPHA", "NOISE_STD", "P_STEP", "RADIATION_BETA",
           "RADIATION_GAIN", "RECIPES", "classical_augment", "copy_paste", "cutmix", "flip_rotate",
           "gaussian_noise", "mixture_noise", "mixup", "radiation_noise"]  # fmt: skip

NOISE_STD = 0.01
MIXUP_ALPHA = 0.4
RADIATION_GAIN = (0.9, 1.1)  # alpha ~ U(0.9, 1.1) (DeepHyperX)
RADIATION_BETA = 1 / 25  # std of the additive noise of radiation noise (DeepHyperX)
MIXTURE_BETA = 1 / 25  # std of the additive noise of mixture noise (DeepHyperX)
MIXTURE_WEIGHTS = (0.01, 1.0)  # a1, a2 ~ U(0.01, 1), normalized (DeepHyperX)
P_STEP = 0.5  # chance per sample of each piece after D4 in the recipes


class FastNoise:
    """A numpy ``Generator`` for the augmentations whose large Gaussian draws (noise per pixel, band and date) come
    from torch, and only for the samples that use them: the fast path of
    :func:`~specdm.evaluation.downstream.train_downstream` (``speed="fast"``), several times cheaper on
    hyperspectral batches. Every other draw is the wrapped generator's, unchanged (flips, partners, weights
    and chances are those of the plain run); the noise is another stream (torch's, seeded by ``seed``), as
    deterministic, and paired arms still share it."""

    def __init__(self, rng: np.random.Generator, seed: int):
        import torch

        self._rng = rng
        self._torch = torch.Generator().manual_seed(int(seed))

    def __getattr__(self, name: str):
        return getattr(self._rng, name)

    def normal_rows(self, shape: tuple[int, ...], rows: np.ndarray) -> np.ndarray:
        """float32 N(0, 1) noise of ``shape`` on the samples (first axis) where ``rows``, zeros elsewhere."""
        out = np.zeros(shape, np.float32)
        idx = np.flatnonzero(rows)
        if len(idx):
            out[idx] = self.normal_of(len(idx), shape[1:]).numpy()
        return out

    def normal_of(self, n: int, shape: tuple[int, ...]):
        """``n`` samples of float32 N(0, 1) noise of ``shape``, as a torch tensor (the stream of normal_rows)."""
        import torch

        return torch.randn((n, *shape), generator=self._torch)


def _gaussian(rng, shape: tuple[int, ...], rows: np.ndarray) -> np.ndarray:
    """Standard normal float32 noise of ``shape`` for the samples ``rows`` (a boolean per sample): numpy's full draw
    for a plain generator (the stream of earlier versions: rows without noise are drawn and multiplied away),
    :meth:`FastNoise.normal_rows` for a fast one."""
    if isinstance(rng, FastNoise):
        return rng.normal_rows(shape, np.asarray(rows).reshape(shape[0]))
    return rng.standard_normal(shape, dtype=np.float32)


def classical_augment(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, ignore_index: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Classical augmentation of one batch ``x (B, ..., H, W)``, ``y (B, H, W)`` (the recipe ``"classical"``).

    Per sample: horizontal and vertical flips (p = 0.5 each) and a rotation by
    a random multiple of 90 degrees (of 180 for non-square patches), applied
    to image, mask and both dates alike; then mixup with a random partner
    from the batch (p = 0.5): ``lam ~ Beta(0.4, 0.4)`` folded to ``lam >= 0.5``,
    image ``lam * x_i + (1 - lam) * x_j``, labels of the dominant sample ``i``
    kept; then Gaussian noise of std 0.01 (p = 0.5; drawn per pixel, band and
    date). The same number of random draws is made for every batch of a given
    shape, so paired arms share them. ``ignore_index`` is accepted for the common
    signature and not used. Spectra ``(B, C)``, ``(B,)`` are augmented as 1 x 1 windows.
    """
    if np.ndim(y) == 1:
        xw, yw, _ = _windows(x, y)
        return _back(*classical_augment(xw, yw, rng), True)
    b = len(x)
    d4 = _D4(rng, x.shape)
    partner, lam, noisy = _mixup_noise_draws(rng, b)
    noise = _gaussian(rng, x.shape, noisy) * NOISE_STD

    x, y = d4.apply(x), d4.apply(y)
    lam = lam.reshape(b, *[1] * (x.ndim - 1))
    x = lam * x + (1.0 - lam) * x[partner]
    x = x + noise * noisy.reshape(lam.shape)
    return x.astype(np.float32), np.ascontiguousarray(y)


def classical_augment_torch(x, y: np.ndarray, rng: FastNoise):
    """:func:`classical_augment` of a torch batch ``x (B, ..., H, W)`` (masks ``y`` as numpy), for the fast path:
    the same draws from ``rng`` (a :class:`FastNoise`), the same arithmetic, so the result equals
    ``classical_augment(x.numpy(), y, rng)`` exactly; each sample's flips and turn are one gather, and the
    operations run on torch's threads."""
    import torch

    b, (h, w) = len(x), x.shape[-2:]
    d4 = _D4(rng, x.shape)
    partner, lam, noisy = _mixup_noise_draws(rng, b)

    grid = np.arange(h * w).reshape(h, w)
    index = torch.from_numpy(np.stack([d4.one(grid, i).ravel() for i in range(b)]))
    flat = x.reshape(b, -1, h * w)
    x = torch.gather(flat, 2, index[:, None, :].expand(-1, flat.shape[1], -1)).reshape(x.shape)
    y = d4.apply(y)
    lam_t = torch.from_numpy(lam).view(b, *[1] * (x.dim() - 1))
    x = lam_t * x + (1.0 - lam_t) * x[torch.from_numpy(partner)]
    rows = np.flatnonzero(noisy)
    if len(rows):
        x[rows] += rng.normal_of(len(rows), tuple(x.shape[1:])) * NOISE_STD
    return x, np.ascontiguousarray(y)


TORCH_RECIPES = {"classical": classical_augment_torch}
"""Recipes with a torch implementation for the fast path (same draws and results as their numpy one, given a
:class:`FastNoise` generator)."""


# --------------------------------------------------------------------------- the pieces


def _mixup_noise_draws(rng, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The classical recipe's draws after the D4 ones: mixup partners, weights (1 where a sample is not mixed,
    else ``Beta(0.4, 0.4)`` folded to ``>= 0.5``) and which samples get noise."""
    mixing = rng.random(b) < 0.5
    partner = rng.permutation(b)
    lam = rng.beta(MIXUP_ALPHA, MIXUP_ALPHA, size=b)
    lam = np.where(mixing, np.maximum(lam, 1.0 - lam), 1.0).astype(np.float32)
    return partner, lam, rng.random(b) < 0.5


class _D4:
    """Per-sample flips (0.5 each, horizontal then vertical) and quarter turns (half turns for non-square
    windows) drawn from ``rng`` for a batch of ``shape`` (in this order: flips, then turns); ``on`` limits them
    to some samples. Applied alike to images, masks and both dates."""

    def __init__(self, rng, shape: tuple, on: np.ndarray | None = None):
        b, (h, w) = shape[0], shape[-2:]
        self.flips = rng.random((b, 2)) < 0.5
        self.turns = rng.integers(4, size=b) if w == h else 2 * rng.integers(2, size=b)
        self.on = np.ones(b, bool) if on is None else on

    def one(self, a: np.ndarray, i: int) -> np.ndarray:
        if not self.on[i]:
            return a
        if self.flips[i, 0]:
            a = a[..., ::-1]
        if self.flips[i, 1]:
            a = a[..., ::-1, :]
        return np.rot90(a, self.turns[i], axes=(-2, -1))

    def apply(self, a: np.ndarray) -> np.ndarray:
        return np.stack([self.one(a[i], i) for i in range(len(a))])


def _windows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Spectra ``(B, C)``, ``(B,)`` as 1 x 1 windows (and whether they were); windows as they are."""
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim == 1:
        if x.ndim != 2 or len(x) != len(y):
            raise ValueError(f"spectra x {x.shape} and labels y {y.shape} must be (B, C) and (B,)")
        return x[:, :, None, None], y[:, None, None], True
    if y.ndim != 3 or x.ndim not in (4, 5) or x.shape[0] != y.shape[0] or x.shape[-2:] != y.shape[-2:]:
        raise ValueError(f"x {x.shape} and y {y.shape} must be (B, C, H, W) or (B, 2, C, H, W) and (B, H, W)")
    return x, y, False


def _back(x: np.ndarray, y: np.ndarray, pixels: bool) -> tuple[np.ndarray, np.ndarray]:
    if pixels:
        x, y = x[:, :, 0, 0], y[:, 0, 0]
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)


def _per_sample(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape(len(v), *[1] * (ndim - 1))


def _labelled(y: np.ndarray, ignore_index: int | None) -> np.ndarray:
    return np.ones(y.shape, bool) if ignore_index is None else y != ignore_index


def flip_rotate(x, y, rng: np.random.Generator, ignore_index: int | None = None, p: float = 1.0):
    """D4 per sample: horizontal and vertical flips (0.5 each) and a random number of quarter turns
    (half turns for non-square windows), image, mask and both dates alike; with chance ``p`` per sample."""
    x, y, pixels = _windows(x, y)
    b = len(x)
    on = rng.random(b) < p
    d4 = _D4(rng, x.shape, on)
    return _back(d4.apply(x), d4.apply(y), pixels)


def radiation_noise(x, y, rng: np.random.Generator, ignore_index: int | None = None, p: float = 1.0,
                    gain: tuple[float, float] = RADIATION_GAIN, beta: float = RADIATION_BETA):  # fmt: skip
    """Radiation noise (DeepHyperX, Nalepa et al.): with chance ``p`` per sample, ``alpha * x + beta * n``,
    ``alpha ~ U(gain)`` per sample (both dates alike), ``n ~ N(0, 1)`` per pixel, band and date. Labels kept."""
    x, y, pixels = _windows(x, y)
    b = len(x)
    on = _per_sample(rng.random(b) < p, x.ndim)
    alpha = _per_sample(rng.uniform(*gain, size=b).astype(np.float32), x.ndim)
    noise = _gaussian(rng, x.shape, on)
    x = np.where(on, alpha * x + np.float32(beta) * noise, x)
    return _back(x, y, pixels)


def _pixels(x: np.ndarray) -> np.ndarray:
    """``(B, ..., H, W)`` -> ``(B * H * W, F)``: one row per pixel (all bands of all dates)."""
    b, (h, w) = len(x), x.shape[-2:]
    return np.moveaxis(x.reshape(b, -1, h * w), 1, 2).reshape(b * h * w, -1)


def mixture_noise(x, y, rng: np.random.Generator, ignore_index: int | None = None, p: float = 1.0,
                  beta: float = MIXTURE_BETA, pool: tuple[np.ndarray, np.ndarray] | None = None):  # fmt: skip
    """Same-class mixture noise (DeepHyperX, Chen et al. TGRS 2016), with chance ``p`` per sample.

    Every labelled pixel (label not ``ignore_index``) of a chosen sample becomes
    ``(a1 * x + a2 * x_partner) / (a1 + a2) + beta * n``: ``a1, a2 ~ U(0.01, 1)`` per sample, ``n ~ N(0, 1)``
    per pixel, band and date, and ``x_partner`` a pixel (all bands of both dates) drawn uniformly from the
    pixels of the SAME class in ``pool`` (windows ``(N, ..., H, W)`` with masks ``(N, H, W)``, or spectra
    ``(N, F)`` with labels ``(N,)``), by default the labelled pixels of the batch itself. Labels are unchanged;
    unlabelled pixels, and pixels of a class the pool lacks, are left alone.
    """
    x, y, pixels = _windows(x, y)
    b, (h, w) = len(x), y.shape[-2:]
    on = rng.random(b) < p
    weights = rng.uniform(*MIXTURE_WEIGHTS, size=(b, 2)).astype(np.float32)
    pick = rng.random(b * h * w)
    noise = _gaussian(rng, x.shape, on)
    flat, labels = _pixels(x), y.reshape(-1)
    if pool is None:
        keep = _labelled(labels, ignore_index)
        pool_x, pool_y = flat[keep], labels[keep]
    else:
        px, py = np.asarray(pool[0]), np.asarray(pool[1])
        pool_x = px.reshape(len(px), -1) if py.ndim == 1 else _pixels(px)
        pool_y = py.reshape(-1)
        if pool_x.shape[1] != flat.shape[1] or len(pool_x) != len(pool_y):
            raise ValueError(f"mixture pool {px.shape}, {py.shape} does not match the batch {x.shape}")
        keep = _labelled(pool_y, ignore_index)
        pool_x, pool_y = pool_x[keep], pool_y[keep]
    classes, count = np.unique(pool_y, return_counts=True)
    order = np.argsort(pool_y, kind="stable")  # the pool's pixels of class classes[k]: order[start[k]:][:count[k]]
    start = np.cumsum(count) - count
    sample = np.repeat(np.arange(b), h * w)
    k = np.minimum(np.searchsorted(classes, labels), max(len(classes) - 1, 0))
    target = on[sample] & _labelled(labels, ignore_index) & (len(classes) > 0)
    if len(classes):
        target &= classes[k] == labels
    if not target.any():
        return _back(x, y, pixels)
    k = k[target]
    partner = pool_x[order[start[k] + np.minimum((pick[target] * count[k]).astype(np.int64), count[k] - 1)]]
    a1, a2 = weights[sample[target], :1], weights[sample[target], 1:]
    noise_flat = _pixels(noise)[target]
    mixed = flat.copy()
    mixed[target] = (a1 * flat[target] + a2 * partner) / (a1 + a2) + np.float32(beta) * noise_flat
    out = np.moveaxis(mixed.reshape(b, h * w, -1), 1, 2).reshape(x.shape)
    return _back(out, y, pixels)


def _class_regions(mask: np.ndarray, ignore_index: int | None) -> list[np.ndarray]:
    """The connected regions (4-neighbourhood) of each labelled class of ``mask``, as boolean maps."""
    regions = []
    for c in np.unique(mask):
        if c == ignore_index:
            continue
        parts, n = ndimage.label(mask == c)
        regions += [parts == i for i in range(1, n + 1)]
    return regions


def copy_paste(x, y, rng: np.random.Generator, ignore_index: int | None = None, p: float = 1.0):
    """Class-region copy-paste, with chance ``p`` per sample: a class region (a connected component of one
    labelled class, chosen uniformly) of a random partner window of the batch is pasted into the window at the
    same place, its pixels (every band of both dates) with their labels. A partner without labelled pixels
    (or the window itself as partner) leaves the window as it was."""
    x, y, pixels = _windows(x, y)
    b = len(x)
    on = rng.random(b) < p
    partner = rng.permutation(b)
    pick = rng.random(b)
    out_x, out_y = x.copy(), y.copy()
    for i in np.flatnonzero(on):
        j = partner[i]
        regions = _class_regions(y[j], ignore_index)
        if not regions or j == i:
            continue
        region = regions[min(int(pick[i] * len(regions)), len(regions) - 1)]
        out_x[i][..., region] = x[j][..., region]
        out_y[i][region] = y[j][region]
    return _back(out_x, out_y, pixels)


def cutmix(x, y, rng: np.random.Generator, ignore_index: int | None = None, p: float = 1.0):
    """CutMix for masks, with chance ``p`` per sample: a rectangle of a random partner window, of side
    ``sqrt(1 - lam)`` times the window's (``lam ~ U(0, 1)``) around a uniform centre, clipped to the window,
    is pasted with its labels at the same place."""
    x, y, pixels = _windows(x, y)
    b, (h, w) = len(x), y.shape[-2:]
    on = rng.random(b) < p
    partner = rng.permutation(b)
    cut = np.sqrt(1.0 - rng.random(b))
    cy, cx = rng.integers(h, size=b), rng.integers(w, size=b)
    out_x, out_y = x.copy(), y.copy()
    for i in np.flatnonzero(on):
        j, hh, ww = partner[i], round(h * cut[i]), round(w * cut[i])
        r0, r1 = np.clip([cy[i] - hh // 2, cy[i] + hh - hh // 2], 0, h)
        c0, c1 = np.clip([cx[i] - ww // 2, cx[i] + ww - ww // 2], 0, w)
        out_x[i][..., r0:r1, c0:c1] = x[j][..., r0:r1, c0:c1]
        out_y[i][r0:r1, c0:c1] = y[j][r0:r1, c0:c1]
    return _back(out_x, out_y, pixels)


def mixup(x, y, rng: np.random.Generator, ignore_index: int | None = None, p: float = 1.0,
          alpha: float = MIXUP_ALPHA):  # fmt: skip
    """Mixup with a random partner of the batch, with chance ``p`` per sample: ``lam ~ Beta(alpha, alpha)``
    folded to ``lam >= 0.5``, image ``lam * x_i + (1 - lam) * x_j``, the dominant sample's labels kept."""
    x, y, pixels = _windows(x, y)
    b = len(x)
    on = rng.random(b) < p
    partner = rng.permutation(b)
    lam = rng.beta(alpha, alpha, size=b)
    lam = _per_sample(np.where(on, np.maximum(lam, 1.0 - lam), 1.0).astype(np.float32), x.ndim)
    return _back(lam * x + (1.0 - lam) * x[partner], y, pixels)


def gaussian_noise(x, y, rng: np.random.Generator, ignore_index: int | None = None, p: float = 1.0,
                   std: float = NOISE_STD):  # fmt: skip
    """Gaussian noise of std ``std`` per pixel, band and date, with chance ``p`` per sample."""
    x, y, pixels = _windows(x, y)
    on = _per_sample(rng.random(len(x)) < p, x.ndim)
    noise = _gaussian(rng, x.shape, on) * np.float32(std)
    return _back(x + noise * on, y, pixels)


# --------------------------------------------------------------------------- recipes

Augmentation = Callable[..., tuple[np.ndarray, np.ndarray]]


def _recipe(name: str, *steps: Augmentation) -> Augmentation:
    def augment(x, y, rng: np.random.Generator, ignore_index: int | None = None):
        for step in steps:
            x, y = step(x, y, rng, ignore_index=ignore_index)
        return x, y

    augment.__name__ = augment.__qualname__ = f"recipe_{name}"
    augment.__doc__ = f"Recipe {name!r}: " + ", then ".join(
        (s.func.__name__ + (f" (p = {s.keywords['p']})" if "p" in s.keywords else "")) if isinstance(s, partial)
        else s.__name__ for s in steps)  # fmt: skip
    return augment


_p = partial  # a piece of a recipe with its chance per sample
RECIPES: dict[str, Augmentation] = {
    "flips": _recipe("flips", flip_rotate),
    "classical": classical_augment,
    "spectral": _recipe("spectral", flip_rotate, _p(radiation_noise, p=P_STEP), _p(mixture_noise, p=P_STEP)),
    "copypaste": _recipe("copypaste", flip_rotate, _p(copy_paste, p=P_STEP), _p(cutmix, p=P_STEP)),
    "all": _recipe("all", flip_rotate, _p(copy_paste, p=P_STEP), _p(cutmix, p=P_STEP), _p(mixture_noise, p=P_STEP),
                   _p(radiation_noise, p=P_STEP), _p(mixup, p=P_STEP), _p(gaussian_noise, p=P_STEP)),
}  # fmt: skip
"""Named batch augmentations: ``flips`` (D4), ``classical`` (D4 + mixup + noise, :func:`classical_augment`),
``spectral`` (D4 + radiation + same-class mixture noise), ``copypaste`` (D4 + class-region copy-paste +
CutMix), ``all`` (D4 + copy-paste + CutMix + mixture + radiation + mixup + noise). A recipe of one's own
(any ``f(x, y, rng, ignore_index=None)``) may be added to this dict."""

AUGMENTATIONS = RECIPES
"""Batch augmentations by name, as :func:`specdm.evaluation.downstream.train_downstream` takes them
(the same dict as :data:`RECIPES`)."""
