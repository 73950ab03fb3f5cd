"""RGB-conditioned synthesis (HyperLDM): the VQ autoencoder, its library head, the RGB pipeline and `sample --rgb`."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import single_thread, tiny_config, write_config, write_fake_files

from specdm.cli import main
from specdm.conditions.rgb import WindowRGB, fit_rgb, rgb_from_scene
from specdm.config import HYPERLDM_SCHEDULE, load_config
from specdm.data.normalize import Normalizer
from specdm.metrics import spectral_diversity
from specdm.models.autoencoders import HyperVQAutoencoder
from specdm.models.autoencoders.hyper_vq import library_calibration
from specdm.output.dataset import SyntheticDataset
from specdm.pipelines.hyperldm import HyperLDMPipeline, tent, tile_grid
from specdm.schedulers import ZERO_TERMINAL_SNR

WAVELENGTHS = [450.0, 550.0, 650.0, 850.0, 1600.0, 2200.0]


def tiny_vq(num_bands=5, library=None, offset=None, use_rgb=True, codes=16):
    return HyperVQAutoencoder(num_bands, 4, codes, (8, 16), 1, 8, 4, 8, use_rgb,
                              0 if library is None else len(library), library, offset)


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    """A tiny HyperLDM model trained through `specdm run` on fake files (direct head: no library file needed)."""
    tmp = tmp_path_factory.mktemp("hyperldm")
    data = write_fake_files(tmp / "data", np.random.default_rng(3))
    data["wavelengths"] = WAVELENGTHS
    cfg = tiny_config(data, sampling={"num_inference_steps": 3})
    cfg["method"] = "hyperldm"
    cfg["autoencoder"]["latent_channels"] = 4
    cfg["hyperldm"] = {"library": None, "num_codes": 32, "num_versions": 2, "condition_channels": 4, "head_channels": 8}
    with single_thread():
        assert main(["run", str(write_config(tmp / "cfg.yaml", cfg)), "--run-dir", str(tmp / "run")]) == 0
    return tmp


def test_calibrated_library_head_mixes_in_data_units():
    """One-hot abundances give that library spectrum times the scale, in the data's units, then normalized."""
    rng = np.random.default_rng(0)
    library = rng.uniform(0.05, 0.9, (3, 5))
    low, high = rng.uniform(100, 200, 5), rng.uniform(900, 1000, 5)
    mean = rng.uniform(300, 600, 5)
    lib, offset = library_calibration(library, low, high, mean)
    model = tiny_vq(5, lib, offset)
    with torch.no_grad():
        model.head.proj.weight.zero_()
        model.head.proj.bias.zero_()
        model.head.proj.bias[:3] = torch.tensor([-50.0, 50.0, -50.0])  # all weight on spectrum 1
        model.head.proj.bias[3:] = math.log(math.e - 1)  # softplus -> scale 1
        out = model.head(torch.zeros(1, model.head.proj.in_channels, 2, 2))
    k = mean / library.mean(0)
    expected = (k * library[1] - low) / (high - low)  # t = 1: the data-unit spectrum k * R_1, normalized
    got = out.image[0, :, 0, 0].numpy() - offset
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # a mean library spectrum at scale 1 is the training mean
    np.testing.assert_allclose(lib.mean(0) - offset, (mean - low) / (high - low), rtol=1e-5)
    # the buffers travel with the weights, not with config.json
    assert "library" not in model.config and torch.equal(model.head.library, torch.from_numpy(lib))


def test_quantizer_is_the_l1_nearest_code_with_straight_through_gradients():
    torch.manual_seed(0)
    model = tiny_vq(5, codes=16)
    x = torch.rand(2, 5, 8, 8)
    z = model.encode(x)
    idx, zq = model.quantize(z)
    book = model.codebook.weight
    flat = z.detach().movedim(1, -1).reshape(-1, 4)
    brute = (flat[:, None] - book[None]).abs().sum(-1).argmin(1)
    assert torch.equal(idx.reshape(-1), brute)
    assert torch.equal(zq.movedim(1, -1).reshape(-1, 4), book[brute])
    out = model(x, torch.rand(2, 3, 8, 8))
    (out.image.mean() + out.codebook_loss + out.commitment_loss).backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0  # straight-through: the encoder learns
    assert model.codebook.weight.grad.abs().sum() > 0


