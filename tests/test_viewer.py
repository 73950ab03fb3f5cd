"""``specdm view``: the static viewer page, driven in a real headless Chromium.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` (``scripts/setup.sh``
installs them) and ``selenium`` (the ``test`` extra); without them they skip, saying why.
``SPECDM_VIEWER_SCREENSHOT=docs/viewer.png`` also saves the page with a clicked pixel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from specdm.cli import main
from specdm.data.normalize import Normalizer
from specdm.data.plot import class_colors
from specdm.metrics.spectral import ClassSpectra
from specdm.output.dataset import MARKER, DatasetWriter, image_dirs
from specdm.output.viewer import write_viewer

CLASSES = ["unlabelled", "water", "field", "forest"]
IGNORE = 0
BANDS = 24
SIZE = 40
WAVELENGTHS = np.linspace(450, 2400, BANDS).round(1)
RGB = [5, 3, 1]
# class spectra in the data's own units (reflectance x 10000): dark water, bright field, red-edge forest
SHAPES = np.stack([
    np.full(BANDS, 1500.0),
    900 * np.exp(-(WAVELENGTHS - 450) / 250) + 150,
    1200 + 1800 * (WAVELENGTHS > 700) * np.exp(-(WAVELENGTHS - 700) / 1500) + 600 * (WAVELENGTHS < 600),
    400 + 3800 * (WAVELENGTHS > 720) * np.exp(-(WAVELENGTHS - 720) / 900),
])
NORM = Normalizer(np.full(BANDS, 0.0, np.float32), np.full(BANDS, 5000.0, np.float32))


def layout(rng) -> np.ndarray:
    """A mask: forest background, a field rectangle, a water disc and an unlabelled strip."""
    m = np.full((SIZE, SIZE), 3, np.uint8)
    r0, c0 = rng.integers(2, 14, 2)
    m[r0 : r0 + rng.integers(10, 18), c0 : c0 + rng.integers(12, 22)] = 2
    if rng.random() < 0.6:  # not every sample holds water (the class filter needs that)
        yy, xx = np.mgrid[:SIZE, :SIZE]
        cy, cx = rng.integers(22, 34, 2)
        m[(yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(20, 60)] = 1
    m[:, -3:] = IGNORE
    return m


def images_for(mask, rng, dates=1) -> np.ndarray:
    """(T, C, H, W) float32: each pixel its class spectrum, brightness-scaled, with noise."""
    gain = rng.uniform(0.85, 1.15, mask.shape)
    out = [np.moveaxis(SHAPES[mask] * gain[..., None] * (1 + 0.1 * t), -1, 0) for t in range(dates)]
    return (np.stack(out) + rng.normal(0, 40, (dates, BANDS, *mask.shape))).astype(np.float32)


def make_set(folder: Path, rng, n=6, dates=1, masks=True, model_dir: Path | None = None):
    """A data set as ``specdm sample`` writes it: DatasetWriter files plus metadata.json with its
    statistics (synthetic_stats; real_stats in ``model_dir/specdm.json`` when given). Returns
    (images (N, T, C, H, W), masks (N, H, W) or None)."""
    labels = np.stack([layout(rng) for _ in range(n)])
    images = np.stack([images_for(m, rng, dates) for m in labels])
    writer = DatasetWriter(folder, n, dates, BANDS, SIZE, len(CLASSES) if masks else None)
    for i in range(n):
        writer.write(i, images[i], labels[i] if masks else None)
    meta = {
        MARKER: "test", "task": "change" if dates == 2 else "segmentation", "method": "specdm",
        "num_samples": n, "images": image_dirs(dates), "masks": masks,
        "format": {"image": "tif", "mask": "png"},
        "band_names": [f"B{b + 1}" for b in range(BANDS)], "wavelengths": WAVELENGTHS.tolist(),
        "rgb_bands": RGB, "class_names": CLASSES, "ignore_index": IGNORE, "patch_size": SIZE,
        "normalization": NORM.to_dict(),
    }
    if masks:
        meta["synthetic_stats"] = stats_of(images, labels).to_dict()
    if model_dir is not None:  # the real statistics live in the model folder, as after `specdm run`
        real_masks = np.stack([layout(rng) for _ in range(8)])
        real = stats_of(np.stack([images_for(m, rng, dates) for m in real_masks]), real_masks)
        model_dir.mkdir(parents=True)
        (model_dir / "specdm.json").write_text(json.dumps({"real_stats": real.to_dict()}))
        meta["model"] = {"path": str(model_dir)}
    (folder / "metadata.json").write_text(json.dumps(meta))
    return images, (labels if masks else None)


def stats_of(images, labels) -> ClassSpectra:
    x = np.moveaxis(NORM(np.moveaxis(images, 2, -1)), -1, 2)
    return ClassSpectra.of_windows(x, labels, len(CLASSES))


def page_data(html: Path) -> dict:
    text = html.read_text()
    return json.loads(re.search(r'id="specdm-data">(.*?)</script>', text, re.S).group(1))


# ---- without a browser -------------------------------------------------------------------

def test_page_is_self_contained_and_capped(tmp_path, rng):
    make_set(tmp_path / "set", rng, n=5, model_dir=tmp_path / "model")
    out = write_viewer(tmp_path / "set", max_samples=3)
    assert out == tmp_path / "set" / "view.html"
    html = out.read_text()
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html), "the page must load nothing from the network"
    data = page_data(out)
    assert len(data["samples"]) == 3 and data["num_total"] == 5 and "first 3 of 5" in data["cap"]
    assert data["real"] is not None and data["stretch"]["source"].startswith("real training split")
    assert data["units"] == "normalized units" and data["rgb"] == RGB and data["wavelengths"] == WAVELENGTHS.tolist()


def test_real_stats_argument_and_fallback_stretch(tmp_path, rng):
    images, labels = make_set(tmp_path / "set", rng, n=2)  # no model folder: no real statistics
    data = page_data(write_viewer(tmp_path / "set", tmp_path / "a.html"))
    assert data["real"] is None and data["stretch"]["source"].startswith("2nd..98th percentiles")
    real = stats_of(images, labels).to_dict()
    data = page_data(write_viewer(tmp_path / "set", tmp_path / "b.html", real_stats=real))
    assert data["real"]["counts"] == real["counts"]
    # metadata's model path as written on another machine: the sibling folder of that name is used
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "specdm.json").write_text(json.dumps({"real_stats": real}))
    meta = json.loads((tmp_path / "set" / "metadata.json").read_text())
    meta["model"] = {"path": "/elsewhere/runs/x/model"}
    (tmp_path / "set" / "metadata.json").write_text(json.dumps(meta))
    data = page_data(write_viewer(tmp_path / "set", tmp_path / "c.html"))
    assert data["real"]["counts"] == real["counts"]


def test_cli_view(tmp_path, rng, capsys):
    make_set(tmp_path / "set", rng, n=3)
    assert main(["view", str(tmp_path / "set"), "--out", str(tmp_path / "v.html"), "--max-samples", "2"]) == 0
    assert str(tmp_path / "v.html") in capsys.readouterr().out
    assert len(page_data(tmp_path / "v.html")["samples"]) == 2
    assert main(["view", str(tmp_path / "missing")]) == 2


# ---- in headless Chromium ----------------------------------------------------------------

def _find(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by selenium over Debian's chromedriver (no browser download)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    binary = _find("CHROME_BIN", "chromium", "chromium-browser", "google-chrome")
    driver_path = _find("CHROMEDRIVER", "chromedriver")
    if not binary or not driver_path:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver (scripts/setup.sh does)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,800", "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(60)
    # a fixed 1200 x 800 viewport (the window size includes the browser's frame)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1200, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()


def load(driver, html: Path) -> None:
    """Open the page from disk; fail on any console error."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(html.resolve().as_uri())
    assert driver.execute_script("return document.body.dataset.ready") == "true", console_errors(driver)
    assert console_errors(driver) == []


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def canvas_pixel(driver, testid: str, row: int, col: int) -> list[int]:
    return driver.execute_script(
        "const c = document.querySelector(`[data-testid='${arguments[0]}']`);"
        "return Array.from(c.getContext('2d').getImageData(arguments[2], arguments[1], 1, 1).data);",
        testid, row, col)


