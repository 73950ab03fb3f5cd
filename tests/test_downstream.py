"""Downstream tasks: scores, tiled inference, models, paired batches, a short training, classical augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, cohen_kappa_score
from torch import nn

from specdm.augment.classical import classical_augment
from specdm.errors import ConfigError, DataError
from specdm.evaluation import classification, downstream
from specdm.evaluation.benchmark.run import paired_summary
from specdm.evaluation.change import change_scores
from specdm.evaluation.classification import classification_scores
from specdm.evaluation.downstream import train_downstream
from specdm.evaluation.fit import batch_indices, predict_tiled
from specdm.evaluation.segmentation import pad_to_multiple, segmentation_scores
from specdm.evaluation.tasks import build_model
from specdm.metrics import confusion_matrix

pytestmark = pytest.mark.usefixtures("one_thread")


# Hand example, 3 classes. Confusion (rows = target, columns = prediction):
#   [[2, 1, 0],
#    [0, 1, 1],
#    [1, 0, 3]]
# TP = 2, 1, 3; FP = FN = 1, 1, 1.
# IoU = 2/4, 1/3, 3/5; F1 = 4/6, 2/4, 6/8.
# OA = 6/9; AA = (2/3 + 1/2 + 3/4) / 3; p_e = (3*3 + 2*2 + 4*4) / 81 = 29/81, kappa = 25/52.
TARGET = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
PRED = np.array([0, 0, 1, 1, 2, 2, 2, 0, 2])
HAND_CM = np.array([[2, 1, 0], [0, 1, 1], [1, 0, 3]])


def test_confusion_matrix_by_hand():
    np.testing.assert_array_equal(confusion_matrix(PRED, TARGET, 3), HAND_CM)


def test_segmentation_scores_by_hand_with_ignore_index():
    # Shift to 4 classes with 0 = unlabelled; unlabelled pixels carry arbitrary predictions.
    target = np.concatenate([TARGET + 1, [0, 0, 0]]).reshape(3, 4)
    pred = np.concatenate([PRED + 1, [1, 3, 0]]).reshape(3, 4)
    s = segmentation_scores(pred, target, num_classes=4, ignore_index=0)
    np.testing.assert_array_equal(s["confusion"][1:, 1:], HAND_CM)
    assert s["confusion"][0].sum() == 0
    np.testing.assert_allclose(s["per_class_iou"][1:], [2 / 4, 1 / 3, 3 / 5])
    np.testing.assert_allclose(s["per_class_f1"][1:], [4 / 6, 2 / 4, 6 / 8])
    assert np.isnan(s["per_class_iou"][0]) and np.isnan(s["per_class_f1"][0])
    assert s["miou"] == pytest.approx((2 / 4 + 1 / 3 + 3 / 5) / 3)
    assert s["f1"] == pytest.approx((4 / 6 + 2 / 4 + 6 / 8) / 3)
    # A labelled pixel predicted as "unlabelled" is an error, but class 0 itself is never scored.
    wrong = segmentation_scores(np.array([0, 1]), np.array([1, 1]), num_classes=2, ignore_index=0)
    assert np.isnan(wrong["per_class_iou"][0]) and wrong["miou"] == pytest.approx(0.5)
    sub = segmentation_scores(pred, target, num_classes=4, ignore_index=0, classes=[1, 3])
    assert sub["miou"] == pytest.approx((2 / 4 + 3 / 5) / 2)
    assert sub["f1"] == pytest.approx((4 / 6 + 6 / 8) / 2)


def test_classification_scores_by_hand_and_against_sklearn(rng):
    s = classification_scores(PRED, TARGET, 3)
    assert s["oa"] == pytest.approx(6 / 9)
    assert s["aa"] == pytest.approx((2 / 3 + 1 / 2 + 3 / 4) / 3)
    assert s["kappa"] == pytest.approx(25 / 52)
    assert s["kappa"] == pytest.approx(cohen_kappa_score(TARGET, PRED))

    target = rng.integers(0, 5, size=500)
    pred = np.where(rng.random(500) < 0.6, target, rng.integers(0, 5, size=500))
    s = classification_scores(pred, target, 5, ignore_index=0)
    keep = target != 0
    assert s["confusion"].sum() == keep.sum()
    assert s["oa"] == pytest.approx(accuracy_score(target[keep], pred[keep]))
    assert s["kappa"] == pytest.approx(cohen_kappa_score(target[keep], pred[keep]))


def test_change_scores_by_hand():
    # TP = 2, FP = 1, FN = 1, TN = 2.
    s = change_scores(np.array([1, 1, 0, 0, 1, 0]), np.array([1, 0, 0, 1, 1, 0]))
    assert s["f1_change"] == pytest.approx(4 / 6)
    assert s["iou_change"] == pytest.approx(2 / 4)
    assert s["miou"] == pytest.approx((2 / 4 + 2 / 4) / 2)
    assert s["precision_change"] == pytest.approx(2 / 3)
    assert s["recall_change"] == pytest.approx(2 / 3)


def test_scores_reject_out_of_range_labels():
    with pytest.raises(ValueError):
        segmentation_scores(np.array([0, 3]), np.array([0, 1]), num_classes=3)


def test_paired_summary_by_hand():
    results = {"real": {0: 0.40, 1: 0.50, 2: 0.45}, "syn": {0: 0.44, 1: 0.53, 2: 0.50}}
    s = paired_summary(results)
    # Differences 0.04, 0.03, 0.05: mean 0.04, std (ddof=1) 0.01; t(0.975, 2) = 4.302653.
    assert s["syn"]["diff_mean"] == pytest.approx(0.04)
    assert s["syn"]["diff_std"] == pytest.approx(0.01)
    assert s["syn"]["mean"] == pytest.approx(0.49)
    assert s["real"]["std"] == pytest.approx(0.05)
    assert s["real"]["diff_mean"] == 0.0 and s["real"]["diff_std"] == 0.0
    half = 4.302653 * 0.01 / np.sqrt(3)
    np.testing.assert_allclose(s["syn"]["diff_ci95"], (0.04 - half, 0.04 + half), atol=1e-6)
    assert s["syn"]["n"] == 3
    with pytest.raises(ValueError, match="seeds"):
        paired_summary({"real": {0: 0.4, 1: 0.5}, "syn": {0: 0.4, 2: 0.5}})


class OneHotIdentity(nn.Module):
    """A fake segmenter whose logits are its (one-hot) input: it returns the input's class map."""

    def forward(self, x):
        return 10.0 * x


