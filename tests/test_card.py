"""The dataset card: README tables, figures and previews."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from specdm.metrics.spectral import ClassSpectra
from specdm.output.card import class_colors, save_preview, write_card

NAMES = ["unlabelled", "vegetation", "water"]
COMMAND = "specdm sample --model runs/demo/model --num-samples 2 --seed 7"


def _stats(masks, rng, num_bands=5):
    stats = ClassSpectra(len(NAMES), num_bands)
    for m in masks:
        stats.update(rng.random(m.shape + (num_bands,)), m)
    return stats


def _table_rows(text: str, heading: str) -> list[str]:
    """Body rows of the first table after ``heading``."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| value")]


@pytest.fixture
def meta():
    return {
        "task": "segmentation",
        "class_names": NAMES,
        "band_names": [f"B{i}" for i in range(5)],
        "wavelengths": [450.0, 550.0, 650.0, 850.0, 1600.0],
        "num_samples": 2,
        "command": COMMAND,
        "seed": 7,
        "sampler": {"name": "ddim", "steps": 50},
        "model": {"path": "runs/demo/model", "sha256": {"unet": "abc123"}},
        "normalization": {"method": "percentile", "low": [0.1, 0.2], "high": [0.9, 0.95]},
        "image_format": "tiff float32",
        "mask_format": "png uint8",
        "ignore_index": 0,
        "source": {"scenes": ["demo"], "split": "train"},
        "licence": "CC0-1.0",
    }


def test_write_card(tmp_path, meta, rng):
    real_mask = np.repeat([0, 1, 2], [8, 40, 16]).reshape(8, 8)  # 12.50 / 62.50 / 25.00 %
    synth_masks = [np.repeat([1, 2], [12, 4]).reshape(4, 4), np.full((4, 4), 2)]  # 0 / 37.50 / 62.50 %
    real, synth = _stats([real_mask], rng), _stats(synth_masks, rng)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "000000.tif").write_bytes(b"x")
    preview = save_preview(rng.random((4, 4, 5)), synth_masks[0], (2, 1, 0), tmp_path / "previews" / "0.png", 3)

    readme = write_card(tmp_path, real, synth, meta, [preview])

    text = readme.read_text()
    assert readme == tmp_path / "README.md"
    for name in NAMES:
        assert name in text
    assert COMMAND in text and "CC0-1.0" in text and "abc123" in text
    assert "`images/`: 1 files" in text
    rows = _table_rows(text, "## Class distribution")
    assert rows[0].startswith("| 0 | unlabelled (ignored) |") and rows[0].endswith("| 12.50 | 0.00 |")
    assert rows[1].endswith("| 62.50 | 37.50 |")
    assert rows[2].endswith("| 25.00 | 62.50 |")
    a, b = real.means()[2], synth.means()[2]
    angle = math.acos(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
    rows = _table_rows(text, "## Spectral fidelity")
    assert rows[0] == "| 0 | unlabelled (ignored) | n/a | n/a |"
    assert rows[2] == f"| 2 | water | {angle:.4f} | {math.degrees(angle):.2f} |"
    assert "](card/class_distribution.png)" in text and "](card/mean_spectra.png)" in text
    assert "](previews/0.png)" in text
    for png in ("class_distribution.png", "mean_spectra.png"):
        with Image.open(tmp_path / "card" / png) as im:
            im.verify()
        with Image.open(tmp_path / "card" / png) as im:
            assert im.format == "PNG" and im.width >= 300 and im.height >= 200
            assert np.asarray(im.convert("L")).std() > 10


def test_write_card_without_wavelengths(tmp_path, meta, rng):
    meta = {**meta, "wavelengths": None, "ignore_index": None, "licence": None}
    stats = _stats([np.arange(12).reshape(3, 4) % 3], rng)
    text = write_card(tmp_path, stats, stats, meta, []).read_text()
    assert "Licence: not stated" in text and "(ignored)" not in text
    assert _table_rows(text, "## Spectral fidelity")[1] == "| 1 | vegetation | 0.0000 | 0.00 |"
    assert (tmp_path / "card" / "mean_spectra.png").stat().st_size > 5000


def test_save_preview(tmp_path, rng):
    mask = np.repeat([0, 1, 2, 3], 4).reshape(4, 4)
    path = save_preview(rng.random((4, 4, 6)), mask, (3, 2, 1), tmp_path / "p.png", 4)
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.shape[0] >= 256 and arr.shape[1] > 2 * arr.shape[0] - 64
    expected = (class_colors(4)[3] * 255).round()
    np.testing.assert_allclose(arr[-1, -1], expected, atol=1)
