"""Super-resolution augmentation (HSIGene's third part): the two-stage super-resolver, its scenes, data.super_resolved,
the no-reference statistics, and the restoration benchmark (specdm benchmark --task)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import single_thread, tiny_method_config, write_config, write_fake_files

from specdm.cli import main
from specdm.config import load_config
from specdm.data.datamodule import PatchSet, prepare_data
from specdm.data.windows import Window
from specdm.errors import DataError
from specdm.evaluation.restoration import degrade, restoration_scores, restore, train_restorer
from specdm.metrics.no_reference import brisque_features, scene_niqe
from specdm.metrics.reference import psnr
from specdm.models.superres import GuidedSuperResolver, PlainSuperResolver, downsample, structure_gate, upsample
from specdm.pipelines.superres import SuperResolutionPipeline
from specdm.recipes.superres import upsample_mask
from specdm.training.engine import LoopConfig
from specdm.training.superres import train_guided

TINY_SR = {"scales": [2, 4], "rgb": {"steps": 4, "batch_size": 4, "num_inference_steps": 2,
                                     "block_out_channels": [16, 16], "norm_num_groups": 8},
           "guided": {"steps": 4, "batch_size": 4, "width": 8}, "augmentations": 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`specdm superres` on the tiny 6-band scene: the model folder and its super-resolved scenes."""
    tmp = tmp_path_factory.mktemp("superres")
    (tmp / "rgb").mkdir()
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(tmp / "rgb" / "a.png")
    sr = {**TINY_SR, "rgb_images": str(tmp / "rgb"), "rgb_crops_per_image": 5}
    cfg = write_config(tmp / "cfg.yaml", tiny_method_config(tmp, "specdm", superres=sr))
    with single_thread():
        assert main(["--threads", "1", "superres", str(cfg), "--run-dir", str(tmp / "run")]) == 0
    return tmp, cfg


def test_the_rgb_stage_also_learns_the_users_rgb_images(trained):
    tmp, _ = trained
    source = json.loads((tmp / "run" / "model" / "specdm.json").read_text())["source"]
    assert source["rgb_crops"] == 5 and source["rgb_images"] == str(tmp / "rgb") and source["scales"] == [2, 4]


def test_x2_of_a_constant_image_is_that_constant(trained):
    """Bicubic interpolation keeps a constant, and the residual of both stages is gated by the local structure of
    the input, which is exactly 0 on a flat image: any trained (or random) super-resolver returns the constant."""
    tmp, _ = trained
    pipe = SuperResolutionPipeline.from_pretrained(tmp / "run" / "model")
    image = np.full((13, 10, 6), 437.0, np.float32)
    for stage in ("diffusion", "bicubic"):
        out = pipe(image, 2, seed=3, rgb_stage=stage, num_inference_steps=2)
        assert out.shape == (26, 20, 6)
        np.testing.assert_allclose(out, 437.0, rtol=0, atol=1e-3)
    torch.manual_seed(0)
    net = GuidedSuperResolver(6, width=8, blocks=1)
    torch.nn.init.normal_(net.conv_out.weight)  # not the zero start: a residual that would show
    x = torch.full((1, 6, 7, 9), 0.3)
    y = net(upsample(x, (14, 18)), torch.rand(1, 3, 14, 18))
    assert torch.allclose(y, torch.full_like(y, 0.3), atol=1e-6)
    assert structure_gate(torch.rand(1, 6, 8, 8)).min() > 0  # structure: the residual passes


