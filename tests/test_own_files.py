"""Own files through the real path: config -> load_config -> load_data -> Scene, and the CLI end to end.

Each ``data.<field>`` of README "Your own data" has a test that writes tiny files
the way public scenes store them (a ``(bands, pixels)`` unmixing ``.mat`` with
``nRow``/``nCol`` and abundances, one-hot label cubes, a Sentinel-2-like GeoTIFF
whose labels use -1 as nodata, ``.npz`` files with several arrays) and checks the
loaded values; every bad input gives one clear error naming the right file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
import scipy.io
from affine import Affine
from conftest import fake_scene, tiny_config, write_config

from specdm.cli import main
from specdm.config import OWN_FILE_OPTIONS, DataConfig, load_config
from specdm.data.datamodule import load_data, prepare_data
from specdm.data.normalize import ConstantBandsWarning, Normalizer
from specdm.errors import ConfigError, DataError
from specdm.io import LAYOUTS

ROWS, COLS, BANDS, K = 48, 40, 6, 3


@pytest.fixture
def scene(rng):
    """A (48, 40, 6) cube with class blocks 0..2, and its (48, 40) class map."""
    images, mask = fake_scene(rng, size=48, bands=BANDS, classes=K)
    return images[0][:, :COLS].astype(np.float64), mask[:, :COLS]


def soft_abundances(mask: np.ndarray, rng) -> np.ndarray:
    """(rows, cols, K) fractions summing to 1 whose argmax is ``mask``."""
    a = rng.uniform(0.0, 0.2, (*mask.shape, K))
    a[np.arange(mask.shape[0])[:, None], np.arange(mask.shape[1]), mask] += 0.6
    return a / a.sum(-1, keepdims=True)


def bands_pixels(cube: np.ndarray, order="F") -> np.ndarray:
    """(bands, rows*cols): pixels column after column (F, as MATLAB's ``Y = reshape(X, [], bands)'``) or row after row."""
    return cube.reshape(-1, cube.shape[-1], order=order).T


def write_v73(path: Path, variables: dict) -> None:
    """A MATLAB v7.3 file: HDF5 with the axes reversed and the MATLAB header."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, array in variables.items():
            ds = f.create_dataset(name, data=np.asarray(array, dtype=np.float64).T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, HDF5 schema 1.00 .".ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM")


def write_geotiff(path: Path, array: np.ndarray, nodata=None, dtype=None) -> Path:
    """(rows, cols[, bands]) as a georeferenced GeoTIFF (UTM 31N, 10 m), with ``nodata`` in its metadata."""
    a = array if array.ndim == 3 else array[..., None]
    with rasterio.open(path, "w", driver="GTiff", height=a.shape[0], width=a.shape[1], count=a.shape[2],
                       dtype=dtype or a.dtype, crs="EPSG:32631", transform=Affine(10, 0, 600000, 0, -10, 5000000),
                       nodata=nodata) as dst:
        dst.write(np.moveaxis(a, -1, 0).astype(dtype or a.dtype))
    return path


def load(tmp_path: Path, data: dict, **sections):
    """The first scene of ``data`` through load_config and load_data, as ``specdm run`` loads it."""
    cfg = load_config(str(write_config(tmp_path / "cfg.yaml", tiny_config(data, **sections))))
    return load_data(cfg.data)[0]


def config_error(tmp_path: Path, data: dict) -> str:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, data)
    assert "cfg.yaml" in str(err.value)
    return str(err.value)


def data_error(tmp_path: Path, data: dict, names: Path) -> str:
    with pytest.raises(DataError) as err:
        load(tmp_path, data)
    assert str(err.value).startswith(f"{names}:"), str(err.value)
    return str(err.value)


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def unmixing_mat(tmp_path: Path, scene, rng, version=5, name="scene.mat") -> tuple[Path, np.ndarray, np.ndarray]:
    """A Samson-like .mat: Y (bands, pixels), A (K, pixels) abundances, nRow, nCol. Returns (path, cube, abundances)."""
    cube, mask = scene
    abundances = soft_abundances(mask, rng)
    variables = {"Y": bands_pixels(cube), "A": bands_pixels(abundances), "nRow": np.array([[ROWS]]),
                 "nCol": np.array([[COLS]])}
    path = tmp_path / name
    scipy.io.savemat(path, variables) if version == 5 else write_v73(path, variables)
    return path, cube, abundances


UNMIXING = {"image_variable": "Y", "mask_variable": "A", "layout": "bands_pixels", "rows": "nRow", "cols": "nCol",
            "labels": "abundances"}


# --- image_variable / mask_variable / image2_variable ----------------------------------------


@pytest.mark.parametrize("fmt", ["mat5", "mat73", "npz"])
def test_variables_pick_the_arrays_of_a_file_with_several(tmp_path, scene, fmt):
    cube, mask = scene
    arrays = {"cube": cube, "gt": mask.astype(np.float64), "wl": np.linspace(400, 900, BANDS)}
    path = tmp_path / ("scene.npz" if fmt == "npz" else "scene.mat")
    if fmt == "mat5":
        scipy.io.savemat(path, arrays)
    elif fmt == "mat73":
        write_v73(path, arrays)
    else:
        np.savez(path, **arrays)
    s = load(tmp_path, {"image": str(path), "mask": str(path), "image_variable": "cube", "mask_variable": "gt"})
    np.testing.assert_allclose(s.images[0], cube, rtol=1e-6)
    np.testing.assert_array_equal(s.mask, mask)
    assert s.class_names == ["class_0", "class_1", "class_2"] and s.extra["mask_file"] == str(path)


