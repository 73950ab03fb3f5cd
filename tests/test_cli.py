"""The command line end to end on tiny fake data: the whole flow, resume, and every bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch
from conftest import tiny_config, write_config, write_fake_files
from safetensors.torch import load_file

from specdm.cli import main
from specdm.output.dataset import SyntheticDataset


@pytest.fixture
def tiny(tmp_path, rng):
    return tiny_config(write_fake_files(tmp_path / "data", rng))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run folder shared by the sampling tests."""
    tmp = tmp_path_factory.mktemp("trained")
    cfg = write_config(tmp / "cfg.yaml", tiny_config(write_fake_files(tmp / "data", np.random.default_rng(1))))
    assert main(["run", str(cfg), "--run-dir", str(tmp / "run")]) == 0
    return tmp / "run"


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_whole_flow_writes_a_valid_data_set(tmp_path, tiny, capsys):
    cfg = write_config(tmp_path / "cfg.yaml", tiny)
    code, out, err = run_cli(["run", cfg, "--run-dir", tmp_path / "run"], capsys)
    assert code == 0, err
    syn = tmp_path / "run" / "synthetic"
    assert f"dataset card: {syn / 'README.md'}" in out
    assert "estimated time on this host: about" in out and "stage 2" in out  # before training starts
    assert out.index("estimated time") < out.index("stage 1 reconstructs")
    ds = SyntheticDataset(syn)
    assert len(ds) == 6 and ds.meta["complete"]
    real = np.load(tmp_path / "data" / "image.npy")
    for k in range(len(ds)):
        item = ds[k]
        assert item["images"].shape == (1, 6, 16, 16) and item["mask"].shape == (16, 16)
        assert np.isfinite(item["images"]).all()
        # clipped to the training range in normalized units -> inside the real data's range
        assert item["images"].min() >= real[:32].min() - 1e-3 and item["images"].max() <= real[:32].max() + 1e-3
        assert set(np.unique(item["mask"])) <= set(range(4))
    meta = ds.meta
    assert meta["command"].startswith("specdm run") and meta["num_samples"] == 6
    assert len(meta["model"]["autoencoder"]) == 16
    assert (syn / "card" / "class_distribution.png").is_file() and len(list((syn / "previews").glob("*.png"))) == 2
    # real windows, their reconstructions and samples in one figure, all previews under one stretch
    assert (syn / "card" / "real_reconstructed_synthetic.png").is_file()
    stretch = ds.meta["preview_stretch"]
    assert len(stretch["low"]) == 3 and all(lo < hi for lo, hi in zip(stretch["low"], stretch["high"]))
    assert "real_reconstructed_synthetic.png" in (syn / "README.md").read_text()
    model = tmp_path / "run" / "model"
    for sub in ("autoencoder", "unet"):
        assert list((model / sub).glob("*.safetensors")) and (model / sub / "config.json").is_file(), sub
    assert json.loads((model / "model_index.json").read_text())["autoencoder"] == "SpectralAutoencoder"
    info = json.loads((model / "specdm.json").read_text())
    assert info["num_dates"] == 1 and len(info["band_names"]) == 6 and len(info["latent_scale"]) == 8


def test_change_detection_flow(tmp_path, rng, capsys):
    data = write_fake_files(tmp_path / "data", rng, change=True)
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config(data, autoencoder={"kind": "single_stream"}))
    code, _, err = run_cli(["run", cfg, "--run-dir", tmp_path / "run"], capsys)
    assert code == 0, err
    ds = SyntheticDataset(tmp_path / "run" / "synthetic")
    assert ds.meta["images"] == ["images_t1", "images_t2"]
    assert ds[0]["images"].shape == (2, 6, 16, 16)
    info = json.loads((tmp_path / "run" / "model" / "specdm.json").read_text())
    assert len(info["latent_scale"]) == 12  # z = (z_x1, z_x2, z_y), c = 4 each


