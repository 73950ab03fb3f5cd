"""Classical augmentation recipes: the literature's pieces keep labels with their pixels, are seeded, and the
benchmark's original ``classical`` recipe is unchanged bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from specdm.augment import classical as aug
from specdm.augment.classical import (RECIPES, classical_augment, copy_paste, cutmix, flip_rotate, mixture_noise,
                                      radiation_noise)
from specdm.evaluation.downstream import train_downstream

pytestmark = pytest.mark.usefixtures("one_thread")


def _classical_before(x, y, rng):
    """``classical_augment`` as it was before the recipes were added (commit 8a9b5f3), verbatim."""
    b = len(x)
    flips = rng.random((b, 2)) < 0.5
    turns = rng.integers(4, size=b) if x.shape[-1] == x.shape[-2] else 2 * rng.integers(2, size=b)
    mixing = rng.random(b) < 0.5
    partner = rng.permutation(b)
    lam = rng.beta(0.4, 0.4, size=b)
    lam = np.where(mixing, np.maximum(lam, 1.0 - lam), 1.0).astype(np.float32)
    noisy = rng.random(b) < 0.5
    noise = rng.standard_normal(x.shape, dtype=np.float32) * 0.01

    def geometric(a, i):
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


@pytest.mark.parametrize("shape", [(8, 3, 8, 8), (5, 2, 3, 8, 8), (6, 4, 8, 12), (16, 7, 1, 1)])
def test_classical_recipe_is_unchanged_bit_for_bit(rng, shape):
    x = rng.random(shape, dtype=np.float32)
    y = rng.integers(0, 4, size=(shape[0], *shape[-2:]))
    for seed in range(4):
        want = _classical_before(x, y, np.random.default_rng(seed))
        for got in (classical_augment(x, y, np.random.default_rng(seed)),
                    RECIPES["classical"](x, y, np.random.default_rng(seed), ignore_index=0)):  # fmt: skip
            assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    assert aug.AUGMENTATIONS is aug.RECIPES and list(RECIPES) == ["flips", "classical", "spectral", "copypaste", "all"]


def _ranged_classes(rng, n=12, bands=5, size=8, pair=False):
    """Blocky masks of classes 0 (unlabelled) to 3; a pixel of class k has every value in [10 k, 10 k + 1]."""
    y = rng.integers(0, 4, size=(n, size // 2, size // 2)).repeat(2, axis=1).repeat(2, axis=2)
    shape = (n, 2, bands, size, size) if pair else (n, bands, size, size)
    x = (10.0 * (y[:, None, None] if pair else y[:, None]) + rng.random(shape)).astype(np.float32)
    return x, y


def _in_own_range(x, y):
    k = 10.0 * (y[:, None, None] if x.ndim == 5 else y[:, None])
    return (x >= k) & (x <= k + 1)


def test_radiation_noise_scales_each_sample_and_keeps_labels(rng):
    x, y = _ranged_classes(rng, pair=True)
    xa, ya = radiation_noise(x, y, np.random.default_rng(1), beta=0.0)
    np.testing.assert_array_equal(ya, y)
    ratio = xa / x
    per_sample = ratio.reshape(len(x), -1)
    np.testing.assert_allclose(per_sample, per_sample[:, :1].repeat(per_sample.shape[1], 1), rtol=1e-5)  # both dates
    assert ((per_sample >= 0.9 - 1e-6) & (per_sample <= 1.1 + 1e-6)).all() and per_sample.std() > 0.01
    noisy, _ = radiation_noise(x, y, np.random.default_rng(1))  # beta = 1/25 by default: alpha x + N(0, 1/25^2)
    assert (noisy - xa).std() == pytest.approx(1 / 25, rel=0.05)
    same, _ = radiation_noise(x, y, np.random.default_rng(1), p=0.0)
    np.testing.assert_array_equal(same, x)
    spectra, labels = radiation_noise(x[:, 0, :, 0, 0], y[:, 0, 0], np.random.default_rng(1))
    assert spectra.shape == (len(x), x.shape[2]) and np.array_equal(labels, y[:, 0, 0])


@pytest.mark.parametrize("pair", [False, True])
def test_mixture_noise_mixes_only_within_a_class_and_leaves_unlabelled_pixels(rng, pair):
    x, y = _ranged_classes(rng, pair=pair)
    xa, ya = mixture_noise(x, y, np.random.default_rng(2), ignore_index=0, beta=0.0)
    np.testing.assert_array_equal(ya, y)
    assert _in_own_range(xa, y).all()  # a convex mix of two pixels of one class stays in that class's range
    unlabelled = (y == 0)[:, None, None] if pair else (y == 0)[:, None]
    unlabelled = np.broadcast_to(unlabelled, x.shape)
    np.testing.assert_array_equal(xa[unlabelled], x[unlabelled])
    assert (xa[~unlabelled] != x[~unlabelled]).mean() > 0.9  # labelled pixels are mixed
    # with noise, the unlabelled pixels are still untouched; ignore_index None mixes every pixel
    noisy, _ = mixture_noise(x, y, np.random.default_rng(2), ignore_index=0)
    np.testing.assert_array_equal(noisy[unlabelled], x[unlabelled])
    everything, _ = mixture_noise(x, y, np.random.default_rng(2), ignore_index=None, beta=0.0)
    assert _in_own_range(everything, y).all() and (everything[unlabelled] != x[unlabelled]).mean() > 0.9


def test_mixture_partners_come_from_the_given_pool_of_the_same_class(rng):
    x, y = _ranged_classes(rng)
    # pool: class 1 at exactly 15, class 2 at exactly 25; no class 3, and class-0 pixels that must not be used
    pool_y = np.array([1, 1, 2, 0, 0])
    pool_x = np.repeat(np.array([15.0, 15.0, 25.0, 999.0, 999.0], np.float32)[:, None], x.shape[1], 1)
    xa, ya = mixture_noise(x, y, np.random.default_rng(3), ignore_index=0, beta=0.0, pool=(pool_x, pool_y))
    np.testing.assert_array_equal(ya, y)
    for k, target in ((1, 15.0), (2, 25.0)):
        own, mixed = x.transpose(0, 2, 3, 1)[y == k], xa.transpose(0, 2, 3, 1)[y == k]
        assert (mixed > own).all() and (mixed <= target + 1e-4).all()  # pulled toward the pool's spectrum
    for k in (0, 3):  # unlabelled, and a class the pool lacks: left alone
        np.testing.assert_array_equal(xa.transpose(0, 2, 3, 1)[y == k], x.transpose(0, 2, 3, 1)[y == k])
    # pool as windows works the same
    xw, _ = mixture_noise(x, y, np.random.default_rng(3), ignore_index=0, beta=0.0, pool=(x[:2], y[:2]))
    assert _in_own_range(xw, y).all()


def _source_coded(rng, n=10, size=8, bands=2, pair=False):
    """Images whose bands say where each pixel comes from: band 0 window, band 1 row, band 2 column."""
    y = rng.integers(0, 4, size=(n, size // 2, size // 2)).repeat(2, axis=1).repeat(2, axis=2)
    y[:, :2, :2] = rng.integers(0, 4, size=(n, 2, 2))  # some small regions
    win, row, col = np.meshgrid(np.arange(n), np.arange(size), np.arange(size), indexing="ij")
    x = np.stack([win, row, col, *[np.zeros_like(win)] * (bands - 2 + 1)], axis=1).astype(np.float32)
    return (np.stack([x, x], axis=1) if pair else x), y


@pytest.mark.parametrize("pair", [False, True])
def test_copy_paste_moves_one_class_region_with_its_labels(rng, pair):
    x, y = _source_coded(rng, pair=pair)
    xa, ya = copy_paste(x, y, np.random.default_rng(4), ignore_index=0)
    xs = xa[:, 0] if pair else xa
    if pair:
        np.testing.assert_array_equal(xa[:, 0], xa[:, 1])
    src, row, col = xs[:, 0].astype(int), xs[:, 1].astype(int), xs[:, 2].astype(int)
    n, size = y.shape[0], y.shape[-1]
    _, rr, cc = np.meshgrid(np.arange(n), np.arange(size), np.arange(size), indexing="ij")
    np.testing.assert_array_equal(row, rr)  # pasted at the same place
    np.testing.assert_array_equal(col, cc)
    np.testing.assert_array_equal(ya, y[src, rr, cc])  # every pixel carries its source pixel's label
    pasted = 0
    for i in range(n):
        moved = src[i] != i
        if not moved.any():
            continue
        pasted += 1
        j = np.unique(src[i][moved])
        assert len(j) == 1
        classes = np.unique(y[j[0]][moved])
        assert len(classes) == 1 and classes[0] != 0  # one labelled class ...
        parts, count = ndimage.label(y[j[0]] == classes[0])
        whole = parts == parts[moved][0]
        assert ((whole & (src[i] == j[0])) | ~whole).all()  # ... its whole connected region (pixels the same
        assert not (moved & ~whole).any()  # in i and j may read as not moved), nothing else
    assert pasted >= 3


def test_cutmix_pastes_a_rectangle_with_its_labels(rng):
    x, y = _source_coded(rng)
    xa, ya = cutmix(x, y, np.random.default_rng(5))
    src = xa[:, 0].astype(int)
    n, size = y.shape[0], y.shape[-1]
    _, rr, cc = np.meshgrid(np.arange(n), np.arange(size), np.arange(size), indexing="ij")
    np.testing.assert_array_equal(xa[:, 1], rr)
    np.testing.assert_array_equal(ya, y[src, rr, cc])
    boxes = 0
    for i in range(n):
        moved = src[i] != i
        if moved.any():
            boxes += 1
            rows, cols = np.flatnonzero(moved.any(1)), np.flatnonzero(moved.any(0))
            assert moved[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all()  # a filled rectangle
    assert boxes >= 3


@pytest.mark.parametrize("name", sorted(RECIPES))
@pytest.mark.parametrize("form", ["windows", "pairs", "spectra"])
def test_every_recipe_is_seeded_keeps_shapes_and_treats_both_dates_alike(rng, name, form):
    x, y = _ranged_classes(rng, n=16, pair=form == "pairs")
    if form == "spectra":
        x, y = x[:, :, 0, 0], y[:, 0, 0]
    recipe = RECIPES[name]
    a = recipe(x, y, np.random.default_rng(7), ignore_index=0)
    b = recipe(x, y, np.random.default_rng(7), ignore_index=0)
    c = recipe(x, y, np.random.default_rng(8), ignore_index=0)
    assert a[0].shape == x.shape and a[0].dtype == np.float32 and a[1].shape == y.shape
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0]) or (form, name) == ("spectra", "flips")  # D4 of a pixel: itself
    assert set(np.unique(a[1])) <= set(np.unique(y))
    if form == "pairs" and name in ("flips", "copypaste"):  # no noise: both dates stay one image
        same = np.stack([x[:, 0], x[:, 0]], axis=1)
        out = recipe(same, y, np.random.default_rng(7), ignore_index=0)[0]
        np.testing.assert_array_equal(out[:, 0], out[:, 1])


def test_flip_rotate_keeps_each_pixel_with_its_label(rng):
    x, y = _ranged_classes(rng, n=32)
    xa, ya = flip_rotate(x, y, np.random.default_rng(0))
    assert _in_own_range(xa, ya).all() and not np.array_equal(ya, y)


def test_train_downstream_takes_every_recipe_with_its_ignore_index(rng, monkeypatch):
    x, y = _ranged_classes(rng, n=6)
    x /= 40.0
    seen = []
    for name, fn in list(RECIPES.items()):
        monkeypatch.setitem(RECIPES, name, lambda *a, _fn=fn, **kw: seen.append(kw) or _fn(*a, **kw))
    for name in RECIPES:
        train_downstream("unet", [(x, y)], steps=1, batch_size=4, lr=1e-3, seed=0, ignore_index=0, augment=name,
                         num_classes=4, progress=False)  # fmt: skip
    assert seen == [{"ignore_index": 0}] * len(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_fast_noise_changes_only_the_noise_and_only_where_it_is_added(rng, name):
    """A FastNoise generator (the fast path of train_downstream) makes every numpy draw of the plain run (flips,
    partners, weights, chances) and replaces only the Gaussian noise: fast and plain outputs differ by noise-sized
    amounts at most, labels are identical, and a sample that gets no noise is identical."""
    x = rng.random((8, 5, 12, 12)).astype(np.float32)
    y = rng.integers(0, 3, (8, 12, 12))
    plain_x, plain_y = RECIPES[name](x, y, np.random.default_rng(3), ignore_index=0)
    fast_x, fast_y = RECIPES[name](x, y, aug.FastNoise(np.random.default_rng(3), 11), ignore_index=0)
    again_x, _ = RECIPES[name](x, y, aug.FastNoise(np.random.default_rng(3), 11), ignore_index=0)
    np.testing.assert_array_equal(fast_y, plain_y)
    np.testing.assert_array_equal(fast_x, again_x)  # deterministic for its seeds
    diff = np.abs(fast_x - plain_x)  # noise of std 0.01 or beta = 1/25, twice at most (radiation, then mixture)
    assert fast_x.dtype == np.float32 and diff.max() < 1.0 and diff.mean() < 0.15
    if name in ("flips", "copypaste"):  # no Gaussian noise in these recipes
        np.testing.assert_array_equal(fast_x, plain_x)


def test_fast_noise_draws_only_the_selected_samples():
    fast = aug.FastNoise(np.random.default_rng(0), 5)
    rows = np.array([True, False, True, False])
    n = fast.normal_rows((4, 3, 50, 50), rows)
    assert (n[~rows] == 0).all() and n.dtype == np.float32
    assert abs(n[rows].mean()) < 0.05 and abs(n[rows].std() - 1) < 0.05
    out, _ = aug.gaussian_noise(np.zeros((4, 3, 50, 50), np.float32), np.zeros((4, 50, 50), np.int64),
                                aug.FastNoise(np.random.default_rng(1), 5), p=0.5)
    noisy = np.abs(out).reshape(4, -1).max(1) > 0
    assert 0 < noisy.sum() < 4  # some samples got noise, the others are untouched


@pytest.mark.parametrize("shape", [(6, 5, 12, 12), (6, 2, 3, 8, 8), (4, 3, 6, 10)])
def test_torch_classical_equals_numpy_classical_with_the_same_draws(rng, shape):
    """The fast path's torch implementation of `classical` (one gather per sample, torch's threads) makes the same
    draws and the same float32 arithmetic as the numpy recipe: identical images and masks."""
    import torch

    x = rng.random(shape).astype(np.float32)
    y = rng.integers(0, 3, (shape[0], *shape[-2:]))
    want_x, want_y = classical_augment(x, y, aug.FastNoise(np.random.default_rng(5), 9))
    got_x, got_y = aug.TORCH_RECIPES["classical"](torch.from_numpy(x.copy()), y, aug.FastNoise(np.random.default_rng(5), 9))
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_array_equal(got_x.numpy(), want_x)


def test_train_downstream_fast_path_uses_fast_noise_and_the_torch_recipe(rng, monkeypatch):
    """speed='fast': the batch augmentation gets a FastNoise generator and `classical` runs in torch; the pixel
    model augments the spectra it draws, not the whole windows."""
    calls = []
    real = aug.TORCH_RECIPES["classical"]
    monkeypatch.setitem(aug.TORCH_RECIPES, "classical", lambda x, y, r: calls.append(("torch", type(r).__name__))
                        or real(x, y, r))
    x = rng.random((8, 4, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, (8, 8, 8))
    train_downstream("unet", [(x, y)], 2, 4, 1e-3, 0, None, augment="classical", num_classes=3, progress=False,
                     speed="fast")
    assert calls == [("torch", "FastNoise")] * 2
    seen = []
    monkeypatch.setitem(aug.AUGMENTATIONS, "flips", lambda x, y, r, ignore_index=None: seen.append(x.shape) or (x, y))
    train_downstream("pixel", [(x, y)], 2, 4, 1e-3, 0, 0, augment="flips", num_classes=3, progress=False, speed="fast")
    assert all(s[-2:] == (1, 1) for s in seen) and len(seen) == 2  # spectra (n, C, 1, 1), not windows
