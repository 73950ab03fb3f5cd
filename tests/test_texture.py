"""Texture statistics: within-window variation, edge density, spatial power spectra, per-class spread."""

import numpy as np
import pytest
from scipy import ndimage

from specdm.metrics.spectral import ClassSpectra
from specdm.metrics.texture import (TextureStats, class_spread, compare_texture, edge_threshold, radial_power,
                                    texture_stats)


def fields(rng, n=24, size=32, bands=5):
    """Windows of small square 'fields' of two classes with sharp borders plus pixel noise, (n, 1, C, H, W), and
    their masks."""
    y = (rng.random((n, size // 4, size // 4)) < 0.5).astype(np.int64).repeat(4, 1).repeat(4, 2)
    base = np.array([[0.2] * bands, [0.7] * bands])
    x = base[y] + rng.normal(0, 0.05, (n, size, size, bands))
    return np.moveaxis(x, -1, 1)[:, None], y


def test_real_against_itself_is_one_and_a_blurred_copy_is_smoother(rng):
    x, y = fields(rng)
    thr = edge_threshold(x)
    real = texture_stats(x, thr)
    assert real["edge_density"] == pytest.approx(0.1, abs=0.01)  # the 0.9 quantile of the real magnitudes
    same = compare_texture(real, texture_stats(x, thr))
    assert same["within_window_std"]["ratio"] == pytest.approx(1.0)
    assert all(r["ratio"] == pytest.approx(1.0) for r in same["power"]["rows"])
    blurred = ndimage.gaussian_filter(x, sigma=(0, 0, 0, 1.5, 1.5))
    cmp = compare_texture(real, texture_stats(blurred, thr))
    assert cmp["within_window_std"]["ratio"] < 1 and cmp["edge_density"]["ratio"] < 0.5
    assert cmp["power"]["rows"][-1]["ratio"] < 0.1  # the highest frequencies are gone
    assert not cmp["edge_density"]["within_tolerance"]
    # streaming in batches gives the same numbers
    acc = TextureStats(x.shape[2], thr)
    for s in range(0, len(x), 5):
        acc.update(x[s : s + 5])
    for key in ("within_window_std", "edge_density"):  # each window is scored alone: batches do not matter
        assert acc.summary()[key] == pytest.approx(real[key])
    # the gradient of one band image is the 2-D Sobel's (scipy's on a single image)
    from specdm.metrics.texture import gradient_magnitude

    img = x[0, 0, 0]
    want = np.hypot(ndimage.sobel(img, 0, mode="reflect"), ndimage.sobel(img, 1, mode="reflect"))
    np.testing.assert_allclose(gradient_magnitude(x[:1, :, :1])[0], want)


def test_radial_power_puts_a_stripe_pattern_in_its_frequency_bin():
    size = 32
    stripes = np.cos(2 * np.pi * np.arange(size) / 4)[None, None, None, :].repeat(size, 2)  # 0.25 cycles/pixel
    p = radial_power(stripes)[0, 0]
    assert np.argmax(p) == 3 and p[:3].max() < 1e-10


def test_class_spread_compares_per_class_pixel_spread(rng):
    x, y = fields(rng)
    real = ClassSpectra.of_windows(x, y, 2)
    flat = x.copy()
    flat[:, :, :, :, :] = np.array([0.2, 0.7])[y][:, None, None]  # the class means, no spread
    synth = ClassSpectra.of_windows(flat, y, 2)
    spread_r, spread_s = class_spread(real.std()), class_spread(synth.std())
    assert spread_r == pytest.approx([0.05, 0.05], rel=0.05) and np.allclose(spread_s, 0)
    cmp = compare_texture(texture_stats(x), texture_stats(flat), spread_r, spread_s, ["a", "b"], ignore_index=None)
    assert [r["name"] for r in cmp["class_spread"]] == ["a", "b"] and cmp["class_spread"][0]["ratio"] < 1e-9
    assert cmp["edge_density"]["real"] is None  # no threshold given: no edge density
