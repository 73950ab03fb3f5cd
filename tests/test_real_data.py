"""Stage 1 and the whole flow on real Indian Pines data (skipped when ../shared/data is absent)."""

import numpy as np
import pytest
import torch
from accelerate.utils import set_seed
from conftest import write_config

from specdm.cli import main
from specdm.config import load_config
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.output.dataset import SyntheticDataset
from specdm.training.autoencoder import train_autoencoder
from specdm.training.engine import LoopConfig
from specdm.data.datamodule import prepare_data

pytestmark = pytest.mark.shared_data

CROP = [
    "data.split.train=[0, 40]", "data.split.test=[87, 145]", "data.patch_size=16", "data.stride=8",
    "data.bands=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190]",
]


def test_stage1_training_lowers_reconstruction_error(data_dir, tmp_path):
    cfg = load_config("indian_pines", [f"data.root={data_dir}", *CROP])
    data = prepare_data(cfg.data)
    set_seed(0)
    ae = SpectralAutoencoder("two_stream", 20, 17, 1, 4, (8, 16, 32), 1, 8)
    x, y = data.train.batch(list(range(len(data.train))))

    def errors(model):
        with torch.no_grad():
            mean, _ = model.eval().encode(x, y)
            rec, logits = model.decode(mean)
        return (rec - x).abs().mean().item(), (logits.argmax(1) == y).float().mean().item()

    l1_before, acc_before = errors(ae)
    ae = train_autoencoder(data.train, ae, LoopConfig(steps=120, batch_size=8, lr=2e-3), tmp_path / "ckpt")
    l1_after, acc_after = errors(ae)
    assert l1_after < 0.5 * l1_before, (l1_before, l1_after)
    assert acc_after > acc_before + 0.2, (acc_before, acc_after)


def test_whole_flow_on_an_indian_pines_crop(data_dir, tmp_path):
    cfg = load_config("indian_pines", [f"data.root={data_dir}", *CROP])
    raw = cfg.model_dump(mode="json")
    raw["autoencoder"].update(block_out_channels=[8, 16, 16], norm_num_groups=8, steps=10, batch_size=4)
    raw["diffusion"].update(block_out_channels=[32, 32], layers_per_block=1, latent_augmentations=1, steps=10, batch_size=4)
    raw["sampling"].update(num_samples=5, num_inference_steps=3, batch_size=5, previews=1)
    path = write_config(tmp_path / "ip.yaml", raw)
    assert main(["run", str(path), "--run-dir", str(tmp_path / "run")]) == 0
    ds = SyntheticDataset(tmp_path / "run" / "synthetic")
    assert len(ds) == 5
    assert ds.meta["class_names"][0] == "unlabelled" and ds.meta["ignore_index"] == 0
    assert len(ds.meta["wavelengths"]) == 20 and ds.meta["wavelengths"][0] == pytest.approx(400.02, abs=0.1)
    norm_low = np.asarray(ds.meta["normalization"]["low"])
    norm_high = np.asarray(ds.meta["normalization"]["high"])
    for k in range(len(ds)):
        im = ds[k]["images"][0]
        assert im.shape == (20, 16, 16)
        assert (im >= norm_low[:, None, None] - 1e-2).all() and (im <= norm_high[:, None, None] + 1e-2).all()
        assert ds[k]["mask"].max() < 17
    card = (tmp_path / "run" / "synthetic" / "README.md").read_text()
    assert "Corn-notill" in card and "specdm run" in card