@pytest.mark.parametrize("fmt", ["mat5", "mat73", "npz"])
def test_several_arrays_without_a_variable_are_listed_with_their_shapes(tmp_path, scene, fmt):
    cube, mask = scene
    arrays = {"cube": cube, "gt": mask.astype(np.float64)}
    path = tmp_path / ("scene.npz" if fmt == "npz" else "scene.mat")
    {"mat5": scipy.io.savemat, "mat73": write_v73, "npz": lambda p, a: np.savez(p, **a)}[fmt](path, arrays)
    msg = data_error(tmp_path, {"image": str(path), "mask": str(path)}, path)
    assert "holds 2 arrays: cube (48x40x6), gt (48x40)" in msg and "set data.image_variable" in msg
    msg = data_error(tmp_path, {"image": str(path), "mask": str(path), "image_variable": "cube"}, path)
    assert "cube (48x40x6), gt (48x40)" in msg and "set data.mask_variable" in msg


def test_the_only_array_is_read_without_a_variable_scalars_do_not_count(tmp_path, scene):
    cube, mask = scene
    scipy.io.savemat(tmp_path / "img.mat", {"cube": cube, "scale": 1.0, "nRow": ROWS})
    np.savez(tmp_path / "gt.npz", gt=mask)
    s = load(tmp_path, {"image": str(tmp_path / "img.mat"), "mask": str(tmp_path / "gt.npz")})
    np.testing.assert_allclose(s.images[0], cube, rtol=1e-6)
    np.testing.assert_array_equal(s.mask, mask)


def test_unknown_variable_lists_the_file_s_variables(tmp_path, scene):
    path, _, _ = unmixing_mat(tmp_path, scene, np.random.default_rng(3))
    msg = data_error(tmp_path, {"image": str(path), "mask": str(path), **UNMIXING, "image_variable": "X"}, path)
    assert "no variable 'X' (set by data.image_variable)" in msg and "Y (6x1920)" in msg and "nRow (1x1)" in msg
    msg = data_error(tmp_path, {"image": str(path), "mask": str(path), **UNMIXING, "mask_variable": "S"}, path)
    assert "no variable 'S' (set by data.mask_variable)" in msg


def test_image2_variable_defaults_to_image_variable(tmp_path, scene):
    cube, mask = scene
    np.savez(tmp_path / "t1.npz", x=cube, meta=np.zeros(3))
    np.savez(tmp_path / "t2.npz", x=cube + 1, y=cube + 2)
    np.save(tmp_path / "change.npy", (mask == 1).astype(np.uint8))
    data = {"image": str(tmp_path / "t1.npz"), "image2": str(tmp_path / "t2.npz"), "mask": str(tmp_path / "change.npy"),
            "image_variable": "x"}
    s = load(tmp_path, data)
    assert s.task == "change"
    np.testing.assert_allclose(s.images[1], cube + 1, rtol=1e-6)
    s = load(tmp_path, {**data, "image2_variable": "y"})
    np.testing.assert_allclose(s.images[1], cube + 2, rtol=1e-6)


@pytest.mark.parametrize("data, problem", [
    ({"image_variable": "x"}, "data.image_variable picks a variable of a .mat or .npz file; data.image is a .npy"),
    ({"mask_variable": "x"}, "data.mask_variable picks a variable of a .mat or .npz file; data.mask is a .npy"),
    ({"image2_variable": "x"}, "data.image2_variable is set but data.image2 is not"),
])
def test_variable_settings_need_files_with_variables(tmp_path, scene, data, problem):
    cube, mask = scene
    np.save(tmp_path / "img.npy", cube)
    np.save(tmp_path / "gt.npy", mask)
    assert problem in config_error(tmp_path, {"image": str(tmp_path / "img.npy"), "mask": str(tmp_path / "gt.npy"), **data})


# --- layout, rows, cols, order --------------------------------------------------------------


def assert_pixels(s, cube):
    """Pixels at known positions (corners, first row/column steps) sit where the cube has them."""
    for r, c in [(0, 0), (1, 0), (0, 1), (ROWS - 1, 0), (0, COLS - 1), (ROWS - 1, COLS - 1), (17, 23)]:
        np.testing.assert_allclose(s.images[0][r, c], cube[r, c], rtol=1e-6, err_msg=f"pixel ({r}, {c})")
    np.testing.assert_allclose(s.images[0], cube, rtol=1e-6)


@pytest.mark.parametrize("version", [5, 73])
def test_bands_pixels_with_rows_and_cols_from_scalar_variables(tmp_path, scene, rng, version):
    path, cube, _ = unmixing_mat(tmp_path, scene, rng, version)
    s = load(tmp_path, {"image": str(path), "mask": str(path), **UNMIXING})
    assert s.shape == (ROWS, COLS) and s.num_bands == BANDS
    assert_pixels(s, cube)