def test_fixed_rgb_of_normalized_windows_equals_the_scene_rgb():
    rng = np.random.default_rng(1)
    pixels = rng.uniform(100, 900, (40, 40, 6))
    settings = fit_rgb(pixels, WAVELENGTHS, percentile=95)
    assert settings["method"] == "bands" and settings["rgb_bands"] == [2, 1, 0]
    assert settings["scale"] == pytest.approx(np.percentile(pixels[..., [2, 1, 0]], 95))
    norm = Normalizer.fit(pixels)
    windows = np.moveaxis(norm(pixels), -1, 0)[None]  # (1, C, H, W) normalized
    rgb = WindowRGB(norm, WAVELENGTHS, None, settings)(windows)
    direct = rgb_from_scene(pixels, WAVELENGTHS, **settings)
    np.testing.assert_allclose(np.moveaxis(rgb[0], 0, -1), direct, atol=1e-5)


def test_sdm_against_hand_computed_distances():
    versions = np.array([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]])  # 3 versions of one pixel
    out = spectral_diversity(versions, features=lambda s: 2 * s)
    # features 2x: pairwise distances 2*sqrt(2), 2, 2
    assert out["sdm"] == pytest.approx((2 * math.sqrt(2) + 4) / 3)
    assert out["sd"] == pytest.approx((math.pi / 2 + math.pi / 4 + math.pi / 4) / 3)


class EchoPipeline(HyperLDMPipeline):
    """HyperLDM's tiling and blending with a stand-in network: every tile's "spectra" are its own RGB and a
    constant band, so a correct blend gives back the RGB image and the constant everywhere."""

    def __init__(self, patch_size: int):
        self.info = SimpleNamespace(patch_size=patch_size, num_bands=4)
        self.calls = []

    def __call__(self, rgb, indices, seed=0, **kw):
        self.calls.append(list(indices))
        x = np.moveaxis(rgb, -1, 1)  # (N, 3, P, P)
        return {"images": np.concatenate([x, np.full_like(x[:, :1], 0.25)], 1)[:, None]}


def test_tiles_cover_any_size_and_blend_a_constant_exactly():
    for h, w in [(5, 7), (16, 16), (21, 37)]:
        image = np.arange(h * w, dtype=np.float32).reshape(h, w, 1)
        padded, origins = tile_grid(image, 16)
        np.testing.assert_array_equal(padded[:h, :w], image)
        covered = np.zeros(padded.shape[:2])
        for r, c in origins:
            covered[r : r + 16, c : c + 16] += tent(16)
        assert covered.min() > 0 and padded.shape[0] >= max(h, 16) and padded.shape[1] >= max(w, 16)
        # the blend of the pipeline's tiles: the constant band stays the constant, the RGB comes back as it was
        rgb = np.random.default_rng(h).random((h, w, 3)).astype(np.float32)
        pipe = EchoPipeline(16)
        out = pipe.sample_image(rgb, 2, seed=0, batch_size=3)
        assert out.shape == (2, 4, h, w)
        np.testing.assert_allclose(out[:, 3], 0.25, rtol=1e-6)
        np.testing.assert_allclose(out[:, :3], np.broadcast_to(np.moveaxis(rgb, -1, 0), (2, 3, h, w)), rtol=1e-5,
                                   atol=1e-6)
        # tile j of version v is sample v * tiles + j, whatever the batches
        assert sorted(i for c in pipe.calls for i in c) == list(range(2 * len(origins)))
    assert len(origins) == 8  # 21 x 37: tiles overlap in both directions, so the last image was blended