def test_training_resume_is_exact(tmp_path, tiny, capsys):
    """Stop after 3 of 6 steps, resume: the weights equal those of an uninterrupted 6-step run."""
    full = write_config(tmp_path / "full.yaml", tiny)
    assert run_cli(["train-autoencoder", full, "--run-dir", tmp_path / "a"], capsys)[0] == 0
    half = write_config(tmp_path / "half.yaml", {**tiny, "autoencoder": {**tiny["autoencoder"], "steps": 3}})
    assert run_cli(["train-autoencoder", half, "--run-dir", tmp_path / "b"], capsys)[0] == 0
    import shutil

    shutil.rmtree(tmp_path / "b" / "model")  # as if killed before the final save
    code, out, err = run_cli(["train-autoencoder", full, "--run-dir", tmp_path / "b", "--resume"], capsys)
    assert code == 0, err
    a = load_file(tmp_path / "a/model/autoencoder/diffusion_pytorch_model.safetensors")
    b = load_file(tmp_path / "b/model/autoencoder/diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (tmp_path / "b/checkpoints/autoencoder/train_log.jsonl").read_text().splitlines()]
    assert max(steps) == 6


def test_sampling_resume_gives_the_same_samples(tmp_path, trained, capsys):
    model, syn = trained / "model", tmp_path / "s"
    args = ["sample", model, "--out", syn, "-n", 8, "--steps", 4, "--batch-size", 3, "--sampler", "ddpm"]
    assert run_cli(args, capsys)[0] == 0
    first = {p.name: tifffile.imread(p) for p in (syn / "images").glob("*.tif")}
    masks = {p.name: (syn / "masks" / p.name).read_bytes() for p in (syn / "masks").glob("*.png")}
    for i in (2, 5, 6):  # an interrupted run lacks some samples (mask missing = not done)
        (syn / "masks" / f"{i:06d}.png").unlink()
        (syn / "images" / f"{i:06d}.tif").unlink()
    code, _, err = run_cli(args + ["--resume"], capsys)
    assert code == 0, err
    for name, im in first.items():
        np.testing.assert_allclose(tifffile.imread(syn / "images" / name), im, rtol=1e-4, atol=1e-3)
    same = [(syn / "masks" / n).read_bytes() == b for n, b in masks.items()]
    assert sum(same) >= len(same) - 1
    assert json.loads((syn / "metadata.json").read_text())["complete"]
    code, _, err = run_cli(args + ["--resume", "--seed", "1"], capsys)  # another seed would mix two runs
    assert code == 2 and "other settings" in err


def test_existing_outputs_are_never_overwritten(tmp_path, tiny, capsys):
    cfg = write_config(tmp_path / "cfg.yaml", tiny)
    assert run_cli(["run", cfg, "--run-dir", tmp_path / "run"], capsys)[0] == 0
    before = (tmp_path / "run" / "model" / "specdm.json").read_bytes()
    code, _, err = run_cli(["run", cfg, "--run-dir", tmp_path / "run"], capsys)
    assert code == 2 and "exists and is not empty" in err and str(tmp_path / "run") in err
    assert (tmp_path / "run" / "model" / "specdm.json").read_bytes() == before
    user = tmp_path / "mine"
    user.mkdir()
    (user / "precious.txt").write_text("keep")
    for args in (["run", cfg, "--run-dir", user, "--overwrite"],
                 ["sample", tmp_path / "run" / "model", "--out", user, "--overwrite"]):
        code, _, err = run_cli(args, capsys)
        assert code == 2 and "refusing to delete" in err
    assert (user / "precious.txt").read_text() == "keep"


def _bad(tmp_path, rng, mutate):
    """A config whose data ``mutate`` spoils; returns the config path."""
    data = write_fake_files(tmp_path / "data", rng)
    cfg = tiny_config(data)
    mutate(tmp_path / "data", cfg)
    return write_config(tmp_path / "cfg.yaml", cfg)


def _nan(d, cfg):
    x = np.load(d / "image.npy")
    x[3, 4, 2] = np.nan
    np.save(d / "image.npy", x)


def _truncate(d, cfg):
    raw = (d / "image.npy").read_bytes()
    (d / "image.npy").write_bytes(raw[: len(raw) // 2])


def _mask_shape(d, cfg):
    np.save(d / "mask.npy", np.zeros((40, 48), np.int64))


def _labels(d, cfg):
    cfg["data"]["class_names"] = ["a", "b", "c"]  # the fake mask also holds value 3


def _missing(d, cfg):
    cfg["data"]["image"] = str(d / "nope.npy")


def _no_patch(d, cfg):
    m = np.load(d / "mask.npy")
    m[::2, ::2] = 0  # every window holds unlabelled pixels
    np.save(d / "mask.npy", m)
    cfg["data"].update(ignore_index=0, min_labelled=1.0)


def _big_patch(d, cfg):
    cfg["data"]["patch_size"] = 64


@pytest.mark.parametrize(
    "mutate, needle, file",
    [
        (_missing, "not found", "nope.npy"),
        (_truncate, "truncated or corrupt", "image.npy"),
        (_nan, "NaN", "image.npy"),
        (_mask_shape, "differs from image shape", "mask.npy"),
        (_labels, "outside the 3 declared classes", "mask.npy"),
        (_no_patch, "no patch is left", "image.npy"),
        (_big_patch, "larger than every split region", "image.npy"),
    ],
)
def test_bad_input_gives_one_clear_error(tmp_path, rng, capsys, mutate, needle, file):
    cfg = _bad(tmp_path, rng, mutate)
    code, _, err = run_cli(["run", cfg, "--run-dir", tmp_path / "run"], capsys)
    assert code == 2
    assert err.startswith("error: ") and needle in err and file in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing left behind that would block the corrected re-run


def test_band_count_mismatch_with_checkpoint(tmp_path, tiny, capsys):
    cfg = write_config(tmp_path / "cfg.yaml", tiny)
    assert run_cli(["train-autoencoder", cfg, "--run-dir", tmp_path / "run"], capsys)[0] == 0
    code, _, err = run_cli(["train-diffusion", cfg, "--run-dir", tmp_path / "run", "--set", "data.bands=[0,1,2,3,4]"], capsys)
    assert code == 2 and "trained on 6 bands" in err and "has 5" in err and str(tmp_path / "run" / "model") in err


def test_unwritable_output(tmp_path, tiny, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg = write_config(tmp_path / "cfg.yaml", tiny)
    code, _, err = run_cli(["run", cfg, "--run-dir", blocker / "run"], capsys)
    assert code == 2 and "not writable" in err and str(blocker / "run") in err
    assert blocker.read_text() == "not a folder"


def test_bad_config_is_reported(tmp_path, tiny, capsys):
    tiny["autoencoder"]["kind"] = "three_stream"
    cfg = write_config(tmp_path / "cfg.yaml", tiny)
    code, _, err = run_cli(["run", cfg], capsys)
    assert code == 2 and "autoencoder.kind" in err and "cfg.yaml" in err


def test_packaged_configs_validate(capsys):
    code, out, _ = run_cli(["config", "--list"], capsys)
    assert code == 0 and "indian_pines" in out.split() and "oscd" in out.split()
    for name in out.split():
        assert run_cli(["config", name], capsys)[0] == 0


def test_cli_starts_without_importing_torch():
    """Parsing, --version and config printing stay fast: torch and diffusers load only when a command needs them."""
    probe = ("import sys; from specdm.cli import build_parser; build_parser().parse_args(['sample', 'm', '--out', 'o']); "
             "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("image_format, mask_format", [("zarr", "png"), ("npy", "tif"), ("tif", "png")])
def test_output_formats_round_trip(tmp_path, trained, capsys, image_format, mask_format):
    out = tmp_path / image_format
    args = ["sample", trained / "model", "--out", out, "-n", 3, "--steps", 2, "--image-format", image_format,
            "--mask-format", mask_format, "--seed", 7]
    assert run_cli(args, capsys)[0] == 0
    ds = SyntheticDataset(out)
    assert len(ds) == 3 and ds.meta["format"] == {**ds.meta["format"], "image": image_format, "mask": mask_format}
    stored = {"zarr": ["samples.zarr"], "npy": ["images", "masks"], "tif": ["images", "masks"]}[image_format]
    assert all((out / d).exists() for d in stored)
    assert len(list((out / "masks").glob(f"*.{mask_format}"))) == (0 if image_format == "zarr" else 3)
    # the same seed gives the same samples whatever the format
    assert run_cli(["sample", trained / "model", "--out", tmp_path / "ref", "-n", 3, "--steps", 2, "--seed", 7], capsys)[0] == 0
    ref = SyntheticDataset(tmp_path / "ref")
    for k in range(3):
        np.testing.assert_allclose(ds[k]["images"], ref[k]["images"], rtol=1e-6)
        np.testing.assert_array_equal(ds[k]["mask"], ref[k]["mask"])
    x, y = ds.arrays(2)  # the first samples as arrays, optionally through a band-last normalization
    assert x.shape == (2, *ds[0]["images"].shape) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x[1], ds[1]["images"])
    np.testing.assert_array_equal(y[1], ds[1]["mask"])
    scale = np.arange(1, x.shape[2] + 1, dtype=np.float32)
    xn, _ = ds.arrays(5, lambda a: a * scale)
    assert len(xn) == 3
    np.testing.assert_allclose(xn[1], ds[1]["images"] * scale[None, :, None, None], rtol=1e-6)


def test_full_disk_keeps_completed_samples(tmp_path, trained, capsys, monkeypatch):
    import errno

    from specdm.output import dataset

    real_save, calls = dataset._save_mask, []

    def save_until_full(path, mask, fmt):
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, mask, fmt)

    monkeypatch.setattr(dataset, "_save_mask", save_until_full)
    out = tmp_path / "s"
    code, _, err = run_cli(["sample", trained / "model", "--out", out, "-n", 5, "--steps", 2], capsys)
    assert code == 2 and "disk is full" in err and "--resume" in err and "000002.png" in err
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["000000.png", "000001.png"]  # no partial file left
    monkeypatch.setattr(dataset, "_save_mask", real_save)
    assert run_cli(["sample", trained / "model", "--out", out, "-n", 5, "--steps", 2, "--resume"], capsys)[0] == 0
    assert len(SyntheticDataset(out)) == 5


def test_config_errors_come_before_any_model_library_is_imported(tmp_path):
    """A misspelt loader option or key is reported at once: nothing heavy is imported, no folder is made."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: x\ndata:\n  dataset: oscd\n  options: {city: [paris]}\nautoencoder: {stpes: 3}\n")
    probe = ("import sys; from specdm.cli import main; code = main(['run', sys.argv[1], '--run-dir', sys.argv[2]]); "
             "print(code, sorted(m for m in ('torch', 'diffusers', 'accelerate') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe, str(cfg), str(tmp_path / "run")], capture_output=True, text=True)
    assert r.stdout.strip() == "2 []", r.stderr
    assert "has no option 'city'; valid options: cities" in r.stderr and "autoencoder.stpes" in r.stderr
    assert r.stderr.startswith(f"error: {cfg}: invalid configuration")
    assert not (tmp_path / "run").exists()


def test_a_single_band_image_writes_a_valid_data_set(tmp_path, rng, capsys):
    """One band: trained, sampled and written as one-page TIFFs that read back as (1, 1, H, W)."""
    data = write_fake_files(tmp_path / "data", rng, bands=1)
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config(data, sampling={"num_samples": 2, "previews": 1}))
    code, _, err = run_cli(["run", cfg, "--run-dir", tmp_path / "run"], capsys)
    assert code == 0, err
    ds = SyntheticDataset(tmp_path / "run" / "synthetic")
    real = np.load(tmp_path / "data" / "image.npy")[:32]
    assert len(ds) == 2 and ds[0]["images"].shape == (1, 1, 16, 16)
    assert real.min() - 1e-3 <= ds[1]["images"].min() and ds[1]["images"].max() <= real.max() + 1e-3


@pytest.mark.parametrize("field, value, needle", [
    ("image_variable", "nope", "data.image_variable picks a variable of a .mat or .npz file"),
    ("mask_variable", "nope", "data.mask_variable picks a variable of a .mat or .npz file"),
    ("image2_variable", "nope", "image2_variable"),
    ("layout", "sideways", "data.layout"),
    ("rows", -3, "data.rows"),
    ("cols", "3x", "data.cols"),
    ("order", "Z", "data.order"),
    ("labels", "fuzzy", "data.labels"),
    ("mask_layout", "sideways", "data.mask_layout"),
    ("min_fraction", 1.5, "data.min_fraction"),
    ("label_remap", "nope", "data.label_remap"),
    ("band_names", ["a", "a"], "repeated: a"),
    ("wavelengths", [0.4, 0.5], "micrometres"),
    ("rgb_bands", [1, 2], "give three bands"),
])
def test_every_own_file_field_is_checked_through_the_cli(tmp_path, rng, capsys, field, value, needle):
    """Each own-file field with a wrong value: exit 2, one error naming the field or file, no run folder."""
    cfg = tiny_config(write_fake_files(tmp_path / "data", rng))
    cfg["data"][field] = value
    code, _, err = run_cli(["run", write_config(tmp_path / "cfg.yaml", cfg), "--run-dir", tmp_path / "run"], capsys)
    assert code == 2 and err.startswith("error: ") and needle in err, err
    assert "Traceback" not in err and not (tmp_path / "run").exists()
