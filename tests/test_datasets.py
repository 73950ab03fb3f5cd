"""Named data sets: on tiny fake files in each data set's real layout (written at test time by
``tests/data/<name>/data.py``), and on the real files in ../shared/data (skipped when absent)."""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import rasterio
import tifffile
from PIL import Image

import specdm.datasets
from specdm.datasets import DATASETS, check_options, data_root, dataset_file, load_files, load_scenes
from specdm.datasets.indian_pines import load_indian_pines
from specdm.datasets.oscd import OSCD_TEST_CITIES, OSCD_TRAIN_CITIES, load_oscd
from specdm.datasets.sensors import SENTINEL2, SENTINEL2_SURFACE, sentinel2_bands, wavelengths
from specdm.datasets.taizhou import load_taizhou
from specdm.datasets.unmixing import load_moffett, load_samson
from specdm.errors import ConfigError, DataError, DatasetNotFoundError
from specdm.io import read_spectral_library

FAKE_DATA = Path(__file__).resolve().parent / "data"
NAMED = ("indian_pines", "oscd", "taizhou", "samson", "moffett", "sentinel2_demo")


@cache
def fake(name: str):
    """The module ``tests/data/<name>/data.py`` (its ``write(folder)`` makes the fake files)."""
    spec = importlib.util.spec_from_file_location(f"fake_{name}_data", FAKE_DATA / name / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def spectral_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.arccos(np.clip(cos, -1.0, 1.0))


@pytest.mark.shared_data
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


@pytest.mark.shared_data
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


@pytest.mark.shared_data
def test_oscd_city_without_crop(data_dir):
    (scene,) = load_oscd(data_dir, cities=["rennes"])
    assert scene.shape == (339, 563) and "cropped" not in scene.extra
    assert 0 < scene.mask.mean() < 0.5
    assert set(OSCD_TRAIN_CITIES).isdisjoint(OSCD_TEST_CITIES)
    with pytest.raises(DatasetNotFoundError, match="atlantis"):
        load_oscd(data_dir, cities=["atlantis"])


@pytest.mark.shared_data
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


@pytest.mark.shared_data
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


@pytest.mark.shared_data
def test_usgs_spectral_library(data_dir):
    spectra, wavelengths, names = read_spectral_library(
        data_dir / "spectral_libraries/usgs_splib07_AV95/s07_AV95_envi.hdr"
    )
    assert spectra.shape == (2457, 224)  # 3139 records - 2 metadata - 680 error-bar records
    assert len(names) == 2457 and names[0].startswith("Acmite") and not any("error bars" in n for n in names)
    assert wavelengths[0] == pytest.approx(383.15) and wavelengths[-1] == pytest.approx(2508.2)
    valid = spectra[np.isfinite(spectra)]
    assert 0 <= valid.min() and valid.max() < 1.5 and np.isnan(spectra).any()


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


@pytest.mark.shared_data
def test_registry_loads_real_files(data_dir):
    (scene,) = load_scenes("moffett", root=data_dir)
    assert scene.name == "moffett" and scene.images[0].shape == (50, 50, 184)


# ---------------------------------------------------------------- structure, registry, options


def test_loaders_do_not_import_the_package_that_imports_them():
    folder = Path(specdm.datasets.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "specdm.datasets", f"{path.name} imports from specdm.datasets"
    assert set(NAMED) == set(DATASETS)
    assert dataset_file is specdm.datasets.paths.dataset_file


def test_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDM_DATA_DIR", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env" and data_root(tmp_path) == tmp_path
    monkeypatch.delenv("SPECDM_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert data_root() == (tmp_path / ".." / "shared" / "data").resolve()


def test_missing_root_names_where_it_looked(tmp_path):
    for name in ("indian_pines", "oscd", "taizhou", "samson", "moffett"):
        with pytest.raises(DatasetNotFoundError, match="SPECDM_DATA_DIR") as err:
            load_scenes(name, root=tmp_path / "nowhere")
        assert str(tmp_path / "nowhere") in str(err.value)


def test_check_options():
    check_options("oscd", {"cities": ["paris"]})
    check_options("sentinel2_demo", {"size": 32, "offset": (0, 0)})
    check_options("indian_pines", {})
    with pytest.raises(ConfigError, match=r"data set 'oscd' has no option 'city'; valid options: cities$"):
        check_options("oscd", {"city": "paris"})
    with pytest.raises(ConfigError, match=r"no options 'crop', 'scale'; valid options: size, offset$"):
        check_options("sentinel2_demo", {"scale": 2, "crop": 4, "size": 8})
    with pytest.raises(ConfigError, match="valid options: none"):
        check_options("taizhou", {"cities": ["x"]})
    with pytest.raises(ConfigError, match="no option 'root'"):  # root is its own setting
        check_options("samson", {"root": "/data"})
    with pytest.raises(ConfigError, match="unknown data set 'pavia'; known: indian_pines, moffett, oscd"):
        check_options("pavia", {})


def test_load_scenes_checks_options_before_reading(tmp_path):
    with pytest.raises(ConfigError, match="valid options: cities"):
        load_scenes("oscd", root=tmp_path / "nowhere", city="paris")
    with pytest.raises(ConfigError, match="indian_pines.*oscd"):
        load_scenes("pavia")


def test_sentinel2_band_table():
    assert len(SENTINEL2) == 13 and len({b.name for b in SENTINEL2}) == 13
    assert [b.name for b in sentinel2_bands(resolutions=[60])] == ["B01", "B09", "B10"]
    assert [b.name for b in sentinel2_bands(resolutions=[10])] == ["B02", "B03", "B04", "B08"]
    surface = sentinel2_bands(SENTINEL2_SURFACE)
    assert len(surface) == 10 and all(b.resolution in (10, 20) for b in surface)
    assert np.all(np.diff(wavelengths(surface)) > 0)  # in order of wavelength
    b12 = sentinel2_bands(["B12"])[0]
    assert (b12.wavelength, b12.fwhm, b12.resolution) == (2202.4, 175.0, 20)
    with pytest.raises(ConfigError, match="unknown Sentinel-2 band.*'B13'.*B8A"):
        sentinel2_bands(["B02", "B13"])


# ---------------------------------------------------------------- each loader on fake files


def test_indian_pines_on_fake_files(tmp_path):
    written = fake("indian_pines").write(tmp_path)
    (scene,) = load_scenes("indian_pines", root=tmp_path)
    assert scene.images[0].shape == (12, 12, 200) and scene.images[0].dtype == np.float32
    np.testing.assert_array_equal(scene.images[0], written["cube"])
    np.testing.assert_array_equal(scene.mask, written["gt"])
    assert scene.mask[0, 11] == 16 and scene.class_names[scene.mask[0, 11]] == "Stone-Steel-Towers"
    assert scene.mask[3, 5] == 1 and scene.class_names[1] == "Alfalfa"
    assert scene.num_classes == 17 and scene.ignore_index == 0 and scene.class_names[0] == "unlabelled"
    # 220 AVIRIS bands less 104-108, 150-163 and 220 (1-based): names and centres of the kept ones
    assert scene.band_names[:2] == ["band_1", "band_2"] and scene.band_names[-1] == "band_219"
    assert scene.band_names[102:104] == ["band_103", "band_109"]
    assert scene.band_names[143:145] == ["band_149", "band_164"]
    kept = [int(n.split("_")[1]) for n in scene.band_names]
    assert kept == written["kept"] and not {*range(104, 109), *range(150, 164), 220} & set(kept)
    assert scene.wavelengths == [fake("indian_pines").centre(b) for b in kept]
    assert scene.extra["fwhm"] == pytest.approx([fake("indian_pines").fwhm(b) for b in kept])
    assert scene.extra["sensor"] == "AVIRIS"


def test_indian_pines_refuses_a_short_band_table(tmp_path):
    fake("indian_pines").write(tmp_path)
    spc = tmp_path / "indian_pines" / "92AV3C.spc"
    spc.write_text("\n".join(spc.read_text().splitlines()[:-1]))
    with pytest.raises(DataError, match="expected 220 band rows.*found 219"):
        load_scenes("indian_pines", root=tmp_path)


def test_oscd_on_fake_files(tmp_path):
    written = fake("oscd").write(tmp_path)
    rennes, hongkong = load_scenes("oscd", root=tmp_path, cities=["rennes", "hongkong"])
    assert rennes.task == "change" and rennes.name == "oscd_rennes" and rennes.images[0].shape == (12, 12, 10)
    assert rennes.band_names == list(SENTINEL2_SURFACE) == [
        "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
    assert rennes.wavelengths == [492.4, 559.8, 664.6, 704.1, 740.5, 782.8, 832.8, 864.7, 1613.7, 2202.4]
    assert rennes.extra["fwhm"][rennes.band_names.index("B08")] == 106.0
    assert [rennes.band_names[i] for i in rennes.rgb_bands] == ["B04", "B03", "B02"]
    assert rennes.class_names == ["no change", "change"] and rennes.ignore_index is None
    assert rennes.extra["dates"] == ["20150821", "20170621"] and rennes.extra["crs"] == "EPSG:32630"
    assert "cropped" not in rennes.extra
    # 10 m bands come through unchanged, on both dates
    for k, date in enumerate(("imgs_1", "imgs_2")):
        for band in ("B02", "B08"):
            got = rennes.images[k][..., rennes.band_names.index(band)]
            np.testing.assert_array_equal(got, written["rennes"][date][band])
    # B05 (20 m, 6x6) holds 1000 + 100 row + 10 col: bilinear to 10 m puts 10 m pixel (r, c)
    # at 20 m (r/2 - 1/4, c/2 - 1/4); inside the border the ramp is reproduced exactly
    b05 = rennes.images[0][..., rennes.band_names.index("B05")]
    r, c = np.mgrid[1:11, 1:11]
    np.testing.assert_allclose(b05[1:11, 1:11], 1000 + 100 * (r / 2 - 0.25) + 10 * (c / 2 - 0.25), atol=1e-3)
    assert b05[0, 0] == 1000 and b05[11, 11] == 1000 + 100 * 5 + 10 * 5  # edges clamp to the outer 20 m pixels
    # change map {1, 2} -> {0, 1}
    cm = written["rennes"]["cm"]
    np.testing.assert_array_equal(rennes.mask, (cm == 2).astype(np.int64))
    assert rennes.mask[4:7, 2:6].all() and rennes.mask.sum() == 12 and set(np.unique(rennes.mask)) == {0, 1}
    # hongkong: date 2 is 10x12, date 1 and the map 12x14: all cut to the common top-left 10x12
    assert hongkong.shape == (10, 12) and hongkong.images[1].shape == (10, 12, 10)
    assert hongkong.extra["cropped"] == {"image1": (12, 14), "image2": (10, 12), "mask": (12, 14), "to": (10, 12)}
    np.testing.assert_array_equal(hongkong.images[0][..., 0], written["hongkong"]["imgs_1"]["B02"][:10, :12])
    np.testing.assert_array_equal(hongkong.mask, written["hongkong"]["cm"][:10, :12] == 2)


def test_oscd_refuses_a_change_map_with_other_values(tmp_path):
    fake("oscd").write(tmp_path)
    cm_path = tmp_path / "oscd/train_labels/rennes/cm/rennes-cm.tif"
    cm = tifffile.imread(cm_path)
    cm[0, 0] = 0
    tifffile.imwrite(cm_path, cm)
    with pytest.raises(DataError, match=r"holds values \[0, 1, 2\]; expected 1 \(no change\) and 2 \(change\)"):
        load_oscd(tmp_path, cities=["rennes"])


def test_taizhou_on_fake_files(tmp_path):
    written = fake("taizhou").write(tmp_path)
    (scene,) = load_scenes("taizhou", root=tmp_path)
    assert scene.task == "change" and scene.images[0].shape == (12, 12, 6)
    np.testing.assert_array_equal(scene.images[0], written["2000"])
    np.testing.assert_array_equal(scene.images[1], written["2003"])
    assert scene.band_names == ["B1", "B2", "B3", "B4", "B5", "B7"]  # from "... (Band 7):..." header names
    assert scene.wavelengths == [482.5, 565.0, 660.0, 825.0, 1650.0, 2220.0]  # micrometres -> nm
    assert scene.class_names == ["unknown", "no change", "change"] and scene.ignore_index == 0
    # partial labels: change.bmp -> 2, unchanged.bmp -> 1, neither -> 0 (unknown)
    assert scene.mask[2, 3] == 2 and scene.mask[0, 11] == 1 and scene.mask[9, 1] == 1 and scene.mask[0, 0] == 0
    expected = np.where(written["change"] == 255, 2, np.where(written["unchanged"] == 255, 1, 0))
    np.testing.assert_array_equal(scene.mask, expected)
    assert np.bincount(scene.mask.ravel()).tolist() == [125, 13, 6]


def test_taizhou_refuses_pixels_marked_twice(tmp_path):
    written = fake("taizhou").write(tmp_path)
    change = written["change"].copy()
    change[0, 11] = 255  # also marked unchanged
    Image.fromarray(change, mode="L").save(tmp_path / "landsat_cd/Taizhou/change.bmp")
    with pytest.raises(DataError, match="1 pixels are marked both changed and unchanged"):
        load_taizhou(tmp_path)


@pytest.mark.parametrize(("name", "shape", "classes"), [
    ("samson", (12, 10, 156), ["rock/soil", "tree", "water"]),
    ("moffett", (9, 12, 8), ["water", "soil", "vegetation"]),
])
def test_unmixing_on_fake_files(tmp_path, name, shape, classes):
    written = fake(name).write(tmp_path)
    (scene,) = load_scenes(name, root=tmp_path)
    rows, cols, bands = shape
    assert scene.name == name and scene.images[0].shape == shape and scene.class_names == classes
    # Y's pixels are in column-major order: pixel (r, c) is column r + rows * c
    for r, c in [(0, 0), (1, 0), (0, 1), (rows - 1, cols - 1), (3, 7)]:
        np.testing.assert_allclose(scene.images[0][r, c], written["Y"][:, r + rows * c], rtol=1e-6)
    # the class map is the argmax of the abundances
    np.testing.assert_array_equal(scene.mask, written["dominant"])
    np.testing.assert_array_equal(scene.mask, written["S_GT"].argmax(-1))
    np.testing.assert_allclose(scene.extra["endmembers"], written["GT"], rtol=1e-6)
    np.testing.assert_allclose(scene.extra["abundances"], written["S_GT"], rtol=1e-6)
    if name == "samson":  # nominal 401..889 nm, evenly spaced
        assert len(scene.wavelengths) == 156 and scene.wavelengths[0] == 401.0 and scene.wavelengths[-1] == 889.0
    else:
        assert scene.wavelengths is None


def test_unmixing_refuses_inconsistent_shapes(tmp_path):
    import scipy.io

    fake("moffett").write(tmp_path)
    path = tmp_path / "unmixing/moffett.mat"
    contents = scipy.io.loadmat(path)
    contents["GT"] = contents["GT"][:, :-1]
    scipy.io.savemat(path, {k: v for k, v in contents.items() if not k.startswith("_")})
    with pytest.raises(DataError, match=r"GT has shape \(3, 7\); expected \(3, 8\)"):
        load_moffett(tmp_path)


def test_sentinel2_demo_on_a_fake_folder(tmp_path):
    data = fake("sentinel2_demo")
    written = data.write(tmp_path)
    (scene,) = load_scenes("sentinel2_demo", root=tmp_path, size=None)
    image = scene.images[0]
    assert image.shape == (12, 12, 10) and scene.band_names == list(SENTINEL2_SURFACE)
    assert scene.wavelengths == wavelengths(sentinel2_bands(SENTINEL2_SURFACE))
    assert [scene.band_names[i] for i in scene.rgb_bands] == ["B04", "B03", "B02"]
    assert scene.source == str(tmp_path) and scene.extra["offset"] == (0, 0)
    # 10 m bands: digital number / 10000
    for band in ("B02", "B08"):
        expected = (written[band].astype(np.float64) / 1e4).astype(np.float32)
        np.testing.assert_array_equal(image[..., scene.band_names.index(band)], expected)
    # B05's 20 m grid starts 10 m further west: 10 m pixel (r, c) sits at 20 m (r/2 - 1/4, c/2 + 1/4)
    b05 = image[..., scene.band_names.index("B05")] * 1e4
    r, c = np.mgrid[1:12, 0:12]
    np.testing.assert_allclose(b05[1:], 1000 + 100 * (r / 2 - 0.25) + 10 * (c / 2 + 0.25), atol=0.01)
    # the decision list gives the class each pixel's spectrum was made for
    np.testing.assert_array_equal(scene.mask, data.classes())
    assert scene.class_names == list(data.CLASS_SPECTRA)
    # a crop
    (crop,) = load_scenes("sentinel2_demo", root=tmp_path, size=4, offset=(6, 3))
    assert crop.images[0].shape == (4, 4, 10) and crop.extra["offset"] == (6, 3)
    np.testing.assert_array_equal(crop.images[0], image[6:10, 3:7])
    np.testing.assert_array_equal(crop.mask, data.classes()[6:10, 3:7])
    with pytest.raises(ConfigError, match="does not fit the 12x12 scene"):
        load_scenes("sentinel2_demo", root=tmp_path, size=13, offset=(0, 0))


@pytest.mark.parametrize(("name", "missing", "options"), [
    ("indian_pines", "indian_pines/92AV3C.spc", {}),
    ("oscd", "oscd/train_labels/rennes/cm/rennes-cm.tif", {"cities": ["rennes"]}),
    ("taizhou", "landsat_cd/Taizhou/unchanged.bmp", {}),
    ("samson", "unmixing/Samson.mat", {}),
    ("moffett", "unmixing/moffett.mat", {}),
    ("sentinel2_demo", "s2_B11.jp2", {}),
])
def test_a_missing_file_is_named(tmp_path, name, missing, options):
    fake(name).write(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        load_scenes(name, root=tmp_path, **options)
    message = str(err.value)
    assert Path(missing).name in message and (str(tmp_path / missing) in message or str(tmp_path) in message)


def test_a_missing_oscd_band_is_named(tmp_path):
    fake("oscd").write(tmp_path)
    (band_file,) = (tmp_path / "oscd/images/rennes/imgs_2").glob("*_B8A.tif")
    band_file.unlink()
    with pytest.raises(DatasetNotFoundError, match=r"imgs_2: no file for band B8A \(\*_B8A.tif\)"):
        load_oscd(tmp_path, cities=["rennes"])


def test_fake_data_holds_no_committed_binaries():
    kept = [p for p in FAKE_DATA.rglob("*") if p.is_file() and "regression" not in p.parts]
    assert kept and all(p.suffix == ".py" for p in kept if "__pycache__" not in p.parts), kept
