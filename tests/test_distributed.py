"""Two CPU processes (gloo) through ``accelerate launch`` give the same models and samples as one: training
within a tolerance, the written data sets of every method and input kind bit for bit (each batch of samples is the
same whatever the number of processes)."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import single_thread, tiny_config, write_config, write_fake_files
from safetensors.torch import load_file

from accelerate.utils import set_seed

from specdm.cli import main
from specdm.models.autoencoders import SpectralAutoencoder

ACCELERATE = Path(sys.executable).parent / "accelerate"


def launch_two(args, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(ACCELERATE), "launch", "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(port), "-m", "specdm.cli", *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    cfg = tiny_config(write_fake_files(tmp / "data", np.random.default_rng(0)),
                      autoencoder={"steps": 3, "batch_size": 4}, diffusion={"steps": 3, "batch_size": 4})
    path = write_config(tmp / "cfg.yaml", cfg)
    assert main(["train-autoencoder", str(path), "--run-dir", str(tmp / "one")]) == 0
    assert main(["train-diffusion", str(path), "--run-dir", str(tmp / "one")]) == 0
    return tmp, path


def _weights(folder: Path) -> dict:
    out = {}
    for f in sorted(folder.rglob("*.safetensors")):
        out.update({f"{f.parent.name}/{k}": v for k, v in load_file(f).items()})
    return out


def test_two_process_training_equals_one_process(one_process_run):
    """Half the batch on each of 2 processes makes the same updates as the whole batch on 1."""
    tmp, cfg = one_process_run
    launch_two(["train-autoencoder", cfg, "--run-dir", tmp / "two"], tmp)
    launch_two(["train-diffusion", cfg, "--run-dir", tmp / "two"], tmp)
    set_seed(0)  # the initialization both runs started from (train.seed = 0)
    ae = SpectralAutoencoder.from_pretrained(tmp / "one" / "model" / "autoencoder")
    ae0 = SpectralAutoencoder.from_config(ae.config)
    init = {f"autoencoder/{k}": v for k, v in ae0.state_dict().items()}
    a = _weights(tmp / "one" / "model" / "autoencoder")
    b = _weights(tmp / "two" / "model" / "autoencoder")
    assert a.keys() == b.keys() == init.keys()
    update = torch.sqrt(sum(((a[k] - init[k]) ** 2).sum() for k in a))
    gap = torch.sqrt(sum(((a[k] - b[k]) ** 2).sum() for k in a))
    assert update > 1e-3  # training moved the weights
    assert gap / update < 0.02, (gap.item(), update.item())  # and both runs moved them alike
    ua, ub = _weights(tmp / "one" / "model" / "unet"), _weights(tmp / "two" / "model" / "unet")
    gap_unet = max((ua[k] - ub[k]).abs().max().item() for k in ua)
    assert gap_unet < 5e-3  # 3 Adam steps of lr 2e-4 from the same start, on nearly equal latents


def test_sharded_sampling_equals_one_process(one_process_run):
    tmp, _ = one_process_run
    model = tmp / "one" / "model"
    common = ["-n", 7, "--steps", 3, "--sampler", "ddpm", "--previews", 0]
    assert main(["sample", str(model), "--out", str(tmp / "s1"), "--batch-size", "3", *map(str, common)]) == 0
    launch_two(["sample", model, "--out", tmp / "s2", "--batch-size", 2, *common], tmp)
    names = sorted(p.name for p in (tmp / "s1" / "images").glob("*.tif"))
    assert names == sorted(p.name for p in (tmp / "s2" / "images").glob("*.tif")) and len(names) == 7
    for n in names:
        np.testing.assert_allclose(tifffile.imread(tmp / "s2" / "images" / n), tifffile.imread(tmp / "s1" / "images" / n),
                                   rtol=1e-4, atol=1e-3)


# --- every method: 2 processes write the very files one process writes -------------------------------------------

S2 = {"dataset": "sentinel2_demo", "options": {"size": 48}, "patch_size": 16, "stride": 8,
      "split": {"kind": "rows", "train": [0, 32], "test": [32, 48]}}
METHOD_SECTIONS = {
    "specdm": {},
    "layout": {"layout": {"copy_paste": 0.5}},
    "controllable": {"data": {**S2, "align": {"start": 500, "stop": 860, "bands": 6}},
                     "controllable": {"conditions": ["edges", "content"], "params": {"edges": {"sigmas": [1.0]}},
                                      "content_encoder": {"embedding_dim": 8, "steps": 2, "batch_size": 4}}},
    "hyperldm": {"hyperldm": {"library": None, "num_codes": 16, "num_versions": 3, "condition_channels": 4,
                              "head_channels": 8}},
}
SAMPLE = ["-n", "5", "--batch-size", "2", "--steps", "2", "--sampler", "ddim", "--previews", "2"]


def _method_config(tmp: Path, method: str) -> Path:
    cfg = tiny_config({}, autoencoder={"steps": 2, "latent_channels": 2}, diffusion={"steps": 2},
                      sampling={"num_samples": 5, "batch_size": 2, "num_inference_steps": 2, "sampler": "ddim",
                                "previews": 2})
    cfg["data"] = dict(S2)
    cfg["method"] = method
    for key, section in METHOD_SECTIONS[method].items():
        cfg[key] = {**cfg.get(key, {}), **section}
    return write_config(tmp / "cfg.yaml", cfg)


def _other_inputs(tmp: Path, method: str, run: Path) -> list[str] | None:
    """`specdm sample` options of the method's input kind other than what `specdm run` samples for."""
    if method == "layout":
        return ["--masks", str(run / "synthetic" / "masks"), "--guidance", "2"]
    if method == "controllable":
        np.save(tmp / "edges.npy", (np.indices((16, 16)).sum(0) % 5 == 0).astype(np.float32))
        return ["--condition", f"edges={tmp / 'edges.npy'}", "--condition-guidance", "edges=2"]
    if method == "hyperldm":
        rgb = tmp / "rgb"
        rgb.mkdir()
        for k, shape in enumerate([(13, 21, 3), (16, 16, 3)]):
            np.save(rgb / f"{k}.npy", np.random.default_rng(k).random(shape).astype(np.float32))
        return ["--rgb", str(rgb), "-k", "2"]
    return None