class PairSecondDate(nn.Module):
    """A fake change detector whose logits are the second date's (one-hot) image."""

    def forward(self, pair):
        return 10.0 * pair[:, 1]


def _one_hot(class_map: np.ndarray, k: int) -> np.ndarray:
    return (np.arange(k)[:, None, None] == class_map[None]).astype(np.float32)


@pytest.mark.parametrize("shape, tile, overlap", [((45, 37), 16, 5), ((33, 50), 32, 8), ((10, 12), 16, 4)])
def test_predict_tiled_reproduces_the_map(rng, shape, tile, overlap):
    class_map = rng.integers(0, 4, size=shape)
    pred = predict_tiled(OneHotIdentity(), _one_hot(class_map, 4), tile=tile, overlap=overlap, batch_size=5)
    assert pred.shape == shape and pred.dtype == np.int64
    np.testing.assert_array_equal(pred, class_map)


def test_predict_tiled_of_a_pair(rng):
    first, second = rng.integers(0, 2, size=(2, 29, 41))
    pair = (_one_hot(first, 2), _one_hot(second, 2))
    np.testing.assert_array_equal(predict_tiled(PairSecondDate(), pair, tile=16, overlap=4), second)
    np.testing.assert_array_equal(predict_tiled(PairSecondDate(), np.stack(pair), tile=16, overlap=4), second)


