"""Controllable synthesis (issue 11, HSIGene): aligned multi-scene data, the ControlNet-steered denoiser,
per-condition dropout and guidance, sampling with condition files, and the errors for bad conditions."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import single_thread

from specdm.cli import main
from specdm.conditions.controls import (
    GLOBAL_WIDTHS,
    LOCAL_WIDTHS,
    pack,
    presence_slices,
    read_condition,
    segment_colours,
    window_conditions,
)
from specdm.config import CONDITIONS, Config, DataConfig, SamplingConfig, validate
from specdm.data.align import align_scene, wavelength_grid
from specdm.data.datamodule import load_data, prepare
from specdm.data.multiscene import balanced_items, pool
from specdm.errors import ConfigError, DataError
from specdm.pipelines import ControllablePipeline, load_pipeline
from specdm.recipes import controllable as recipe
from specdm.recipes import train
from specdm.recipes.sampling import write_set
from specdm.scene import Scene

pytest.importorskip("cv2").setNumThreads(1)
PATCH = 16


def make_scene(name, bands, lo, hi, rng, size=40):
    """Three regions (vertical half, horizontal band) with distinct smooth spectra, recorded at ``bands`` centres."""
    wl = np.linspace(lo, hi, bands)
    mask = np.zeros((size, size), np.int64)
    mask[:, size // 2 :] = 1
    mask[size // 3 : 2 * size // 3, :] = 2
    spectra = rng.uniform(0.1, 1.0, (3, bands))
    image = spectra[mask] + rng.normal(0, 0.02, (size, size, bands))
    return Scene([image.astype(np.float32)], mask, ["a", "b", "c"], wavelengths=wl.tolist(), name=name,
                 text=f"scene {name}")


def tiny_config(conditions=CONDITIONS, steps=20, content="encoder"):
    return validate(Config, {
        "method": "controllable", "data": {"dataset": "indian_pines", "align": {"bands": 12}, "patch_size": PATCH},
        "autoencoder": {"block_out_channels": [8, 16], "norm_num_groups": 4, "steps": steps, "batch_size": 4,
                        "latent_channels": 2},
        "diffusion": {"block_out_channels": [16, 32], "layers_per_block": 1, "norm_num_groups": 8, "steps": steps,
                      "batch_size": 8, "latent_augmentations": 2},
        "controllable": {"conditions": list(conditions), "content": content,
                         "content_encoder": {"embedding_dim": 16, "steps": steps, "batch_size": 8}}})


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    grid = wavelength_grid(400, 1000, 12)
    scenes = [align_scene(make_scene("a", 30, 400, 1000, rng), grid),
              align_scene(make_scene("b", 20, 380, 1100, rng, size=48), grid)]
    preps = [prepare([s], {"kind": "rows", "train": [0, 24], "test": [24, s.shape[0]]}, PATCH, 4) for s in scenes]
    return pool(preps, ["a", "b"])


@pytest.fixture(scope="module")
def model_dir(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("controllable")
    cfg = tiny_config()
    with single_thread():
        train(cfg, run, "stage1", data=data)
        train(cfg, run, "stage2", data=data)
    return run / "model"


@pytest.fixture(scope="module")
def pipe(model_dir):
    return load_pipeline(model_dir)


@pytest.fixture(scope="module")
def window(data, pipe):
    """A real window (C, H, W) and its six conditions as the model takes them."""
    from specdm.conditions.controls import text_embedding

    x = data.train.get(0)[0][0]
    conds = window_conditions(x, pipe.info.rgb_bands, CONDITIONS, content=pipe.content)
    conds["text"] = text_embedding("scene a")
    return x, conds


def error_line(capsys) -> str:
    """The one ``error:`` line the CLI printed (progress bars may precede it)."""
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1
    return lines[0]


def test_condition_names_agree_with_the_config():
    assert CONDITIONS == (*LOCAL_WIDTHS, *GLOBAL_WIDTHS)


def test_pooled_sources_keep_their_own_normalization_and_sample_balanced(data):
    # each source is normalized by its own training split: both span [0, 1] on their training pixels
    for k in range(2):
        x = np.stack([data.train.get(i)[0] for i in np.flatnonzero(data.source_of_window == k)])
        assert x.min() == pytest.approx(0.0, abs=0.05) and x.max() == pytest.approx(1.0, abs=0.05)
    counts = np.bincount(data.source_of_window)
    assert counts[0] != counts[1]  # the scenes differ in size ...
    items = balanced_items(data.source_of_window)
    assert np.bincount(data.source_of_window[items]).tolist() == [counts.max()] * 2  # ... and are drawn equally
    assert set(items[data.source_of_window[items] == 0]) == set(np.flatnonzero(data.source_of_window == 0))


def test_segment_colours_and_packing():
    rgb = np.zeros((4, 4, 3), np.float32)
    rgb[:, :2] = [0.2, 0.4, 0.6]
    rgb[:, 2:, 0] = np.linspace(0, 1, 8).reshape(4, 2)
    labels = np.zeros((4, 4), np.int64)
    labels[:, 2:] = 1
    seg = segment_colours(rgb, labels)
    np.testing.assert_allclose(seg[0, 0], [0.2, 0.4, 0.6], atol=1e-6)
    np.testing.assert_allclose(seg[:, 2:, 0], rgb[:, 2:, 0].mean(), atol=1e-6)
    names = ["edges", "segmentation", "content"]
    edge = np.full((4, 4, 1), 0.5, np.float32)
    L, G = pack([{"edges": edge, "content": np.ones(64, np.float32) / 8}, {"segmentation": seg}], names, 4)
    loc, _ = presence_slices(names)
    assert L.shape == (2, 1 + 1 + 3 + 1, 4, 4) and G.shape == (2, 65)
    np.testing.assert_array_equal(L[0, loc["edges"]][0], 0.5)  # the map ...
    np.testing.assert_array_equal(L[0, loc["edges"]][1], 1.0)  # ... and its presence
    np.testing.assert_array_equal(L[0, loc["segmentation"]], 0.0)  # left out: zeros, presence 0
    np.testing.assert_allclose(np.moveaxis(L[1, loc["segmentation"]][:3], 0, -1), seg)
    assert G[0, 64] == 1.0 and G[1].sum() == 0.0


def test_guidance_zero_equals_the_unconditioned_prediction(pipe, window):
    _, conds = window
    z = torch.randn(2, 2, PATCH // 2, PATCH // 2, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([500, 500])
    none = pipe._pack({}, [], 2)
    given = {"edges": np.stack([conds["edges"]] * 2), "content": np.stack([conds["content"]] * 2)}
    with torch.no_grad():
        eps_none = pipe.predict_noise(z, t, [none], [])
        eps_edges = pipe.predict_noise(z, t, [pipe._pack(given, ["edges"], 2)], [])
        eps_both = pipe.predict_noise(z, t, [pipe._pack(given, ["edges", "content"], 2)], [])
        stacks = [none, pipe._pack(given, ["edges"], 2), pipe._pack(given, ["edges", "content"], 2)]
        at_zero = pipe.predict_noise(z, t, stacks[:2], [0.0])
        content_off = pipe.predict_noise(z, t, stacks, [1.0, 0.0])
        doubled = pipe.predict_noise(z, t, stacks, [2.0, 2.0])
    assert (eps_edges - eps_none).abs().max() > 1e-6  # the trained ControlNet does react to the map
    torch.testing.assert_close(at_zero, eps_none, atol=1e-5, rtol=0)
    torch.testing.assert_close(content_off, eps_edges, atol=1e-5, rtol=0)
    torch.testing.assert_close(doubled, eps_none + 2 * (eps_both - eps_none), atol=1e-5, rtol=0)
    # the same through the sampler: a condition at guidance 0 gives the unconditional images
    kw = dict(sampler="ddim", num_inference_steps=4)
    uncond = pipe({}, [0, 1], 3, **kw)["images"]
    off = pipe({"edges": conds["edges"]}, [0, 1], 3, guidance={"edges": 0.0}, **kw)["images"]
    np.testing.assert_allclose(off, uncond, atol=1e-4)


@pytest.mark.parametrize("subset", [[c] for c in CONDITIONS] + [list(CONDITIONS), []],
                         ids=[*CONDITIONS, "all_six", "none"])
def test_generates_for_any_subset(pipe, window, subset, monkeypatch):
    _, conds = window
    given = {c: conds[c] for c in subset}
    kw = dict(sampler="ddim", num_inference_steps=3)
    decoded, decode = [], pipe.autoencoder.decode_images
    monkeypatch.setattr(pipe.autoencoder, "decode_images", lambda z: decoded.append(decode(z)) or decoded[-1])
    out = pipe(given, [0, 1], 7, **kw)
    images = out["images"]
    assert out["masks"] is None and images.shape == (2, 1, 12, PATCH, PATCH) and np.isfinite(images).all()
    # the model's units (each source normalized by its own split; specdm.json's normalization is the identity):
    # the decoded images clipped to the training range [0, 1], nothing else (a [0, 1] check alone cannot fail)
    np.testing.assert_array_equal(images, np.clip(decoded[0].numpy(), 0, 1))
    assert not np.allclose(images[0], images[1])  # per-sample noise
    np.testing.assert_allclose(pipe(given, [1], 7, **kw)["images"][0], images[1], atol=1e-5)  # sample 1 is sample 1
    if subset:
        assert np.abs(pipe({}, [0, 1], 7, **kw)["images"] - images).max() > 1e-6


def test_saved_model_describes_itself(model_dir, pipe):
    info = json.loads((model_dir / "specdm.json").read_text())
    assert info["method"] == "controllable" and info["task"] == "image" and len(info["band_names"]) == 12
    assert info["source"]["controllable"]["conditions"] == list(CONDITIONS)
    assert info["source"]["texts"] == {"a": "scene a", "b": "scene b"}
    assert isinstance(pipe, ControllablePipeline)


def test_bad_conditions_name_the_file(pipe, tmp_path):
    good = tmp_path / "edges.npy"
    np.save(good, np.zeros((PATCH, PATCH), np.float32))
    assert read_condition("edges", str(good), PATCH).shape == (PATCH, PATCH, 1)
    cases = {
        "size.npy": (np.zeros((PATCH + 2, PATCH), np.float32), "edges", "18x16 pixels"),
        "channels.npy": (np.zeros((PATCH, PATCH, 2), np.float32), "edges", "1 channel; this one has 2"),
        "values.npy": (np.full((PATCH, PATCH), 3.0, np.float32), "sketch", "values in [0, 1]"),
        "seg.npy": (np.zeros((PATCH, PATCH), np.float32), "segmentation", "3 channels; this one has 1"),
        "content.npy": (np.ones(10, np.float32), "content", "64 values"),
    }
    for fname, (arr, name, words) in cases.items():
        np.save(tmp_path / fname, arr)
        with pytest.raises(DataError, match=re.escape(words)) as e:
            read_condition(name, str(tmp_path / fname), PATCH)
        assert e.value.path == str(tmp_path / fname)
    with pytest.raises(ConfigError, match="unknown condition 'depth'"):
        pipe.check_names(["depth"])


def test_model_without_text_refuses_text_and_untrained_conditions(data, tmp_path, capsys, one_thread):
    cfg = tiny_config(["edges", "content"], steps=2)
    train(cfg, tmp_path, "stage1", data=data)
    train(cfg, tmp_path, "stage2", data=data)
    model = tmp_path / "model"
    code = main(["sample", str(model), "--out", str(tmp_path / "s"), "-n", "1", "--condition", "text=farmland"])
    err = error_line(capsys)
    assert code == 2 and err.startswith(f"error: {model}: ") and "without a text encoder" in err
    np.save(tmp_path / "sk.npy", np.zeros((PATCH, PATCH), np.float32))
    code = main(["sample", str(model), "--out", str(tmp_path / "s"), "-n", "1", "--condition", f"sketch={tmp_path / 'sk.npy'}"])
    assert code == 2 and "not trained with the sketch condition" in error_line(capsys)


def test_cli_conditions_then_sample_writes_what_it_used(model_dir, window, tmp_path, capsys):
    x, conds = window
    np.save(tmp_path / "window.npy", x)
    assert main(["conditions", str(tmp_path / "window.npy"), "--out", str(tmp_path / "c"), "--model", str(model_dir)]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "c" / "edges.npy"), conds["edges"])
    np.testing.assert_allclose(np.load(tmp_path / "c" / "segmentation.npy"), conds["segmentation"])
    for name in ("edges", "sketch", "segmentation"):  # the PNGs read back as the maps, to 8-bit precision
        png = read_condition(name, str(tmp_path / "c" / f"{name}.png"), PATCH)
        np.testing.assert_allclose(png, conds[name], atol=0.5 / 255 + 1e-6)
    out = tmp_path / "set"
    args = ["--threads", "1", "sample", str(model_dir), "--out", str(out), "-n", "2", "--sampler", "ddim", "--steps", "2",
            "--condition", f"edges={tmp_path / 'c' / 'edges.npy'}", "--condition", "text=scene a",
            "--condition-guidance", "edges=2"]
    assert main(args) == 0
    meta = json.loads((out / "metadata.json").read_text())
    used = meta["inputs"]["conditions"]
    assert meta["complete"] and meta["masks"] is False and set(used) == {"edges", "text"}
    assert used["edges"]["guidance"] == 2.0 and used["text"]["text"] == "scene a"
    np.testing.assert_allclose(np.load(out / "conditions" / "edges.npy"), conds["edges"])
    assert len(list((out / "images").glob("*.tif"))) == 2
    # a wrong map: one line naming the file, exit 2
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((8, 8), np.float32))
    capsys.readouterr()
    assert main(["sample", str(model_dir), "--out", str(tmp_path / "x"), "--condition", f"edges={bad}"]) == 2
    assert error_line(capsys).startswith(f"error: {bad}: the edges map is 8x8 pixels")
    assert main(["sample", str(model_dir), "--out", str(tmp_path / "x"), "--condition", "depth=a.npy"]) == 2
    assert "unknown condition 'depth'" in error_line(capsys)


def test_config_aligns_real_scenes(data_dir):
    samson = load_data(DataConfig(dataset="samson", root=str(data_dir), align={"outside": "mask"}))[0]
    assert samson.num_bands == 48 and samson.band_names[0] == "400nm"
    valid = np.asarray(samson.extra["band_valid"])
    assert not valid[0] and valid[1:37].all() and not valid[-1]  # 401-889 nm: 400 nm and above 889 nm uncovered
    np.testing.assert_array_equal(samson.images[0][..., ~valid], 0.0)
    with pytest.raises(DataError, match="400nm"):
        load_data(DataConfig(dataset="samson", root=str(data_dir), align={}))
    with pytest.raises(DataError, match="wavelength"):
        load_data(DataConfig(dataset="moffett", root=str(data_dir), align={}))
    moffett = load_data(DataConfig(dataset="moffett", root=str(data_dir), wavelength_range=[400, 2500], align={},
                                   text="a lake shore"))[0]
    assert moffett.num_bands == 48 and moffett.text == "a lake shore" and moffett.extra["nominal_wavelengths"]
    with pytest.raises(ConfigError, match="more_data: belongs to method controllable"):
        validate(Config, {"data": {"dataset": "samson"}, "more_data": [{"dataset": "moffett"}]})
    with pytest.raises(ConfigError, match="set data.align"):
        validate(Config, {"method": "controllable", "data": {"dataset": "samson"}})


def test_cli_help_lists_conditions():
    out = subprocess.run([sys.executable, "-m", "specdm.cli", "sample", "--help"], capture_output=True, text=True)
    assert "--condition NAME=FILE" in out.stdout


def test_structure_scores_on_known_maps(data, pipe):
    from specdm.evaluation.controllable import adherence, reference_ssim, tolerant_f1

    line = np.zeros((16, 16))
    line[8] = 1
    assert tolerant_f1(line, line) == 1.0
    assert tolerant_f1(np.roll(line, 1, 0), line) == 1.0  # one pixel off: within tolerance
    assert tolerant_f1(np.roll(line, 3, 0), line) == 0.0
    half = line.copy()
    half[8, 8:] = 0
    # precision 1; recall 9/16: the 8 kept pixels and their neighbour within one pixel
    assert tolerant_f1(half, line) == pytest.approx(2 * (9 / 16) / (1 + 9 / 16))
    # a real window scored against its own conditions adheres perfectly; another window does not
    x = np.stack([data.train.get(i)[0][0] for i in (0, len(data.train) - 1)])
    names = ["edges", "lines", "sketch", "segmentation", "content"]
    own = [window_conditions(w, pipe.info.rgb_bands, names, content=pipe.content) for w in x]
    given = {c: np.stack([d[c] for d in own]) for c in names}
    scores = adherence(x, given, pipe.info.rgb_bands, content=pipe.content)
    assert scores["edges"] == {"ssim": pytest.approx(1.0), "f1": 1.0}
    assert scores["segmentation"]["ssim"] == pytest.approx(1.0) and scores["content"]["cosine"] == pytest.approx(1.0)
    swapped = adherence(x[::-1], given, pipe.info.rgb_bands, content=pipe.content)
    assert swapped["edges"]["ssim"] < 0.9 and swapped["content"]["cosine"] < 0.999
    assert reference_ssim(x, x) == pytest.approx(1.0) and reference_ssim(x[::-1], x) < 0.9


def test_specdm_run_on_two_aligned_sensors(data_dir, tmp_path, monkeypatch, capsys):
    """`specdm run` with method controllable: Samson and Moffett aligned to one grid, one model, an unconditional set."""
    monkeypatch.setenv("SPECDM_DATA_DIR", str(data_dir))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("""
