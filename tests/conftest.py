"""Shared fixtures: the real-data folder and small synthetic scenes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))

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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