def test_hyperldm_config_takes_the_papers_schedule_unless_set():
    base = {"method": "hyperldm", "data": {"dataset": "indian_pines"}}
    import yaml

    def load(extra, tmp):
        tmp.write_text(yaml.safe_dump({**base, **extra}))
        return load_config(str(tmp))

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        cfg = load({}, Path(d) / "a.yaml")
        assert cfg.schedule() == {**HYPERLDM_SCHEDULE, **ZERO_TERMINAL_SNR} and cfg.autoencoder.latent_channels == 16
        assert load({"diffusion": {"zero_terminal_snr": False}}, Path(d) / "c.yaml").schedule() == HYPERLDM_SCHEDULE
        with pytest.raises(Exception, match="hyperldm.zero_terminal_snr is now diffusion.zero_terminal_snr"):
            load({"hyperldm": {"zero_terminal_snr": False}}, Path(d) / "d.yaml")
        with pytest.raises(Exception, match="autoencoder.kind: a setting of the autoencoder of methods specdm, layout and controllable"):
            load({"autoencoder": {"kind": "two_stream"}}, Path(d) / "e.yaml")
        cfg = load({"diffusion": {"num_train_timesteps": 200}, "autoencoder": {"latent_channels": 8}}, Path(d) / "b.yaml")
        assert cfg.schedule()["num_train_timesteps"] == 200 and cfg.schedule()["beta_end"] == 0.02
        assert cfg.autoencoder.latent_channels == 8


def test_run_writes_versions_of_the_held_out_rgb(rgb_run):
    run = rgb_run / "run"
    info = json.loads((run / "model" / "specdm.json").read_text())
    assert info["method"] == "hyperldm" and info["source"]["head"].startswith("direct output")
    assert info["source"]["rgb"]["rgb_bands"] == [2, 1, 0]
    ds = SyntheticDataset(run / "synthetic")
    assert len(ds) == 2 and not ds.has_masks
    assert ds.meta["inputs"]["sources"][0]["rgb"].endswith("rows 32-48 cols 0-48")
    a, b = ds[0]["images"], ds[1]["images"]
    assert a.shape == (1, 6, 16, 48) and np.isfinite(a).all() and not np.array_equal(a, b)
    card = (run / "synthetic" / "README.md").read_text()
    assert "output head: direct output (hyperldm.library is null)" in card and "rows 32-48 cols 0-48" in card


def test_pipeline_versions_differ_per_seed_and_are_reproducible(rgb_run):
    from specdm.pipelines import load_pipeline

    pipe = load_pipeline(rgb_run / "run" / "model")
    rgb = np.random.default_rng(0).random((20, 24, 3)).astype(np.float32)
    kw = {"sampler": "ddpm", "num_inference_steps": 5}
    a = pipe.sample_image(rgb, 3, seed=0, batch_size=32, **kw)
    b = pipe.sample_image(rgb, 3, seed=0, batch_size=2, **kw)  # other batching, same samples
    c = pipe.sample_image(rgb, 3, seed=1, batch_size=32, **kw)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a.shape == (3, 6, 20, 24)
    assert all(np.abs(a[i] - a[j]).mean() > 1e-3 for i in range(3) for j in range(i))
    assert np.abs(a - c).mean() > 1e-3
    assert pipe.steps("ddpm", None) == 100  # DDPM's default 1000 steps capped at T


def test_sample_rgb_cli_on_an_odd_sized_png(rgb_run, tmp_path):
    from PIL import Image

    folder = tmp_path / "rgb"
    folder.mkdir()
    Image.fromarray((np.random.default_rng(0).random((21, 37, 3)) * 255).astype(np.uint8)).save(folder / "a.png")
    np.save(folder / "b.npy", np.full((9, 11, 3), 0.5, np.float32))
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "s"
    assert main(["--threads", "1", "sample", str(rgb_run / "run" / "model"), "--rgb", str(folder), "-k", "3",
                 "--out", str(out), "--steps", "3"]) == 0
    ds = SyntheticDataset(out)
    assert len(ds) == 6
    assert ds[0]["images"].shape == (1, 6, 21, 37) and ds[3]["images"].shape == (1, 6, 9, 11)
    sources = ds.meta["inputs"]["sources"]
    assert [s["rgb"] for s in sources] == [str(folder / "a.png"), str(folder / "b.npy")]
    assert sources[1]["samples"] == [3, 5] and sources[0]["shape"] == [21, 37]
    assert not np.array_equal(ds[0]["images"], ds[1]["images"])