def smooth_scene(size=64, bands=6, seed=0):
    """Smooth fields of two mixed spectra: the abundance a sum of low-frequency waves."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    a = sum(np.sin(2 * np.pi * (rng.uniform(3, 8) * xx + rng.uniform(3, 8) * yy) + rng.uniform(0, 6))
            for _ in range(4))
    a = (a - a.min()) / (a.max() - a.min())
    s1, s2 = rng.uniform(0.1, 0.9, bands), rng.uniform(0.1, 0.9, bands)
    return (a[..., None] * s1 + (1 - a[..., None]) * s2).astype(np.float32)  # (H, W, C) in [0, 1]


def test_downsample_then_restore_beats_bicubic_after_a_short_training(tmp_path, one_thread):
    """The guided stage, trained for a few hundred steps on the top of a smooth scene, restores the bottom (held out)
    from its x2 downsampling better than bicubic interpolation does (guided by the bicubic RGB: no oracle)."""
    scene = smooth_scene()
    train, test = scene[:40], scene[40:]
    x = train.transpose(2, 0, 1)[None, None]  # (T, C, H, W) of one "scene"
    windows = [Window(0, r, c) for r in range(0, 40 - 16 + 1, 4) for c in range(0, 64 - 16 + 1, 4)]
    patches = PatchSet([x[0]], [np.zeros((40, 64), np.int64)], windows, 16)
    torch.manual_seed(0)
    net = GuidedSuperResolver(6, width=16, blocks=1)
    loop = LoopConfig(steps=300, batch_size=8, lr=2e-3, lr_min=2e-4, checkpoint_every=1000, speed="plain")
    net = train_guided(patches, net, (3, 2, 1), [2], loop, tmp_path / "ckpt")
    hr = torch.from_numpy(np.ascontiguousarray(test.transpose(2, 0, 1)))[None]
    up = upsample(downsample(hr, 2), hr.shape[-2:])
    with torch.no_grad():
        out = net(up, up[:, [3, 2, 1]].clamp(0, 1))
    ref = test
    bicubic = psnr(up[0].numpy().transpose(1, 2, 0), ref)
    restored = psnr(out[0].numpy().transpose(1, 2, 0), ref)
    assert restored > bicubic + 0.5, (restored, bicubic)


def test_upsampled_masks_keep_class_values_and_shares(trained):
    mask = np.random.default_rng(0).integers(0, 5, (7, 9))
    for s in (2, 4):
        up = upsample_mask(mask, s)
        assert up.shape == (7 * s, 9 * s) and set(np.unique(up)) == set(np.unique(mask))
        np.testing.assert_array_equal(np.bincount(up.ravel(), minlength=5) / up.size,
                                      np.bincount(mask.ravel(), minlength=5) / mask.size)
        np.testing.assert_array_equal(up[::s, ::s], mask)
    tmp, cfg = trained
    from specdm.output.dataset import SyntheticDataset

    ds = SyntheticDataset(tmp / "run" / "scenes")
    meta = ds.meta
    assert meta["derived"]["kind"] == "super-resolved" and len(ds) == meta["num_samples"] == 2
    data = prepare_data(load_config(str(cfg)).data)
    for k in range(len(ds)):
        rec = meta["samples"][ds.indices[k]]
        src = data.scenes[0].mask[rec["rows"][0] : rec["rows"][1], rec["cols"][0] : rec["cols"][1]]
        got = ds[k]["mask"]
        assert got.shape == (src.shape[0] * rec["scale"], src.shape[1] * rec["scale"])
        np.testing.assert_array_equal(got, upsample_mask(src, rec["scale"]))
    card = (tmp / "run" / "scenes" / "README.md").read_text()
    assert "derived data" in card and "When not to trust it" in card


def test_generators_train_on_real_and_super_resolved_windows(trained, tmp_path, capsys):
    """data.super_resolved adds the scenes' windows (normalized by the real split) and the model folder, its data
    set's metadata.json and its card say which and by what."""
    tmp, cfg = trained
    scenes = tmp / "run" / "scenes"
    base = prepare_data(load_config(str(cfg)).data)
    data = prepare_data(load_config(str(cfg), [f"data.super_resolved=[{scenes}]"]).data)
    assert data.super_resolved["real_windows"] == len(base.train) < len(data.train)
    assert data.super_resolved["windows"] == len(data.train) - len(base.train)
    assert set(data.super_resolved["folders"][0]["per_scale"]) <= {"x2", "x4"}
    np.testing.assert_array_equal(data.normalizer.low, base.normalizer.low)  # fitted on real pixels only
    with single_thread():
        assert main(["--threads", "1", "run", str(cfg), "--run-dir", str(tmp_path / "gen"), "--set",
                     f"data.super_resolved=[{scenes}]"]) == 0
    assert "of super-resolved scenes" in capsys.readouterr().out
    meta = json.loads((tmp_path / "gen" / "synthetic" / "metadata.json").read_text())
    assert meta["source"]["super_resolved"]["folders"][0]["path"] == str(scenes)
    assert "real and super-resolved windows" in (tmp_path / "gen" / "synthetic" / "README.md").read_text()