method: controllable
data: {dataset: samson, split: {kind: rows, train: [0, 60], test: [60, 95]}, patch_size: 16, stride: 8,
       align: {bands: 12, outside: mask}, text: rocks and water}
more_data:
  - {dataset: moffett, wavelength_range: [400, 2500], split: {kind: rows, train: [0, 50]}, stride: 8}
autoencoder: {block_out_channels: [8, 16], norm_num_groups: 4, latent_channels: 2, steps: 3, batch_size: 4}
diffusion: {block_out_channels: [16, 32], layers_per_block: 1, norm_num_groups: 8, steps: 3, batch_size: 4,
            latent_augmentations: 1}
controllable: {conditions: [edges, content, text], params: {edges: {sigmas: [1.0]}}, content_encoder: {steps: 3}}
sampling: {num_samples: 3, sampler: ddim, num_inference_steps: 2, batch_size: 2}
""")
    run = tmp_path / "run"
    assert main(["--threads", "1", "run", str(cfg), "--run-dir", str(run)]) == 0
    assert f"dataset card: {run / 'synthetic' / 'README.md'}" in capsys.readouterr().out
    info = json.loads((run / "model" / "specdm.json").read_text())
    assert info["source"]["scenes"] == ["samson", "moffett"]
    assert info["source"]["texts"] == {"samson": "rocks and water", "moffett": None}
    assert info["source"]["controllable"]["params"] == {"edges": {"sigmas": [1.0]}}
    valid = info["source"]["band_valid"]
    assert valid["samson"][0] is False and all(valid["moffett"])  # 400 nm: below Samson's 401 nm
    meta = json.loads((run / "synthetic" / "metadata.json").read_text())
    assert meta["complete"] and meta["inputs"] == {"kind": "conditions", "conditions": {}, **{
        k: meta["inputs"][k] for k in ("rule", "guidance_rule")}} and meta["num_samples"] == 3
    assert len(list((run / "synthetic" / "images").glob("*.tif"))) == 3
    card = (run / "synthetic" / "README.md").read_text()  # the dataset card of an image-only set
    assert "3 synthetic images (no masks)" in card and "| 0 | all pixels |" in card
    assert len(list((run / "synthetic" / "previews").glob("*.png"))) == 3
    assert info["real_stats"]["counts"][0] > 0
    stac = json.loads((run / "synthetic" / "stac_item.json").read_text())  # an item without the label extension
    assert stac["stac_extensions"] == [] and "label:classes" not in stac["properties"] and "images" in stac["assets"]


def test_training_drops_each_condition_independently(tmp_path):
    """Per-condition dropout: each condition is kept with (1 - p_drop)(1 - p_uncond), all are left out together
    at least p_uncond of the time, and a left-out condition is zeros with presence 0."""
    from types import SimpleNamespace

    from specdm.training.controllable import ConditionTables
    from specdm.training.diffusion import Latents, train_latent_denoiser
    from specdm.training.engine import LoopConfig

    names = ["edges", "content"]
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, z, t, local, glob):
            seen.append((local.detach().clone(), glob.detach().clone()))
            return SimpleNamespace(sample=z * self.w)

    n = 8
    mean, std = torch.zeros(n, 2, 2, 2), torch.zeros(n, 2, 2, 2)
    local = torch.ones(n, 2, 4, 4, dtype=torch.float16)  # edges map + presence
    glob = torch.ones(n, 65)  # content + presence
    train_latent_denoiser(Spy(), Latents(mean, std, torch.ones(2), np.arange(n)),
                          ConditionTables(local, glob, names, p_drop=0.3, p_uncond=0.1),
                          LoopConfig(steps=40, batch_size=50, lr=1e-3, checkpoint_every=1000), tmp_path)
    loc = torch.cat([s[0] for s in seen])
    glb = torch.cat([s[1] for s in seen])
    edges, content = loc[:, 1, 0, 0] == 1, glb[:, 64] == 1
    assert ((loc[:, 0] == 1).all((1, 2)) == edges).all() and ((glb[:, :64] == 1).all(1) == content).all()
    assert ((loc[~edges] == 0).all() and (glb[~content] == 0).all())  # left out: zeros, presence 0
    keep = 0.7 * 0.9
    assert edges.float().mean().item() == pytest.approx(keep, abs=0.04)
    assert content.float().mean().item() == pytest.approx(keep, abs=0.04)
    both = (edges & content).float().mean().item()
    assert both == pytest.approx(0.9 * 0.7 * 0.7, abs=0.04)  # independent given not all dropped
    assert (~edges & ~content).float().mean().item() == pytest.approx(0.1 + 0.9 * 0.3 * 0.3, abs=0.04)


def test_content_encoder_training_lowers_its_loss(data, tmp_path, one_thread):
    """The content encoder learns each window's mean spectrum and spread from its RGB view, no labels."""
    from specdm.models.encoders import ContentEncoder
    from specdm.training.content import content_loss, train_content_encoder
    from specdm.training.engine import LoopConfig

    rgb_bands = [8, 5, 2]
    torch.manual_seed(0)
    model = ContentEncoder(16, 2 * 12)
    x = torch.from_numpy(np.stack([data.train.get(i)[0][0] for i in range(len(data.train))]))
    with torch.no_grad():
        before = content_loss(model, x, rgb_bands).item()
    model = train_content_encoder(data.train, model, rgb_bands, LoopConfig(steps=60, batch_size=8, lr=3e-3,
                                                                          checkpoint_every=1000), tmp_path)
    with torch.no_grad():
        after = content_loss(model, x, rgb_bands).item()
    assert after < 0.5 * before
    # windows of clearly different content get clearly different vectors; tiny noise moves a vector very little
    from specdm.conditions.controls import window_rgb

    mean = x.mean(dim=(2, 3))
    far = int(((mean - mean[0]) ** 2).sum(1).argmax())  # the window whose mean spectrum differs most from window 0's
    rgb = window_rgb(x[0].numpy(), rgb_bands)
    v = model.embed(rgb)
    assert float(np.dot(model.embed(window_rgb(x[far].numpy(), rgb_bands)), v)) < 0.8
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 1e-3, rgb.shape), 0, 1).astype(np.float32)
    assert float(np.dot(model.embed(noisy), v)) > 0.999


