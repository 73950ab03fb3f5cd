"""Label fidelity: a real-trained pixel classifier's agreement with synthetic masks, per class and per sample."""

import numpy as np
import pytest

from specdm.augment.fidelity import LabelFidelity


def windows(rng, spectra, n=12, size=8, noise=0.02):
    """Windows (n, 1, C, size, size) whose left half is class 1 and right half class 2 (class 0 unlabelled)."""
    y = np.zeros((n, size, size), np.int64)
    y[:, :, : size // 2], y[:, :, size // 2 :] = 1, 2
    y[:, 0, :] = 0
    x = spectra[y] + rng.normal(0, noise, (n, size, size, spectra.shape[1]))
    return np.moveaxis(x, -1, 1)[:, None].astype(np.float32), y


def test_swapped_labels_are_found_and_named(rng):
    spectra = np.array([[0.5] * 6, np.linspace(0.1, 0.9, 6), np.linspace(0.9, 0.1, 6)])
    real = windows(rng, spectra)
    held = windows(rng, spectra, n=6)
    sx, sy = windows(rng, spectra, n=6)
    sy = sy.copy()
    sy[:3][sy[:3] == 2] = 1  # the first three synthetic samples label class-2 spectra as class 1
    clf = LabelFidelity(3, ignore_index=0, n_estimators=20, seed=0).fit(*real)
    rep = clf.report(held, (sx, sy), ["unlabelled", "up", "down"])
    rows = {r["name"]: r for r in rep["classes"]}
    assert "unlabelled" not in rows  # the ignore class is not scored
    assert rows["up"]["ceiling"] == rows["down"]["ceiling"] == 1.0  # well separated real classes
    # class "up" holds its own pixels plus 3 * 28 mislabelled "down" pixels: agreement = its own share
    own, wrong = 6 * 28, 3 * 28
    assert rows["up"]["agreement"] == pytest.approx(own / (own + wrong))
    assert rows["down"]["agreement"] == 1.0 and rows["down"]["ratio"] == 1.0
    assert rep["min_ratio"] == pytest.approx(own / (own + wrong))
    assert rows["down"]["nearest_real_class"]["name"] == "down"
    scores = clf.sample_scores(sx, sy)
    np.testing.assert_allclose(scores, [0.5, 0.5, 0.5, 1, 1, 1])  # half of each bad sample's labelled pixels


def test_a_synthetic_class_with_another_class_spectra_is_named_after_it(rng):
    spectra = np.array([[0.5] * 6, np.linspace(0.1, 0.9, 6), np.linspace(0.9, 0.1, 6)])
    real, held = windows(rng, spectra), windows(rng, spectra, n=4)
    sx, sy = windows(rng, spectra[[0, 2, 2]], n=4)  # "up" painted on "down" spectra everywhere
    clf = LabelFidelity(3, ignore_index=0, n_estimators=20).fit(*real)
    rows = {r["name"]: r for r in clf.report(held, (sx, sy), ["unlabelled", "up", "down"])["classes"]}
    assert rows["up"]["agreement"] == 0.0 and rows["up"]["nearest_real_class"]["name"] == "down"


def test_one_labelled_class_is_refused(rng):
    from specdm.errors import DataError

    x = rng.random((2, 1, 3, 4, 4)).astype(np.float32)
    with pytest.raises(DataError, match="two labelled classes"):
        LabelFidelity(2).fit(x, np.ones((2, 4, 4), np.int64))
