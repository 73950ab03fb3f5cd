"""The dataset card: README tables, figures and previews."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from PIL import Image

from specdm.datasets import sentinel2_demo
from specdm.metrics.spectral import ClassSpectra
from specdm.output.card import class_colors, hf_license, save_preview, size_category, source_licence, write_card

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
    assert _header(text)["license"] == "other" and "`license: other`" in text
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


def _header(text: str) -> dict:
    """The YAML front matter of a card: between the first two ``---`` lines, at the very top."""
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("\n---\n", 1)[0].removeprefix("---\n"))


@pytest.mark.parametrize("num_samples, category", [(2, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (25_000, "10K<n<100K")])
def test_card_header(tmp_path, meta, rng, num_samples, category):
    stats = _stats([np.arange(16).reshape(4, 4) % 3], rng)
    text = write_card(tmp_path, stats, stats, {**meta, "num_samples": num_samples, "name": "demo-synth"}, []).read_text()
    header = _header(text)
    assert header["license"] == "cc0-1.0"  # the source data's licence, as an identifier
    assert header["size_categories"] == [category]
    assert header["task_categories"] == ["image-segmentation"] and header["task_ids"] == ["semantic-segmentation"]
    assert header["annotations_creators"] == ["machine-generated"]
    assert header["source_datasets"] == ["demo"]
    assert header["pretty_name"] == "demo-synth: synthetic segmentation data set"
    assert header["tags"] == ["multispectral", "synthetic", "remote-sensing"]
    body = text.split("\n---\n", 1)[1]
    assert body.lstrip().startswith("# demo-synth: synthetic segmentation data set")
    assert "Licence: CC0-1.0 (the licence of the source data" in body


def test_card_header_of_a_named_source(tmp_path, meta, rng):
    """A scene of a named data set: its loader's LICENCE, turned into the identifier; many bands: hyperspectral."""
    licence = source_licence({"scenes": ["sentinel2_demo"], "split": {}})
    assert licence == sentinel2_demo.LICENCE
    assert source_licence({"scenes": ["my_own_file"]}) is None and source_licence({"scenes": []}) is None
    stats = _stats([np.arange(16).reshape(4, 4) % 3], rng, num_bands=40)
    meta = {**meta, "band_names": None, "wavelengths": None, "source": {"scenes": ["sentinel2_demo"]}, "licence": licence}
    header = _header(write_card(tmp_path, stats, stats, meta, []).read_text())
    assert header["license"] == "cc0-1.0" and header["source_datasets"] == ["sentinel2_demo"]
    assert header["tags"][0] == "hyperspectral"


def test_licence_identifiers():
    assert hf_license("CC-BY-4.0") == hf_license("CC BY 4.0") == "cc-by-4.0"
    assert hf_license("ODbL-1.0; (c) OpenStreetMap contributors") == "odbl"
    assert hf_license("free for research") == hf_license(None) == "other"
    assert [size_category(n) for n in (0, 10**6, 10**13)] == ["n<1K", "1M<n<10M", "n>1T"]


def test_unknown_licence_text_stays_in_the_card(tmp_path, meta, rng):
    stats = _stats([np.arange(16).reshape(4, 4) % 3], rng)
    text = write_card(tmp_path, stats, stats, {**meta, "licence": "Copernicus open data terms"}, []).read_text()
    header = _header(text)
    assert header["license"] == "other" and header["license_name"] == "copernicus-open-data-terms"
    assert "Licence: Copernicus open data terms" in text


