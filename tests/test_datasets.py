"""Named data sets on the real files in ../shared/data (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import tifffile
from PIL import Image

from specdm.datasets import DATASETS, data_root, load_files, load_scenes
from specdm.datasets.indian_pines import load_indian_pines
from specdm.datasets.oscd import OSCD_TEST_CITIES, OSCD_TRAIN_CITIES, load_oscd
from specdm.datasets.taizhou import load_taizhou
from specdm.datasets.unmixing import load_moffett, load_samson
from specdm.errors import ConfigError, DataError, DatasetNotFoundError
from specdm.io import read_spectral_library

pytestmark = pytest.mark.shared_data


def spectral_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def test_indian_pines(data_dir):
    (scene,) = load_indian_pines(data_dir)
    image = scene.images[0]
    assert image.shape == (145, 145, 200) and image.dtype == np.float32
    assert (image.min(), image.max()) == (955.0, 9604.0)
    assert scene.num_classes == 17 and scene.ignore_index == 0
    assert scene.class_names[1] == "Alfalfa" and scene.class_names[16] == "Stone-Steel-Towers"
    counts = np.bincount(scene.mask.ravel(), minlength=17)
    assert counts[0] == 10776 and counts[1:].sum() == 10249  # unlabelled / labelled pixels
    assert (counts[1], counts[2], counts[11], counts[16]) == (46, 1428, 2455, 93)
    wl = np.array(scene.wavelengths)
    assert len(wl) == 200 and 400 <= wl[0] and wl[-1] <= 2500
    # increasing, except where AVIRIS's spectrometers overlap (bands 31/32 and 94/95 of 220)
    assert np.nonzero(np.diff(wl) <= 0)[0].tolist() == [30, 93]
    assert wl[31] == pytest.approx(686.91, abs=0.01) and wl[30] == pytest.approx(696.50, abs=0.01)
    # the dropped water-absorption bands: 1-based 104-108 (1363-1402 nm) and 150-163 (1819-1933 nm)
    assert not np.any((wl > 1355) & (wl < 1410)) and not np.any((wl > 1810) & (wl < 1940))
    assert scene.band_names[102:104] == ["band_103", "band_109"]
    assert wl[102] == pytest.approx(1352.68, abs=0.01) and wl[103] == pytest.approx(1412.39, abs=0.01)
    assert scene.extra["fwhm"][0] == pytest.approx(9.78)


def test_oscd_hongkong_is_cropped_and_resampled(data_dir):
    (scene,) = load_oscd(data_dir, cities=["hongkong"])
    assert scene.task == "change" and scene.num_bands == 10 and scene.name == "oscd_hongkong"
    assert scene.band_names[:3] == ["B02", "B03", "B04"] and "B8A" in scene.band_names
    assert np.all(np.diff(scene.wavelengths) > 0)
    assert scene.shape == (693, 538)  # date 2 is 693x538; date 1 and the map 695x540
    assert scene.extra["cropped"]["image1"] == (695, 540) and scene.extra["cropped"]["to"] == (693, 538)
    assert set(np.unique(scene.mask)) == {0, 1}
    raw = tifffile.imread(data_dir / "oscd/train_labels/hongkong/cm/hongkong-cm.tif")
    assert scene.mask.sum() == (raw[:693, :538] == 2).sum() > 0
    date1 = data_dir / "oscd/images/hongkong/imgs_1"
    with rasterio.open(next(date1.glob("*_B02.tif"))) as src:  # the reference band, unresampled
        np.testing.assert_array_equal(scene.images[0][..., 0], src.read(1)[:693, :538])
    with rasterio.open(next(date1.glob("*_B05.tif"))) as src:  # a 20 m band on the 10 m grid
        b05 = src.read(1).astype(float)
    resampled = scene.images[0][..., scene.band_names.index("B05")]
    assert resampled.mean() == pytest.approx(b05.mean(), rel=0.01)
    blocky = np.repeat(np.repeat(b05, 2, axis=0), 2, axis=1)[:693, :538]  # 348x270 -> 10 m, crudely
    assert np.corrcoef(resampled.ravel(), blocky.ravel())[0, 1] > 0.9


def test_oscd_city_without_crop(data_dir):
    (scene,) = load_oscd(data_dir, cities=["rennes"])
    assert scene.shape == (339, 563) and "cropped" not in scene.extra
    assert 0 < scene.mask.mean() < 0.5
    assert set(OSCD_TRAIN_CITIES).isdisjoint(OSCD_TEST_CITIES)
    with pytest.raises(DatasetNotFoundError, match="atlantis"):
        load_oscd(data_dir, cities=["atlantis"])


def test_taizhou(data_dir):
    (scene,) = load_taizhou(data_dir)
    assert scene.task == "change" and scene.images[0].shape == (400, 400, 6)
    assert scene.class_names == ["unknown", "no change", "change"] and scene.ignore_index == 0
    assert np.bincount(scene.mask.ravel()).tolist() == [138610, 17163, 4227]
    assert scene.wavelengths == [482.5, 565.0, 660.0, 825.0, 1650.0, 2220.0]
    assert scene.band_names == ["B1", "B2", "B3", "B4", "B5", "B7"]
    # the change mark lines up with the images: standardized change vectors are long there
    z = [(im - im.mean((0, 1))) / im.std((0, 1)) for im in scene.images]
    magnitude = np.linalg.norm(z[0] - z[1], axis=-1)
    assert magnitude[scene.mask == 2].mean() > 3 * magnitude[scene.mask == 1].mean()


@pytest.mark.parametrize(("loader", "shape", "names", "max_sad"), [
    (load_samson, (95, 95, 156), ["rock/soil", "tree", "water"], 0.1),
    (load_moffett, (50, 50, 184), ["water", "soil", "vegetation"], 0.15),
])
def test_unmixing_scenes_line_up_with_abundances(data_dir, loader, shape, names, max_sad):
    (scene,) = loader(data_dir)
    cube = scene.images[0]
    assert cube.shape == shape and 0 <= cube.min() and cube.max() <= 1
    assert scene.class_names == names and scene.ignore_index is None
    assert set(np.unique(scene.mask)) == {0, 1, 2}
    endmembers, abundances = scene.extra["endmembers"], scene.extra["abundances"]
    assert endmembers.shape == (3, shape[2]) and abundances.shape == (*shape[:2], 3)
    np.testing.assert_array_equal(scene.mask, abundances.argmax(-1))
    # orientation: the linear mixture of the reference endmembers matches the cube (row-major: ~0.36 rad)
    assert spectral_angle(abundances @ endmembers, cube).mean() < max_sad
    # naming: water is the darkest class in the near infrared, vegetation/tree the brightest (Samson)
    nir = cube[..., int(shape[2] * 0.8):].mean(-1)
    water = names.index("water")
    assert all(nir[scene.mask == water].mean() < nir[scene.mask == k].mean() for k in range(3) if k != water)


def test_usgs_spectral_library(data_dir):
    spectra, wavelengths, names = read_spectral_library(
        data_dir / "spectral_libraries/usgs_splib07_AV95/s07_AV95_envi.hdr"
    )
    assert spectra.shape == (2457, 224)  # 3139 records - 2 metadata - 680 error-bar records
    assert len(names) == 2457 and names[0].startswith("Acmite") and not any("error bars" in n for n in names)
    assert wavelengths[0] == pytest.approx(383.15) and wavelengths[-1] == pytest.approx(2508.2)
    valid = spectra[np.isfinite(spectra)]
    assert 0 <= valid.min() and valid.max() < 1.5 and np.isnan(spectra).any()


def test_registry_and_missing_root(data_dir, tmp_path, monkeypatch):
    mine = ("indian_pines", "oscd", "taizhou", "samson", "moffett")
    assert set(mine) <= set(DATASETS)
    (scene,) = load_scenes("moffett", root=data_dir)
    assert scene.name == "moffett"
    with pytest.raises(ConfigError, match="indian_pines.*oscd"):
        load_scenes("pavia")
    for name in mine:
        with pytest.raises(DatasetNotFoundError, match="SPECDM_DATA_DIR") as err:
            load_scenes(name, root=tmp_path / "nowhere")
        assert str(tmp_path / "nowhere") in str(err.value)
    monkeypatch.setenv("SPECDM_DATA_DIR", str(data_dir))
    assert data_root() == data_dir and data_root(tmp_path) == tmp_path
    monkeypatch.delenv("SPECDM_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert data_root() == (tmp_path / ".." / "shared" / "data").resolve()


def test_load_files(tmp_path, rng):
    image = rng.random((6, 5, 4)).astype(np.float32)
    labels = rng.integers(0, 3, (6, 5)).astype(np.uint8)
    np.save(tmp_path / "a.npy", image)
    np.save(tmp_path / "b.npy", image + 1)
    Image.fromarray(labels).save(tmp_path / "mask.png")
    (scene,) = load_files(tmp_path / "a.npy", tmp_path / "mask.png", image2=tmp_path / "b.npy")
    assert scene.task == "change" and scene.class_names == ["class_0", "class_1", "class_2"]
    np.testing.assert_array_equal(scene.images[1], image + 1)
    np.testing.assert_array_equal(scene.mask, labels)
    (scene,) = load_files(tmp_path / "a.npy", tmp_path / "mask.png", class_names=["x", "y", "z", "w"], ignore_index=0)
    assert scene.task == "segmentation" and scene.num_classes == 4
    with pytest.raises(DataError, match="outside the 2 declared classes"):
        load_files(tmp_path / "a.npy", tmp_path / "mask.png", class_names=["x", "y"])
