"""Foundations of RGB-conditioned synthesis (HyperLDM, issue 10): spectral resampling, libraries
fitted to a scene, RGB from spectra and from files, the library mixing head and the code lookup."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from specdm.conditions.rgb import cie_1931, covers_visible, read_rgb, rgb_from_scene
from specdm.data.spectra import library_for_scene, resample_spectra, response_matrix
from specdm.datasets.sensors import SENTINEL2_SURFACE, band_names, sentinel2_bands, wavelengths
from specdm.errors import DataError
from specdm.models.autoencoders.mixing import LibraryMixingHead, mix, nearest_code

USGS = "spectral_libraries/usgs_splib07_AV95"


def line(wl):
    return 0.2 + 3e-4 * np.asarray(wl, dtype=np.float64)


# (a) resampling reproduces a linear spectrum exactly


IRREGULAR = np.sort(np.r_[350.0, np.random.default_rng(1).uniform(350, 2700, 90), 2700.0])


@pytest.mark.parametrize("src", [np.arange(350.0, 2701.0, 1.0), IRREGULAR], ids=["1nm", "irregular"])
def test_resampling_a_linear_spectrum_is_exact(src):
    dst = np.array([450.3, 551.7, 702.25, 1234.5, 2201.9])
    got = resample_spectra(line(src)[None], src, dst)
    np.testing.assert_allclose(got[0], line(dst), atol=1e-6, rtol=0)
    # Gaussian responses: symmetric, so a linear spectrum integrates to its value at the centre (exactly, while
    # the response's +-4 sigma lie inside the source range: beyond it the cut tail would shift the mean)
    fwhm = np.array([10.0, 36.0, 15.0, 30.0, 175.0])
    got = resample_spectra(line(src)[None], src, dst, dst_fwhm=fwhm)
    np.testing.assert_allclose(got[0], line(dst), atol=1e-6, rtol=0)
    # and with a known source FWHM (narrower responses, some bands fall back to linear interpolation)
    got = resample_spectra(line(src)[None], src, dst, dst_fwhm=fwhm, src_fwhm=np.full(len(src), 12.0))
    np.testing.assert_allclose(got[0], line(dst), atol=1e-6, rtol=0)


def test_gaussian_response_averages_a_curved_spectrum():
    """Not just interpolation: a Gaussian band over a parabola gives its mean under the response,
    f(c) + a * sigma^2 (exact for the cut response up to the 4-sigma tail)."""
    src = np.arange(400.0, 900.0, 0.25)
    a, c, fwhm = 1e-4, 650.0, 40.0
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    got = resample_spectra((a * (src - c) ** 2)[None], src, [c], dst_fwhm=[fwhm])[0, 0]
    assert got == pytest.approx(a * sigma**2, rel=2e-3)
    weights, outside = response_matrix(src, [c, 2000.0], [fwhm, fwhm])
    assert outside.tolist() == [False, True] and weights[0].sum() == pytest.approx(1.0) and not weights[1].any()


def test_unsorted_source_wavelengths_and_missing_samples():
    """AVIRIS centres go back at spectrometer joins; a NaN source sample makes only the target bands NaN
    that lean on it by more than max_missing."""
    src = np.array([400.0, 410.0, 430.0, 420.0, 440.0])  # 430 and 420 swapped
    spectrum = line(src)
    got = resample_spectra(spectrum[None], src, [415.0, 425.0, 435.0])
    np.testing.assert_allclose(got[0], line([415.0, 425.0, 435.0]), atol=1e-12)
    spectrum[4] = np.nan  # 440 nm
    got = resample_spectra(spectrum[None], src, [405.0, 435.0, 439.9, 430.0])
    assert np.isfinite(got[0, [0, 3]]).all() and np.isnan(got[0, 1])
    assert np.isnan(got[0, 2])  # 99 % of its weight on the missing 440 nm sample


# (b) target bands outside the source range are named


def test_bands_outside_the_source_range_are_listed():
    src = np.arange(400.0, 1001.0, 10.0)
    with pytest.raises(DataError, match=r"2 target band\(s\) lie outside the source range 400..1000 nm: "
                                        r"B01 \(380 nm\), B12 \(2202.4 nm\)") as err:
        resample_spectra(line(src)[None], src, [380.0, 560.0, 2202.4], dst_names=["B01", "B03", "B12"],
                         source="lib.sli")
    assert "lib.sli" in str(err.value)
    # with a Gaussian response, half the FWHM must fit too
    with pytest.raises(DataError, match=r"with half their FWHM\): band_1 \(405 nm\)"):
        resample_spectra(line(src)[None], src, [405.0, 560.0], dst_fwhm=[20.0, 20.0])
    got = resample_spectra(line(src)[None], src, [380.0, 560.0], extrapolate="nan")
    assert np.isnan(got[0, 0]) and got[0, 1] == pytest.approx(line(560.0))


# (c) the real USGS library on Indian Pines' bands


@pytest.mark.shared_data
def test_usgs_library_on_indian_pines_bands(data_dir):
    from specdm.datasets.indian_pines import load_indian_pines

    (scene,) = load_indian_pines(data_dir)
    header = next((data_dir / USGS).glob("*.hdr"))
    spectra, names = library_for_scene(header, scene.wavelengths, scene_fwhm=scene.extra["fwhm"])
    assert spectra.dtype == np.float32 and spectra.shape[1] == 200
    # 2457 material records; about a third have gaps where Indian Pines has bands and are dropped
    assert 1000 < len(spectra) < 2457 and len(names) == len(spectra)
    assert np.isfinite(spectra).all() and spectra.min() >= 0 and spectra.max() < 2
    assert not any(n.lower().startswith(("wavelengths", "resolution", "error bars")) for n in names)
    picked, picked_names = library_for_scene(header, scene.wavelengths, scene_fwhm=scene.extra["fwhm"],
                                             max_spectra=24, select="kmeans", seed=3)
    assert picked.shape == (24, 200) and len(set(picked_names)) == 24
    again, again_names = library_for_scene(header, scene.wavelengths, scene_fwhm=scene.extra["fwhm"],
                                           max_spectra=24, select="kmeans", seed=3)
    assert again_names == picked_names and np.array_equal(again, picked)
    # the picks are real spectra of the library, not cluster centres
    rows = [names.index(n) for n in picked_names]
    np.testing.assert_array_equal(picked, spectra[rows])
    random, _ = library_for_scene(header, scene.wavelengths, max_spectra=5, select="random", seed=0)
    assert random.shape == (5, 200)


def test_library_array_in_micrometres_is_converted():
    wl_um = np.linspace(0.35, 2.5, 216)
    lib = np.stack([line(wl_um * 1000), np.full(216, 0.5), -line(wl_um * 1000), np.zeros(216)])
    lib[1, 100] = np.nan  # gap at 1.35 um: fine for visible bands, fatal for a band there
    spectra, names = library_for_scene(lib, [450.0, 550.0, 650.0], library_wavelengths=wl_um)
    assert names == ["spectrum_0", "spectrum_1"]  # negative and all-zero records dropped
    np.testing.assert_allclose(spectra[0], line([450.0, 550.0, 650.0]), atol=1e-6)
    spectra, names = library_for_scene(lib, [450.0, 1352.0], library_wavelengths=wl_um, names=list("abcd"))
    assert names == ["a"]


# (d) mixing


def test_one_hot_mixing_returns_the_scaled_library_spectrum():
    torch.manual_seed(0)
    library = torch.rand(5, 7)
    abundances = torch.zeros(2, 5, 3, 4)
    abundances[:, 3] = 1.0  # every pixel: spectrum 3 only
    abundances[1, :, 0, 0] = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0])
    scale = torch.rand(2, 7, 3, 4) + 0.5
    image = mix(abundances, library, scale)
    assert image.shape == (2, 7, 3, 4)
    assert torch.equal(image[0, :, 2, 1], library[3] * scale[0, :, 2, 1])
    assert torch.equal(image[1, :, 0, 0], library[1] * scale[1, :, 0, 0])
    assert torch.equal(mix(abundances, library)[0, :, 1, 2], library[3])  # no scale: the spectrum itself


def test_mixing_head_keeps_the_library_as_a_buffer():
    torch.manual_seed(0)
    library = torch.rand(6, 4)
    head = LibraryMixingHead(library, in_channels=8)
    assert "library" in dict(head.named_buffers()) and "library" in head.state_dict()
    assert all("library" not in n for n, _ in head.named_parameters())
    assert sum(p.numel() for p in head.parameters()) == 8 * 10 + 10  # the 1x1 conv only
    out = head(torch.randn(2, 8, 5, 5))
    assert out.image.shape == (2, 4, 5, 5) and out.abundances.shape == (2, 6, 5, 5) and out.scale.shape == (2, 4, 5, 5)
    torch.testing.assert_close(out.abundances.sum(1), torch.ones(2, 5, 5))
    assert (out.scale > 0).all()
    torch.testing.assert_close(out.image, out.scale * torch.einsum("nghw,gc->nchw", out.abundances, library))
    out.image.sum().backward()
    assert head.proj.weight.grad is not None and head.library.grad is None
    # a model rebuilt from its config gets its library back from the state dict
    rebuilt = LibraryMixingHead(torch.zeros(6, 4), in_channels=8)
    rebuilt.load_state_dict(head.state_dict())
    assert torch.equal(rebuilt.library, library)


# (e) code lookup


def test_nearest_code_l1_and_l2():
    codebook = torch.tensor([[3.0, 0.0], [2.0, 2.0], [-5.0, -5.0]])
    z = torch.tensor([[0.0, 0.0], [-4.0, -4.5], [2.1, 1.8]])
    # origin: L1 distances 3, 4 -> code 0; L2 distances 3, 2.83 -> code 1
    idx1, q1 = nearest_code(z, codebook, p=1)
    idx2, q2 = nearest_code(z, codebook, p=2)
    assert idx1.tolist() == [0, 2, 1] and idx2.tolist() == [1, 2, 1]
    assert torch.equal(q1, codebook[[0, 2, 1]]) and torch.equal(q2, codebook[[1, 2, 1]])
    # feature maps (N, D, H, W): the same answer per pixel
    fmap = z.T.reshape(1, 2, 1, 3)
    idx, q = nearest_code(fmap, codebook, p=1)
    assert idx.shape == (1, 1, 3) and idx.flatten().tolist() == [0, 2, 1]
    assert torch.equal(q[0, :, 0, :].T, codebook[[0, 2, 1]])


# (f) RGB from spectra


def test_cie_colour_matching_functions_match_the_cie_table():
    # CIE 1931 2-degree values at 450, 555, 600 nm (CIE 015:2004): x 0.3362/0.5121/1.0622, y 0.0380/1.0000/0.6310,
    # z 1.7721/0.0057/0.0008; Wyman et al.'s fit is within a few percent of the peaks
    xyz = cie_1931([450.0, 555.0, 600.0])
    expected = np.array([[0.3362, 0.0380, 1.7721], [0.5121, 1.0000, 0.0057], [1.0622, 0.6310, 0.0008]])
    np.testing.assert_allclose(xyz, expected, atol=0.05)


def test_cie_rgb_of_white_and_red_spectra():
    wl = np.arange(400.0, 1001.0, 10.0)
    assert covers_visible(wl)
    flat = np.full((2, 3, len(wl)), 0.4)
    rgb = rgb_from_scene(flat, wl, method="cie", srgb=False, scale=1.0)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb, 0.4, atol=1e-6)  # white: R = G = B
    red = np.exp(-0.5 * ((wl - 650.0) / 10.0) ** 2)
    white = np.ones_like(wl)
    image = np.stack([red, white])[None]
    rgb = rgb_from_scene(image, wl, method="auto")
    assert rgb.min() >= 0 and rgb.max() <= 1
    r, g, b = rgb[0, 0]
    assert r > 0.2 and g < 0.05 * r and b < 0.05 * r
    assert np.ptp(rgb[0, 1]) < 1e-6  # the white pixel stays grey after the joint stretch


def test_bands_method_picks_sentinel2_red_green_blue():
    bands = sentinel2_bands(SENTINEL2_SURFACE)  # B02, B03, B04, B05 ... B12: 10 bands
    names = band_names(bands)
    cube = np.zeros((4, 4, 10))
    cube[..., names.index("B04")] = 0.9
    cube[..., names.index("B03")] = 0.5
    cube[..., names.index("B02")] = 0.1
    cube[..., names.index("B08")] = 5.0  # bright NIR must not leak in
    assert not covers_visible(wavelengths(bands))
    for kw in ({"band_names": names}, {"wavelengths": wavelengths(bands)}, {"band_names": names, "wavelengths": wavelengths(bands)}):
        rgb = rgb_from_scene(cube, method="auto", srgb=False, scale=1.0, **kw)
        np.testing.assert_allclose(rgb[0, 0], [0.9, 0.5, 0.1], atol=1e-6)
    with pytest.raises(DataError, match="cannot tell the red, green and blue bands"):
        rgb_from_scene(cube, method="bands", source="cube.tif")
    with pytest.raises(DataError, match="the CIE method needs bands sampling 400-700 nm"):
        rgb_from_scene(cube, wavelengths(bands), method="cie")
    with pytest.raises(DataError, match="no band within 60 nm of 470 nm"):
        rgb_from_scene(np.zeros((2, 2, 3)), [560.0, 665.0, 840.0], method="bands")


# (g) RGB files


def test_read_rgb_refuses_two_channels_and_round_trips_three(tmp_path):
    two = tmp_path / "grey_alpha.png"
    Image.fromarray(np.zeros((5, 6, 2), np.uint8), mode="LA").save(two)
    with pytest.raises(DataError, match=r"needs 3 channels .* has 2 channel\(s\)") as err:
        read_rgb(two)
    assert str(two) in str(err.value)
    pixels = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    three = tmp_path / "photo.png"
    Image.fromarray(pixels).save(three)
    rgb = read_rgb(three)
    assert rgb.shape == (5, 6, 3) and rgb.dtype == np.float32
    np.testing.assert_array_equal(np.round(rgb * 255).astype(np.uint8), pixels)
    # an opaque alpha channel is dropped; a (planar) 16-bit TIFF is read channel-last
    rgba = tmp_path / "opaque.png"
    Image.fromarray(np.dstack([pixels, np.full((5, 6), 255, np.uint8)])).save(rgba)
    np.testing.assert_array_equal(read_rgb(rgba), rgb)
    import tifffile

    tif = tmp_path / "rgb.tif"
    tifffile.imwrite(tif, (pixels.astype(np.uint16) * 257).transpose(2, 0, 1), photometric="rgb", planarconfig="separate")
    np.testing.assert_allclose(read_rgb(tif), rgb, atol=1e-7)
