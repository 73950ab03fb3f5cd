"""Two CPU processes (gloo) through ``accelerate launch`` give the same models and samples as one."""

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import tiny_config, write_config, write_fake_files
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