def _same_files(one: Path, two: Path) -> None:
    """The two data sets hold the same files with the same bytes; metadata, card and STAC item the same up to the
    command, the folders and the time."""
    names = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())

    def text(p: Path, folder: Path) -> str:
        lines = p.read_text().replace(str(folder), "OUT").replace(str(folder.parent), "RUN").splitlines()
        return "\n".join(x for x in lines if not x.startswith("specdm "))

    for name in names:
        a, b = one / name, two / name
        if name.name == "metadata.json":
            ma, mb = (json.loads(text(x, f)) for x, f in ((a, one), (b, two)))
            assert {**ma, "command": None} == {**mb, "command": None}
        elif name.name == "stac_item.json":
            ia, ib = (json.loads(x.read_text()) for x in (a, b))
            for item in (ia, ib):
                item["properties"].pop("datetime"), item["properties"].pop("created")
            assert ia == ib
        elif name.name == "README.md":
            assert text(a, one) == text(b, two)
        else:
            assert a.read_bytes() == b.read_bytes(), name


@pytest.fixture(scope="module", params=list(METHOD_SECTIONS))
def method_sets(request, tmp_path_factory):
    """A tiny model of the method trained by one process (`specdm run`), its run's set written again by two
    processes (`specdm run --resume` on a copy of the trained model folder), and a `specdm sample` of the method's
    other inputs by one and by two processes."""
    method = request.param
    tmp = tmp_path_factory.mktemp(f"dist_{method}")
    cfg = _method_config(tmp, method)
    with single_thread():
        assert main(["--threads", "1", "run", str(cfg), "--run-dir", str(tmp / "one")]) == 0
    shutil.copytree(tmp / "one", tmp / "two", ignore=shutil.ignore_patterns("synthetic"))
    launch_two(["--threads", "1", "run", cfg, "--run-dir", tmp / "two", "--resume"], tmp)
    sets = {"run": (tmp / "one" / "synthetic", tmp / "two" / "synthetic")}
    other = _other_inputs(tmp, method, tmp / "one")
    if other is not None:
        model = tmp / "one" / "model"
        with single_thread():
            one = ["--threads", "1", "sample", str(model), "--out", str(tmp / "s1" / "set"), *SAMPLE, *other]
            assert main(one) == 0
        launch_two(["--threads", "1", "sample", model, "--out", tmp / "s2" / "set", *SAMPLE, *other], tmp)
        sets["sample"] = (tmp / "s1" / "set", tmp / "s2" / "set")
    return method, sets


def test_two_processes_write_the_files_of_one_process_for_every_method(method_sets):
    method, sets = method_sets
    for one, two in sets.values():
        assert json.loads((one / "metadata.json").read_text())["complete"]
        _same_files(one, two)


def test_every_method_writes_the_same_metadata_keys_a_licence_previews_and_a_stac_item(method_sets):
    method, sets = method_sets
    keys = sorted(["specdm_dataset", "task", "method", "num_samples", "images", "masks", "image_format", "mask_format",
                   "format", "band_names", "wavelengths", "rgb_bands", "class_names", "ignore_index", "patch_size",
                   "normalization", "value_range", "sampler", "seed", "seed_rule", "model", "source", "licence",
                   "command", "inputs", "filter", "decode", "clean", "hard_classes", "texture", "complete",
                   "synthetic_stats", "preview_stretch"])
    for one, _ in sets.values():
        meta = json.loads((one / "metadata.json").read_text())
        assert sorted(meta) == keys, method
        assert meta["method"] == method and meta["licence"].startswith("CC0-1.0")
        assert meta["model"]["unet"] and meta["model"]["autoencoder"]  # the weights' hashes
        assert len(list((one / "previews").glob("*.png"))) == 2
        item = json.loads((one / "stac_item.json").read_text())
        assert item["properties"]["license"] == "CC0-1.0" and item["links"][0]["href"] == "README.md"
        card = (one / "README.md").read_text()
        assert "license: cc0-1.0" in card and "## Previews" in card and "## Spectral fidelity" in card
