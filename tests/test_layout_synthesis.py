"""Layout-conditioned synthesis: images painted for given masks, guidance, layout sources, class targets, filtering."""

import json

import numpy as np
import pytest
import torch
from conftest import single_thread, tiny_config, write_config, write_fake_files

from specdm.cli import main
from specdm.conditions.layouts import RealLayouts, class_targets
from specdm.data.windows import d4
from specdm.errors import ConfigError
from specdm.output.dataset import SyntheticDataset


@pytest.fixture(scope="module")
def layout_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layout")
    data = write_fake_files(tmp / "data", np.random.default_rng(3))
    cfg = tiny_config(data, sampling={"num_samples": 4, "num_inference_steps": 3, "previews": 1})
    cfg["method"] = "layout"
    cfg["layout"] = {"copy_paste": 0.0}
    with single_thread():
        assert main(["run", str(write_config(tmp / "cfg.yaml", cfg)), "--run-dir", str(tmp / "run")]) == 0
    return tmp


def test_layout_run_paints_real_layouts(layout_run):
    run = layout_run / "run"
    info = json.loads((run / "model" / "specdm.json").read_text())
    assert info["method"] == "layout"
    ds = SyntheticDataset(run / "synthetic")
    assert len(ds) == 4 and ds.meta["inputs"]["layouts"]["source"].startswith("real training masks")
    from specdm.conditions.layouts import load_real_layouts

    real = load_real_layouts(run / "model")
    variants = {d4(m, k).tobytes() for m in real for k in range(8)}
    for k in range(len(ds)):  # without copy-paste every layout is a D4 transform of a real training mask
        assert ds[k]["mask"].tobytes() in variants
        assert np.isfinite(ds[k]["images"]).all() and ds[k]["images"].shape == (1, 6, 16, 16)


def test_guidance_zero_is_the_unconditional_prediction(layout_run):
    from specdm.pipelines import LayoutPipeline

    pipe = LayoutPipeline.from_pretrained(layout_run / "run" / "model")
    masks = np.stack([np.zeros((16, 16), np.int64), np.full((16, 16), 2)])
    cond = pipe.encode_layouts(masks)
    z, t = torch.randn(2, pipe.target_channels, 4, 4), torch.tensor(500)
    with torch.no_grad():
        uncond = pipe.unet(torch.cat([z, torch.zeros_like(cond)], 1), t, encoder_hidden_states=None).sample
        conditional = pipe.unet(torch.cat([z, cond], 1), t, encoder_hidden_states=None).sample
        assert torch.equal(pipe.predict_noise(z, t, cond, 0.0), uncond)
        assert torch.equal(pipe.predict_noise(z, t, cond, 1.0), conditional)
        g2 = pipe.predict_noise(z, t, cond, 2.0)
    torch.testing.assert_close(g2, uncond + 2 * (conditional - uncond))
    assert not torch.allclose(uncond, conditional)  # the condition reaches the output


def test_controlnet_conditioning_trains_saves_and_guides(layout_run, tmp_path, one_thread):
    """layout.conditioning: controlnet reuses the run's stage 1, trains a U-Net + ControlNet, saves both, and
    guidance 0 is the U-Net alone (no residuals)."""
    import shutil

    from specdm.pipelines import LayoutPipeline, load_pipeline

    run = tmp_path / "run"
    shutil.copytree(layout_run / "run", run, ignore=shutil.ignore_patterns("unet", "checkpoints", "synthetic"))
    cfg = __import__("yaml").safe_load((run / "config.yaml").read_text())
    cfg["layout"]["conditioning"] = "controlnet"
    assert main(["train-diffusion", str(write_config(tmp_path / "cfg.yaml", cfg)), "--run-dir", str(run), "--resume"]) == 0
    index = json.loads((run / "model" / "model_index.json").read_text())
    assert index["controlnet"] == "ControlNetModel"
    pipe = load_pipeline(run / "model")
    assert isinstance(pipe, LayoutPipeline) and pipe.controlnet is not None and "controlnet" in pipe.hashes(run / "model")
    masks = np.stack([np.zeros((16, 16), np.int64), np.full((16, 16), 2)])
    cond = pipe.encode_layouts(masks)
    z, t = torch.randn(2, pipe.target_channels, 4, 4), torch.tensor(500)
    with torch.no_grad():
        alone = pipe.unet(z, t, encoder_hidden_states=None).sample
        assert torch.equal(pipe.predict_noise(z, t, cond, 0.0), alone)
        conditional = pipe.predict_noise(z, t, cond, 1.0)
    assert not torch.allclose(alone, conditional)  # the trained ControlNet's residuals reach the output
    assert main(["sample", str(run / "model"), "--out", str(tmp_path / "s"), "-n", "2", "--steps", "2"]) == 0
    ds = SyntheticDataset(tmp_path / "s")
    assert np.isfinite(ds[0]["images"]).all() and "controlnet" in ds.meta["model"]