@pytest.mark.parametrize("order", ["F", "C"])
def test_pixels_bands_with_numbers_and_either_pixel_order(tmp_path, scene, order):
    cube, mask = scene
    np.save(tmp_path / "pixels.npy", bands_pixels(cube, order).T)  # (pixels, bands)
    np.save(tmp_path / "labels.npy", mask.reshape(-1, order=order))  # a vector of pixels, same order
    s = load(tmp_path, {"image": str(tmp_path / "pixels.npy"), "mask": str(tmp_path / "labels.npy"),
                        "layout": "pixels_bands", "rows": ROWS, "cols": COLS, "order": order})
    assert_pixels(s, cube)
    np.testing.assert_array_equal(s.mask, mask)


def test_bands_rows_cols(tmp_path, scene):
    cube, mask = scene
    np.save(tmp_path / "cube.npy", np.moveaxis(cube, -1, 0))
    np.save(tmp_path / "gt.npy", mask)
    s = load(tmp_path, {"image": str(tmp_path / "cube.npy"), "mask": str(tmp_path / "gt.npy"), "layout": "bands_rows_cols"})
    assert_pixels(s, cube)
    np.testing.assert_array_equal(s.mask, mask)


def test_wrong_pixel_counts_name_the_file_and_the_shapes(tmp_path, scene, rng):
    path, _, _ = unmixing_mat(tmp_path, scene, rng)
    msg = data_error(tmp_path, {"image": str(path), "mask": str(path), **UNMIXING, "rows": 40, "cols": 40}, path)
    assert "variable 'Y' has shape (6, 1920); layout bands_pixels with rows 40 and cols 40 needs (bands, 40*40=1600)" in msg
    assert "1920 here" in msg
    msg = data_error(tmp_path, {"image": str(path), "mask": str(path), **UNMIXING, "layout": "pixels_bands"}, path)
    assert "needs (48*40=1920, bands)" in msg and "use layout bands_pixels" in msg


def test_rows_naming_a_non_scalar_variable(tmp_path, scene, rng):
    path, _, _ = unmixing_mat(tmp_path, scene, rng)
    msg = data_error(tmp_path, {"image": str(path), "mask": str(path), **UNMIXING, "rows": "A"}, path)
    assert "variable 'A' (set by data.rows) has shape (3, 1920), not a single number" in msg


@pytest.mark.parametrize("data, problem", [
    ({"layout": "bands_pixels"}, "data.layout bands_pixels needs data.rows and data.cols"),
    ({"layout": "pixels_bands", "rows": 48}, "needs data.cols"),
    ({"rows": 48, "cols": 40}, "data.rows and data.cols apply to layouts bands_pixels and pixels_bands"),
    ({"order": "C"}, "data.order applies to layouts bands_pixels and pixels_bands only"),
    ({"layout": "bands_pixels", "rows": 0, "cols": 40}, "0 is not a positive number of pixels"),
    ({"layout": "bands_pixels", "rows": "48 rows", "cols": 40}, "neither a number nor a variable name"),
    ({"layout": "bands_pixels", "rows": "nRow", "cols": 40}, "data.rows names a variable 'nRow', but data.image is a .npy"),
    ({"layout": "columns_rows"}, "data.layout: Input should be 'rows_cols_bands'"),
    ({"order": "K", "layout": "bands_pixels", "rows": 48, "cols": 40}, "data.order: Input should be 'F' or 'C'"),
])
def test_layout_settings_are_validated(tmp_path, scene, data, problem):
    cube, mask = scene
    np.save(tmp_path / "img.npy", cube)
    np.save(tmp_path / "gt.npy", mask)
    assert problem in config_error(tmp_path, {"image": str(tmp_path / "img.npy"), "mask": str(tmp_path / "gt.npy"), **data})


def test_layouts_of_the_config_are_those_the_readers_know():
    assert DataConfig.model_fields["layout"].annotation.__args__ == LAYOUTS


def test_layout_of_a_geotiff_is_refused(tmp_path, scene):
    cube, mask = scene
    write_geotiff(tmp_path / "img.tif", cube.astype(np.float32))
    np.save(tmp_path / "gt.npy", mask)
    msg = config_error(tmp_path, {"image": str(tmp_path / "img.tif"), "mask": str(tmp_path / "gt.npy"),
                                  "layout": "bands_rows_cols"})
    assert "applies to arrays in .mat/.npy/.npz files; data.image is a .tif file" in msg
    msg = config_error(tmp_path, {"image": str(tmp_path / "img.tif"), "mask": str(tmp_path / "img.tif"),
                                  "labels": "one_hot", "mask_layout": "bands_pixels"})
    assert "data.mask_layout bands_pixels applies to arrays" in msg


# --- labels: abundances, one_hot, mask_layout, min_fraction, label_remap ------------------------


def test_abundances_in_bands_pixels_become_the_argmax_class_map(tmp_path, scene, rng):
    path, _, abundances = unmixing_mat(tmp_path, scene, rng)
    s = load(tmp_path, {"image": str(path), "mask": str(path), **UNMIXING})
    np.testing.assert_array_equal(s.mask, abundances.argmax(-1))
    np.testing.assert_array_equal(s.mask, scene[1])
    assert s.class_names == ["class_0", "class_1", "class_2"] and s.ignore_index is None
    np.testing.assert_allclose(s.extra["abundances"], abundances, rtol=1e-6)