def test_content_in_training_equals_specdm_conditions(data, model_dir, pipe, tmp_path):
    """The content vector stage 2 trained on for a window is what `specdm conditions WINDOW --model` writes and what
    `--condition content=RGB` reads; it has the encoder's width."""
    from specdm.conditions.controls import window_rgb
    from specdm.training.controllable import condition_table

    assert (model_dir / "content_encoder" / "config.json").is_file()
    assert json.loads((model_dir / "model_index.json").read_text())["content_encoder"] == "ContentEncoder"
    assert pipe.widths["content"] == 16 and pipe.unet.config["global_widths"][0] == 16
    _, glob = condition_table(data, pipe.info.rgb_bands, ["content"], {}, [None, None], 2, pipe.content, pipe.widths)
    x = data.train.get(0)[0][0]
    np.save(tmp_path / "window.npy", x)
    assert main(["--threads", "1", "conditions", str(tmp_path / "window.npy"), "--out", str(tmp_path / "c"),
                 "--model", str(model_dir)]) == 0
    written = np.load(tmp_path / "c" / "content.npy")
    assert written.shape == (16,)
    np.testing.assert_allclose(glob[0, :16].numpy(), written, atol=1e-6)  # row 0: window 0, identity transform
    assert glob[0, 16] == 1.0 and np.linalg.norm(written) == pytest.approx(1.0, abs=1e-5)
    # an RGB file gives the same vector as the window it shows (read_condition: --condition content=IMAGE)
    rgb = window_rgb(x, pipe.info.rgb_bands)
    np.save(tmp_path / "rgb.npy", rgb)
    np.testing.assert_allclose(recipe.read_conditions(pipe, {"content": str(tmp_path / "rgb.npy")})["content"],
                               written, atol=1e-6)


