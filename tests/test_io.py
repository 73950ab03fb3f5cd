"""Readers: round-trips through each format, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
import scipy.io
import tifffile
from PIL import Image
from affine import Affine
from spectral.io import envi

from specdm.errors import ConfigError, DataError
from specdm.io import (
    read_band_files,
    labels_from_cube,
    read_cube,
    read_envi,
    read_geotiff,
    read_label_array,
    read_mask,
    read_mat,
    read_numpy,
    read_scalar,
    read_spectral_library,
    to_rows_cols_bands,
)
from specdm.io.matlab import mat_variables
from specdm.io.numpy import npz_arrays


def truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def assert_names_file(err: pytest.ExceptionInfo, path: Path) -> None:
    assert path.name in str(err.value)


# --- MATLAB -----------------------------------------------------------------------------


def write_v73(path: Path, variables: dict[str, np.ndarray]) -> None:
    """Write a file laid out as MATLAB's ``save -v7.3`` does: 512-byte user block with
    the MATLAB header, arrays stored with their axes reversed, a ``#refs#`` group."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, array in variables.items():
            ds = f.create_dataset(name, data=np.asarray(array).T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
        f.create_group("#refs#")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(text.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM")


def test_mat_v5_reads_the_only_array_or_the_named_one(tmp_path, rng):
    cube = rng.random((4, 5, 3))
    gt = rng.integers(0, 3, (4, 5)).astype(np.uint8)
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"cube": cube, "gt": gt, "label": "text", "nRow": 4})
    with pytest.raises(DataError, match=r"holds 2 arrays: cube \(4x5x3\), gt \(4x5\); pass key= to pick one") as err:
        read_mat(path)
    assert_names_file(err, path)
    with pytest.raises(DataError, match=r"set data.image_variable to the one to read") as err:
        read_mat(path, option="data.image_variable")
    assert "for example data.image_variable: cube" in str(err.value)
    np.testing.assert_array_equal(read_mat(path, "cube"), cube)
    np.testing.assert_array_equal(read_mat(path, "gt"), gt)
    with pytest.raises(DataError, match="no variable 'nope'; variables in the file: cube.*gt") as err:
        read_mat(path, "nope")
    assert_names_file(err, path)
    with pytest.raises(DataError, match=r"no variable 'nope' \(set by data.mask_variable\)"):
        read_mat(path, "nope", option="data.mask_variable")
    with pytest.raises(DataError, match="not a numeric array"):
        read_mat(path, "label")
    scipy.io.savemat(tmp_path / "one.mat", {"cube": cube, "nRow": 4, "scale": 0.5})  # scalars do not count
    np.testing.assert_array_equal(read_mat(tmp_path / "one.mat"), cube)
    assert mat_variables(tmp_path / "one.mat") == {"cube": (4, 5, 3), "nRow": (1, 1), "scale": (1, 1)}


def test_mat_v73_returns_matlab_orientation(tmp_path, rng):
    cube = rng.random((4, 5, 3))
    path = tmp_path / "v73.mat"
    write_v73(path, {"cube": cube, "small": np.ones((2, 2)), "nCol": np.array([[5.0]])})
    with h5py.File(path, "r") as f:  # the layout under test: stored transposed
        assert f["cube"].shape == (3, 5, 4)
    out = read_mat(path, "cube")
    assert out.shape == (4, 5, 3)
    np.testing.assert_array_equal(out, cube)
    with pytest.raises(DataError, match=r"holds 2 arrays: cube \(4x5x3\), small \(2x2\)"):
        read_mat(path)
    with pytest.raises(DataError, match="no variable 'x'.*cube.*small"):
        read_mat(path, "x")
    assert read_scalar(path, "nCol") == 5
    assert mat_variables(path) == {"cube": (4, 5, 3), "small": (2, 2), "nCol": (1, 1)}