def test_min_fraction_sends_mixed_pixels_to_ignore_index(tmp_path, scene, rng):
    cube, mask = scene
    abundances = soft_abundances(mask, rng)
    abundances[5, 7] = [0.4, 0.35, 0.25]
    abundances[30, 2] = [0.2, 0.3, 0.5]  # 0.5 is not below 0.5: kept
    scipy.io.savemat(tmp_path / "s.mat", {"Y": bands_pixels(cube), "A": bands_pixels(abundances)})
    data = {"image": str(tmp_path / "s.mat"), "mask": str(tmp_path / "s.mat"), **UNMIXING, "rows": ROWS, "cols": COLS,
            "min_fraction": 0.5, "ignore_index": 3}
    s = load(tmp_path, data)
    assert s.mask[5, 7] == 3 and s.mask[30, 2] == 2 and s.ignore_index == 3
    assert s.class_names == ["class_0", "class_1", "class_2", "unlabelled"]
    assert (s.mask == 3).sum() == (abundances.max(-1) < 0.5).sum()
    s = load(tmp_path, {**data, "ignore_index": 0, "class_names": ["unlabelled", "tree", "water"]})
    assert s.mask[5, 7] == 0 and s.class_names[0] == "unlabelled"


def test_mask_layout_differs_from_the_image_s(tmp_path, scene, rng):
    """Samson's layout: Y is (bands, pixels) but S_GT is (rows, cols, K)."""
    cube, mask = scene
    abundances = soft_abundances(mask, rng)
    scipy.io.savemat(tmp_path / "s.mat", {"Y": bands_pixels(cube), "S_GT": abundances, "lines": ROWS, "cols": COLS})
    data = {"image": str(tmp_path / "s.mat"), "mask": str(tmp_path / "s.mat"), **UNMIXING, "rows": "lines",
            "cols": "cols", "mask_variable": "S_GT"}
    with pytest.raises(DataError, match=r"variable 'S_GT' has shape \(48, 40, 3\); layout bands_pixels"):
        load(tmp_path, data)
    s = load(tmp_path, {**data, "mask_layout": "rows_cols_bands"})
    np.testing.assert_array_equal(s.mask, mask)
    assert_pixels(s, cube)


def test_one_hot_cube_with_unlabelled_pixels(tmp_path, scene):
    cube, mask = scene
    one_hot = np.eye(K, dtype=np.uint8)[mask]  # (rows, cols, K)
    one_hot[:4, :4] = 0  # unlabelled
    np.save(tmp_path / "img.npy", cube)
    np.save(tmp_path / "hot.npy", np.moveaxis(one_hot, -1, 0))  # (K, rows, cols)
    data = {"image": str(tmp_path / "img.npy"), "mask": str(tmp_path / "hot.npy"), "labels": "one_hot",
            "mask_layout": "bands_rows_cols", "ignore_index": 3}
    s = load(tmp_path, data)
    expected = mask.copy()
    expected[:4, :4] = 3
    np.testing.assert_array_equal(s.mask, expected)
    assert s.class_names == ["class_0", "class_1", "class_2", "unlabelled"] and "abundances" not in s.extra
    msg = data_error(tmp_path, {**data, "ignore_index": None}, tmp_path / "hot.npy")
    assert "16 pixels of the label cube have no class" in msg and "set data.ignore_index" in msg


@pytest.mark.parametrize("edit, problem", [
    (lambda h: h.__setitem__((0, 0, 1), 1), "sets 2 classes at row 0, col 0"),
    (lambda h: h.__setitem__((2, 3, 0), 0.5), "holds 0.5 at row 2, col 3, channel 0; one-hot values are 0 or 1"),
    (lambda h: None, None),
])
def test_one_hot_cubes_must_be_one_hot(tmp_path, scene, edit, problem):
    cube, mask = scene
    one_hot = np.eye(K)[mask]
    edit(one_hot)
    np.savez(tmp_path / "scene.npz", cube=cube, hot=one_hot)
    data = {"image": str(tmp_path / "scene.npz"), "mask": str(tmp_path / "scene.npz"), "image_variable": "cube",
            "mask_variable": "hot", "labels": "one_hot"}
    if problem is None:
        np.testing.assert_array_equal(load(tmp_path, data).mask, mask)
    else:
        assert problem in data_error(tmp_path, data, tmp_path / "scene.npz")


def test_a_single_band_label_cube_and_short_class_names_are_refused(tmp_path, scene):
    cube, mask = scene
    np.save(tmp_path / "img.npy", cube)
    np.save(tmp_path / "one.npy", mask[..., None].astype(float))
    data = {"image": str(tmp_path / "img.npy"), "mask": str(tmp_path / "one.npy"), "labels": "abundances"}
    assert "needs one channel per class" in data_error(tmp_path, data, tmp_path / "one.npy")
    np.save(tmp_path / "hot.npy", np.eye(K)[mask])
    data = {**data, "mask": str(tmp_path / "hot.npy"), "class_names": ["a", "b"]}
    assert "data.class_names has 2 names but the label cube has 3 channels" in data_error(tmp_path, data, tmp_path / "hot.npy")