def _needs(name):
    if name == "segformer":
        pytest.importorskip("transformers")


@pytest.mark.parametrize("name", ["unet", "segformer", "siamdiff", "pixel"])
@pytest.mark.parametrize("channels", [6, 13])
@torch.no_grad()
def test_model_logits_have_input_size(name, channels):
    _needs(name)
    torch.manual_seed(0)
    model = build_model(name, channels, 5).eval()
    for size in (32, 48, 21):
        shape = (3, 2, channels, size, size) if name == "siamdiff" else (3, channels, size, size)
        x = torch.rand(shape)
        logits = model(x)
        assert logits.shape == (3, 5, size, size)
        assert torch.isfinite(logits).all() and logits.std() > 0
        # Eval mode: a sample's logits do not depend on the rest of its batch, nor on the call.
        torch.testing.assert_close(model(x[1:2]), logits[1:2], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model(x), logits)
        if name in ("unet", "siamdiff"):
            # Sizes that do not halve twice are replicate-padded to a multiple of 4 and cropped back.
            torch.testing.assert_close(model(pad_to_multiple(x, 4))[..., :size, :size], logits, rtol=1e-4, atol=1e-5)
        if name == "pixel":
            # Each pixel is classified from its own spectrum alone.
            spectra = x[:, :, 3, 5].reshape(3, channels, 1, 1)
            torch.testing.assert_close(model(spectra)[:, :, 0, 0], logits[:, :, 3, 5], rtol=1e-4, atol=1e-5)
            shuffled = x.flatten(2)[:, :, torch.randperm(size * size)].reshape(x.shape)
            assert not torch.allclose(model(shuffled), logits)
        if name == "siamdiff":
            # The skips carry |f1 - f2|: changing the first date alone changes the map.
            other = x.clone()
            other[:, 0] = torch.rand_like(other[:, 0])
            assert not torch.allclose(model(other), logits)


def test_unknown_model_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown"):
        build_model("resnet", 4, 2)


def _record(log):
    return lambda step, real, syn: log.append((real.copy(), syn.copy()))


def test_arms_are_paired_on_init_and_real_batches(rng):
    real = (rng.random((20, 4, 8, 8), dtype=np.float32), rng.integers(0, 3, size=(20, 8, 8)))
    syn = (rng.random((50, 4, 8, 8), dtype=np.float32), rng.integers(0, 3, size=(50, 8, 8)))
    kw = dict(steps=6, batch_size=8, lr=1e-3, num_classes=3, progress=False)

    real_only, mixed, other_seed = [], [], []
    train_downstream("unet", [real], seed=3, on_batch=_record(real_only), **kw)
    train_downstream("unet", [real, syn], seed=3, mix=0.25, on_batch=_record(mixed), **kw)
    train_downstream("unet", [real], seed=4, on_batch=_record(other_seed), **kw)

    expected = list(batch_indices(20, 0, 6, 8, seed=3))
    for (r0, s0), (r1, s1), (re, _) in zip(real_only, mixed, expected):
        assert len(r0) == 8 and len(s0) == 0
        assert len(r1) == 6 and len(s1) == 2 and s1.max() < 50
        np.testing.assert_array_equal(r1, r0[:6])
        np.testing.assert_array_equal(r0, re)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(real_only, other_seed))

    init = [train_downstream("unet", sets, seed=3, **{**kw, "steps": 0}).state_dict() for sets in ([real], [real, syn])]
    for key in init[0]:
        torch.testing.assert_close(init[0][key], init[1][key])


def test_real_order_seed_changes_order_only():
    a = list(batch_indices(30, 0, 5, 7, seed=1))
    b = list(batch_indices(30, 0, 5, 7, seed=2))
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, b))
    # Every epoch visits each real sample once.
    seen = np.concatenate([r for r, _ in batch_indices(30, 0, 30, 1, seed=1)])
    np.testing.assert_array_equal(np.sort(seen), np.arange(30))