def click_pixel(driver, row: int, col: int) -> None:
    """A real mouse click on the centre of image pixel (row, col)."""
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("css selector", "[data-testid='image-canvas']")
    w, h, sw, sh = driver.execute_script(
        "const c = arguments[0], r = c.getBoundingClientRect(); return [r.width, r.height, c.width, c.height];", canvas)
    dx, dy = (col + 0.5) * w / sw - w / 2, (row + 0.5) * h / sh - h / 2  # offsets from the element's centre
    ActionChains(driver).move_to_element_with_offset(canvas, int(round(dx)), int(round(dy))).click().perform()


def test_viewer_in_chromium(browser, tmp_path, rng):
    folder = tmp_path / "demo_run" / "synthetic"  # the page's title (and the screenshot's)
    images, labels = make_set(folder, rng, model_dir=tmp_path / "demo_run" / "model")
    html = write_viewer(folder)
    data = page_data(html)
    load(browser, html)

    # the first sample in false colour: the page's pixel matches the stretch applied to the true values
    row, col = map(int, np.argwhere(labels[0] == 2)[5])  # a field pixel
    true = NORM(images[0, 0, :, row, col])
    lo, hi = (np.asarray(data["stretch"][k])[RGB] for k in ("lo", "hi"))
    want = np.clip((true[RGB] - lo) / (hi - lo), 0, 1) * 255
    got = canvas_pixel(browser, "image-canvas", row, col)
    assert np.abs(np.asarray(got[:3]) - want).max() <= 1.5 and got[3] == 255, (got, want)

    # the mask overlay: class colours, the ignored class transparent, opacity from the slider
    colors = np.round(class_colors(len(CLASSES)) * 255).astype(int)
    assert canvas_pixel(browser, "mask-canvas", row, col) == [*colors[2], 255]
    assert canvas_pixel(browser, "mask-canvas", 0, SIZE - 1)[3] == 0
    opacity = browser.execute_script("return getComputedStyle(document.getElementById('mask-canvas')).opacity")
    assert 0 < float(opacity) < 1

    # click the pixel: its spectrum against the real and synthetic class means of its class
    click_pixel(browser, row, col)
    info = browser.find_element("css selector", "[data-testid='pixel-info']")
    assert (info.get_attribute("data-row"), info.get_attribute("data-col")) == (str(row), str(col))
    assert info.get_attribute("data-class") == "2" and "field" in info.text
    plot = browser.find_element("css selector", "[data-testid='spectrum-plot']")
    assert plot.get_attribute("data-class") == "2"
    for series in ("pixel", "real-mean", "synthetic-mean"):
        line = plot.find_element("css selector", f"[data-testid='series-{series}']")
        assert line.get_attribute("data-points") == str(BANDS)
        assert len(line.get_attribute("points").split()) == BANDS
    spectrum = browser.execute_script("return window.specdmViewer.spectrum")
    assert np.allclose(spectrum["values"], true, atol=2 * max(data["qscale"]))

    # class histogram: real and synthetic bars for every labelled class
    bars = browser.find_elements("css selector", "[data-testid='class-histogram'] rect[data-set]")
    assert sorted(b.get_attribute("data-set") for b in bars) == ["real"] * 3 + ["synthetic"] * 3

    if os.environ.get("SPECDM_VIEWER_SCREENSHOT"):
        browser.save_screenshot(os.environ["SPECDM_VIEWER_SCREENSHOT"])

    # filter by class: only samples holding water stay in the grid
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("css selector", "[data-testid='class-filter']")).select_by_value("1")
    shown = [t for t in browser.find_elements("css selector", "[data-testid='thumb']") if t.is_displayed()]
    assert len(shown) == int((labels == 1).any(axis=(1, 2)).sum()) < len(labels)
    assert console_errors(browser) == []


