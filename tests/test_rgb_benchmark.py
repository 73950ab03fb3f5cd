"""``specdm benchmark CONFIG --rgb-model MODEL``: pixel classification on RGB, RGB -> HyperLDM spectra and real
spectra, on a tiny HyperLDM model trained on fake files: every arm x seed is stored, the arms train on exactly the
pixels they say, the versions are drawn once, resume trains only what is missing, wrong models are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import single_thread, tiny_config, write_config, write_fake_files

from specdm.cli import main
from specdm.conditions.rgb import rgb_from_scene
from specdm.config import load_config
from specdm.data.datamodule import prepare_data
from specdm.data.splits import Region
from specdm.errors import CheckpointError, DataError, OutputError
from specdm.evaluation.benchmark import rgb
from specdm.evaluation.classification import predict_pixels, train_pixel_classifier
from specdm.pipelines import load_pipeline

WAVELENGTHS = [450.0, 550.0, 650.0, 850.0, 1600.0, 2200.0]
STEPS = 30
ARMS = ["rgb", "real", "synthetic x1", "synthetic x2"]
FAST = dict(steps=STEPS, amounts=(1, 2), num_inference_steps=3, progress=False, device="cpu")

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(folder, bands=6, wavelengths=WAVELENGTHS, hyperldm=False):
    data = write_fake_files(folder / "data", np.random.default_rng(3), bands=bands)
    image = np.load(data["image"])  # classes that overlap: no arm scores 1.0, so the numbers tell pixels apart
    np.save(data["image"], (image + np.random.default_rng(4).normal(0, 300, image.shape)).astype(np.float32))
    cfg = tiny_config({**data, "wavelengths": wavelengths, "ignore_index": 0}, sampling={"num_inference_steps": 3})
    if hyperldm:
        cfg["method"] = "hyperldm"
        cfg["autoencoder"]["latent_channels"] = 4
        cfg["hyperldm"] = {"library": None, "num_codes": 32, "num_versions": 1, "condition_channels": 4,
                           "head_channels": 8}
    return write_config(folder / "cfg.yaml", cfg)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A tiny HyperLDM model (`specdm run`, direct head) and the RGB benchmark run through the CLI on its scene
    (rows 0-32 train, 32-48 test; class 0 unlabelled)."""
    tmp = tmp_path_factory.mktemp("rgb_bench")
    cfg_path = _config(tmp, hyperldm=True)
    out = tmp / "out"
    args = ["benchmark", str(cfg_path), "--rgb-model", str(tmp / "run" / "model"), "--out", str(out), "--seeds", "2",
            "--steps", str(STEPS), "--amounts", "1,2", "--sampling-steps", "3", "--device", "cpu"]  # fmt: skip
    with single_thread():
        assert main(["run", str(cfg_path), "--run-dir", str(tmp / "run")]) == 0
        assert main(args) == 0
    return load_config(str(cfg_path)), tmp / "run" / "model", out, args, json.loads((out / "benchmark.json").read_text())


def counting_loader(calls: list):
    """load_pipeline, whose pipelines record the seed of every sample_image call."""

    def load(model_dir, device="cpu"):
        pipe = load_pipeline(model_dir, device)
        sample = pipe.sample_image

        def recorded(rgb_image, k, seed=0, **kw):
            calls.append(seed)
            return sample(rgb_image, k, seed=seed, **kw)

        pipe.sample_image = recorded
        return pipe

    return load


def count_trainings(monkeypatch, fail_after: int | None = None) -> list:
    calls = []

    def counted(x, y, *a, **kw):
        if fail_after is not None and len(calls) == fail_after:
            raise KeyboardInterrupt  # what Ctrl-C does between two trainings
        calls.append(x.shape)
        return train_pixel_classifier(x, y, *a, **kw)

    monkeypatch.setattr(rgb, "train_pixel_classifier", counted)
    return calls


def by_hand(cfg, rows):
    """Normalized labelled spectra, their labels and the data-unit image of ``rows`` of the fake scene."""
    image, mask = np.load(cfg.data.image), np.load(cfg.data.mask)
    norm = prepare_data(cfg.data).normalizer
    part, labels = image[rows], mask[rows].reshape(-1)
    keep = labels != 0
    return norm(part).reshape(-1, 6)[keep], labels[keep], part, keep


def oa_aa(net, x, y):
    pred = predict_pixels(net, x)
    return float((pred == y).mean()), float(np.mean([(pred[y == c] == c).mean() for c in np.unique(y)]))