@pytest.mark.parametrize("kind", ["two_channels", "corrupt", "four_channel_npy", "no_images"])
def test_bad_rgb_files_name_the_file(rgb_run, tmp_path, capsys, kind):
    from PIL import Image

    folder = tmp_path / "rgb"
    folder.mkdir()
    if kind != "no_images":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "good.png")
    if kind == "no_images":
        bad = folder
        (folder / "notes.txt").write_text("no image here")
    elif kind == "two_channels":
        bad = folder / "bad.png"
        Image.fromarray(np.zeros((8, 8, 2), np.uint8), mode="LA").save(bad)
    elif kind == "corrupt":
        bad = folder / "bad.jpg"
        bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    else:
        bad = folder / "bad.npy"
        np.save(bad, np.random.default_rng(0).random((8, 8, 4)))
    out = tmp_path / "s"
    assert main(["sample", str(rgb_run / "run" / "model"), "--rgb", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"error: {bad}: ")
    assert not out.exists()  # nothing sampled, nothing written


def test_vq_training_lowers_the_reconstruction_error_on_a_real_crop(data_dir, tmp_path, one_thread):
    from specdm.config import Config, validate
    from specdm.data.datamodule import prepare_data
    from specdm.recipes.hyperldm import build_vq, scene_library
    from specdm.training.autoencoder import reconstruction_report
    from specdm.training.engine import LoopConfig
    from specdm.training.hyperldm import train_vq_autoencoder, vq_reconstruction

    cfg = validate(Config, {
        "method": "hyperldm", "data": {"dataset": "indian_pines", "root": str(data_dir), "patch_size": 16, "stride": 16,
                                       "split": {"kind": "rows", "train": [0, 48], "test": [48, 64]}},
        "autoencoder": {"block_out_channels": [16, 32, 32], "norm_num_groups": 8, "latent_channels": 8},
        "hyperldm": {"max_spectra": 16, "num_codes": 64, "condition_channels": 8, "head_channels": 16}})
    data = prepare_data(cfg.data)
    ref = data.reference
    pixels = ref.images[0][:48].reshape(-1, ref.num_bands)
    settings = fit_rgb(pixels, ref.wavelengths, ref.band_names)
    assert settings["method"] == "cie"  # 400-2500 nm, 10 nm bands: colour matching
    rgb = WindowRGB(data.normalizer, ref.wavelengths, ref.band_names, settings)
    library, about = scene_library(cfg, data)
    assert library.shape == (16, 200) and about["library"]["spectra"] == 16
    torch.manual_seed(0)
    model = build_vq(cfg, ref.num_bands, library, data.normalizer, pixels.mean(0))
    before = reconstruction_report(vq_reconstruction(model, data.train, rgb), len(data.train))
    model = train_vq_autoencoder(data.train, model, rgb, LoopConfig(60, 4, 2e-3, checkpoint_every=1000),
                                 tmp_path / "ckpt")
    after = reconstruction_report(vq_reconstruction(model, data.train, rgb), len(data.train))
    # measured on one thread: RMSE 0.453 -> 0.238, SAM 0.909 -> 0.288 rad
    assert after["rmse"] < 0.7 * before["rmse"] and after["sam_rad"] < 0.5 * before["sam_rad"]


def tiny_patches(bands=5, size=8):
    """Four 8x8 windows of one random 5-band, 16x16 scene and an RGB that is the first three bands."""
    from specdm.data.datamodule import PatchSet
    from specdm.data.windows import Window

    image = np.random.default_rng(0).uniform(0, 1, (1, bands, 16, 16)).astype(np.float32)
    windows = [Window(0, r, c) for r in (0, 8) for c in (0, 8)]
    return PatchSet([image], [np.zeros((16, 16), np.int64)], windows, size), lambda x: x[:, :3].copy()


def test_discriminators_step_every_third_step_and_resume_exactly(tmp_path, one_thread):
    import copy

    from specdm.models.discriminators import Discriminators
    from specdm.training.engine import LoopConfig
    from specdm.training.hyperldm import train_vq_autoencoder

    patches, rgb = tiny_patches()
    torch.manual_seed(0)
    vq, critics = tiny_vq(5), Discriminators(5, 8, 8)
    start = copy.deepcopy(critics.state_dict())

    def train(steps, folder, resume=False):
        loop = LoopConfig(steps, 2, 1e-3, checkpoint_every=1, log_every=1)
        model, disc = copy.deepcopy(vq), copy.deepcopy(critics)
        out = train_vq_autoencoder(patches, model, rgb, loop, tmp_path / folder, resume=resume, discriminators=disc,
                                   discriminator_weight=0.1, discriminator_every=3)
        return out, disc

    ae2, disc2 = train(2, "a")
    assert all(torch.equal(disc2.state_dict()[k], v) for k, v in start.items())  # steps 1, 2: critics untouched
    assert not torch.equal(ae2.encoder.conv_in.weight, vq.encoder.conv_in.weight)
    ae3, disc3 = train(3, "a", resume=True)  # step 3 from the step-2 checkpoint: the critics step
    assert not torch.equal(disc3.spatial[0].weight, start["spatial.0.weight"])
    assert not torch.equal(disc3.spectral.net[0].weight, start["spectral.net.0.weight"])
    log = [json.loads(line) for line in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "aux_loss" in r] == [3]
    assert all(math.isfinite(r["adversarial"]) for r in log) and math.isfinite(log[-1]["aux_loss"])
    straight, disc_straight = train(3, "b")  # the same three steps without a break: bit-identical
    assert all(torch.equal(v, straight.state_dict()[k]) for k, v in ae3.state_dict().items())
    assert all(torch.equal(v, disc_straight.state_dict()[k]) for k, v in disc3.state_dict().items())


def test_vq_training_without_discriminators_is_the_plain_loop(tmp_path, one_thread):
    """Off, stage 1 is the loop it was before discriminators existed (same seed: bit-identical weights)."""
    import copy

    from specdm.training.engine import LoopConfig, train_loop
    from specdm.training.hyperldm import init_codebook, pair_batch, spectral_losses, train_vq_autoencoder

    patches, rgb = tiny_patches()
    torch.manual_seed(0)
    vq = tiny_vq(5)
    loop = LoopConfig(4, 2, 1e-3, checkpoint_every=1000)
    ours = train_vq_autoencoder(patches, copy.deepcopy(vq), rgb, loop, tmp_path / "a")

    def step(net, items, rnd):  # the stage-1 step as it was
        x, c = pair_batch(patches, rgb, items.tolist(), rnd.integers(8).tolist())
        out = net(x, c)
        l1, cos = spectral_losses(out.image.float(), x)
        return l1 + 10 * cos + out.codebook_loss + 0.25 * out.commitment_loss, {}

    plain = copy.deepcopy(vq)
    init_codebook(plain, patches, rgb, loop.seed)
    plain = train_loop(plain, step, len(patches), loop, tmp_path / "b")
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in ours.state_dict().items())


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_stage2_loss_ssim_term(prediction):
    import torch.nn.functional as F

    from specdm.schedulers import training_scheduler
    from specdm.training.diffusion import denoising_loss, predicted_x0

    sched = training_scheduler(**HYPERLDM_SCHEDULE, prediction_type=prediction,
                               rescale_betas_zero_snr=prediction == "v_prediction")
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    t = torch.tensor([0, 50, 99])
    zt = sched.add_noise(x0, noise, t)
    exact = sched.get_velocity(x0, noise, t) if prediction == "v_prediction" else noise
    torch.testing.assert_close(predicted_x0(sched, zt, exact, t), x0, atol=1e-4, rtol=1e-4)
    off = exact + 0.3 * torch.randn(exact.shape, generator=g)
    loss, _ = denoising_loss(sched, off, noise, x0, zt, t, 0.0)  # weight 0: the MSE alone, exactly
    assert torch.equal(loss, F.mse_loss(off, exact))
    loss, logs = denoising_loss(sched, exact, noise, x0, zt, t, 0.1)  # exact prediction: no SSIM term
    assert abs(loss.item()) < 1e-5 and abs(logs["1-ssim"]) < 1e-5
    loss, logs = denoising_loss(sched, off, noise, x0, zt, t, 0.1)
    assert logs["1-ssim"] > 0.01 and loss.item() == pytest.approx(logs["mse"] + 0.1 * logs["1-ssim"], rel=1e-5)


