"""specdm.metrics against hand-computed values and independent implementations; the feature encoders
and the pixel classifier that give the learned metrics their features."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from specdm.errors import CheckpointError, DataError
from specdm.evaluation.downstream import train_downstream
from specdm.evaluation.features import extract_features, load_encoder, mask_one_hot, save_encoder, train_encoder
from specdm.metrics import (
    ClassSpectra,
    frechet_distance,
    frechet_from_moments,
    kid,
    msad,
    per_class_sad,
    psnr,
    reference_scores,
    sad,
    sad_stats,
    sam,
    spectral_diversity,
    spectral_precision_recall,
    ssim,
)
from specdm.metrics.reference import ergas, mrae, rmse

# --- spectral angles ---------------------------------------------------------


def test_sad_hand_values():
    s = np.array([0.2, 0.5, 0.9, 0.1])
    assert sad(s, s) == pytest.approx(0, abs=1e-7)
    assert sad(s, 3.7 * s) == pytest.approx(0, abs=1e-7)
    assert sad([1.0, 0.0], [0.0, 1.0]) == pytest.approx(math.pi / 2)
    assert sad([1.0, 0.0], [1.0, 1.0]) == pytest.approx(math.pi / 4)
    assert sad([1.0, 2.0], [-1.0, -2.0]) == pytest.approx(math.pi)
    # along another axis, torch input
    a = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # spectra in columns: (1,0) and (1,1)
    np.testing.assert_allclose(sad(a, torch.tensor([[0.0, 1.0], [1.0, 1.0]]), axis=0), [math.pi / 2, 0], atol=1e-7)
    assert np.isnan(sad([0.0, 0.0], [1.0, 2.0]))


def test_sad_stats_excludes_and_counts_zero_norm():
    a = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    b = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    stats = sad_stats(a, b)
    assert stats["n_valid"] == 2 and stats["n_zero_norm"] == 2
    assert stats["mean_rad"] == pytest.approx(math.pi / 4)
    assert stats["mean_deg"] == pytest.approx(45.0)


# --- class spectra ------------------------------------------------------------


def _pairs(rng, n=3, k=4, c=5):
    """Images with class 3 absent, class-dependent spectra."""
    out = []
    for i in range(n):
        mask = rng.integers(0, k - 1, size=(6 + i, 7))
        image = rng.random((6 + i, 7, c)) + mask[..., None] * np.arange(1, c + 1)
        out.append((image, mask))
    return out


def test_class_spectra_streaming_equals_one_shot(rng):
    pairs = _pairs(rng)
    stream = ClassSpectra(4, 5)
    for image, mask in pairs:
        stream.update(image, mask)
    pixels = np.concatenate([im.reshape(-1, 5) for im, _ in pairs])
    labels = np.concatenate([m.reshape(-1) for _, m in pairs])
    one_shot = ClassSpectra(4, 5)
    one_shot.update(pixels, labels)
    for cs in (stream, one_shot):
        for k in range(3):
            np.testing.assert_allclose(cs.means()[k], pixels[labels == k].mean(0), rtol=1e-12)
            np.testing.assert_allclose(cs.std()[k], pixels[labels == k].std(0), rtol=1e-10)
        np.testing.assert_array_equal(cs.counts, [np.sum(labels == k) for k in range(4)])
        assert np.isnan(cs.means()[3]).all() and np.isnan(cs.std()[3]).all()
        np.testing.assert_allclose(cs.proportions(), cs.counts / labels.size)
    restored = ClassSpectra.from_dict(json.loads(json.dumps(stream.to_dict())))
    np.testing.assert_array_equal(restored.counts, stream.counts)
    np.testing.assert_allclose(restored.means(), stream.means())
    np.testing.assert_allclose(restored.std(), stream.std())


def test_class_spectra_rejects_bad_masks():
    cs = ClassSpectra(2, 3)
    with pytest.raises(DataError):
        cs.update(np.zeros((2, 2, 3)), np.full((2, 2), 2))
    with pytest.raises(DataError):
        cs.update(np.zeros((2, 2, 4)), np.zeros((2, 2), dtype=int))


def test_per_class_sad_and_msad(rng):
    pairs = _pairs(rng)
    a, b = ClassSpectra(4, 5), ClassSpectra(4, 5)
    for image, mask in pairs:
        a.update(image, mask)
        b.update(image, mask)
    scores = per_class_sad(a, b)
    assert [scores[k] for k in range(3)] == pytest.approx([0, 0, 0], abs=1e-6)
    assert np.isnan(scores[3])
    assert msad(a, b) == pytest.approx(0, abs=1e-6)
    # hand case: class 0 means (1, 0) vs (0, 1); class 1 identical
    real, synth = ClassSpectra(2, 2), ClassSpectra(2, 2)
    real.update(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([0, 1]))
    synth.update(np.array([[0.0, 2.0], [3.0, 3.0]]), np.array([0, 1]))
    assert per_class_sad(real, synth) == pytest.approx({0: math.pi / 2, 1: 0.0}, abs=1e-7)
    assert msad(real, synth) == pytest.approx(math.pi / 4)
    assert msad(real, synth, classes=[1]) == pytest.approx(0, abs=1e-7)


# --- spectral precision / recall ---------------------------------------------------


def test_precision_recall_hand_case():
    real = np.array([[0.0], [1.0], [3.0]])  # k=1 radii: 1, 1, 2
    fake = np.array([[1.5], [10.0], [4.9]])  # k=1 radii: 3.4, 5.1, 3.4
    out = spectral_precision_recall(real, fake, k=1, groups=1)
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["recall"] == pytest.approx(1.0)
    assert out["n_spectra"] == 3 and out["groups"] == 1


def test_precision_recall_point_clouds(rng):
    cloud = rng.normal(size=(1000, 3))
    same = spectral_precision_recall(cloud, cloud.copy())  # groups pair different random subsets
    assert same["precision"] > 0.97 and same["recall"] > 0.97
    far = spectral_precision_recall(cloud, rng.normal(size=(1000, 3)) + 100)
    assert far["precision"] == 0 and far["recall"] == 0
    real = rng.random((2000, 2))
    sub = spectral_precision_recall(real, 0.5 * rng.random((1500, 2)))
    assert sub["n_spectra"] == 1500 and sub["groups"] == 10
    assert sub["precision"] > 0.95
    assert 0.2 < sub["recall"] < 0.5  # the fake cloud covers a quarter of the square
    capped = spectral_precision_recall(real, real, max_per_group=50)
    assert capped["n_spectra"] == 500
    with pytest.raises(DataError):
        spectral_precision_recall(real[:50], real[:50], k=10, groups=10)


# --- diversity (HyperLDM SD / SDM) ------------------------------------------------------


def test_spectral_diversity_sd(rng):
    version = rng.random((4, 5, 6))
    same = spectral_diversity(np.stack([version] * 3))
    assert same["sd"] == pytest.approx(0, abs=1e-6) and np.isnan(same["sdm"])
    assert same["n_versions"] == 3 and same["n_pixels"] == 20
    assert spectral_diversity(rng.random((3, 4, 5, 6)))["sd"] > 0.05
    # one pixel, versions (1,0), (0,1), (1,1): pair angles pi/2, pi/4, pi/4
    assert spectral_diversity(np.array([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]]))["sd"] == pytest.approx(math.pi / 3)


def _two_class_spectra(rng, n=400, c=12):
    labels = rng.integers(0, 2, n)
    shapes = np.stack([np.linspace(0.2, 0.8, c), np.linspace(0.8, 0.2, c)])
    return (shapes[labels] + 0.05 * rng.normal(size=(n, c))).astype(np.float32), labels


def test_pixel_classifier_features_give_sdm(rng, one_thread):
    spectra, labels = _two_class_spectra(rng)
    kw = dict(batch_size=64, lr=3e-3, seed=1, lr_schedule="constant", progress=False)
    model = train_downstream("pixel", [(spectra, labels)], steps=40, **kw)
    with torch.no_grad():
        logits = model(torch.from_numpy(spectra)[:, :, None, None])[:, :, 0, 0]
        feats = model.features(torch.from_numpy(spectra))
        # features() is the penultimate layer: the last linear layer maps it to the logits.
        torch.testing.assert_close(model.head[-1](feats), logits)
    assert feats.shape == (len(spectra), 64) and (feats >= 0).all()  # after ReLU
    assert (logits.argmax(1).numpy() == labels).mean() > 0.95
    # The two classes lie apart in feature space: class centroids differ by more than the spread within.
    f = extract_features(model, spectra)
    centroids = np.stack([f[labels == c].mean(0) for c in (0, 1)])
    spread = max(np.linalg.norm(f[labels == c] - centroids[c], axis=1).mean() for c in (0, 1))
    assert np.linalg.norm(centroids[0] - centroids[1]) > spread

    def features(s):
        return extract_features(model, s)

    scene = spectra[:20].reshape(4, 5, 12)
    same = spectral_diversity(np.stack([scene, scene]), features=features)
    assert same["sdm"] == pytest.approx(0, abs=1e-9)
    other = spectral_diversity(np.stack([scene, spectra[20:40].reshape(4, 5, 12)]), features=features)
    assert other["sdm"] > 0 and other["sd"] > 0
    # SDM by hand: mean over pixels of the feature distance between the two versions.
    expected = np.linalg.norm(f[:20] - f[20:40], axis=1).mean()
    assert other["sdm"] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(DataError, match="features"):
        spectral_diversity(np.stack([scene, scene]), features=lambda s: s[:3])


# --- reference scores ----------------------------------------------------------


def _naive_ssim_band(x, y, data_range):
    """Wang et al. 2004 evaluated window by window (valid windows, Gaussian 11, sigma 1.5)."""
    t = np.arange(11) - 5
    g = np.exp(-(t**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cov = (w * (a - ma) * (b - mb)).sum()
            values.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return np.mean(values)


def test_ssim_matches_naive_wang(rng):
    ref = rng.random((2, 15, 14, 3))
    pred = np.clip(ref + 0.1 * rng.normal(size=ref.shape), 0, 1)
    naive = np.mean([_naive_ssim_band(pred[n, ..., c], ref[n, ..., c], 1.0) for n in range(2) for c in range(3)])
    assert ssim(pred, ref) == pytest.approx(naive, rel=1e-10)
    naive2 = np.mean([_naive_ssim_band(2 * pred[0, ..., c], 2 * ref[0, ..., c], 2.0) for c in range(3)])
    assert ssim(2 * pred[0], 2 * ref[0], data_range=2.0) == pytest.approx(naive2, rel=1e-10)
    assert ssim(ref, ref) == pytest.approx(1.0)
    assert ssim(pred, ref) < 0.95
    with pytest.raises(DataError):
        ssim(ref[:, :10], ref[:, :10])


def test_psnr_rmse_mrae_ergas_closed_form():
    ref = np.full((12, 12, 2), 0.5)
    pred = ref + np.array([0.1, 0.2])  # per-band MSE 0.01 and 0.04
    expected = (10 * np.log10(1 / 0.01) + 10 * np.log10(1 / 0.04)) / 2
    assert psnr(pred, ref) == pytest.approx(expected)
    assert psnr(pred, ref, data_range=2.0) == pytest.approx(expected + 20 * np.log10(2))
    assert psnr(torch.from_numpy(pred[None]), torch.from_numpy(ref[None])) == pytest.approx(expected)
    assert psnr(ref, ref) == math.inf
    assert rmse(pred, ref) == pytest.approx(math.sqrt((0.01 + 0.04) / 2))
    assert mrae(pred, ref) == pytest.approx((0.2 + 0.4) / 2, rel=1e-5)
    # ERGAS = 100 * sqrt(mean((0.1/0.5)^2, (0.2/0.5)^2))
    assert ergas(pred, ref) == pytest.approx(100 * math.sqrt((0.04 + 0.16) / 2))
    assert ergas(pred, ref, ratio=0.25) == pytest.approx(25 * math.sqrt((0.04 + 0.16) / 2))
    assert ergas(ref, ref) == 0
    with pytest.raises(DataError):
        psnr(ref, ref[:, :, :1])


def test_sam_and_reference_scores(rng):
    ref = np.zeros((12, 12, 2))
    ref[..., 0] = 1.0
    pred = np.ones((12, 12, 2))
    assert sam(pred, ref) == pytest.approx(math.pi / 4)
    ref2 = rng.random((2, 12, 12, 4))
    ref2[0, 0, 0] = 0.0  # one zero-norm spectrum
    pred2 = ref2 + 0.05 * rng.random(ref2.shape)
    scores = reference_scores(pred2, ref2)
    assert scores["sam_deg"] == pytest.approx(scores["sam_rad"] * 180 / math.pi)
    assert scores["sam_rad"] == pytest.approx(sam(pred2, ref2))
    assert scores["n_zero_norm"] == 1
    assert scores["psnr"] == pytest.approx(psnr(pred2, ref2)) and scores["ssim"] == pytest.approx(ssim(pred2, ref2))
    same = reference_scores(ref2, ref2)
    assert same["ergas"] == 0 and same["rmse"] == 0 and same["ssim"] == pytest.approx(1.0)
    assert same["sam_rad"] == pytest.approx(0, abs=1e-6)


# --- distribution distances ------------------------------------------------------


def test_frechet_from_moments_by_hand():
    # ||(1, 2)||^2 + (1 + 4 - 2*2) + (4 + 9 - 2*6) = 5 + 1 + 1
    assert frechet_from_moments([0, 0], np.diag([1.0, 4.0]), [1, 2], np.diag([4.0, 9.0])) == pytest.approx(7.0)
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert frechet_from_moments([1, 1], a, [1, 1], a) == pytest.approx(0, abs=1e-9)
    # singular covariances fall back to the eps offset and stay finite
    assert np.isfinite(frechet_from_moments([0, 0], np.zeros((2, 2)), [0, 1], np.diag([1.0, 0.0])))


def test_frechet_distance_samples(rng):
    x = rng.normal(size=(500, 8))
    assert frechet_distance(x, x) == pytest.approx(0, abs=1e-6)
    mu1, mu2 = np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 2.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 1.0])
    a = mu1 + np.sqrt(s1) * rng.normal(size=(20000, 3))
    b = mu2 + np.sqrt(s2) * rng.normal(size=(20000, 3))
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(a, b) == pytest.approx(closed, rel=0.03)


def test_kid(rng):
    a, b = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    same_mean, same_std = kid(a, b, subsets=5, subset_size=300)
    shifted_mean, _ = kid(a, b + 1.0, subsets=5, subset_size=300)
    assert abs(same_mean) < 0.02 and same_std >= 0
    assert shifted_mean > 0.5
    assert kid(a, b, subsets=5, subset_size=300) == (same_mean, same_std)  # seeded


# --- patch encoders ------------------------------------------------------------


def test_train_save_load_encoders(rng, tmp_path):
    masks = rng.integers(0, 3, size=(64, 8, 8))
    images = (mask_one_hot(masks, 3) + 0.1 * rng.normal(size=(64, 3, 8, 8))).astype(np.float32)
    assert mask_one_hot(masks, 3).shape == (64, 3, 8, 8)
    image_enc = train_encoder(images, masks, steps=20, seed=3, feature_dim=16, batch_size=16)
    label_enc = train_encoder(images, masks[:, 0, 0], steps=10, seed=3, batch_size=16)
    assert image_enc.train_info["task"] == "quadrant class histograms"
    assert label_enc.train_info["task"] == "patch classification"
    feats = extract_features(image_enc, images)
    assert feats.shape == (64, 16)
    loaded = load_encoder(save_encoder(image_enc, tmp_path / "enc"))
    np.testing.assert_allclose(extract_features(loaded, images), feats)
    config = json.loads((tmp_path / "enc" / "config.json").read_text())
    assert config["training"]["seed"] == 3 and config["training"]["steps"] == 20
    assert frechet_distance(feats, feats) == pytest.approx(0, abs=1e-6)
    with pytest.raises(CheckpointError):
        load_encoder(tmp_path / "missing")


def test_edge_error_ratios_locate_a_frame_and_a_corner():
    from specdm.metrics.artifacts import edge_error_ratios

    err = np.ones((3, 2, 16, 16))
    flat = edge_error_ratios(err)
    assert flat["ring"] == 1.0 and all(flat[k] == 1.0 for k in ("top_left", "top_right", "bottom_left", "bottom_right"))
    err[..., :2, :] = err[..., -2:, :] = err[..., :, :2] = err[..., :, -2:] = 3.0  # a frame 3x the interior
    framed = edge_error_ratios(err)
    assert framed["ring"] == pytest.approx(3.0) and framed["interior"] == 1.0
    err = np.ones((1, 16, 16))
    err[0, :4, -4:] = 5.0  # a block of noise in the top-right corner
    corner = edge_error_ratios(err)
    assert corner["top_right"] == pytest.approx(5.0) and corner["top_left"] == 1.0
    assert corner["ring"] == pytest.approx((100 + 5 * 12) / 112)  # 12 of the 112 ring pixels lie in that corner
