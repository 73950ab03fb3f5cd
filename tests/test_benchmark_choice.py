"""``specdm benchmark``'s classical choice (on validation rows of the training regions, never on test), its
self-training control arm and its primary comparison, declared before the first training; tiny fake scenes."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import single_thread
from test_benchmark import STEPS, _setup

from specdm.augment.classical import RECIPES
from specdm.cli import main
from specdm.errors import ConfigError, OutputError
from specdm.evaluation.benchmark import run as bm
from specdm.evaluation.benchmark.classical_choice import CHOICE_SEED, carve_validation, choose_recipe
from specdm.evaluation.selftrain import pseudo_label_windows

FAST = dict(steps=STEPS, batch_size=4, lr=1e-3, amounts=[1], progress=False, device="cpu")
SETTINGS = dict(steps=STEPS, batch_size=4, lr=1e-3, lr_schedule="cosine", tile=16, overlap=4, speed="plain")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = tmp_path_factory.mktemp("choice")
    with single_thread():
        return _setup(root)


class Untouchable:
    """Stands for the test regions: any use raises."""

    def __getattr__(self, name):
        raise AssertionError(f"the classical choice touched the test data ({name})")

    def __iter__(self):
        raise AssertionError("the classical choice iterated over the test data")

    def __len__(self):
        raise AssertionError("the classical choice asked for the test data's length")

    def __getitem__(self, i):
        raise AssertionError("the classical choice indexed the test data")


def _outside_training(real, value=np.nan):
    """A copy of ``real`` whose scenes hold ``value`` everywhere outside the training regions, test regions
    replaced by an object that raises when used."""
    scenes = []
    for i, s in enumerate(real.prepared.scenes):
        keep = np.zeros(s.shape, bool)
        for g in real.prepared.split["train"]:
            if g.scene == i:
                keep[g.r0 : g.r1, g.c0 : g.c1] = True
        blind = copy.copy(s)  # set after construction: a Scene refuses NaN when built
        blind.images = [np.where(keep[..., None], im, value).astype(im.dtype) for im in s.images]
        blind.mask = np.where(keep, s.mask, 3)
        scenes.append(blind)
    return replace(real, test=Untouchable(), prepared=replace(real.prepared, scenes=scenes))


def test_classical_choice_never_reads_test_pixels(scene):
    cfg = scene[0]
    real = bm._real_data(cfg, 0)
    first = bm._choose_classical(real, "unet", SETTINGS, "cpu", False)
    assert first["recipe"] in RECIPES and set(first["scores"]) == set(RECIPES) and first["seed"] == CHOICE_SEED
    assert all(np.isfinite(v) for v in first["scores"].values())
    # the validation rows: the last 20 % of the training rows (0-31 -> 26-31), windows above them only
    v = first["validation"]
    assert v["regions"] == [{"scene": "image", "rows": [26, 32], "cols": [0, 48]}]
    idx, regions, _ = carve_validation(real.prepared)
    windows = real.prepared.train.windows
    assert v["train_windows"] == len(idx) and all(windows[i].r + 16 <= 26 for i in idx)
    assert len(idx) < len(windows) and regions[0][0].shape == (6, 6, 48)
    # test pixels NaN, test masks changed, test regions unusable: the same choice and the same scores
    blind = bm._choose_classical(_outside_training(real), "unet", SETTINGS, "cpu", False)
    assert blind["recipe"] == first["recipe"] and blind["scores"] == first["scores"]
    # while the validation rows do matter (the check above could see a change)
    shifted = replace(real, prepared=replace(real.prepared, scenes=[
        replace(s, mask=np.where(np.arange(s.shape[0])[:, None] >= 26, (s.mask % 4) + 1, s.mask) % 5)
        for s in real.prepared.scenes]))  # fmt: skip
    assert bm._choose_classical(shifted, "unet", SETTINGS, "cpu", False)["scores"] != first["scores"]


def test_choose_recipe_takes_the_best_validation_score(monkeypatch, rng):
    x = rng.random((6, 3, 8, 8), dtype=np.float32)
    y = rng.integers(0, 2, size=(6, 8, 8))
    fake = {"flips": 0.2, "classical": 0.5, "spectral": math.nan, "all": 0.5}
    seen = []

    def fake_train(name, sets, steps, batch, lr, seed, ignore, mix, augment, **kw):
        seen.append((augment, seed, steps))
        return augment

    monkeypatch.setattr("specdm.evaluation.benchmark.classical_choice.train_downstream", fake_train)
    monkeypatch.setattr("specdm.evaluation.benchmark.classical_choice.predict_tiled", lambda net, im, t, o: im[0] > 0)
    monkeypatch.setattr("specdm.evaluation.benchmark.classical_choice.score",
                        lambda *a: {"miou": fake[seen[-1][0]]})  # fmt: skip
    out = choose_recipe("unet", (x, y), [(x[0], y[0])], list(fake), 5, 2, 1e-3, 7, None, num_classes=2)
    assert out["recipe"] == "classical"  # ties go to the earlier candidate, NaN never wins
    assert seen == [(k, 7, 5) for k in fake] and out["metric"] == "miou"
    fake.update(flips=math.nan, classical=math.nan, all=math.nan)  # nothing scored: the default recipe
    assert choose_recipe("unet", (x, y), [(x[0], y[0])], list(fake), 5, 2, 1e-3, num_classes=2)["recipe"] == "classical"
    with pytest.raises(ConfigError, match="unknown classical recipe"):
        choose_recipe("unet", (x, y), [(x[0], y[0])], ["cutmix"], 5, 2, 1e-3, num_classes=2)


def test_auto_classical_is_recorded_and_used_by_the_classical_arms(scene, tmp_path, monkeypatch):
    cfg, _, synth = scene
    calls = []
    train = bm.train_downstream
    monkeypatch.setattr(bm, "train_downstream", lambda *a, **kw: calls.append(a[8]) or train(*a, **kw))
    result = bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, models=["unet"], limited=0, classical="auto",
                          arms=["real", "classical", "classical+copy"], **FAST)  # fmt: skip
    choice = result["classical_choice"]["unet"]
    assert set(choice["scores"]) == set(RECIPES) and result["settings"]["classical"] == "auto"
    chosen = choice["recipe"]
    assert result["settings"]["classical_recipe"] == {"unet": chosen}
    assert calls == [None, chosen, chosen]  # the choice's own trainings go through classical_choice
    used = {r["arm"]: r["augment"] for r in result["runs"]}
    assert used == {"real": None, "classical": chosen, "classical+copy x1": chosen}
    stored = json.loads((tmp_path / "benchmark.json").read_text())
    assert stored["classical_choice"]["unet"]["recipe"] == chosen
    md = (tmp_path / "report.md").read_text()
    assert f"unet: `{chosen}`" in md and "never on test" in md
    # resuming reuses the stored choice (no new choice trainings); another option cannot pair with these runs
    calls.clear()
    bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, models=["unet"], limited=0, classical="auto",
                 arms=["real", "classical", "classical+copy"], resume=True, **FAST)  # fmt: skip
    assert calls == []
    with pytest.raises(OutputError, match="classical recipe"):
        bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, models=["unet"], limited=0, classical="spectral",
                     arms=["real", "classical"], resume=True, **FAST)  # fmt: skip
    with pytest.raises(ConfigError, match="unknown classical recipe"):
        bm.benchmark(cfg, {"copy": synth}, tmp_path / "x", seeds=1, classical="cutmix", **FAST)


def test_primary_comparison_is_on_file_before_the_first_training(scene, tmp_path, monkeypatch):
    cfg, _, synth = scene
    seen = []
    train = bm.train_downstream

    def first_look(*a, **kw):
        if not seen:
            seen.append(json.loads((tmp_path / "benchmark.json").read_text()))
        return train(*a, **kw)

    monkeypatch.setattr(bm, "train_downstream", first_look)
    result = bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, models=["unet"], limited=0.5,
                          arms=["real", "classical", "copy", "classical+copy"], **FAST)  # fmt: skip
    want = {"model": "unet", "setting": "full", "metric": "miou", "arm": "classical+copy x1", "reference": "classical",
            "declared": "default, before the first training"}  # fmt: skip
    assert seen[0]["settings"]["primary"] == want and seen[0]["runs"] == []
    assert result["settings"]["primary"] == want
    summary = result["summary"]["unet"]
    assert summary["full"]["miou"]["classical+copy x1"]["vs_classical"]["role"] == "primary"
    assert summary["full"]["miou"]["classical+copy x1"]["role"] == "exploratory"
    assert summary["limited"]["miou"]["copy x1"]["role"] == "exploratory"
    # one seed: every comparison reads "not enough seeds", and the report names both arms of each
    assert summary["full"]["miou"]["classical"]["verdict"] == "not enough seeds"
    md = (tmp_path / "report.md").read_text()
    assert "## Primary comparison" in md and "**classical+copy x1 vs classical**" in md
    assert "- classical+copy x1 vs classical (mIoU, primary): " in md
    assert "- copy x1 vs real (mIoU, exploratory): " in md and "not enough seeds" in md
    # a run with 0 trainings (everything done) keeps the declaration; another one on resume is refused
    again = bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, models=["unet"], limited=0.5,
                         arms=["real", "classical", "copy", "classical+copy"], resume=True, **FAST)  # fmt: skip
    assert again["settings"]["primary"] == want and again["invocations"][-1]["trainings"] == 0
    with pytest.raises(ConfigError, match="declared before the first training"):
        bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, models=["unet"], limited=0.5, primary="copy x1 vs real",
                     arms=["real", "classical", "copy", "classical+copy"], resume=True, **FAST)  # fmt: skip


def test_a_given_primary_and_bad_ones(scene, tmp_path, monkeypatch):
    cfg, _, synth = scene
    monkeypatch.setattr(bm, "train_downstream", lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("stop")))
    kw = dict(seeds=1, models=["unet"], limited=0.5, arms=["real", "copy"], **FAST)
    with pytest.raises(RuntimeError, match="stop"):  # stops at the first training: the declaration is written
        bm.benchmark(cfg, {"copy": synth}, tmp_path / "a", primary="copy x1 vs real", **kw)
    stored = json.loads((tmp_path / "a" / "benchmark.json").read_text())["settings"]["primary"]
    assert (stored["setting"], stored["arm"], stored["reference"]) == ("limited", "copy x1", "real")  # most scarce
    with pytest.raises(RuntimeError, match="stop"):
        bm.benchmark(cfg, {"copy": synth}, tmp_path / "b", primary="unet/full/copy x1 vs real", **kw)
    assert json.loads((tmp_path / "b" / "benchmark.json").read_text())["settings"]["primary"]["setting"] == "full"
    # without synthetic sets the default is classical vs real
    with pytest.raises(RuntimeError, match="stop"):
        bm.benchmark(cfg, {}, tmp_path / "c", **{**kw, "arms": ["real", "classical"]})
    assert json.loads((tmp_path / "c" / "benchmark.json").read_text())["settings"]["primary"]["arm"] == "classical"
    for bad, match in (("copy x1", "must look like"), ("copy x1 vs synthetic_only", "must look like"),
                       ("classical vs real", "not both planned"), ("segformer/full/copy x1 vs real", "not benchmarked"),
                       ("unet/limited/copy x1 vs classical", "not both planned")):  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            bm.benchmark(cfg, {"copy": synth}, tmp_path / "d", primary=bad, **kw)
    assert main(["benchmark", str(scene[1]), "--synthetic", f"copy={synth}", "--out", str(tmp_path / "e"),
                 "--primary", "nothing"]) == 2  # fmt: skip


def test_self_training_arm_pseudo_labels_with_the_real_model(scene, tmp_path, monkeypatch):
    cfg, _, synth = scene
    calls = []
    train = bm.train_downstream

    def recording(name, sets, steps, *a, **kw):
        net = train(name, sets, steps, *a, **kw)
        calls.append({"sets": sets, "steps": steps, "args": a, "net": net})
        return net

    monkeypatch.setattr(bm, "train_downstream", recording)
    result = bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, models=["unet"], limited=0.5,
                          arms=["real", "classical", "self_training"], classical="flips", **FAST)  # fmt: skip
    real = bm._real_data(cfg, 0.5)
    order = [(r["setting"], r["arm"]) for r in result["runs"]]
    assert order == [("full", "real"), ("full", "classical"), ("full", "self_training"), ("limited", "real"),
                     ("limited", "self_training")]  # fmt: skip
    assert len(calls) == 5  # the real-only models of the same seed are the teachers: no extra training
    for teacher, student, setting in ((calls[0], calls[2], "full"), (calls[3], calls[4], "limited")):
        (rx, ry), (px, py) = student["sets"]
        assert np.array_equal(rx, teacher["sets"][0][0]) and len(teacher["sets"]) == 1
        assert student["steps"] == teacher["steps"] == STEPS
        batch, lr, seed, ignore, mix, augment = student["args"]
        assert (batch, lr, seed, ignore) == teacher["args"][:4] and mix is None and augment == "flips"
        assert teacher["args"][5] is None
        kept = real.y.copy()
        if setting == "limited":
            kept[np.setdiff1d(np.arange(len(kept)), real.limited)] = 0
        _, want, record = pseudo_label_windows(teacher["net"], real.x, kept, 0.9, 0)
        np.testing.assert_array_equal(py, want)  # threshold 0.9, real labels kept, 0 (ignore) elsewhere
        assert np.array_equal(px, real.x)
        run = next(r for r in result["runs"] if (r["setting"], r["arm"]) == (setting, "self_training"))
        assert run["pseudo_labels"] == record and run["augment"] == "flips"
        assert record["real_labels_kept"] == int((kept != 0).sum())
    assert "real + self-training (pseudo labels) + classical aug." in (tmp_path / "report.md").read_text()


def test_on_a_block_fold_the_choice_hides_the_validation_labels_instead_of_dropping_windows(scene, monkeypatch):
    """Small blocks lie in nearly every window: the choice trains on every training window with the labels of
    the next fold's test part (and the guard around it) hidden, and scores on exactly those pixels; it never
    reads the test part's image."""
    from specdm.config import load_config
    from specdm.data import folds

    cfg = load_config(str(scene[1]), ["data.split={kind: folds, design: null, fold: 0, k: 2, block: 4, guard: 1}"])
    real = bm._real_data(cfg, 0)
    data = real.prepared
    train_idx, regions, record = carve_validation(data)
    assert record["train_windows"] == len(data.train) and np.array_equal(train_idx, np.arange(len(data.train)))
    _, val = folds.fold_parts(data.parts.design, 1, [data.reference.shape])
    v = val[0] & data.train_masks[0]
    blocked = folds.near(v, 1)
    p = data.train.size
    for w, h in zip(data.train.windows, record["hide"]):
        np.testing.assert_array_equal(h, blocked[w.r : w.r + p, w.c : w.c + p])
    assert record["hidden_labels"] > 0
    image, target = regions[0]
    assert ((target != -1) == v).all()  # scored: the validation pixels only
    assert (image[:, data.test_masks[0]] == 0).all()  # the test part's image is blanked
    seen = {}

    def fake_choose(model_name, train, *a, **k):
        seen["y"] = train[1]
        return {"recipe": "flips", "metric": "miou", "scores": {}, "seed": CHOICE_SEED, "steps": 1}

    monkeypatch.setattr(bm, "choose_recipe", fake_choose)
    bm._choose_classical(real, "unet", SETTINGS, "cpu", False)
    hide = np.stack([blocked[w.r : w.r + p, w.c : w.c + p] for w in data.train.windows])
    assert (seen["y"][hide] == real.ignore_index).all()
    np.testing.assert_array_equal(seen["y"][~hide], real.y[~hide])
