"""Shared fixtures: the real-data folder and small synthetic scenes."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", min(2, os.cpu_count() or 1))))

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$SPECDM_DATA_DIR``, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("SPECDM_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"real data not found at {d} (set SPECDM_DATA_DIR to the shared data folder)")
    return d


@contextmanager
def single_thread():
    """Tiny models train faster on one thread, and the cores may be shared; restores the count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    with single_thread():
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def fake_scene(rng: np.random.Generator, size=48, bands=6, classes=4, change=False):
    """A structured scene: class blocks with distinct spectra plus noise; returns (images, mask)."""
    mask = np.zeros((size, size), np.int64)
    block = size // 4
    for i in range(4):
        for j in range(4):
            mask[i * block : (i + 1) * block, j * block : (j + 1) * block] = (i + j) % classes
    spectra = rng.uniform(100, 1000, (classes, bands))
    image = spectra[mask] + rng.normal(0, 10, (size, size, bands))
    if not change:
        return [image.astype(np.float32)], mask
    change_mask = np.zeros_like(mask)
    change_mask[size // 3 : size // 2, size // 3 : size // 2] = 1
    image2 = image.copy()
    image2[change_mask == 1] = spectra[(mask[change_mask == 1] + 1) % classes]
    return [image.astype(np.float32), image2.astype(np.float32)], change_mask


def write_fake_files(folder: Path, rng: np.random.Generator, change=False, **kw) -> dict:
    """Write a fake scene as .npy files; returns the ``data`` section of a config."""
    folder.mkdir(parents=True, exist_ok=True)
    images, mask = fake_scene(rng, change=change, **kw)
    np.save(folder / "image.npy", images[0])
    np.save(folder / "mask.npy", mask)
    data = {"image": str(folder / "image.npy"), "mask": str(folder / "mask.npy")}
    if change:
        np.save(folder / "image2.npy", images[1])
        data["image2"] = str(folder / "image2.npy")
    return data


def tiny_config(data: dict, **sections) -> dict:
    """A config small enough to train both stages in seconds."""
    cfg = {
        "name": "tiny",
        "data": {"split": {"kind": "rows", "train": [0, 32], "test": [32, 48]}, "patch_size": 16, "stride": 8, **data},
        "autoencoder": {"block_out_channels": [8, 16, 16], "norm_num_groups": 8, "steps": 6, "batch_size": 4},
        "diffusion": {"block_out_channels": [32, 32], "layers_per_block": 1, "latent_augmentations": 2, "steps": 6,
                      "batch_size": 4, "ema_decay": 0.9},
        "sampling": {"num_samples": 6, "num_inference_steps": 3, "batch_size": 4, "previews": 2},
        "train": {"checkpoint_every": 3},
    }
    for k, v in sections.items():
        cfg[k] = {**cfg.get(k, {}), **v}
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    return path


WAVELENGTHS = [450.0, 520.0, 600.0, 660.0, 780.0, 860.0]  # the 6 bands of write_fake_files


def tiny_method_config(tmp: Path, method: str, **sections) -> dict:
    """A tiny config of ``method`` on a fake 6-band scene with wavelengths (the RGB-conditioned and controllable
    methods need them); ``sections`` update the config's sections."""
    data = write_fake_files(tmp / "data", np.random.default_rng(3))
    cfg = tiny_config(data, sampling={"num_samples": 4, "num_inference_steps": 2, "batch_size": 2, "previews": 1})
    cfg["method"] = method
    if method in ("hyperldm", "controllable"):
        cfg["data"]["wavelengths"] = WAVELENGTHS
    if method == "hyperldm":
        cfg["hyperldm"] = {"library": None, "num_codes": 16, "num_versions": 1, "condition_channels": 4,
                           "head_channels": 8}
    if method == "controllable":
        cfg["data"]["align"] = {"start": 450, "stop": 860, "bands": 6}
        cfg["controllable"] = {"conditions": ["edges"], "params": {"edges": {"sigmas": [1.0]}}}
    for k, v in sections.items():
        cfg[k] = {**cfg.get(k, {}), **v}
    return cfg
