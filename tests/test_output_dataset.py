"""The torch view of a written synthetic data set: torchgeo-style samples and their plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from specdm.data.normalize import Normalizer
from specdm.data.plot import class_colors, false_colour
from specdm.output.dataset import MARKER, DatasetWriter, SyntheticDataset, SyntheticTorchDataset, image_dirs

NAMES = ["water", "field", "forest"]
BANDS = 5
SIZE = 8
RGB = [3, 1, 0]
NORM = Normalizer(np.linspace(10, 50, BANDS, dtype=np.float32), np.linspace(500, 900, BANDS, dtype=np.float32))


def write_set(folder, rng, n=3, dates=1, masks=True, image_format="tif", mask_format="png"):
    """A tiny data set written by DatasetWriter plus its metadata.json; returns (images, masks)."""
    images = rng.uniform(0, 1000, (n, dates, BANDS, SIZE, SIZE)).astype(np.float32)
    labels = rng.integers(0, len(NAMES), (n, SIZE, SIZE)) if masks else [None] * n
    writer = DatasetWriter(folder, n, dates, BANDS, SIZE, len(NAMES) if masks else None, image_format, mask_format)
    for i in range(n):
        writer.write(i, images[i], labels[i])
    meta = {
        MARKER: "test",
        "task": "change" if dates == 2 else "segmentation",
        "num_samples": n,
        "images": image_dirs(dates),
        "masks": masks,
        "format": {"image": image_format, "mask": mask_format},
        "band_names": [f"B{i}" for i in range(BANDS)],
        "rgb_bands": RGB,
        "class_names": NAMES,
        "normalization": NORM.to_dict(),
    }
    (folder / "metadata.json").write_text(json.dumps(meta))
    return images, (labels if masks else None)


@pytest.mark.parametrize("image_format, mask_format", [("tif", "png"), ("npy", "tif"), ("zarr", "png")])
def test_values_round_trip(tmp_path, rng, image_format, mask_format):
    images, masks = write_set(tmp_path, rng, image_format=image_format, mask_format=mask_format)
    ds = SyntheticTorchDataset(tmp_path)
    assert isinstance(ds, torch.utils.data.Dataset) and len(ds) == 3
    for k in range(3):
        sample = ds[k]
        assert set(sample) == {"image", "mask"}
        assert sample["image"].dtype == torch.float32 and sample["image"].shape == (BANDS, SIZE, SIZE)
        assert sample["mask"].dtype == torch.int64 and sample["mask"].shape == (SIZE, SIZE)
        assert torch.equal(sample["image"], torch.from_numpy(images[k, 0]))  # exactly, bit for bit
        assert torch.equal(sample["mask"], torch.from_numpy(masks[k]))
    with pytest.raises(IndexError):
        ds[3]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, BANDS, SIZE, SIZE) and torch.equal(batch["mask"][1], torch.from_numpy(masks[1]))


def test_change_and_maskless_sets(tmp_path, rng):
    images, masks = write_set(tmp_path / "change", rng, dates=2)
    ds = SyntheticDataset(tmp_path / "change").torch()
    assert ds[1]["image"].shape == (2, BANDS, SIZE, SIZE)
    assert torch.equal(ds[1]["image"], torch.from_numpy(images[1])) and torch.equal(ds[1]["mask"], torch.from_numpy(masks[1]))
    images, _ = write_set(tmp_path / "plain", rng, masks=False)
    sample = SyntheticTorchDataset(tmp_path / "plain")[2]
    assert set(sample) == {"image"} and torch.equal(sample["image"], torch.from_numpy(images[2, 0]))


def test_normalize_and_transforms(tmp_path, rng):
    images, _ = write_set(tmp_path, rng)
    ds = SyntheticTorchDataset(tmp_path, normalize=True, transforms=lambda s: {**s, "image": s["image"] * 2})
    expected = np.moveaxis(NORM(np.moveaxis(images[0, 0], 0, -1)), -1, 0) * 2
    assert ds[0]["image"].dtype == torch.float32
    np.testing.assert_array_equal(ds[0]["image"].numpy(), expected)


def _render(fig) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]


def _centre(fig, ax, rgb) -> np.ndarray:
    """The rendered pixel at the centre of ``ax``."""
    box = ax.get_window_extent()
    x, y = int((box.x0 + box.x1) / 2), int(rgb.shape[0] - (box.y0 + box.y1) / 2)
    return rgb[y, x]


def test_plot_shows_the_expected_colours(tmp_path, rng):
    write_set(tmp_path, rng)
    ds = SyntheticTorchDataset(tmp_path)
    sample = ds[0]
    lo, hi = np.full(3, 100.0), np.full(3, 900.0)
    fig = ds.plot(sample, stretch=(lo, hi))
    image_ax, mask_ax = fig.axes
    assert image_ax.get_title() == "image" and mask_ax.get_title() == "mask"
    want_rgb = false_colour(sample["image"].numpy().transpose(1, 2, 0), RGB, (lo, hi))
    np.testing.assert_allclose(image_ax.images[0].get_array(), want_rgb)
    np.testing.assert_allclose(mask_ax.images[0].get_array(), class_colors(len(NAMES))[sample["mask"].numpy()])

    # rendered: one class everywhere shows that class' colour; a flat image its stretched grey
    flat = {"image": torch.full((BANDS, SIZE, SIZE), 500.0), "mask": torch.full((SIZE, SIZE), 2)}
    fig = ds.plot(flat, stretch=(lo, hi))
    rgb = _render(fig)
    np.testing.assert_allclose(_centre(fig, fig.axes[1], rgb), class_colors(3)[2] * 255, atol=2)
    np.testing.assert_allclose(_centre(fig, fig.axes[0], rgb), [127.5] * 3, atol=2)


def test_plot_of_a_change_sample_with_prediction(tmp_path, rng):
    write_set(tmp_path, rng, dates=2)
    ds = SyntheticTorchDataset(tmp_path)
    sample = {**ds[0], "prediction": torch.zeros(SIZE, SIZE, dtype=torch.int64)}
    fig = ds.plot(sample, suptitle="sample 0")
    assert [ax.get_title() for ax in fig.axes] == ["date 1", "date 2", "mask", "prediction"]
    np.testing.assert_allclose(fig.axes[3].images[0].get_array()[0, 0], class_colors(3)[0])
