"""Label fidelity by construction: pixel-level label cleaning, class-aware decoding and hard-class steering, on
real computations (a random forest of real pixels, stage-1 reconstructions, tiny trained models)."""

import json

import numpy as np
import pytest
from conftest import single_thread, tiny_config, write_config, write_fake_files

from specdm.augment.cleaning import HardClassAcceptance, PixelCleaner, hard_class_targets
from specdm.augment.fidelity import LabelFidelity, block_calibration, load_pixels, load_positions
from specdm.augment.painting import ClassPainter, build_class_references, painter_rngs
from specdm.cli import main
from specdm.conditions.layouts import RealLayouts
from specdm.data.normalize import Normalizer
from specdm.output.dataset import SyntheticDataset

SPECTRA = np.array([[0.5] * 6, [0.15] * 6, [0.85] * 6, [0.35, 0.65] * 3])  # 0.15 apart in every band


def windows(rng, n=12, size=8, noise=0.02):
    """Windows (n, 1, 6, size, size) of three well-separated classes in vertical bands (class 0 unlabelled: the
    top row), in normalized units, and their masks."""
    y = np.ones((n, size, size), np.int64)
    y[:, :, size // 3 :] = 2
    y[:, :, 2 * size // 3 :] = 3
    y[:, 0, :] = 0
    x = SPECTRA[y] + rng.normal(0, noise, (n, size, size, 6))
    return np.moveaxis(x, -1, 1)[:, None].astype(np.float32), y


def quadrants(rng, n=16, size=16, noise=0.02):
    """Windows whose four quadrants are classes 0 (unlabelled), 1, 2 and 3."""
    y = np.zeros((n, size, size), np.int64)
    h = size // 2
    y[:, :h, h:], y[:, h:, :h], y[:, h:, h:] = 1, 2, 3
    x = SPECTRA[y] + rng.normal(0, noise, (n, size, size, 6))
    return np.moveaxis(x, -1, 1)[:, None].astype(np.float32), y


def fitted(rng, oob=True):
    return LabelFidelity(4, ignore_index=0, n_estimators=30, seed=0, oob=oob).fit(*windows(rng))


# --------------------------------------------------------------------------- cleaning


def test_a_rejected_pixel_becomes_ignore_index_and_no_other_pixel_changes(rng):
    scorer = fitted(rng)
    cleaner = PixelCleaner(scorer, ratio=1.25)
    x, y = windows(rng, n=4)
    wrong = np.zeros(y.shape, bool)
    wrong[0, 3:6, 1] = True  # class-1 pixels painted with class-3 spectra
    wrong[2, 5, 7] = True  # a class-3 pixel painted with the class-2 spectrum
    x[wrong.nonzero()[0], 0, :, wrong.nonzero()[1], wrong.nonzero()[2]] = SPECTRA[[3, 3, 3, 2]]
    before = x.copy()
    out = cleaner(x, y)
    np.testing.assert_array_equal(out.rejected, wrong)  # exactly the pixels whose spectrum is another class's
    assert (out.masks[wrong] == 0).all()
    np.testing.assert_array_equal(out.masks[~wrong], y[~wrong])  # every other pixel, the unlabelled ones too
    np.testing.assert_array_equal(x, before)  # cleaning never touches an image
    assert out.relabelled.sum() == 4 and out.relabelled[0, 1] == 3 and out.relabelled[2, 3] == 1
    assert out.labelled.sum() == (y != 0).sum()
    np.testing.assert_allclose(out.kept_share()[[1, 3]], 1.0)
    # calibrated per class on out-of-bag real pixels, never below the loss of p = 0.9
    assert np.isnan(cleaner.thresholds[0]) and (cleaner.thresholds[1:] >= -np.log(0.9) - 1e-12).all()
    assert cleaner.calibration_pixels[1:].min() > 0


def test_cleaning_in_the_writer_changes_only_rejected_pixels_and_reports_them(cleaning_runs, tmp_path):
    model = cleaning_runs / "layout" / "model"
    args = ["sample", str(model), "-n", "4", "--steps", "2", "--seed", "3", "--previews", "1"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert main([*args, "--out", str(tmp_path / "clean"), "--clean", "loss_ratio", "--clean-min-kept", "0"]) == 0
    plain, clean = SyntheticDataset(tmp_path / "plain"), SyntheticDataset(tmp_path / "clean")
    assert plain.indices == clean.indices == [0, 1, 2, 3]
    info = json.loads((model / "specdm.json").read_text())
    pixels, labels = load_pixels(model)
    scorer = LabelFidelity(len(info["class_names"]), 0, seed=3).fit_pixels(pixels, labels)
    positions = load_positions(model)  # the scene position of every stored pixel: calibration on held-out blocks
    assert positions.shape == (len(labels), 3) and positions[:, 1].max() < 32  # the training rows 0-31
    cleaner = PixelCleaner(scorer, 1.25, block_calibration(scorer, pixels, labels, positions, info["patch_size"]))
    norm = Normalizer.from_dict(info["normalization"])
    changed = 0
    for k in range(4):
        a, b = plain[k], clean[k]
        np.testing.assert_array_equal(a["images"], b["images"])  # images bit for bit
        diff = a["mask"] != b["mask"]
        assert (b["mask"][diff] == 0).all()  # every change is to the ignore index
        x = np.moveaxis(norm(np.moveaxis(a["images"], 1, -1)), -1, 1)[None]
        np.testing.assert_array_equal(diff, cleaner(x, a["mask"][None]).rejected[0])  # and exactly the rejected ones
        changed += int(diff.sum())
    meta = clean.meta
    c = meta["clean"]
    assert c["relabelled_pixels"] == changed > 0 and c["samples"] == 4 and "blocks" in c["calibrated_on"]
    assert sum(r["relabelled"] for r in c["per_class"].values()) == changed
    assert set(c["calibration"]) == {n for j, n in enumerate(info["class_names"]) if j != 0}
    assert plain.meta["clean"] is None and meta["decode"] is None
    card = (tmp_path / "clean" / "README.md").read_text()
    assert "## Label cleaning" in card and "relabelled" in card and "## Texture" in card
    assert meta["texture"]["within_window_std"]["ratio"] > 0


def test_cleaning_needs_an_ignore_index_and_masks(tmp_path, capsys):
    data = write_fake_files(tmp_path / "data", np.random.default_rng(6), change=True)  # every pixel labelled
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config(data))
    assert main(["run", str(cfg), "--run-dir", str(tmp_path / "run"), "--set", "sampling.clean=loss_ratio"]) == 2
    err = capsys.readouterr().err
    assert "--clean" in err and "ignore index" in err and "--filter" in err
    assert not (tmp_path / "run").exists()  # refused before any training
    from specdm.config import validate, SamplingConfig
    from specdm.errors import ConfigError
    from specdm.recipes.sampling import check_treatments

    s = validate(SamplingConfig, {"decode": "snap"})
    with pytest.raises(ConfigError, match="--decode .* on masks; hyperldm models"):
        check_treatments(s, "hyperldm", False, None)


# --------------------------------------------------------------------------- class-aware decoding


def test_class_aware_decoding_paints_each_class_region_with_spectra_the_scorer_assigns_to_it(rng):
    x, y = quadrants(rng)
    offsets = np.array([0.0, 0.01, -0.02, 0.03])  # a residual of its own per class: real minus "reconstruction"

    def reconstruct(idx):
        return x[idx] - offsets[y[idx]][:, None, None]

    refs = build_class_references(x, y, reconstruct, 4, per_class=200, patches_per_class=6, patch=4)
    assert (np.bincount(refs.patch_classes) == 6).all() and (refs.patch_cover == 1).all()  # the purest patches
    scorer = LabelFidelity(4, ignore_index=0, n_estimators=30, seed=0).fit(x, y)
    # a layout the images know nothing about: decoded images of the wrong classes everywhere
    layout = np.zeros((3, 16, 16), np.int64)
    layout[:, 4:12, 4:12], layout[1, :, 8:], layout[2, 10:, :] = 1, 2, 3
    decoded = x[:3, :, :, ::-1, ::-1].copy()  # rotated windows: other classes than the layout's
    decoded = np.clip(decoded + rng.normal(0, 0.05, decoded.shape), 0, 1).astype(np.float32)
    assert (scorer.predict(decoded)[layout > 0] != layout[layout > 0]).mean() > 0.3
    painted = ClassPainter(refs, "snap", alpha=1.0, k=3)(decoded, layout, painter_rngs(0, [0, 1, 2]))
    pred = scorer.predict(painted)
    assert (pred[layout > 0] == layout[layout > 0]).all()  # every labelled pixel is its class to the scorer
    # the same sample is painted the same in any batch
    again = ClassPainter(refs, "snap", alpha=1.0, k=3)(decoded[1:2], layout[1:2], painter_rngs(0, [1]))
    np.testing.assert_array_equal(again[0], painted[1])
    # residual patches: each class region gets its own class's residual, nothing else changes
    flat = np.full_like(decoded, 0.5)
    res = ClassPainter(refs, "residual")(flat, layout, painter_rngs(0, [0, 1, 2])) - flat
    for k in range(4):
        np.testing.assert_allclose(np.moveaxis(res, 2, -1)[:, 0][layout == k], offsets[k], atol=1e-3)
    # blending: alpha 0.5 sits halfway between the decoded and the snapped spectrum
    half = ClassPainter(refs, "snap", alpha=0.5, k=3)(decoded, layout, painter_rngs(0, [0, 1, 2]))
    np.testing.assert_allclose(half, (decoded + painted) / 2, atol=1e-6)


def test_decoding_in_the_writer_paints_the_mask_with_its_classes(cleaning_runs, tmp_path):
    model = cleaning_runs / "layout" / "model"
    assert (model / "class_references.safetensors").is_file() and (model / "real_texture.json").is_file()
    out = tmp_path / "snap"
    assert main(["sample", str(model), "-n", "4", "--steps", "2", "--previews", "0", "--out", str(out),
                 "--decode", "snap", "--snap-k", "3"]) == 0
    ds = SyntheticDataset(out)
    info = json.loads((model / "specdm.json").read_text())
    scorer = LabelFidelity(len(info["class_names"]), 0, seed=0).fit_pixels(*load_pixels(model))
    norm = Normalizer.from_dict(info["normalization"])
    x, y = ds.arrays(None, norm)
    lab = y > 0
    assert (scorer.predict(x)[lab] == y[lab]).mean() > 0.99
    assert ds.meta["decode"]["mode"] == "snap" and ds.meta["decode"]["k"] == 3
    assert "## Class-aware decoding" in (out / "README.md").read_text()
    both = tmp_path / "both"
    assert main(["sample", str(model), "-n", "2", "--steps", "2", "--previews", "0", "--out", str(both),
                 "--decode", "snap+residual", "--snap-alpha", "0.5"]) == 0
    assert SyntheticDataset(both).meta["decode"]["alpha"] == 0.5
    # drawing only reference spectra the cleaning rule accepts: cleaning then relabels nothing
    acc = tmp_path / "accepted"
    assert main(["sample", str(model), "-n", "3", "--steps", "2", "--previews", "0", "--out", str(acc),
                 "--decode", "snap", "--snap-pool", "accepted", "--clean", "loss_ratio"]) == 0
    meta = SyntheticDataset(acc).meta
    assert meta["decode"]["pool"] == "accepted" and meta["clean"]["relabelled_pixels"] == 0


# --------------------------------------------------------------------------- hard-class steering


def test_hard_class_targets_raise_the_share_of_the_hardest_classes(rng):
    real = np.array([0.4, 0.3, 0.2, 0.1])
    loss = np.array([np.nan, 0.1, 0.1, 0.6])
    targets, steered = hard_class_targets(loss, real, ignore_index=0)
    assert not steered[0] and steered[1:].all() and targets[0] == 0.4
    assert targets.sum() == pytest.approx(1.0) and targets[3] > real[3] and targets[1] < real[1]
    # layouts drawn toward the targets hold more of the hard class
    masks = np.stack([np.full((8, 8), c) for c in (0, 0, 1, 1, 1, 2, 2, 3)] + [rng.integers(0, 4, (8, 8))])
    plain = RealLayouts(masks, 4, None, 0.0, 0, seed=1)
    steered_layouts = RealLayouts(masks, 4, (targets, steered), 0.0, 0, seed=1)
    assert steered_layouts.expected_shares()[3] > plain.expected_shares()[3] + 0.05
    drawn = steered_layouts.layouts(range(400))
    assert (drawn == 3).mean() > (plain.layouts(range(400)) == 3).mean() + 0.05
    # joint models: samples holding the hard class are kept more often, and the kept share rises
    accept = HardClassAcceptance(targets, steered, real)
    p = accept.probability(masks)
    assert p[-2] == 1.0 and p[2] < p[-2]
    u = rng.random((200, len(masks)))
    kept = masks[np.nonzero(u < p)[1]]
    assert (kept == 3).mean() > (masks == 3).mean()


def test_hard_classes_in_the_writer_steer_layouts_and_joint_samples(cleaning_runs, tmp_path, capsys):
    layout = cleaning_runs / "layout" / "model"
    assert main(["sample", str(layout), "-n", "3", "--steps", "2", "--previews", "0", "--out", str(tmp_path / "l"),
                 "--hard-classes"]) == 0
    meta = SyntheticDataset(tmp_path / "l").meta
    h = meta["hard_classes"]
    assert h["steered_by"] == "layouts" and meta["inputs"]["layouts"]["class_targets"] == \
        [round(v, 4) for v in h["targets"]]
    assert main(["sample", str(layout), "-n", "2", "--out", str(tmp_path / "x"), "--hard-classes", "--balance"]) == 2
    assert "--hard-classes" in capsys.readouterr().err
    joint = cleaning_runs / "joint" / "model"
    assert main(["sample", str(joint), "-n", "3", "--steps", "2", "--previews", "0", "--out", str(tmp_path / "j"),
                 "--hard-classes", "--max-attempts", "2"]) == 0
    ds = SyntheticDataset(tmp_path / "j")
    h = ds.meta["hard_classes"]
    assert h["steered_by"] == "acceptance" and len(ds) == 3 and h["tries"] >= 3
    assert "## Hard classes" in (tmp_path / "j" / "README.md").read_text()


@pytest.fixture(scope="module")
def cleaning_runs(tmp_path_factory):
    """A tiny layout model and a tiny joint model on a fake scene whose class 0 is the ignore index."""
    tmp = tmp_path_factory.mktemp("cleaning")
    data = write_fake_files(tmp / "data", np.random.default_rng(3))
    for method in ("layout", "joint"):
        cfg = tiny_config({**data, "ignore_index": 0}, sampling={"num_samples": 2, "num_inference_steps": 2,
                                                                 "previews": 1})
        cfg["method"] = "layout" if method == "layout" else "specdm"
        with single_thread():
            assert main(["run", str(write_config(tmp / f"{method}.yaml", cfg)), "--run-dir", str(tmp / method)]) == 0
    return tmp