@pytest.mark.parametrize("data, problem", [
    ({"min_fraction": 0.5}, "data.min_fraction applies to data.labels abundances or one_hot"),
    ({"labels": "abundances", "min_fraction": 0.5}, "data.min_fraction needs data.ignore_index"),
    ({"labels": "abundances", "min_fraction": 1.5, "ignore_index": 3}, "data.min_fraction: Input should be less than or equal to 1"),
    ({"labels": "soft"}, "data.labels: Input should be 'class_map', 'abundances' or 'one_hot'"),
    ({"label_remap": {-1: -1}}, "maps to negative values {-1: -1}"),
    ({"label_remap": {"x": 0}}, "data.label_remap: 'x': 0 is not a pair of whole numbers (label value: class value)"),
    ({"label_remap": [-1, 0]}, "give label value -> class value pairs, such as {-1: 0, 255: 0}"),
    ({"ignore_index": -1}, "data.ignore_index -1 is not a class value (0 or more)"),
])
def test_label_settings_are_validated(tmp_path, scene, data, problem):
    cube, mask = scene
    np.save(tmp_path / "img.npy", cube)
    np.save(tmp_path / "gt.npy", mask)
    assert problem in config_error(tmp_path, {"image": str(tmp_path / "img.npy"), "mask": str(tmp_path / "gt.npy"), **data})


def test_label_remap_maps_values_before_validation(tmp_path, scene):
    cube, mask = scene
    raw = mask.astype(np.int16) + 1  # classes 1..3
    raw[:3] = -1
    raw[-3:, :5] = 255
    np.save(tmp_path / "img.npy", cube)
    np.save(tmp_path / "gt.npy", raw)
    data = {"image": str(tmp_path / "img.npy"), "mask": str(tmp_path / "gt.npy")}
    msg = data_error(tmp_path, data, tmp_path / "gt.npy")
    assert "holds negative label values [-1] (120 pixels)" in msg and "data.label_remap" in msg
    s = load(tmp_path, {**data, "label_remap": {-1: 0, 255: 0}, "ignore_index": 0})
    expected = np.where((raw == -1) | (raw == 255), 0, raw)
    np.testing.assert_array_equal(s.mask, expected)
    assert s.class_names == ["class_0", "class_1", "class_2", "class_3"] and s.ignore_index == 0
    s = load(tmp_path, {**data, "label_remap": {-1: 0, 255: 0, 3: 1}})  # merges classes too
    assert set(np.unique(s.mask)) == {0, 1, 2}
    msg = data_error(tmp_path, {**data, "label_remap": {-1: 0}}, tmp_path / "gt.npy")
    assert "label values [0, 1, 2, 3, 255] would make 256 classes (0..255), most of them without a pixel" in msg
    assert "data.label_remap (e.g. {255: 0})" in msg
    msg = data_error(tmp_path, {**data, "label_remap": {-1: 0}, "class_names": list("abcd")}, tmp_path / "gt.npy")
    assert "label values [255] are outside the 4 declared classes" in msg


# --- GeoTIFF nodata --------------------------------------------------------------------------


@pytest.fixture
def sentinel2(tmp_path, rng):
    """A 13-band Sentinel-2-like chip and its label GeoTIFF (classes 0..2, -1 = nodata on the left edge)."""
    images, mask = fake_scene(rng, size=48, bands=13, classes=K)
    labels = mask.astype(np.int16)
    labels[:, :3] = -1
    write_geotiff(tmp_path / "chip.tif", images[0].astype(np.float32))
    write_geotiff(tmp_path / "labels.tif", labels, nodata=-1)
    return tmp_path / "chip.tif", tmp_path / "labels.tif", images[0], labels


def test_geotiff_nodata_labels_become_ignore_index(tmp_path, sentinel2):
    chip, labels_tif, image, labels = sentinel2
    data = {"image": str(chip), "mask": str(labels_tif)}
    msg = data_error(tmp_path, data, labels_tif)
    assert "holds 144 nodata pixels (value -1 in its GeoTIFF metadata)" in msg and "set data.ignore_index" in msg
    s = load(tmp_path, {**data, "ignore_index": 3})
    np.testing.assert_array_equal(s.mask, np.where(labels == -1, 3, labels))
    assert s.class_names == ["class_0", "class_1", "class_2", "unlabelled"]
    np.testing.assert_allclose(s.images[0], image, rtol=1e-6)
    # a remap that names the nodata value decides instead
    s = load(tmp_path, {**data, "label_remap": {-1: 0, 0: 3}, "ignore_index": 0})
    np.testing.assert_array_equal(s.mask, np.where(labels == -1, 0, np.where(labels == 0, 3, labels)))


def test_geotiff_nan_nodata_in_a_float_label_file(tmp_path, scene):
    cube, mask = scene
    labels = mask.astype(np.float32)
    labels[10:12, 10:12] = np.nan
    write_geotiff(tmp_path / "img.tif", cube.astype(np.float32))
    write_geotiff(tmp_path / "labels.tif", labels, nodata=float("nan"))
    s = load(tmp_path, {"image": str(tmp_path / "img.tif"), "mask": str(tmp_path / "labels.tif"), "ignore_index": 0})
    assert (s.mask[10:12, 10:12] == 0).all() and s.mask[20, 20] == mask[20, 20]


