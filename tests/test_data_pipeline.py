"""Normalization, spatially disjoint splits and patches."""

import numpy as np
import pytest
import torch

from specdm.data.datamodule import prepare
from specdm.data.normalize import Normalizer
from specdm.data.windows import d4, make_windows, positions
from specdm.data.splits import Region, split_regions
from specdm.errors import ConfigError, DataError
from specdm.scene import Scene


def test_normalization_round_trip(rng):
    x = rng.uniform(-50, 5000, (20, 30, 7)).astype(np.float32)
    norm = Normalizer.fit(x[:10])
    back = norm.inverse(norm(x))
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-2)
    y = norm(x[:10])
    np.testing.assert_allclose(y.reshape(-1, 7).min(0), 0, atol=1e-6)
    np.testing.assert_allclose(y.reshape(-1, 7).max(0), 1, atol=1e-6)
    again = Normalizer.from_dict(norm.to_dict())
    np.testing.assert_array_equal(again(x), norm(x))


def test_normalization_percentiles_clip(rng):
    x = rng.normal(0, 1, (1000, 3)).astype(np.float32)
    norm = Normalizer.fit(x, (5, 95), clip=True)
    y = norm(x)
    assert y.min() == 0 and y.max() == 1
    assert 0.08 < (y == 0).mean() + (y == 1).mean() < 0.12  # ~10 % clipped


def test_positions_cover_edge():
    assert positions(10, 4, 3) == [0, 3, 6]
    assert positions(11, 4, 3) == [0, 3, 6, 7]
    assert positions(3, 4, 1) == []


@pytest.mark.parametrize("seed", range(25))
def test_no_test_pixel_in_any_training_patch(seed):
    """For random scenes, split and patch settings, training windows never touch test pixels."""
    rng = np.random.default_rng(seed)
    h, w = rng.integers(20, 80, 2)
    scene = Scene([rng.random((h, w, 3), dtype=np.float32)], rng.integers(0, 3, (h, w)), ["a", "b", "c"])
    kind = ["rows", "cols"][seed % 2]
    n = h if kind == "rows" else w
    cut = int(rng.integers(8, n - 8))
    size = int(rng.integers(2, 8))
    stride = int(rng.integers(1, size + 1))
    split = split_regions([scene], {"kind": kind, "train": [0, cut], "test": [cut, n]})
    windows = make_windows([scene], split["train"], size, stride)
    test_px = np.zeros((h, w), bool)
    for g in split["test"]:
        test_px[g.r0 : g.r1, g.c0 : g.c1] = True
    covered = np.zeros((h, w), bool)
    for win in windows:
        assert not test_px[win.r : win.r + size, win.c : win.c + size].any()
        covered[win.r : win.r + size, win.c : win.c + size] = True
    assert covered[~test_px].all()  # and the whole training region is used


def test_overlapping_split_is_refused(rng):
    scene = Scene([rng.random((20, 20, 2), dtype=np.float32)], np.zeros((20, 20), int), ["a"])
    with pytest.raises(ConfigError, match="overlap"):
        split_regions([scene], {"kind": "rows", "train": [0, 12], "test": [10, 20]})


def test_window_cleaning(rng):
    img = rng.random((16, 16, 2), dtype=np.float32)
    img[:8] = 0  # blank top half
    mask = np.zeros((16, 16), int)
    mask[:, 8:] = 1  # right half labelled
    scene = Scene([img], mask, ["unlabelled", "x"], ignore_index=0)
    regions = [Region(0, 0, 16, 0, 16)]
    wins = make_windows([scene], regions, 8, 8, min_labelled=0.5, max_blank=0.5)
    assert {(w.r, w.c) for w in wins} == {(8, 8)}
    with pytest.raises(DataError, match="no patch is left"):
        make_windows([scene], [Region(0, 0, 16, 0, 8)], 8, 4, min_labelled=0.5)
    with pytest.raises(DataError, match="larger than every split region"):
        make_windows([scene], regions, 17, 1)


def test_d4_transforms_are_the_dihedral_group(rng):
    x = rng.random((2, 5, 5))
    outs = [d4(x, k) for k in range(8)]
    assert len({o.tobytes() for o in outs}) == 8
    np.testing.assert_array_equal(d4(x, 0), x)


def test_prepare_fits_normalization_on_training_rows_only(rng):
    img = rng.random((40, 20, 3), dtype=np.float32)
    img[30:] += 100.0  # test rows are far brighter
    scene = Scene([img], rng.integers(0, 2, (40, 20)), ["a", "b"])
    data = prepare([scene], {"kind": "rows", "train": [0, 30], "test": [30, 40]}, 8, 4)
    assert data.normalizer.high.max() < 2  # the bright test rows did not enter the fit
    x, y = data.train.batch([0, 1], [0, 5])
    assert x.shape == (2, 1, 3, 8, 8) and y.shape == (2, 8, 8)
    assert 0 <= x.min() and x.max() <= 1


def test_window_dataset_returns_dict_samples_and_plots_them(rng):
    """torchgeo-style samples: the window's normalized values and labels; plot shows them with the shared stretch."""
    from conftest import fake_scene

    from specdm.data.datamodule import prepare
    from specdm.data.dataset import WindowDataset
    from specdm.data.plot import class_colors, false_colour
    from specdm.scene import Scene

    images, mask = fake_scene(rng, size=32, bands=5, classes=3)
    scene = Scene(images, mask, ["a", "b", "c"])
    data = prepare([scene], {"kind": "rows", "train": [0, 24], "test": [24, 32]}, 8, 8)
    ds = WindowDataset(data.train, rgb_bands=(2, 1, 0), class_names=scene.class_names)
    w = data.train.windows[1]
    sample = ds[1]
    assert sample["image"].dtype == torch.float32 and sample["mask"].dtype == torch.int64
    np.testing.assert_array_equal(sample["mask"].numpy(), mask[w.r : w.r + 8, w.c : w.c + 8])
    np.testing.assert_allclose(sample["image"].numpy(),
                               data.normalizer(images[0][w.r : w.r + 8, w.c : w.c + 8]).transpose(2, 0, 1), rtol=1e-6)
    fig = ds.plot(sample, stretch=(np.zeros(3), np.ones(3)))
    img_ax, mask_ax = fig.axes
    shown = img_ax.images[0].get_array()
    np.testing.assert_allclose(shown, false_colour(sample["image"].numpy().transpose(1, 2, 0), (2, 1, 0),
                                                   (np.zeros(3), np.ones(3))))
    np.testing.assert_allclose(mask_ax.images[0].get_array(), class_colors(3)[sample["mask"].numpy()])
    # a fixed stretch clips values outside it instead of rescaling each image
    assert false_colour(np.full((2, 2, 3), 2.0), (0, 1, 2), (np.zeros(3), np.ones(3))).max() == 1.0


def test_test_pixels_hold_every_pixel_of_the_test_regions(rng):
    from conftest import fake_scene

    images, mask = fake_scene(rng, size=32, bands=4, classes=3)
    data = prepare([Scene(images, mask, ["a", "b", "c"])], {"kind": "rows", "train": [0, 20], "test": [20, 32]}, 8, 4)
    x, y = data.test_pixels()
    assert x.shape == (1, 1, 4, 1, 12 * 32) and y.shape == (1, 1, 12 * 32)
    np.testing.assert_array_equal(y[0, 0], mask[20:].reshape(-1))
    np.testing.assert_allclose(x[0, 0, :, 0].T, data.normalizer(images[0][20:]).reshape(-1, 4), rtol=1e-6)