def test_classical_augment_moves_image_and_mask_together(rng):
    y = (rng.random((64, 8, 8)) < 0.5).astype(np.int64)
    x = np.repeat(y[:, None].astype(np.float32), 3, axis=1)
    xa, ya = classical_augment(x, y, np.random.default_rng(0))
    assert xa.shape == x.shape and xa.dtype == np.float32 and ya.shape == y.shape
    assert not np.array_equal(ya, y)
    # Mixup keeps the dominant sample's labels: its pixels stay on their side of 0.5.
    assert ((xa[:, 0] > 0.5) == ya).mean() > 0.99
    xb, yb = classical_augment(x, y, np.random.default_rng(0))
    np.testing.assert_array_equal(xa, xb)
    # Both dates get the same flips, rotation and mixup; only the noise (std 0.01) differs.
    pair, _ = classical_augment(np.stack([x, x], axis=1), y, np.random.default_rng(0))
    assert np.abs(pair[:, 0] - pair[:, 1]).max() < 0.15


def _brightest_band_data(rng, n, size, bands=4):
    """Blocky class maps 1..bands (0 = unlabelled); the class's band is the brightest one."""
    blocks = rng.integers(1, bands + 1, size=(n, size // 4, size // 4))
    y = blocks.repeat(4, axis=1).repeat(4, axis=2)
    x = rng.uniform(0.0, 0.5, size=(n, bands, size, size)).astype(np.float32)
    x += 0.5 * (np.arange(1, bands + 1)[None, :, None, None] == y[:, None]).astype(np.float32)
    return x, y


def test_compact_unet_learns_a_separable_task(rng):
    x, y = _brightest_band_data(rng, 48, 16)
    y_train = np.where(rng.random(y.shape) < 0.2, 0, y)  # 20 % unlabelled
    model = train_downstream(
        "unet", [(x, y_train)], steps=150, batch_size=8, lr=3e-3, seed=0, ignore_index=0, num_classes=5, progress=False
    )
    scene, labels = _brightest_band_data(rng, 1, 40)
    pred = predict_tiled(model, scene[0], tile=16, overlap=4)
    assert segmentation_scores(pred, labels[0], 5, ignore_index=0)["miou"] > 0.9


def test_pixel_classifier_learns_from_sampled_labelled_spectra(rng, monkeypatch):
    x, y = _brightest_band_data(rng, 48, 16)
    y_train = np.where(rng.random(y.shape) < 0.2, 0, y)
    seen = []
    sample = classification.labelled_spectra
    monkeypatch.setattr(downstream, "labelled_spectra", lambda *a: seen.append(sample(*a)) or seen[-1])
    model = train_downstream(
        "pixel", [(x, y_train)], steps=150, batch_size=8, lr=3e-3, seed=0, ignore_index=0, num_classes=5, progress=False
    )
    assert len(seen) == 150 and all(xs.shape == (8 * classification.PIXELS_PER_WINDOW, 4, 1, 1) for xs, _ in seen)
    assert all((ys > 0).all() for _, ys in seen)  # only labelled pixels
    scene, labels = _brightest_band_data(rng, 1, 40)
    pred = predict_tiled(model, scene[0], tile=16, overlap=4)
    assert classification_scores(pred, labels[0], 5, ignore_index=0)["oa"] > 0.9


def test_labelled_spectra_keep_each_pixel_with_its_label(rng):
    y = rng.integers(0, 3, size=(2, 4, 4))
    x = np.stack([y * 10 + c for c in range(3)], axis=1).astype(np.float32)  # spectrum encodes label and band
    xs, ys = classification.labelled_spectra(x, y, 0, 3, rng)
    assert xs.shape == (6, 3, 1, 1) and ys.shape == (6, 1, 1) and (ys > 0).all()
    np.testing.assert_array_equal(xs[:, :, 0, 0], ys[:, 0] * 10 + np.arange(3))
    index = np.arange(y.size, dtype=np.float32).reshape(2, 1, 4, 4)  # spectrum = the pixel's flat index
    xs, _ = classification.labelled_spectra(index, y, 0, 100, rng)  # fewer labelled pixels than asked: all, once each
    assert sorted(xs[:, 0, 0, 0].astype(int)) == np.flatnonzero(y.ravel() > 0).tolist()
    _, ys = classification.labelled_spectra(x, np.zeros_like(y), 0, 2, rng)  # none labelled: any pixels
    assert len(ys) == 4


@pytest.mark.parametrize("name", ["segformer", "siamdiff", "pixel"])
def test_every_model_trains_with_every_option(rng, name):
    _needs(name)
    if name == "siamdiff":
        x = (rng.random((6, 3, 8, 8), dtype=np.float32), rng.random((6, 3, 8, 8), dtype=np.float32))
        y = rng.integers(0, 2, size=(6, 8, 8))
        syn = (np.stack(x, axis=1), y)
    elif name == "pixel":
        x, y = rng.random((40, 7), dtype=np.float32), rng.integers(0, 3, size=40)
        syn = (x[:10], y[:10])
    else:
        x, y = rng.random((6, 3, 16, 16), dtype=np.float32), rng.integers(0, 3, size=(6, 16, 16))
        syn = (x, y)
    kw = dict(batch_size=4, lr=1e-3, seed=0, mix=0.5, augment="classical", class_weights="balanced", progress=False)
    state = torch.random.get_rng_state()
    model = train_downstream(name, [(x, y), syn], steps=2, **kw)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's random state is untouched
    init = train_downstream(name, [(x, y), syn], steps=0, **kw).state_dict()
    trained = model.state_dict()
    changed = [k for k, v in trained.items() if v.is_floating_point() and not torch.equal(v, init[k])]
    assert len(changed) > len(trained) // 2  # the steps moved the weights from the same initialization
    # Returned ready for inference: BatchNorm uses the running statistics gathered in training and
    # dropout is off, so logits are repeatable and a sample's logits do not depend on its batch.
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.num_batches_tracked.item() >= 2 and m.running_var.ne(1).any() for m in norms)
    batch = torch.from_numpy(syn[0][:3] if name != "pixel" else syn[0][:3, :, None, None])
    with torch.no_grad():
        logits = model(batch)
        torch.testing.assert_close(model(batch), logits)
        torch.testing.assert_close(model(batch[:1]), logits[:1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_lr_schedule_follows_its_closed_form(rng, monkeypatch, schedule):
    x, y = rng.random((4, 3, 8, 8), dtype=np.float32), rng.integers(0, 2, size=(4, 8, 8))
    lrs, adam_step = [], torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return adam_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    train_downstream("unet", [(x, y)], steps=8, batch_size=2, lr=0.01, seed=0, lr_schedule=schedule, progress=False)
    t = np.arange(8)
    expected = 0.01 * (1 + np.cos(np.pi * t / 8)) / 2 if schedule == "cosine" else np.full(8, 0.01)
    np.testing.assert_allclose(lrs, expected, rtol=1e-9)


def test_bad_inputs_are_named_errors(rng):
    x, y = rng.random((4, 3, 8, 8), dtype=np.float32), rng.integers(0, 2, size=(4, 8, 8))
    with pytest.raises(DataError, match="siamdiff"):
        train_downstream("siamdiff", [(x, y)], steps=1, batch_size=2, lr=1e-3, seed=0, progress=False)
    with pytest.raises(DataError, match="sample shape"):
        train_downstream("unet", [(x, y), (x[:, :2], y)], steps=1, batch_size=2, lr=1e-3, seed=0, progress=False)
    with pytest.raises(ConfigError, match="augmentation"):
        train_downstream("unet", [(x, y)], steps=1, batch_size=2, lr=1e-3, seed=0, augment="cutmix", progress=False)
    with pytest.raises(ConfigError, match="lr schedule"):
        train_downstream("unet", [(x, y)], steps=1, batch_size=2, lr=1e-3, seed=0, lr_schedule="step", progress=False)