def test_a_model_trained_on_another_band_count_is_refused_naming_it(trained, tmp_path, capsys):
    tmp, _ = trained
    model = tmp / "run" / "model"
    pipe = SuperResolutionPipeline.from_pretrained(model)
    with pytest.raises(DataError, match="trained on 6 bands.*has 5") as e:
        pipe(np.ones((8, 8, 5), np.float32), 2)
    assert str(model) in str(e.value)
    other = tiny_method_config(tmp_path, "specdm")
    other["data"] = {**other["data"], **write_fake_files(tmp_path / "five", np.random.default_rng(1), bands=5)}
    cfg = write_config(tmp_path / "five.yaml", other)
    assert main(["apply", "super-resolve", str(model), "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "trained on 6 bands" in err and str(model) in err
    bad = write_config(tmp_path / "bad.yaml", {**other, "data": {**other["data"], "super_resolved": [
        str(tmp / "run" / "scenes")]}})
    with pytest.raises(DataError, match="holds 6 bands"):
        prepare_data(load_config(str(bad)).data)
    from specdm.evaluation.benchmark.restoration import synthetic_windows

    with pytest.raises(DataError, match="holds 6 bands, the config's data 5") as e:
        synthetic_windows(tmp / "run" / "scenes", prepare_data(load_config(str(cfg)).data))
    assert str(tmp / "run" / "scenes") in str(e.value)


def test_superres_resumes_without_retraining(trained, capsys):
    """A finished run resumed: both stages are skipped (weights unchanged) and no scene is written again."""
    tmp, cfg = trained
    meta = json.loads((tmp / "run" / "scenes" / "metadata.json").read_text())
    before = {p.name: p.stat().st_mtime_ns for p in (tmp / "run" / "scenes" / "images").iterdir()}
    with single_thread():
        assert main(["--threads", "1", "superres", str(cfg), "--run-dir", str(tmp / "run"), "--resume"]) == 0
    after = json.loads((tmp / "run" / "scenes" / "metadata.json").read_text())
    assert after["model"] == meta["model"]
    assert {p.name: p.stat().st_mtime_ns for p in (tmp / "run" / "scenes" / "images").iterdir()} == before
    assert main(["superres", str(cfg), "--run-dir", str(tmp / "run")]) == 2
    assert "--resume" in capsys.readouterr().err


def test_apply_super_resolve_on_a_config_of_another_method(trained, tmp_path):
    """The operation takes any config with the model's bands (here a layout config): the guided stage alone at x2."""
    tmp, _ = trained
    cfg = write_config(tmp_path / "layout.yaml", tiny_method_config(tmp, "layout"))
    assert main(["--threads", "1", "apply", "super-resolve", str(tmp / "run" / "model"), "--config", str(cfg),
                 "--out", str(tmp_path / "op"), "--set", "scales=[2]", "--set", "rgb_stage=bicubic"]) == 0
    meta = json.loads((tmp_path / "op" / "scenes" / "metadata.json").read_text())
    assert [s["scale"] for s in meta["samples"]] == [2] and meta["derived"]["rgb_stage"] == "bicubic"


def test_no_reference_distance_is_zero_for_the_scene_and_grows_with_blur():
    rng = np.random.default_rng(0)
    x = np.cumsum(np.cumsum(rng.standard_normal((64, 64)), 0), 1)
    x = np.clip((x - x.min()) / (x.max() - x.min()) + 0.02 * rng.standard_normal(x.shape), 0, 1)
    assert scene_niqe(x, x)["distance"] == pytest.approx(0, abs=1e-9)
    t = torch.from_numpy(x)[None, None]
    blurred = upsample(downsample(t, 4), (64, 64))[0, 0].numpy()
    assert scene_niqe(blurred, x)["distance"] > 1.0
    f = brisque_features(x)
    assert f.shape == (36,) and np.isfinite(f).all()


def _ssim_by_hand(a, b):
    """Wang et al.'s SSIM of two 2-D images: 11x11 Gaussian window (sigma 1.5) over valid positions only."""
    from scipy.signal import correlate2d

    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()

    def f(z):
        return correlate2d(z, w, mode="valid")

    c1, c2 = 0.01**2, 0.03**2
    ma, mb = f(a), f(b)
    va, vb, cab = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
    return (((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))).mean()


def _scores_by_hand(restored, clean):
    p, r = np.clip(restored, 0, 1), np.clip(clean, 0, 1)  # (C, H, W)
    mse = ((p - r) ** 2).mean(axis=(1, 2))
    cos = (p * r).sum(0) / (np.linalg.norm(p, axis=0) * np.linalg.norm(r, axis=0))
    return {"psnr": float(np.mean(10 * np.log10(1 / mse))),
            "ssim": float(np.mean([_ssim_by_hand(p[c], r[c]) for c in range(len(p))])),
            "sam_rad": float(np.arccos(np.clip(cos, -1, 1)).mean())}


@pytest.mark.parametrize("task", ["denoise", "sr4"])
def test_restoration_benchmark_scores_equal_the_scores_by_hand(task, tmp_path, one_thread):
    """The stored scores of a tiny benchmark (one seed, a few steps) are PSNR/SSIM/SAM computed by hand from the
    same model (retrained: training is deterministic) on the same degraded held-out region."""
    from specdm.evaluation.benchmark.restoration import TEST_NOISE_SEED, restoration_benchmark

    cfg = load_config(str(write_config(tmp_path / "c.yaml", tiny_method_config(tmp_path, "specdm"))))
    result = restoration_benchmark(cfg, task, {}, tmp_path / "out", seeds=1, steps=3, batch_size=4)
    data = prepare_data(cfg.data)
    ps = data.image_windows()
    real = ps.batch(range(len(ps)))[0].numpy()[:, 0]
    model = train_restorer(task, [real], 3, 4, 1e-3, 0)
    g = data.split["test"][0]
    clean = data.scene_image(0)[0][:, g.r0 : g.r1, g.c0 : g.c1]
    clean = clean[:, : clean.shape[1] // 4 * 4, : clean.shape[2] // 4 * 4] if task == "sr4" else clean
    deg = degrade(torch.from_numpy(np.ascontiguousarray(clean))[None], task,
                  generator=torch.Generator().manual_seed(TEST_NOISE_SEED))[0].numpy()
    want = _scores_by_hand(restore(model, deg), clean)
    got = result["runs"]["real/0"]["scores"]["held_out"]
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-9)
    assert restoration_scores(clean, clean)["psnr"] == math.inf
    assert "real" in (tmp_path / "out" / "report.md").read_text()


def test_restoration_cli_refuses_what_does_not_apply(trained, tmp_path, capsys):
    tmp, cfg = trained
    assert main(["benchmark", str(cfg), "--task", "sr4", "--noise-sigma", "0.1", "--out", str(tmp_path / "a")]) == 2
    assert "--noise-sigma" in capsys.readouterr().err
    assert main(["benchmark", str(cfg), "--task", "denoise", "--models", "unet", "--out", str(tmp_path / "b")]) == 2
    assert "--models" in capsys.readouterr().err
    assert main(["benchmark", str(cfg), "--task", "denoise", "--synthetic", f"sr={tmp / 'run' / 'model'}",
                 "--out", str(tmp_path / "c")]) == 2
    assert "metadata.json" in capsys.readouterr().err


def test_plain_baseline_and_cosine_schedule():
    net = PlainSuperResolver(4, width=8, blocks=1)
    x = torch.rand(2, 4, 16, 16)
    assert torch.equal(net(x), x)  # starts at bicubic (zero last convolution)
    loop = LoopConfig(steps=10, batch_size=1, lr=1.0, lr_min=0.1)
    assert loop.lr_at(0) == 1.0 and loop.lr_at(10) == pytest.approx(0.1) and loop.lr_at(5) == pytest.approx(0.55)
    assert LoopConfig(steps=10, batch_size=1, lr=0.5).lr_at(7) == 0.5