@pytest.mark.parametrize("task", ["segmentation", "change"])
def test_stac_item(tmp_path, meta, rng, task):
    masks = [np.repeat([1, 2], [12, 4]).reshape(4, 4), np.full((4, 4), 2), np.arange(16).reshape(4, 4) % 3]
    dates = 2 if task == "change" else 1
    real = _stats(masks[:1], rng)
    synth = ClassSpectra(len(NAMES), 5)
    for m in masks:
        for _ in range(dates):  # as finish_dataset gathers them: every date's image with the one mask
            synth.update(rng.random((4, 4, 5)), m)
    images = ["images_t1", "images_t2"] if task == "change" else ["images"]
    meta = {**meta, "task": task, "images": images, "image_format": "tif", "mask_format": "png", "num_samples": 3}
    text = write_card(tmp_path, real, synth, meta, []).read_text()

    item = json.loads((tmp_path / "stac_item.json").read_text())
    assert item["type"] == "Feature" and item["stac_version"].startswith("1.")
    assert "https://stac-extensions.github.io/label/v1.0.1/schema.json" in item["stac_extensions"]
    assert item["id"] == tmp_path.name and item["geometry"] is None and "bbox" not in item
    props = item["properties"]
    assert props["datetime"].endswith("Z") and props["license"] == "CC0-1.0"
    assert props["label:type"] == "raster" and props["label:properties"] is None
    assert props["label:classes"] == [{"name": "class", "classes": NAMES}]
    assert props["label:tasks"] == ["change_detection" if task == "change" else "segmentation"]
    assert props["label:methods"] == ["automated"]
    assert props["label:description"] and "Value 0 ('unlabelled')" in props["label:description"]
    (overview,) = props["label:overviews"]
    assert overview["property_key"] == "class"
    assert [c["name"] for c in overview["counts"]] == NAMES
    counts = [c["count"] for c in overview["counts"]]
    assert all(isinstance(c, int) for c in counts)
    assert sum(counts) == sum(m.size for m in masks) == 48  # pixels of the synthetic masks, once each
    assert counts == np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=3).tolist()
    assert "labels" in item["assets"] and "labels" in item["assets"]["labels"]["roles"]
    assert item["assets"]["labels"]["href"] == "masks/" and item["assets"]["labels"]["type"] == "image/png"
    assert all(d in item["assets"] for d in images)
    assert all({"rel", "href"} <= set(link) for link in item["links"])
    header = _header(text)
    assert header["task_categories"] == ["image-segmentation"]
    assert ("change-detection" in header["tags"]) == (task == "change")
    assert "- `stac_item.json`" in text  # listed among the files


def test_stac_item_can_be_left_out(tmp_path, meta, rng):
    stats = _stats([np.arange(16).reshape(4, 4) % 3], rng)
    write_card(tmp_path, stats, stats, meta, [], stac=False)
    assert not (tmp_path / "stac_item.json").exists() and (tmp_path / "README.md").is_file()


def test_card_of_an_image_only_set(tmp_path, meta, rng):
    """A set without masks (controllable synthesis): one 'all pixels' class, mean-spectrum SAD, false-colour
    previews without a class map, no class distribution, a STAC item without the label extension."""
    meta = {**meta, "task": "image", "method": "controllable", "class_names": [], "masks": False,
            "ignore_index": None}
    real, synth = ClassSpectra(1, 5), ClassSpectra(1, 5)
    real.update(np.full((4, 4, 5), 0.5), np.zeros((4, 4), np.int64))
    synth.update(np.full((4, 4, 5), 0.5) + np.arange(5) * 0.01, np.zeros((4, 4), np.int64))
    preview = save_preview(rng.random((4, 4, 6)), None, (3, 2, 1), tmp_path / "previews" / "p.png", 1)
    with Image.open(preview) as im:
        assert im.size[0] == im.size[1]  # the false colour alone
    readme = write_card(tmp_path, real, synth, meta, [preview])
    text = readme.read_text()
    assert "synthetic images (no masks)" in text and "method controllable" in text and "the real data demo (" in text
    assert "## Class distribution" not in text and "mask format" not in text and "classes (" not in text
    (row,) = _table_rows(text, "## Spectral fidelity")
    assert row.startswith("| 0 | all pixels |") and "n/a" not in row
    assert "Pixels: 16 real, 16 synthetic." in text and "beside the class map" not in text
    assert (tmp_path / "card" / "mean_spectra.png").is_file()
    assert not (tmp_path / "card" / "class_distribution.png").exists()
    item = json.loads((tmp_path / "stac_item.json").read_text())
    assert item["stac_extensions"] == [] and not any(k.startswith("label:") for k in item["properties"])
    assert item["properties"]["license"] == "CC0-1.0" and set(item["assets"]) == {"images", "metadata"}