def test_wrong_width_content_is_refused_naming_the_file(model_dir, pipe, tmp_path, capsys):
    bad = tmp_path / "content64.npy"
    v = np.ones(64, np.float32) / 8  # a histogram-width vector, for a model whose encoder makes 16
    np.save(bad, v)
    with pytest.raises(DataError, match="have 16 values, this one 64") as e:
        recipe.read_conditions(pipe, {"content": str(bad)})
    assert e.value.path == str(bad)
    capsys.readouterr()
    assert main(["sample", str(model_dir), "--out", str(tmp_path / "x"), "--condition", f"content={bad}"]) == 2
    assert error_line(capsys).startswith(f"error: {bad}: this model's content vectors have 16 values")


def test_a_histogram_content_model_still_loads_and_samples(data, tmp_path, one_thread):
    """A model folder without a content encoder (made before it existed, or with content: histogram) uses the
    64-d histogram descriptor, from a vector or from an RGB image."""
    from PIL import Image

    from specdm.conditions.controls import window_rgb

    cfg = tiny_config(["edges", "content"], steps=2, content="histogram")
    train(cfg, tmp_path, "stage1", data=data)
    train(cfg, tmp_path, "stage2", data=data)
    model = tmp_path / "model"
    assert not (model / "content_encoder").exists()
    info = json.loads((model / "specdm.json").read_text())  # as written before the content encoder existed
    for key in ("content", "content_encoder"):
        del info["source"]["controllable"][key]
    (model / "specdm.json").write_text(json.dumps(info))
    pipe = load_pipeline(model)
    assert pipe.content is None and pipe.widths["content"] == 64 and pipe.unet.config["global_widths"][0] == 64
    rgb = window_rgb(data.train.get(0)[0][0], pipe.info.rgb_bands)
    Image.fromarray(np.rint(rgb * 255).astype(np.uint8)).save(tmp_path / "look.png")
    settings = SamplingConfig(num_samples=2, sampler="ddim", num_inference_steps=2, batch_size=2)
    write_set(model, tmp_path / "set", recipe.ConditionInputs({"content": str(tmp_path / "look.png")}), settings)
    meta = json.loads((tmp_path / "set" / "metadata.json").read_text())
    assert meta["complete"] and np.load(tmp_path / "set" / "conditions" / "content.npy").shape == (64,)