def test_torch_ssim_is_the_reference_ssim():
    from specdm.metrics import ssim
    from specdm.metrics.reference import ssim_torch

    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, (2, 12, 13, 3)), rng.uniform(0, 1, (2, 12, 13, 3))
    got = ssim_torch(torch.from_numpy(a).permute(0, 3, 1, 2), torch.from_numpy(b).permute(0, 3, 1, 2))
    assert got.mean().item() == pytest.approx(ssim(a, b), abs=1e-12) and got.shape == (2,)
    assert ssim_torch(torch.from_numpy(a).permute(0, 3, 1, 2), torch.from_numpy(a).permute(0, 3, 1, 2)).tolist() == [
        pytest.approx(1.0), pytest.approx(1.0)]


def test_zero_terminal_snr_run_stores_and_samples_its_schedule(tmp_path, one_thread):
    """Discriminators, the SSIM term and zero terminal SNR on: the model folder's scheduler is the training
    schedule (alpha_bar_T = 0, v prediction), and every sampler starts at t = T - 1 and gives finite spectra."""
    from specdm.pipelines import load_pipeline
    from specdm.schedulers import sampling_scheduler, training_scheduler

    data = write_fake_files(tmp_path / "data", np.random.default_rng(3))
    data["wavelengths"] = WAVELENGTHS
    cfg = tiny_config(data)
    cfg["method"] = "hyperldm"
    cfg["autoencoder"]["latent_channels"] = 4
    cfg["hyperldm"] = {"library": None, "num_codes": 32, "num_versions": 1, "condition_channels": 4, "head_channels": 8,
                       "discriminators": True}
    cfg["diffusion"].update(ssim_weight=0.1, zero_terminal_snr=True)
    path = write_config(tmp_path / "cfg.yaml", cfg)
    assert main(["--threads", "1", "run", str(path), "--run-dir", str(tmp_path / "run")]) == 0
    stored = json.loads((tmp_path / "run" / "model" / "scheduler" / "scheduler_config.json").read_text())
    assert stored["rescale_betas_zero_snr"] is True and stored["prediction_type"] == "v_prediction"
    schedule = load_config(str(path)).schedule()
    assert training_scheduler(**schedule).alphas_cumprod[-1].item() == 0.0
    pipe = load_pipeline(tmp_path / "run" / "model", "cpu")
    assert pipe.schedule == schedule  # sampling reads the schedule training used
    for sampler in ("ddpm", "ddim", "dpm++sde"):
        s = sampling_scheduler(sampler, pipe.schedule)
        s.set_timesteps(pipe.steps(sampler, 4))
        assert int(s.timesteps[0]) == 99
        out = pipe(np.full((1, 16, 16, 3), 0.4, np.float32), [0], sampler=sampler, num_inference_steps=4)["images"]
        assert np.isfinite(out).all() and out.std() > 0
    trained = json.loads((tmp_path / "run" / "model" / "specdm.json").read_text())["source"]
    assert trained["ssim_weight"] == 0.1