def test_geotiff_label_cube_with_nodata(tmp_path, scene):
    cube, mask = scene
    one_hot = np.eye(K, dtype=np.int16)[mask]
    one_hot[0, 0] = -1
    write_geotiff(tmp_path / "img.tif", cube.astype(np.float32))
    write_geotiff(tmp_path / "hot.tif", one_hot, nodata=-1)
    s = load(tmp_path, {"image": str(tmp_path / "img.tif"), "mask": str(tmp_path / "hot.tif"), "labels": "one_hot",
                        "ignore_index": 3})
    assert s.mask[0, 0] == 3
    np.testing.assert_array_equal(s.mask[1:], mask[1:])


# --- band_names, wavelengths, rgb_bands --------------------------------------------------------


def test_band_names_and_wavelengths_fill_and_override(tmp_path, sentinel2):
    chip, labels_tif, _, _ = sentinel2
    wl = [443, 490, 560, 665, 705, 740, 783, 842, 865, 945, 1375, 1610, 2190]
    names = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
    data = {"image": str(chip), "mask": str(labels_tif), "ignore_index": 3}
    s = load(tmp_path, data)
    assert s.wavelengths is None and s.band_names[0] == "band_1"
    s = load(tmp_path, {**data, "wavelengths": wl, "band_names": names})
    assert s.wavelengths == [float(w) for w in wl] and s.band_names == names
    assert s.rgb_bands == (3, 2, 1)  # B04, B03, B02: nearest 650/550/470 nm


def test_band_settings_override_an_envi_header(tmp_path, scene):
    from spectral.io import envi

    cube, mask = scene
    envi.save_image(str(tmp_path / "cube.hdr"), cube.astype(np.float32), interleave="bsq", ext=".img",
                    metadata={"wavelength": [0.45, 0.55, 0.65, 0.75, 0.85, 0.95], "wavelength units": "micrometers",
                              "band names": list("abcdef")})
    np.save(tmp_path / "gt.npy", mask)
    data = {"image": str(tmp_path / "cube.hdr"), "mask": str(tmp_path / "gt.npy")}
    s = load(tmp_path, data)
    assert s.wavelengths == [450.0, 550.0, 650.0, 750.0, 850.0, 950.0] and s.band_names == list("abcdef")
    s = load(tmp_path, {**data, "wavelengths": [400, 500, 600, 700, 800, 900], "band_names": list("uvwxyz")})
    assert s.wavelengths[0] == 400.0 and s.band_names == list("uvwxyz")


@pytest.mark.parametrize("data, problem", [
    ({"band_names": ["a", "b"]}, "data.band_names has 2 names but the image has 13 bands"),
    ({"wavelengths": [500.0] * 12}, "data.wavelengths has 12 values but the image has 13 bands"),
    ({"rgb_bands": [3, 2, 13]}, "data.rgb_bands names band 13, but the image has 13 bands (0..12)"),
    ({"rgb_bands": ["650nm", "550nm", "470nm"]}, "data.rgb_bands picks bands by wavelength (650nm), but the image has no wavelengths"),
])
def test_band_settings_that_do_not_fit_the_image_name_it(tmp_path, sentinel2, data, problem):
    chip, labels_tif, _, _ = sentinel2
    msg = data_error(tmp_path, {"image": str(chip), "mask": str(labels_tif), "ignore_index": 3, **data}, chip)
    assert problem in msg


@pytest.mark.parametrize("data, problem", [
    ({"rgb_bands": [1, 2]}, "give three bands (red, green, blue)"),
    ({"rgb_bands": [650.0, 550.0, 470.0]}, "write a band index as a whole number (29) or a wavelength with its unit (650nm)"),
    ({"rgb_bands": ["red", 1, 2]}, "'red' is neither a band index nor a wavelength in nm"),
    ({"rgb_bands": [-1, 1, 2]}, "band index -1 is negative"),
    ({"wavelengths": [0.4, 0.5]}, "0.4..0.5 look like micrometres; give nanometres"),
    ({"wavelengths": [400, -1]}, "wavelengths must be positive numbers (nm)"),
    ({"band_names": ["a", "a"]}, "band names must differ; repeated: a"),
    ({"band_names": ["a", "b"], "wavelengths": [400.0, 500.0, 600.0]}, "data.band_names has 2 names but data.wavelengths has 3 values"),
])
def test_band_settings_are_validated(tmp_path, scene, data, problem):
    cube, mask = scene
    np.save(tmp_path / "img.npy", cube)
    np.save(tmp_path / "gt.npy", mask)
    assert problem in config_error(tmp_path, {"image": str(tmp_path / "img.npy"), "mask": str(tmp_path / "gt.npy"), **data})