def test_every_arm_and_seed_is_stored_and_summarized(bench):
    cfg, model, out, args, result = bench
    assert {(r["arm"], r["seed"]) for r in result["runs"]} == {(a, s) for a in ARMS for s in (0, 1)}
    assert result["complete"] and len(result["runs"]) == 8 and result["experiment"] == "rgb"
    tests = {r["arm"]: sorted(r["tests"]) for r in result["runs"]}
    assert tests == {"rgb": ["rgb"], "real": ["real"], "synthetic x1": ["real", "synthetic"],
                     "synthetic x2": ["real", "synthetic"]}
    mask = np.load(cfg.data.mask)
    n_train, n_test = int((mask[:32] != 0).sum()), int((mask[32:] != 0).sum())
    assert result["data"]["labelled_train_pixels"] == n_train and result["data"]["labelled_test_pixels"] == n_test
    pixels = {r["arm"]: r["train_pixels"] for r in result["runs"]}
    assert pixels == {"rgb": n_train, "real": n_train, "synthetic x1": n_train, "synthetic x2": 2 * n_train}
    # the versions: drawn once (training region seed 1, test region seed 0), kept in OUT/versions
    assert np.load(out / "versions" / "train_0.npy").shape == (2, 32, 48, 6)
    assert np.load(out / "versions" / "test_0.npy").shape == (1, 16, 48, 6)
    assert [v["seed"] for v in result["versions"]["train"] + result["versions"]["test"]] == [1, 0]

    score = {(r["arm"], t, r["seed"]): s for r in result["runs"] for t, s in r["tests"].items()}
    for metric in ("oa", "aa", "kappa"):
        for arm, per_test in result["summary"][metric].items():
            for test, entry in per_test.items():
                values = [score[arm, test, k][metric] for k in (0, 1)]
                assert entry["mean"] == pytest.approx(np.mean(values)) and entry["seeds"] == [0, 1]
                assert entry["std"] == pytest.approx(np.std(values, ddof=1))
                for ref in ("rgb", "real"):
                    vs = entry[f"vs_{ref}"]
                    if (arm, test) == (ref, ref):
                        assert vs == {"verdict": "reference"}
                        continue
                    diffs = [score[arm, test, k][metric] - score[ref, ref, k][metric] for k in (0, 1)]
                    assert vs["diff_mean"] == pytest.approx(np.mean(diffs)) and vs["seeds"] == [0, 1]
                    lo, hi = vs["diff_ci95"]
                    assert vs["verdict"] == ("helps" if lo > 0 else "hurts" if hi < 0 else "no clear effect")
    md = (out / "report.md").read_text()
    for row in ("| RGB | RGB | 2 |", "| real spectra | real spectra | 2 |",
                "| HyperLDM x2 | HyperLDM version of the test RGB | 2 |", "| HyperLDM x1 | real spectra | 2 |"):
        assert row in md
    assert "Per-class accuracy" in md and "verdict vs RGB" in md
    assert "<td>HyperLDM x1</td>" in (out / "report.html").read_text()
    assert result["command"] == "specdm " + " ".join(args)
    assert result["settings"]["steps"] == STEPS and result["settings"]["sampler"] == "ddpm"
    (out / "report.md").unlink()
    assert main(["benchmark", "--report-only", str(out)]) == 0
    assert (out / "report.md").read_text() == md


def test_arms_score_as_classifiers_trained_by_hand_on_their_pixels(bench):
    """real: the normalized labelled spectra of rows 0-32; rgb: their RGB made with the model's settings;
    synthetic x2: both cached versions of the training region; same seed, same numbers."""
    cfg, model, out, _, result = bench
    x_tr, y_tr, image_tr, keep_tr = by_hand(cfg, slice(0, 32))
    x_te, y_te, image_te, keep_te = by_hand(cfg, slice(32, 48))
    settings = json.loads((model / "specdm.json").read_text())["source"]["rgb"]
    rgb_tr, rgb_te = (rgb_from_scene(im, WAVELENGTHS, None, **settings).reshape(-1, 3)[k]
                      for im, k in ((image_tr, keep_tr), (image_te, keep_te)))
    norm = prepare_data(cfg.data).normalizer
    versions = np.load(out / "versions" / "train_0.npy")
    x_syn = np.concatenate([norm(v).reshape(-1, 6)[keep_tr] for v in versions])
    x_syn_te = norm(np.load(out / "versions" / "test_0.npy")[0]).reshape(-1, 6)[keep_te]
    runs = {(r["arm"], r["seed"]): r["tests"] for r in result["runs"]}
    for seed in (0, 1):
        cases = [("real", "real", x_tr, y_tr, x_te), ("rgb", "rgb", rgb_tr, y_tr, rgb_te),
                 ("synthetic x2", "real", x_syn, np.tile(y_tr, 2), x_te),
                 ("synthetic x2", "synthetic", x_syn, np.tile(y_tr, 2), x_syn_te)]  # fmt: skip
        for arm, test, x, y, xt in cases:
            oa, aa = oa_aa(train_pixel_classifier(x, y, 4, seed, STEPS), xt, y_te)
            stored = runs[arm, seed][test]
            assert stored["oa"] == pytest.approx(oa, abs=1e-12) and stored["aa"] == pytest.approx(aa, abs=1e-12)
    assert runs["real", 0]["real"]["oa"] != runs["real", 1]["real"]["oa"]  # the seeds are different trainings