def test_masks_of_a_sampled_data_set_are_layouts(layout_run, tmp_path):
    """A data set's masks/ folder (e.g. a joint SpecDM model's sampled masks) is a valid --masks source; each
    written mask is the layout it was painted for, in file order."""
    model = layout_run / "run" / "model"
    source = layout_run / "run" / "synthetic"
    assert main(["sample", str(model), "--out", str(tmp_path / "s"), "-n", "4", "--steps", "2",
                 "--masks", str(source / "masks")]) == 0
    ds, first = SyntheticDataset(tmp_path / "s"), SyntheticDataset(source)
    assert ds.meta["inputs"]["layouts"]["source"] == "user masks"
    assert ds.meta["inputs"]["layouts"]["files"][:4] == [str(source / "masks" / f"{i:06d}.png") for i in range(4)]
    for k in range(4):
        np.testing.assert_array_equal(ds[k]["mask"], first[k]["mask"])


def test_user_masks_are_painted_and_bad_masks_refused(layout_run, tmp_path, capsys):
    from PIL import Image

    model = layout_run / "run" / "model"
    good = tmp_path / "good"
    good.mkdir()
    m = np.zeros((16, 16), np.uint8)
    m[:, 8:] = 3
    Image.fromarray(m).save(good / "a.png")
    assert main(["sample", str(model), "--out", str(tmp_path / "s"), "-n", "2", "--steps", "2", "--masks", str(good)]) == 0
    ds = SyntheticDataset(tmp_path / "s")
    assert all(np.array_equal(ds[k]["mask"], m) for k in range(2))
    bad = tmp_path / "bad"
    bad.mkdir()
    m[0, 0] = 7  # the model knows classes 0..3
    Image.fromarray(m).save(bad / "b.png")
    capsys.readouterr()
    code = main(["sample", str(model), "--out", str(tmp_path / "t"), "-n", "2", "--masks", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "b.png" in err and "outside the model's 4 classes" in err
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t" / "images").glob("*"))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(bad / "b.png")
    code = main(["sample", str(model), "--out", str(tmp_path / "u"), "-n", "2", "--masks", str(bad)])
    assert code == 2 and "8x8 pixels" in capsys.readouterr().err


def test_specdm_models_refuse_layout_flags(tmp_path, capsys):
    cfg = tiny_config(write_fake_files(tmp_path / "data", np.random.default_rng(4)), sampling={"num_samples": 2})
    assert main(["run", str(write_config(tmp_path / "cfg.yaml", cfg)), "--run-dir", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    code = main(["sample", str(tmp_path / "run" / "model"), "--out", str(tmp_path / "o"), "--balance"])
    err = capsys.readouterr().err
    assert code == 2 and "--balance steers layout models; this model (specdm" in err
    assert not (tmp_path / "o").exists()


def test_class_targets_move_shares_in_the_requested_direction(rng):
    masks = np.zeros((40, 8, 8), np.int64)
    masks[:30, :, 4:] = 1  # class 1 in 30 windows
    masks[30:, :2, :2] = 2  # class 2 rare: 4 pixels in 10 windows
    real = np.bincount(masks.ravel(), minlength=3) / masks.size
    target = class_targets({"2": 0.05}, False, ["a", "b", "c"], None, real)
    assert target[0][2] == 0.05 and target[0].sum() == pytest.approx(1.0) and target[1].tolist() == [False, False, True]
    plain = RealLayouts(masks, 3, None, seed=1).layouts(range(400))
    steering = RealLayouts(masks, 3, target, copy_paste=0.0, seed=1)
    assert steering.expected_shares()[2] == pytest.approx(0.05, abs=0.005)  # reachable: class-2 windows hold 1/16
    steered = steering.layouts(range(400))
    share = lambda m: np.bincount(m.ravel(), minlength=3) / m.size  # noqa: E731
    assert share(steered)[2] > 1.5 * share(plain)[2]
    pasted = RealLayouts(masks, 3, target, copy_paste=1.0, seed=1).layouts(range(400))
    assert share(pasted)[2] > share(steered)[2]
    with pytest.raises(ConfigError, match="unknown class 'd'"):
        class_targets({"d": 0.1}, False, ["a", "b", "c"], None, real)
    with pytest.raises(ConfigError, match="add up to"):
        class_targets({"a": 0.6, "b": 0.5}, False, ["a", "b", "c"], None, real)


def test_filtering_removes_exactly_the_pairs_under_the_threshold(layout_run, tmp_path):
    from specdm.augment.fidelity import LabelFidelity, load_pixels
    from specdm.data.normalize import Normalizer

    model = layout_run / "run" / "model"
    args = ["sample", str(model), "-n", "6", "--steps", "2", "--seed", "5", "--previews", "0"]
    assert main([*args, "--out", str(tmp_path / "all")]) == 0
    every = SyntheticDataset(tmp_path / "all")
    info = json.loads((model / "specdm.json").read_text())
    norm = Normalizer.from_dict(info["normalization"])
    clf = LabelFidelity(len(info["class_names"]), info["ignore_index"], seed=5).fit_pixels(*load_pixels(model))
    x, y = every.arrays()
    scores = clf.sample_scores(np.moveaxis(norm(np.moveaxis(x, 2, -1)), -1, 2), y)
    threshold = float(np.median(scores))
    assert main([*args, "--out", str(tmp_path / "kept"), "--filter", str(threshold), "--max-attempts", "1"]) == 0
    kept = SyntheticDataset(tmp_path / "kept")
    assert kept.indices == [i for i, s in zip(every.indices, scores) if s >= threshold]
    for k, i in enumerate(kept.indices):
        np.testing.assert_array_equal(kept[k]["images"], every[every.indices.index(i)]["images"])
    f = kept.meta["filter"]
    assert f["threshold"] == threshold and f["dropped"] == 6 - len(kept) and f["scored_samples"] == 6
    assert sum(f["dropped_per_class"].values()) >= f["dropped"]
    assert "threshold" in (tmp_path / "kept" / "README.md").read_text().lower()


def test_filtered_samples_are_redrawn_until_they_pass_or_dropped(layout_run, tmp_path):
    from specdm.augment.fidelity import LabelFidelity, load_pixels
    from specdm.data.normalize import Normalizer

    model = layout_run / "run" / "model"
    out = tmp_path / "retry"
    args = ["sample", str(model), "-n", "6", "--steps", "2", "--seed", "5", "--previews", "0", "--out", str(out)]
    info = json.loads((model / "specdm.json").read_text())
    clf = LabelFidelity(len(info["class_names"]), info["ignore_index"], seed=5).fit_pixels(*load_pixels(model))
    norm = Normalizer.from_dict(info["normalization"])

    def scores_of(ds):
        x, y = ds.arrays()
        return clf.sample_scores(np.moveaxis(norm(np.moveaxis(x, 2, -1)), -1, 2), y)

    assert main([*args[:-1], str(tmp_path / "plain")]) == 0
    threshold = float(np.sort(scores_of(SyntheticDataset(tmp_path / "plain")))[3])  # three fail their first try
    assert main([*args, "--filter", str(threshold), "--max-attempts", "3"]) == 0
    ds = SyntheticDataset(out)
    assert (scores_of(ds) >= threshold).all()  # every kept pair passes, whichever try it came from
    log = [json.loads(line) for line in (out / "filter_log.jsonl").read_text().splitlines()]
    f = ds.meta["filter"]
    assert f["failed_first_try"] == 3
    assert f["dropped"] == sum(1 for r in log if r.get("dropped")) == 6 - len(ds)
    assert f["redrawn"] == sum(1 for r in log if r["attempt"] > 0) and max(r["attempt"] for r in log) <= 2
    kept_later = {r["index"] for r in log if r["kept"] and r["attempt"] > 0}
    assert kept_later <= set(ds.indices)
    # a retry drew new noise for the same layout: every kept sample holds its first-try layout
    first = SyntheticDataset(tmp_path / "plain")
    for k, i in enumerate(ds.indices):
        np.testing.assert_array_equal(ds[k]["mask"], first[first.indices.index(i)]["mask"])
    # resuming the finished set draws nothing new and keeps the dropped samples dropped
    assert main([*args, "--filter", str(threshold), "--max-attempts", "3", "--resume"]) == 0
    assert len(SyntheticDataset(out)) == len(ds) and len((out / "filter_log.jsonl").read_text().splitlines()) == len(log)


def test_change_detection_layouts_paint_both_dates(tmp_path):
    data = write_fake_files(tmp_path / "data", np.random.default_rng(6), change=True)
    cfg = tiny_config(data, sampling={"num_samples": 3, "num_inference_steps": 2, "previews": 1})
    cfg["method"] = "layout"
    assert main(["run", str(write_config(tmp_path / "cfg.yaml", cfg)), "--run-dir", str(tmp_path / "run")]) == 0
    ds = SyntheticDataset(tmp_path / "run" / "synthetic")
    assert ds.meta["images"] == ["images_t1", "images_t2"] and ds[0]["images"].shape == (2, 6, 16, 16)
    assert set(np.unique(np.stack([ds[k]["mask"] for k in range(3)]))) <= {0, 1}
    assert not np.array_equal(ds[0]["images"][0], ds[0]["images"][1])  # two dates, each its own latent