def test_mat_without_arrays_is_refused(tmp_path):
    path = tmp_path / "scalars.mat"
    scipy.io.savemat(path, {"a": 1.0, "b": 2.0})
    with pytest.raises(DataError, match=r"holds no numeric array to read; variables: a \(1x1\), b \(1x1\)"):
        read_mat(path)
    assert read_mat(path, "b").item() == 2.0


@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_mat_v5_raises_data_error(tmp_path, rng, compressed):
    full = tmp_path / "full.mat"
    scipy.io.savemat(full, {"cube": rng.random((8, 8, 4))}, do_compression=compressed)
    for fraction in (0.1, 0.5, 0.97):
        bad = truncate(full, tmp_path / f"cut{fraction}.mat", fraction)
        with pytest.raises(DataError) as err:
            read_mat(bad)
        assert_names_file(err, bad)


def test_truncated_mat_v73_raises_data_error(tmp_path, rng):
    full = tmp_path / "full.mat"
    write_v73(full, {"cube": rng.random((16, 16, 8))})
    bad = truncate(full, tmp_path / "cut.mat")
    with pytest.raises(DataError) as err:
        read_mat(bad)
    assert_names_file(err, bad)


def test_missing_file_names_the_path(tmp_path):
    for reader in (read_mat, read_numpy, read_mask, read_cube, read_geotiff, read_envi, read_spectral_library):
        path = tmp_path / f"absent_{reader.__name__}.dat"
        with pytest.raises(DataError, match="file not found") as err:
            reader(path)
        assert_names_file(err, path)


# --- ENVI --------------------------------------------------------------------------------


def test_envi_round_trip_uppercase_header_and_extensionless_data(tmp_path, rng):
    cube = rng.integers(0, 200, (6, 7, 4)).astype(np.uint8)
    envi.save_image(
        str(tmp_path / "scene.hdr"), cube, dtype=np.uint8, interleave="bsq", ext="",
        metadata={"wavelength": [0.48, 0.56, 0.66, 0.83], "wavelength units": "Micrometers",
                  "band names": ["blue", "green", "red", "nir"]},
    )
    (tmp_path / "scene.hdr").rename(tmp_path / "scene.HDR")
    assert (tmp_path / "scene").is_file()
    array, meta = read_envi(tmp_path / "scene.HDR")
    assert array.dtype == np.float32 and array.shape == (6, 7, 4)
    np.testing.assert_array_equal(array, cube)
    np.testing.assert_allclose(meta["wavelengths"], [480, 560, 660, 830])
    assert meta["band_names"] == ["blue", "green", "red", "nir"]
    # read_cube accepts the header, or the data file with its header beside it
    for path in (tmp_path / "scene.HDR", tmp_path / "scene"):
        arr, meta = read_cube(path)
        np.testing.assert_array_equal(arr, cube)
        assert meta["format"] == "envi"


def test_envi_wavelength_units(tmp_path):
    cube = np.ones((2, 2, 2), dtype=np.float32)
    cases = [({"wavelength": [500, 600], "wavelength units": "Nanometers"}, [500, 600]),
             ({"wavelength": [0.5, 0.6]}, [500, 600]),  # no units, values < 30: micrometres
             ({"wavelength": [450, 550]}, [450, 550])]
    for k, (metadata, expected) in enumerate(cases):
        envi.save_image(str(tmp_path / f"c{k}.hdr"), cube, ext=".img", metadata=metadata)
        _, meta = read_envi(tmp_path / f"c{k}.hdr")
        np.testing.assert_allclose(meta["wavelengths"], expected)