def test_every_region_of_the_split_is_used(bench, tmp_path, monkeypatch):
    """The same pixels cut into two training and two test regions: each region gets its own versions, and the
    rgb and real arms (pooled pixels in the same order) score exactly as with one region each."""
    cfg, model, _, _, result = bench
    prepare = rgb.prepare_data

    def two_regions(data_cfg):
        data = prepare(data_cfg)
        data.split = {"train": [Region(0, 0, 16, 0, 48), Region(0, 16, 32, 0, 48)],
                      "test": [Region(0, 32, 40, 0, 48), Region(0, 40, 48, 0, 48)]}
        return data

    monkeypatch.setattr(rgb, "prepare_data", two_regions)
    calls = []
    split = rgb.rgb_benchmark(cfg, model, tmp_path, seeds=1, load_model=counting_loader(calls), **FAST)
    assert calls == [1, 3, 0, 2]  # training regions j: seed 2j + 1, test regions: 2j
    assert [np.load(tmp_path / "versions" / f).shape for f in ("train_0.npy", "train_1.npy", "test_0.npy",
                                                                "test_1.npy")] == [(2, 16, 48, 6)] * 2 + [(1, 8, 48, 6)] * 2
    assert split["data"]["test_regions"][1] == {"scene": "image", "rows": [40, 48], "cols": [0, 48]}
    assert split["data"]["labelled_test_pixels"] == result["data"]["labelled_test_pixels"]
    one = {(r["arm"], t): s for r in result["runs"] if r["seed"] == 0 for t, s in r["tests"].items()}
    two = {(r["arm"], t): s for r in split["runs"] for t, s in r["tests"].items()}
    assert two["rgb", "rgb"] == one["rgb", "rgb"] and two["real", "real"] == one["real", "real"]
    assert two["synthetic x2", "synthetic"] != one["synthetic x2", "synthetic"]  # other tiles, other versions