def test_rgb_bands_by_index_or_by_nearest_wavelength(tmp_path, sentinel2):
    chip, labels_tif, _, _ = sentinel2
    data = {"image": str(chip), "mask": str(labels_tif), "ignore_index": 3,
            "wavelengths": [443, 490, 560, 665, 705, 740, 783, 842, 865, 945, 1375, 1610, 2190]}
    assert load(tmp_path, {**data, "rgb_bands": [7, 3, 2]}).rgb_bands == (7, 3, 2)  # false colour
    assert load(tmp_path, {**data, "rgb_bands": ["860nm", "660 nm", "555nm"]}).rgb_bands == (8, 3, 2)
    cfg = load_config(str(write_config(tmp_path / "c.yaml", tiny_config({**data, "rgb_bands": ["650.5nm", 3, 2]}))))
    assert cfg.data.rgb_bands == ["650.5nm", 3, 2]
    # with a band selection the preview bands follow the kept bands, or the config is refused
    assert load(tmp_path, {**data, "rgb_bands": [7, 3, 2], "bands": [2, 3, 7, 11]}).rgb_bands == (2, 1, 0)
    from specdm.data.datamodule import load_data
    from specdm.errors import ConfigError

    cfg = load_config(str(write_config(tmp_path / "e.yaml", tiny_config({**data, "rgb_bands": [7, 3, 2], "bands": [2, 3]}))))
    with pytest.raises(ConfigError, match="pick preview bands among the kept ones"):
        load_data(cfg.data)


def test_own_file_settings_do_not_apply_to_registered_data_sets(tmp_path):
    msg = config_error(tmp_path, {"dataset": "samson", "layout": "bands_pixels", "rows": 95, "cols": 95, "image": None})
    assert "data.layout, data.rows, data.cols apply to own files (data.image, data.mask), not to data set 'samson'" in msg
    cfg = load_config(str(write_config(tmp_path / "d.yaml", {"data": {"dataset": "samson", "layout": "rows_cols_bands"}})))
    assert cfg.data.layout == "rows_cols_bands"  # defaults written out (specdm config's dump) are fine
    assert set(cfg.data.file_options()) >= set(OWN_FILE_OPTIONS)


# --- zero-variance bands --------------------------------------------------------------------


def test_constant_bands_on_the_training_split_warn_by_name(tmp_path, scene):
    cube, mask = scene
    cube = cube.copy()
    cube[:32, :, 2] = 7.0  # constant on the training rows 0..32 only
    cube[:, :, 4] = 0.0
    np.save(tmp_path / "img.npy", cube)
    np.save(tmp_path / "gt.npy", mask)
    cfg = load_config(str(write_config(tmp_path / "cfg.yaml", tiny_config(
        {"image": str(tmp_path / "img.npy"), "mask": str(tmp_path / "gt.npy")}))))
    with pytest.warns(ConstantBandsWarning, match=r"^bands band_3, band_5 are constant on the training split; "
                                                  r"they normalize to 0$"):
        data = prepare_data(cfg.data)
    assert np.all(data.normalizer(cube[:32])[..., [2, 4]] == 0)
    whole = cfg.data.model_copy(update={"split": cfg.data.split.model_copy(update={"kind": "none"})})
    with warnings.catch_warnings(record=True) as caught:  # band_3 varies on the whole scene
        warnings.simplefilter("always")
        prepare_data(whole)
    assert [str(w.message) for w in caught if w.category is ConstantBandsWarning] == [
        "band band_5 is constant on the training split; it normalizes to 0"]


def test_a_cube_whose_bands_are_all_constant_names_the_image(tmp_path, scene):
    _, mask = scene
    np.save(tmp_path / "flat.npy", np.full((ROWS, COLS, BANDS), 3.0))
    np.save(tmp_path / "gt.npy", mask)
    msg = data_error(tmp_path, {"image": str(tmp_path / "flat.npy"), "mask": str(tmp_path / "gt.npy")},
                     tmp_path / "flat.npy")
    assert "all 6 bands are constant (every pixel holds 3.0)" in msg


def test_all_bands_constant_on_the_training_split_is_a_data_error():
    pixels = np.ones((10, 4))
    with pytest.raises(DataError, match=r"^img.tif: all 4 bands are constant on the training split"):
        Normalizer.fit(pixels, source="img.tif")
    with pytest.warns(ConstantBandsWarning, match="^band b is constant on the training split; it normalizes to 0$"):
        Normalizer.fit(np.stack([np.arange(10.0), np.ones(10)], -1), band_names=["a", "b"])


# --- real data: Samson as own files equals the registered loader ---------------------------------


def test_samson_as_own_files_equals_the_registered_loader(tmp_path, data_dir):
    from specdm.datasets import load_scenes

    path = data_dir / "unmixing" / "Samson.mat"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    s = load(tmp_path, {"image": str(path), "mask": str(path), "image_variable": "Y", "layout": "bands_pixels",
                        "rows": "lines", "cols": "cols", "mask_variable": "S_GT", "mask_layout": "rows_cols_bands",
                        "labels": "abundances", "class_names": ["rock/soil", "tree", "water"]})
    (ref,) = load_scenes("samson", root=data_dir)
    np.testing.assert_array_equal(s.images[0], ref.images[0])
    np.testing.assert_array_equal(s.mask, ref.mask)
    assert s.class_names == ref.class_names


# --- the command line, end to end -----------------------------------------------------------------