def test_change_set_without_masks_in_chromium(browser, tmp_path, rng):
    images, _ = make_set(tmp_path / "set", rng, n=3, dates=2, masks=False)
    html = write_viewer(tmp_path / "set")
    load(browser, html)
    assert not browser.find_element("css selector", "[data-testid='mask-canvas']").is_displayed()
    assert not browser.find_element("css selector", "[data-testid='class-histogram']").is_displayed()
    from selenium.webdriver.support.ui import Select

    dates = Select(browser.find_element("css selector", "[data-testid='date-picker']"))
    assert [o.text for o in dates.options] == ["date 1", "date 2"]
    before = canvas_pixel(browser, "image-canvas", 10, 10)
    dates.select_by_value("1")  # date 2 is 10 % brighter
    assert canvas_pixel(browser, "image-canvas", 10, 10) != before
    click_pixel(browser, 10, 10)
    plot = browser.find_element("css selector", "[data-testid='spectrum-plot']")
    assert plot.find_element("css selector", "[data-testid='series-pixel']").get_attribute("data-points") == str(BANDS)
    assert plot.find_elements("css selector", "[data-testid='series-real-mean']") == []
    spectrum = browser.execute_script("return window.specdmViewer.spectrum")
    assert np.allclose(spectrum["values"], NORM(images[0, 1, :, 10, 10]), atol=1e-3)
    assert console_errors(browser) == []