def test_a_scene_without_rgb_bands_is_refused_before_the_run_folder_exists(tmp_path, capsys):
    """Wavelengths far from red, green and blue and no rgb_bands: one error naming the image, no folder left."""
    data = write_fake_files(tmp_path / "data", np.random.default_rng(4))
    data["wavelengths"] = [1000.0 + 100 * k for k in range(6)]  # all in the infrared
    cfg = tiny_config(data)
    cfg["method"] = "hyperldm"
    cfg["hyperldm"] = {"library": None, "rgb_method": "bands"}
    code = main(["run", str(write_config(tmp_path / "cfg.yaml", cfg)), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[0].startswith(f"error: {data['image']}: ") and "red, green and blue" in err[0]
    assert not (tmp_path / "run").exists()
    # the hint's remedy works: data.rgb_bands picks the bands, and the run goes through
    cfg["data"]["rgb_bands"] = [2, 1, 0]
    cfg["autoencoder"].update(steps=2)
    cfg["diffusion"] = {**cfg.get("diffusion", {}), "steps": 2}
    cfg["hyperldm"].update(num_versions=1, num_codes=8, condition_channels=4, head_channels=8)
    with single_thread():
        assert main(["run", str(write_config(tmp_path / "cfg.yaml", cfg)), "--run-dir", str(tmp_path / "run")]) == 0
    info = json.loads((tmp_path / "run" / "model" / "specdm.json").read_text())
    assert info["source"]["rgb"]["rgb_bands"] == [2, 1, 0]


def test_denoiser_on_rgb_features_sees_stage_1s_condition_encoder(rgb_run, tmp_path, one_thread):
    """`hyperldm.denoiser_rgb: features`: stage 2 retrained on the fixture's stage 1 takes C(rgb) of the frozen
    condition encoder (the paper's), records it, and the pipeline feeds exactly those features; models without
    the record load as folded; the option needs the decoder's RGB."""
    import shutil

    from specdm.models.autoencoders.hyper_vq import denoiser_condition, rgb_condition
    from specdm.pipelines import load_pipeline
    from specdm.recipes import train

    run = tmp_path / "run"
    shutil.copytree(rgb_run / "run" / "model", run / "model", ignore=shutil.ignore_patterns("unet", "scheduler"))
    cfg = load_config(str(rgb_run / "cfg.yaml"), ["hyperldm.denoiser_rgb=features", "diffusion.steps=3"])
    train(cfg, run, "stage2")
    pipe = load_pipeline(run / "model")
    ae = pipe.autoencoder
    assert pipe.rgb_input == "features" and pipe.info.source["denoiser_rgb"] == "features"
    assert pipe.unet.config.in_channels == ae.config.latent_channels + ae.config.condition_channels
    rgb = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        expected = ae.condition_encoder(rgb)
    assert torch.equal(denoiser_condition(ae, rgb, "features"), expected)
    seen = []
    forward = pipe.unet.forward
    pipe.unet.forward = lambda x, *a, **kw: seen.append(x.clone()) or forward(x, *a, **kw)
    pipe(np.moveaxis(rgb.numpy(), 1, -1), [0, 1], sampler="ddim", num_inference_steps=2)
    n = ae.config.latent_channels
    assert len(seen) == 2 and all(torch.allclose(x[:, n:], expected, atol=1e-6) for x in seen)
    # a model written before the option (no record) is the folded kind
    info_file = rgb_run / "run" / "model" / "specdm.json"
    old = load_pipeline(rgb_run / "run" / "model")
    assert old.rgb_input == "folded" and old.info.source["denoiser_rgb"] == "folded"
    info = json.loads(info_file.read_text())
    del info["source"]["denoiser_rgb"]
    copy = tmp_path / "old"
    shutil.copytree(rgb_run / "run" / "model", copy)
    (copy / "specdm.json").write_text(json.dumps(info))
    assert load_pipeline(copy).rgb_input == "folded"
    assert torch.equal(denoiser_condition(ae, rgb, "folded"), rgb_condition(rgb, ae.downsampling))
    with pytest.raises(Exception, match="use_rgb: false"):
        load_config(str(rgb_run / "cfg.yaml"), ["hyperldm.denoiser_rgb=features", "hyperldm.use_rgb=false"])


def test_a_missing_spectral_library_is_refused_before_the_run_folder_exists(tmp_path, capsys):
    """A user without the data folder (the packaged USGS library lives there) or with a wrong library path: one
    error naming the library file and both remedies, exit 2, no run folder left to block the corrected re-run."""
    data = write_fake_files(tmp_path / "data", np.random.default_rng(5))
    data["wavelengths"] = WAVELENGTHS
    data["root"] = str(tmp_path / "no_data_here")
    for library, missing in (("usgs", tmp_path / "no_data_here" / "spectral_libraries"), (str(tmp_path / "lib.hdr"),
                                                                                         tmp_path / "lib.hdr")):
        cfg = tiny_config(data)
        cfg["method"] = "hyperldm"
        cfg["hyperldm"] = {"library": library}
        code = main(["run", str(write_config(tmp_path / "cfg.yaml", cfg)), "--run-dir", str(tmp_path / "run")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and err[0].startswith(f"error: {missing}") and "spectral library file not found" in err[0]
        assert "hyperldm.library: null" in err[1]
        assert not (tmp_path / "run").exists()