def test_resume_reuses_the_versions_and_trains_only_missing_runs(bench, tmp_path, monkeypatch):
    cfg, model = bench[:2]
    samples = []
    load = counting_loader(samples)
    trained = count_trainings(monkeypatch)
    first = rgb.rgb_benchmark(cfg, model, tmp_path, seeds=1, load_model=load, **FAST)
    assert samples == [1, 0] and len(trained) == 4
    versions = np.load(tmp_path / "versions" / "train_0.npy")
    with pytest.raises(OutputError, match="--resume"):
        rgb.rgb_benchmark(cfg, model, tmp_path, seeds=1, load_model=load, **FAST)
    more = rgb.rgb_benchmark(cfg, model, tmp_path, seeds=2, resume=True, load_model=load, **FAST)
    assert samples == [1, 0] and len(trained) == 8  # no new draw; only seed 1 trained
    assert all(v["reused"] for v in more["versions"]["train"] + more["versions"]["test"])
    assert more["runs"][:4] == first["runs"] and len(more["invocations"]) == 2

    # interrupted after two of seed 2's trainings: the summary pairs every arm with rgb on the seeds both have
    trained = count_trainings(monkeypatch, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        rgb.rgb_benchmark(cfg, model, tmp_path, seeds=3, resume=True, load_model=load, **FAST)
    partial = json.loads((tmp_path / "benchmark.json").read_text())
    assert not partial["complete"] and {(r["arm"], r["seed"]) for r in partial["runs"] if r["seed"] == 2} == {
        ("rgb", 2), ("real", 2)}
    oa = {(r["arm"], t, r["seed"]): s["oa"] for r in partial["runs"] for t, s in r["tests"].items()}
    real_vs_rgb = partial["summary"]["oa"]["real"]["real"]["vs_rgb"]
    assert real_vs_rgb["seeds"] == [0, 1, 2]
    synth = partial["summary"]["oa"]["synthetic x1"]["synthetic"]
    assert synth["vs_rgb"]["seeds"] == [0, 1] and synth["vs_real"]["seeds"] == [0, 1]
    assert synth["vs_rgb"]["diff_mean"] == pytest.approx(
        np.mean([oa["synthetic x1", "synthetic", k] - oa["rgb", "rgb", k] for k in (0, 1)]))
    assert partial["summary"]["oa"]["rgb"]["rgb"]["n"] == 3

    trained = count_trainings(monkeypatch)
    done = rgb.rgb_benchmark(cfg, model, tmp_path, seeds=3, resume=True, load_model=load, **FAST)
    assert len(trained) == 2 and done["complete"] and len(done["runs"]) == 12 and samples == [1, 0]
    with pytest.raises(OutputError, match="another config, model"):
        rgb.rgb_benchmark(cfg, model, tmp_path, seeds=3, resume=True, load_model=load, **{**FAST, "steps": STEPS + 1})
    with pytest.raises(OutputError, match="another config, model"):
        rgb.rgb_benchmark(cfg, model, tmp_path, seeds=3, resume=True, load_model=load, **{**FAST, "amounts": (1,)})
    assert samples == [1, 0] and len(trained) == 2
    # --overwrite starts afresh and draws the versions again (the same ones: same seeds)
    again = rgb.rgb_benchmark(cfg, model, tmp_path, seeds=1, overwrite=True, load_model=load, **FAST)
    assert samples == [1, 0, 1, 0] and len(again["runs"]) == 4
    np.testing.assert_allclose(np.load(tmp_path / "versions" / "train_0.npy"), versions, atol=1e-5)


def test_wrong_models_are_refused_naming_the_folder_before_training(bench, tmp_path, monkeypatch):
    cfg, model = bench[:2]
    trained = count_trainings(monkeypatch)
    loaded = []
    load = counting_loader(loaded)

    other = tmp_path / "specdm_model"
    other.mkdir()
    info = json.loads((model / "specdm.json").read_text())
    unconditioned = {k: v for k, v in info["source"].items() if k != "rgb"}  # as a SpecDM model records it
    (other / "specdm.json").write_text(json.dumps({**info, "method": "specdm", "source": unconditioned}))
    with pytest.raises(DataError, match="method 'specdm', whose models are not conditioned on RGB") as e:
        rgb.rgb_benchmark(cfg, other, tmp_path / "o1", load_model=load, **FAST)
    assert str(e.value).startswith(f"{other}: ")
    with pytest.raises(DataError, match="specdm.json missing") as e:
        rgb.rgb_benchmark(cfg, tmp_path, tmp_path / "o2", load_model=load, **FAST)
    assert str(e.value).startswith(f"{tmp_path}: ")

    # a scene with 5 bands, and one with the 6 bands at other wavelengths
    for name, bands, wl, match in (("five", 5, WAVELENGTHS[:5], "trained on 6 bands"),
                                   ("shifted", 6, [w + 40 for w in WAVELENGTHS], "other wavelengths")):
        scene = load_config(str(_config(tmp_path / name, bands, wl)))
        with pytest.raises(CheckpointError, match=match) as e:
            rgb.rgb_benchmark(scene, model, tmp_path / f"o_{name}", load_model=load, **FAST)
        assert str(e.value).startswith(f"{model}: ")
    assert not trained and not any((tmp_path / f"o{k}").exists() for k in ("1", "2", "_five", "_shifted"))
    assert loaded == []  # nothing sampled


def test_cli_refuses_flags_of_the_other_benchmark_in_one_line(bench, tmp_path, capsys):
    cfg, model, _, args, _ = bench
    config = args[1]
    out = tmp_path / "out"
    for extra, start in ((["--rgb-model", str(model), "--synthetic", f"x={tmp_path}"], "--rgb-model and --synthetic"),
                         (["--rgb-model", str(model), "--models", "unet"], "--rgb-model trains only the pixel"),
                         (["--rgb-model", str(model), "--lr", "0.01"], "--lr does not apply with --rgb-model"),
                         (["--sampler", "ddim"], "--sampler applies only with --rgb-model")):  # fmt: skip
        assert main(["benchmark", config, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {start}")
    assert not out.exists()
