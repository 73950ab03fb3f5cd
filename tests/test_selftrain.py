"""Self-training: exactly the pixels whose top probability reaches the threshold get pseudo labels, real labels
are kept, the rest is ignored; the probability variant of tiled prediction agrees with predict_tiled."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from specdm.evaluation.fit import predict_proba_tiled, predict_tiled
from specdm.evaluation.selftrain import (UNLABELLED, pseudo_label_images, pseudo_label_windows, pseudo_labels,
                                         window_probabilities)

pytestmark = pytest.mark.usefixtures("one_thread")
K = 3


def _fixed_model() -> nn.Module:
    """A fixed 1x1 convolution: the logits of a pixel are its 3 bands (identity weights)."""
    conv = nn.Conv2d(K, K, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(K)[:, :, None, None])
    return conv


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _logits(rng, shape) -> np.ndarray:
    """Logits per pixel whose top softmax probability is either >= 0.95 or <= 0.85 (clear of 0.9)."""
    n, h, w = shape
    cls = rng.integers(0, K, size=shape)
    gap = np.where(rng.random(shape) < 0.5, 4.0, 1.0)  # exp(4) / (exp(4) + 2) = 0.965; exp(1) / (e + 2) = 0.58
    x = np.zeros((n, K, h, w), np.float32)
    np.put_along_axis(x, cls[:, None], gap[:, None].astype(np.float32), axis=1)
    return x


def test_only_pixels_above_the_threshold_get_pseudo_labels_and_real_labels_stay(rng):
    x = _logits(rng, (6, 8, 8))
    probs = _softmax(x.astype(np.float64), 1)
    confident = probs.max(1) >= 0.9
    assert 0.3 < confident.mean() < 0.7
    real = np.full((6, 8, 8), 0)  # ignore_index 0 ...
    real[:, :2] = rng.integers(1, 3, size=(6, 2, 8))  # ... except the first two rows, labelled
    model = _fixed_model()
    xs, ys, record = pseudo_label_windows(model, x, real, threshold=0.9, ignore_index=0)
    assert xs is x
    np.testing.assert_allclose(window_probabilities(model, x), probs, rtol=1e-5)
    expected = np.where(confident, probs.argmax(1), 0)
    expected[:, :2] = real[:, :2]
    np.testing.assert_array_equal(ys, expected)
    assert record["real_labels_kept"] == 6 * 2 * 8
    assert record["pseudo_labels_added"] == int((expected != 0).sum()) - 6 * 2 * 8
    # class 0 predicted with confidence is also "ignore" here, as the data's ignore_index is 0; without
    # real labels, ignore_index None: the low-confidence pixels get UNLABELLED, every other its class
    _, alone, _ = pseudo_label_windows(model, x, None, threshold=0.9, ignore_index=None)
    np.testing.assert_array_equal(alone, np.where(confident, probs.argmax(1), UNLABELLED))
    # a pixel exactly at the threshold is labelled (>=)
    at = np.zeros((1, K, 1, 2))
    at[0, :, 0, 0], at[0, :, 0, 1] = [0.9, 0.05, 0.05], [0.5, 0.2, 0.3]
    np.testing.assert_array_equal(pseudo_labels(at, threshold=0.9, ignore_index=7), [[[0, 7]]])


def test_whole_images_are_pseudo_labelled_tiled(rng):
    x = _logits(rng, (2, 21, 27))
    probs = _softmax(x.astype(np.float64), 1)
    labels = np.zeros((2, 21, 27), np.int64)
    labels[1, 10:] = 2
    maps, record = pseudo_label_images(_fixed_model(), list(x), list(labels), 0.9, 0, tile=8, overlap=3)
    for i in range(2):
        want = np.where(probs[i].max(0) >= 0.9, probs[i].argmax(0), 0)
        want = np.where(labels[i] != 0, labels[i], want)
        np.testing.assert_array_equal(maps[i], want)
    assert record["pixels"] == 2 * 21 * 27 and record["real_labels_kept"] == 11 * 27


def test_predict_proba_tiled_agrees_with_predict_tiled(rng):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 5, 3, padding=1))
    image = rng.random((4, 30, 23), dtype=np.float32)
    probs = predict_proba_tiled(model, image, tile=16, overlap=5)
    assert probs.shape == (5, 30, 23) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(predict_tiled(model, image, tile=16, overlap=5), probs.argmax(0))