def assert_data_set(run_dir: Path, bands: int, classes: set[int]):
    from specdm.output.dataset import SyntheticDataset

    ds = SyntheticDataset(run_dir / "synthetic")
    assert len(ds) == 6 and ds.meta["complete"]
    item = ds[0]
    assert item["images"].shape == (1, bands, 16, 16) and np.isfinite(item["images"]).all()
    assert set(np.unique(np.concatenate([ds[k]["mask"].ravel() for k in range(len(ds))]))) <= classes
    return json.loads((run_dir / "model" / "specdm.json").read_text())


def test_cli_runs_a_bands_pixels_mat_with_abundances(tmp_path, scene, rng, one_thread, capsys):
    path, _, _ = unmixing_mat(tmp_path, scene, rng, version=73)
    data = {"image": str(path), "mask": str(path), **UNMIXING, "min_fraction": 0.4, "ignore_index": 3,
            "wavelengths": np.linspace(400, 900, BANDS).tolist(), "rgb_bands": ["650nm", "550nm", "450nm"]}
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config(data))
    code, out, err = run_cli(["--threads", 1, "run", cfg, "--run-dir", tmp_path / "run"], capsys)
    assert code == 0, err
    info = assert_data_set(tmp_path / "run", BANDS, {0, 1, 2, 3})
    assert len(info["band_names"]) == BANDS
    assert "6 bands, 4 classes" in out


def test_cli_runs_a_sentinel2_geotiff_with_nodata_labels(tmp_path, sentinel2, one_thread, capsys):
    chip, labels_tif, _, _ = sentinel2
    data = {"image": str(chip), "mask": str(labels_tif), "ignore_index": 3, "class_names": ["a", "b", "c", "nodata"],
            "wavelengths": [443, 490, 560, 665, 705, 740, 783, 842, 865, 945, 1375, 1610, 2190]}
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config(data))
    code, out, err = run_cli(["--threads", 1, "run", cfg, "--run-dir", tmp_path / "run"], capsys)
    assert code == 0, err
    assert_data_set(tmp_path / "run", 13, {0, 1, 2, 3})


BAD_INPUTS = {
    # name: (data section edits, the file the one error line must name, words it must hold)
    "several arrays": (lambda d: d.pop("image_variable"), "scene.mat", "set data.image_variable"),
    "wrong rows": (lambda d: d.update(rows=40), "scene.mat", "needs (bands, 40*40=1600)"),
    "rows scalar missing": (lambda d: d.update(rows="nLines"), "scene.mat", "no variable 'nLines' (set by data.rows)"),
    "nodata without ignore_index": (lambda d: d.update(mask="labels.tif", labels="class_map", mask_variable=None),
                                    "labels.tif", "nodata pixels (value -1"),
    "band names": (lambda d: d.update(band_names=["a"]), "scene.mat", "data.band_names has 1 names"),
    "constant cube": (lambda d: d.update(image="flat.npy", image_variable=None, layout="rows_cols_bands", rows=None,
                                         cols=None), "flat.npy", "all 6 bands are constant"),
    "missing min_fraction's ignore_index": (lambda d: d.update(min_fraction=0.5), "cfg.yaml", "needs data.ignore_index"),
    "missing mask file": (lambda d: d.update(mask="absent.tif", labels="class_map", mask_variable=None), "absent.tif",
                          "file not found"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_cli_bad_own_files_exit_2_with_one_error_line_naming_the_file(tmp_path, scene, rng, capsys, case):
    edit, named, words = BAD_INPUTS[case]
    path, _, _ = unmixing_mat(tmp_path, scene, rng)
    labels = scene[1].astype(np.int16)
    labels[0] = -1
    write_geotiff(tmp_path / "labels.tif", labels, nodata=-1)
    np.save(tmp_path / "flat.npy", np.zeros((ROWS, COLS, BANDS)))
    data = {"image": str(path), "mask": str(path), **UNMIXING}
    edit(data)
    data = {k: (str(tmp_path / v) if k in ("image", "mask") and not Path(v).is_absolute() else v)
            for k, v in data.items() if v is not None}
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config(data))
    code, out, err = run_cli(["run", cfg, "--run-dir", tmp_path / "run"], capsys)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {tmp_path / named}:"), err
    assert words in err, err
    assert not (tmp_path / "run").exists()


# --- the README's examples --------------------------------------------------------------------


def test_readme_own_data_examples_are_valid_and_cover_every_field():
    import re

    import yaml

    from specdm.config import validate

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Your own data"):]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) >= 6
    base = {"image": "/data/scene.mat", "image2": "/data/scene2.mat", "mask": "/data/scene.mat"}
    for block in blocks:
        raw = yaml.safe_load(block)
        data = raw["data"] if "data" in raw else {**base, **raw}
        validate(DataConfig, data, "README")  # raises ConfigError naming the bad field
    for field in OWN_FILE_OPTIONS:
        assert re.search(rf"^\s+{field}:", section, re.M), f"README 'Your own data' has no example of {field}"


def test_a_large_ignore_index_for_nodata_is_refused_with_a_hint(tmp_path, sentinel2):
    chip, labels_tif, _, _ = sentinel2
    msg = data_error(tmp_path, {"image": str(chip), "mask": str(labels_tif), "ignore_index": 255}, labels_tif)
    assert "label values [0, 1, 2, 255] would make 256 classes" in msg and "ignore_index just past the classes" in msg