def test_envi_truncated_data_and_bad_header(tmp_path, rng):
    envi.save_image(str(tmp_path / "cube.hdr"), rng.random((5, 5, 3)).astype(np.float32), ext=".img")
    data = tmp_path / "cube.img"
    data.write_bytes(data.read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated") as err:
        read_envi(tmp_path / "cube.hdr")
    assert_names_file(err, data)
    bad = tmp_path / "bad.hdr"
    bad.write_text("this is not a header\n")
    with pytest.raises(DataError, match="not a valid ENVI header") as err:
        read_cube(bad)
    assert_names_file(err, bad)
    lonely = tmp_path / "lonely.hdr"
    lonely.write_text((tmp_path / "cube.hdr").read_text())
    with pytest.raises(DataError, match="no data file"):
        read_envi(lonely)


def test_spectral_library_drops_metadata_records_and_masks_ignore_value(tmp_path):
    wl_um = np.array([0.4, 0.5, 0.6, 0.7], dtype=np.float32)
    records = np.array([
        wl_um,                              # wavelengths record
        [0.01, 0.01, 0.01, 0.01],           # resolution record
        [0.1, 0.2, 0.3, 0.4],
        [0.001, 0.002, 0.001, -8e29],       # error bars of the record before
        [0.5, -1.2300003e34, 0.7, 0.8],     # ignore value, with float32 rounding
    ], dtype=np.float32)
    records.tofile(tmp_path / "lib.sli")
    (tmp_path / "lib.hdr").write_text(
        "ENVI\nsamples = 4\nlines = 5\nbands = 1\nheader offset = 0\nfile type = ENVI Spectral Library\n"
        "data type = 4\ninterleave = bsq\nbyte order = 0\nwavelength units = Micrometers\n"
        "data ignore value = -1.23000002e+034\n"
        "spectra names = {Wavelengths in microns, Resolution in microns, Grass  GDS1 , "
        "error bars to preceding, Rock X}\n"
    )
    spectra, wavelengths, names = read_spectral_library(tmp_path / "lib.hdr")
    assert names == ["Grass GDS1", "Rock X"]
    np.testing.assert_allclose(wavelengths, [400, 500, 600, 700])  # from the Wavelengths record
    assert spectra.shape == (2, 4) and spectra.dtype == np.float32
    np.testing.assert_allclose(spectra[0], [0.1, 0.2, 0.3, 0.4])
    assert np.isnan(spectra[1, 1]) and np.isnan(spectra).sum() == 1
    envi.save_image(str(tmp_path / "img.hdr"), np.ones((2, 2, 1), np.float32), ext=".img")
    with pytest.raises(DataError, match="not 'ENVI Spectral Library'"):
        read_spectral_library(tmp_path / "img.hdr")


# --- GeoTIFF -----------------------------------------------------------------------------


def write_tif(path: Path, bands: np.ndarray, pixel: float, origin=(500000.0, 4000000.0)) -> Path:
    """Write ``(count, rows, cols)`` as a UTM GeoTIFF with square pixels of ``pixel`` metres."""
    with rasterio.open(
        path, "w", driver="GTiff", height=bands.shape[1], width=bands.shape[2], count=bands.shape[0],
        dtype=bands.dtype, crs="EPSG:32631", transform=Affine(pixel, 0.0, origin[0], 0.0, -pixel, origin[1]),
    ) as dst:
        dst.write(bands)
    return path


def test_geotiff_round_trip_is_channel_last(tmp_path, rng):
    bands = rng.integers(0, 10000, (3, 5, 6)).astype(np.uint16)
    path = write_tif(tmp_path / "multi.tif", bands, 10.0)
    array, meta = read_geotiff(path)
    assert array.shape == (5, 6, 3)
    np.testing.assert_array_equal(array, np.moveaxis(bands, 0, -1))
    assert meta["crs"] == "EPSG:32631" and meta["transform"][0] == 10.0
    cube, meta = read_cube(path)
    assert cube.dtype == np.float32 and meta["format"] == "geotiff"
    np.testing.assert_array_equal(cube[..., 2], bands[2])


def test_band_files_at_two_resolutions_are_resampled_bilinearly(tmp_path):
    # Linear field f = x + 2y (metres, at pixel centres): stored as is on a 10 m grid,
    # and as f / 10 on a 20 m grid, whose values are integers while f / 10 at the
    # 10 m centres ends in .5, so the resampling must happen in floating point.
    n = 8
    rows, cols = np.mgrid[0:n, 0:n]
    fine = (10 * cols + 5) + 2 * (10 * rows + 5)
    rows, cols = np.mgrid[0 : n // 2, 0 : n // 2]
    coarse = ((20 * cols + 10) + 2 * (20 * rows + 10)) // 10
    p10 = write_tif(tmp_path / "B02.tif", fine[None].astype(np.uint16), 10.0)
    p20 = write_tif(tmp_path / "B05.tif", coarse[None].astype(np.uint16), 20.0)
    out, meta = read_band_files([p20, p10], reference=p10)
    assert out.shape == (n, n, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 1], fine)  # the reference band is untouched
    # bilinear interpolation reproduces a linear field exactly between coarse pixel centres
    np.testing.assert_allclose(out[1:-1, 1:-1, 0], fine[1:-1, 1:-1] / 10, atol=1e-4)
    # on the outer ring the edge value is held: off by half a coarse pixel (0.5 in x, 1 in y) at most
    assert np.abs(out[..., 0] - fine / 10).max() <= 1.5 + 1e-4
    assert meta["source_shapes"] == [(4, 4), (8, 8)]
    same, _ = read_band_files([p20, p10], reference=1)
    np.testing.assert_array_equal(same, out)
    nearest, _ = read_band_files([p20], reference=p10, resampling="nearest")
    np.testing.assert_array_equal(nearest[::2, ::2, 0], coarse)
    with pytest.raises(ConfigError, match="unknown resampling"):
        read_band_files([p20], reference=p10, resampling="magic")


def test_band_files_refuse_other_extent_and_truncated_file(tmp_path):
    ref = write_tif(tmp_path / "ref.tif", np.ones((1, 8, 8), np.uint16), 10.0)
    shifted = write_tif(tmp_path / "shifted.tif", np.ones((1, 4, 4), np.uint16), 20.0, origin=(500100.0, 4000000.0))
    with pytest.raises(DataError, match="bounds") as err:
        read_band_files([ref, shifted], reference=0)
    assert_names_file(err, shifted)
    big = write_tif(tmp_path / "big.tif", np.arange(3 * 64 * 64, dtype=np.uint16).reshape(3, 64, 64), 10.0)
    bad = truncate(big, tmp_path / "cut.tif")
    for call in (lambda: read_geotiff(bad), lambda: read_cube(bad), lambda: read_band_files([bad], reference=ref)):
        with pytest.raises(DataError) as err:
            call()
        assert_names_file(err, bad)


# --- NumPy, masks, dispatch --------------------------------------------------------------


def test_numpy_round_trip_and_errors(tmp_path, rng):
    cube = rng.random((3, 4, 5)).astype(np.float32)
    np.save(tmp_path / "cube.npy", cube)
    np.testing.assert_array_equal(read_numpy(tmp_path / "cube.npy"), cube)
    np.savez(tmp_path / "pair.npz", image=cube, labels=np.zeros((3, 4)), n=np.array(3), names=np.array(["a", "b"]))
    with pytest.raises(DataError, match=r"holds 2 arrays: image \(3x4x5\), labels \(3x4\); pass key="):
        read_numpy(tmp_path / "pair.npz")
    np.testing.assert_array_equal(read_numpy(tmp_path / "pair.npz", "image"), cube)
    np.testing.assert_array_equal(read_numpy(tmp_path / "pair.npz", "labels"), 0)
    with pytest.raises(DataError, match="no array 'x'.*image.*labels"):
        read_numpy(tmp_path / "pair.npz", "x")
    assert npz_arrays(tmp_path / "pair.npz") == {"image": (3, 4, 5), "labels": (3, 4), "n": ()}
    np.savez_compressed(tmp_path / "one.npz", image=cube, n=np.array(3))
    np.testing.assert_array_equal(read_numpy(tmp_path / "one.npz"), cube)
    with pytest.raises(DataError, match="a .npy file holds a single array"):
        read_numpy(tmp_path / "cube.npy", "image")
    for name in ("cube.npy", "pair.npz"):
        bad = truncate(tmp_path / name, tmp_path / f"cut_{name}")
        with pytest.raises(DataError) as err:
            read_cube(bad)
        assert_names_file(err, bad)


def test_read_cube_shapes_and_formats(tmp_path, rng):
    band = rng.random((4, 4))
    np.save(tmp_path / "band.npy", band)
    cube, meta = read_cube(tmp_path / "band.npy")
    assert cube.shape == (4, 4, 1) and cube.dtype == np.float32 and meta["wavelengths"] is None
    np.testing.assert_allclose(cube[..., 0], band, rtol=1e-6)
    scipy.io.savemat(tmp_path / "c.mat", {"x": rng.random((4, 4, 3))})
    assert read_cube(tmp_path / "c.mat")[0].shape == (4, 4, 3)
    np.save(tmp_path / "four.npy", np.zeros((2, 2, 2, 2)))
    with pytest.raises(DataError, match=r"shape \(2, 2, 2, 2\)"):
        read_cube(tmp_path / "four.npy")
    (tmp_path / "cube.xyz").write_text("x")
    with pytest.raises(DataError, match="unsupported image format"):
        read_cube(tmp_path / "cube.xyz")


def test_masks_from_images_tiff_and_arrays(tmp_path, rng):
    labels = rng.integers(0, 5, (6, 7)).astype(np.uint8)
    Image.fromarray(labels).save(tmp_path / "m.png")
    Image.fromarray(labels * 50).save(tmp_path / "m.bmp")
    Image.fromarray(np.stack([labels] * 3, -1)).save(tmp_path / "grey_as_rgb.png")
    tifffile.imwrite(tmp_path / "m.tif", labels.astype(np.uint16))
    np.save(tmp_path / "m.npy", labels.astype(np.float64))
    scipy.io.savemat(tmp_path / "m.mat", {"gt": labels})
    expected = {"m.png": labels, "m.bmp": labels * 50, "grey_as_rgb.png": labels, "m.tif": labels,
                "m.npy": labels, "m.mat": labels}
    for name, want in expected.items():
        mask = read_mask(tmp_path / name)
        assert mask.dtype == np.int64 and mask.shape == (6, 7), name
        np.testing.assert_array_equal(mask, want, err_msg=name)


def test_masks_refuse_colour_fractions_and_truncation(tmp_path, rng):
    colour = rng.integers(0, 255, (4, 4, 3)).astype(np.uint8)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(DataError, match="colour channels"):
        read_mask(tmp_path / "colour.png")
    np.save(tmp_path / "frac.npy", np.full((3, 3), 0.5))
    with pytest.raises(DataError, match="non-integer"):
        read_mask(tmp_path / "frac.npy")
    Image.fromarray(rng.integers(0, 9, (64, 64)).astype(np.uint8)).save(tmp_path / "big.bmp")
    tifffile.imwrite(tmp_path / "big.tif", rng.integers(0, 9, (64, 64)).astype(np.uint8))
    for name in ("big.bmp", "big.tif"):
        bad = truncate(tmp_path / name, tmp_path / f"cut_{name}")
        with pytest.raises(DataError) as err:
            read_mask(bad)
        assert_names_file(err, bad)


# --- layouts, scalars, label arrays and cubes ----------------------------------------------


def test_layouts_put_every_pixel_in_place(rng):
    rows, cols, bands = 3, 4, 2
    cube = rng.random((rows, cols, bands))
    np.testing.assert_array_equal(to_rows_cols_bands(cube), cube)
    np.testing.assert_array_equal(to_rows_cols_bands(np.moveaxis(cube, -1, 0), "bands_rows_cols"), cube)
    for order in ("F", "C"):
        pixels = cube.reshape(-1, bands, order=order)  # (rows*cols, bands)
        np.testing.assert_array_equal(to_rows_cols_bands(pixels, "pixels_bands", rows, cols, order), cube)
        np.testing.assert_array_equal(to_rows_cols_bands(pixels.T, "bands_pixels", rows, cols, order), cube)
    y = cube.reshape(-1, bands, order="F").T
    assert y[0, 1] == cube[1, 0, 0] and y[0, rows] == cube[0, 1, 0]  # column-major: down the first column first
    np.testing.assert_array_equal(to_rows_cols_bands(cube[..., 0]), cube[..., :1])
    np.testing.assert_array_equal(to_rows_cols_bands(cube[..., 0].ravel("F"), "bands_pixels", rows, cols), cube[..., :1])


@pytest.mark.parametrize("array, layout, size, problem", [
    (np.zeros((2, 12)), "bands_pixels", (4, 4), r"has shape \(2, 12\); layout bands_pixels with rows 4 and cols 4 needs \(bands, 4\*4=16\)"),
    (np.zeros((12, 2)), "bands_pixels", (3, 4), r"its first axis has 12 entries: use layout pixels_bands"),
    (np.zeros((2, 12)), "pixels_bands", (3, 4), r"its second axis has 12 entries: use layout bands_pixels"),
    (np.zeros((3, 4, 2)), "pixels_bands", (3, 4), r"a 3-D array is already an image"),
    (np.zeros(12), "rows_cols_bands", None, r"a vector of pixels needs layout bands_pixels or pixels_bands"),
    (np.zeros((2, 2, 2, 2)), "bands_rows_cols", None, r"needs a 3-D array \(bands, rows, cols\)"),
    (np.zeros((2, 12)), "bands_pixels", None, r"layout bands_pixels needs rows and cols"),
    (np.zeros((2, 12)), "cols_rows", None, r"unknown layout 'cols_rows'"),
])
def test_layouts_refuse_sizes_that_do_not_fit(tmp_path, array, layout, size, problem):
    rows, cols = size or (None, None)
    with pytest.raises(DataError, match=problem) as err:
        to_rows_cols_bands(array, layout, rows, cols, path=tmp_path / "y.mat", what="variable 'Y'")
    assert_names_file(err, tmp_path / "y.mat")


def test_read_cube_layouts_with_scalar_variables(tmp_path, rng):
    cube = rng.random((5, 3, 4))
    y = cube.reshape(-1, 4, order="F").T
    scipy.io.savemat(tmp_path / "u.mat", {"Y": y, "nRow": 5, "nCol": 3, "half": 2.5, "pair": np.ones(2), "zero": 0})
    out, meta = read_cube(tmp_path / "u.mat", "Y", "bands_pixels", "nRow", "nCol")
    np.testing.assert_allclose(out, cube, rtol=1e-6)
    assert meta["variable"] == "Y" and meta["format"] == "mat"
    np.testing.assert_allclose(read_cube(tmp_path / "u.mat", "Y", "bands_pixels", 5, 3)[0], cube, rtol=1e-6)
    for name, problem in [("half", "holds 2.5, not a positive whole number"), ("zero", "holds 0, not"),
                          ("pair", r"has shape \(1, 2\), not a single number"), ("nope", "no variable 'nope'")]:
        with pytest.raises(DataError, match=problem) as err:
            read_cube(tmp_path / "u.mat", "Y", "bands_pixels", name, 3, option="data.image_variable")
        assert_names_file(err, tmp_path / "u.mat")
    with pytest.raises(DataError, match=r"variable 'half' \(set by data.rows\)"):
        read_cube(tmp_path / "u.mat", "Y", "bands_pixels", "half", 3, option="data.image_variable")
    np.savez(tmp_path / "u.npz", Y=y, nRow=np.array(5), nCol=np.array([3]))
    np.testing.assert_allclose(read_cube(tmp_path / "u.npz", "Y", "bands_pixels", "nRow", "nCol")[0], cube, rtol=1e-6)
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(DataError, match="only .mat and .npz files hold named variables"):
        read_scalar(tmp_path / "y.npy", "nRow")


def test_read_cube_refuses_a_layout_for_geotiff_and_envi(tmp_path, rng):
    path = write_tif(tmp_path / "img.tif", rng.integers(0, 9, (2, 3, 3)).astype(np.uint16), 10.0)
    with pytest.raises(DataError, match="layout bands_rows_cols applies to arrays in .mat/.npy/.npz files") as err:
        read_cube(path, layout="bands_rows_cols")
    assert_names_file(err, path)
    with pytest.raises(DataError, match="applies to .mat and .npz files only"):
        read_cube(path, "x")


def test_label_arrays_keep_geotiff_nodata_and_band_order(tmp_path, rng):
    labels = rng.integers(0, 3, (5, 6)).astype(np.int16)
    labels[0, 0] = -1
    with rasterio.open(tmp_path / "nd.tif", "w", driver="GTiff", height=5, width=6, count=1, dtype="int16",
                       crs="EPSG:32631", transform=Affine(10, 0, 0, 0, -10, 0), nodata=-1) as dst:
        dst.write(labels[None])
    array, meta = read_label_array(tmp_path / "nd.tif")
    np.testing.assert_array_equal(array, labels)
    assert meta["nodata"] == -1 and meta["format"] == "tiff"
    cube = rng.integers(0, 2, (3, 5, 6)).astype(np.uint8)
    for interleave in ("band", "pixel"):
        path = tmp_path / f"{interleave}.tif"
        with rasterio.open(path, "w", driver="GTiff", height=5, width=6, count=3, dtype="uint8", interleave=interleave,
                           crs="EPSG:32631", transform=Affine(10, 0, 0, 0, -10, 0)) as dst:
            dst.write(cube)
        array, meta = read_label_array(path)
        np.testing.assert_array_equal(array, np.moveaxis(cube, 0, -1), err_msg=interleave)
        assert meta["nodata"] is None
    tifffile.imwrite(tmp_path / "plain.tif", labels)
    assert read_label_array(tmp_path / "plain.tif")[1]["nodata"] is None
    np.savez(tmp_path / "m.npz", a=labels, b=labels)
    assert read_label_array(tmp_path / "m.npz", "b", "data.mask_variable")[1]["variable"] == "b"
    with pytest.raises(DataError, match="set data.mask_variable to the one to read"):
        read_label_array(tmp_path / "m.npz", option="data.mask_variable")
    with pytest.raises(DataError, match="(?s)colour channels that differ.*set data.labels to one_hot or abundances"):
        read_mask(tmp_path / "band.tif")
    np.save(tmp_path / "cube5.npy", np.zeros((4, 4, 5)))
    with pytest.raises(DataError, match=r"(?s)mask must be 2-D .*\(4, 4, 5\).*set data.labels to one_hot"):
        read_mask(tmp_path / "cube5.npy")


def test_labels_from_cube():
    hot = np.zeros((2, 3, 3))
    hot[0, 0, 2] = hot[0, 1, 0] = hot[1, 2, 1] = 1
    classes, unlabelled = labels_from_cube(hot, "one_hot")
    assert classes[0, 0] == 2 and classes[0, 1] == 0 and classes[1, 2] == 1
    np.testing.assert_array_equal(unlabelled, [[False, False, True], [True, True, False]])
    soft = np.array([[[0.5, 0.3, 0.2], [0.3, 0.3, 0.4], [np.nan, 1, 0]]])
    classes, unlabelled = labels_from_cube(soft, "abundances", min_fraction=0.45)
    np.testing.assert_array_equal(classes[0, :2], [0, 2])
    np.testing.assert_array_equal(unlabelled, [[False, True, True]])
    with pytest.raises(DataError, match="one-hot values are 0 or 1"):
        labels_from_cube(soft[:, :2], "one_hot")
    with pytest.raises(DataError, match="unknown label cube kind"):
        labels_from_cube(hot, "soft")
    with pytest.raises(DataError, match="must be 3-D"):
        labels_from_cube(hot[0], "one_hot")
