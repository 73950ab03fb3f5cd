"""Spatial fold designs (data.split kind folds) and label-scarce settings (data.labels_keep), on real computations:
every training window is checked against the test part, every count is recounted from the masks."""

import json

import numpy as np
import pytest
from conftest import fake_scene, tiny_config, write_config, write_fake_files

from specdm.data import folds
from specdm.data.datamodule import prepare, prepare_data
from specdm.data.splits import compute_design, design_from_split, mask_regions, split_parts
from specdm.errors import ConfigError
from specdm.scene import Scene

NAMES = ["unlabelled", "a", "b", "c"]


def field_scene(rng, size=48, bands=5) -> Scene:
    """conftest's fake scene (16 class blocks of 12 pixels) with class 0 as unlabelled."""
    images, mask = fake_scene(rng, size=size, bands=bands, classes=4)
    return Scene(images, mask, NAMES, ignore_index=0)


def small_design(scene: Scene, k=3, block=4, guard=1, patch=8, seed=0) -> dict:
    return compute_design([scene], patch, k, block, guard, seed, restarts=1, steps=400, name="small")


def check_windows(prepared, size: int, guard: int) -> None:
    """No training window reads a test pixel, nor one within ``guard`` pixels of the test part."""
    for i, test in enumerate(prepared.test_masks):
        near = folds.near(test, guard)
        for w in prepared.train.windows:
            if w.scene == i:
                assert not near[w.r : w.r + size, w.c : w.c + size].any()


def test_window_cover_and_guard_match_brute_force(rng):
    for _ in range(20):
        h, w = rng.integers(6, 40, 2)
        allowed = folds.expand(rng.random((h // 3 + 1, w // 3 + 1)) < 0.75, 3, (h, w))
        size, guard = int(rng.integers(1, 12)), int(rng.integers(0, 4))
        fit = folds.window_fit(allowed, size)
        cover = np.zeros((h, w), bool)
        for r, c in zip(*np.nonzero(fit)):
            assert allowed[r : r + size, c : c + size].all()
            cover[r : r + size, c : c + size] = True
        assert (cover == folds.window_cover(allowed, size)).all()
        near = np.zeros((h, w), bool)
        for r, c in zip(*np.nonzero(allowed)):
            near[max(r - guard, 0) : r + guard + 1, max(c - guard, 0) : c + guard + 1] = True
        assert (near == folds.near(allowed, guard)).all()


@pytest.mark.parametrize("seed", range(10))
def test_windows_in_a_rectangle_mask_are_those_of_the_rectangle(seed):
    """Cutting by mask is cutting by region where the mask is a rectangle: same windows, same order."""
    from specdm.data.splits import Region, regions_mask
    from specdm.data.windows import make_windows, make_windows_in

    rng = np.random.default_rng(seed)
    h, w = rng.integers(20, 60, 2)
    scene = Scene([rng.random((h, w, 2), dtype=np.float32)], rng.integers(0, 3, (h, w)), ["u", "a", "b"],
                  ignore_index=0)
    r0, c0 = rng.integers(0, 8, 2)
    g = Region(0, int(r0), int(rng.integers(r0 + 12, h + 1)), int(c0), int(rng.integers(c0 + 12, w + 1)))
    size, stride, min_lab = int(rng.integers(3, 12)), int(rng.integers(1, 6)), float(rng.choice([0.0, 0.5]))
    assert make_windows_in([scene], regions_mask([scene], [g]), size, stride, min_lab) == \
        make_windows([scene], [g], size, stride, min_lab)


def test_mask_regions_cover_a_mask_exactly(rng):
    for _ in range(20):
        mask = rng.random(tuple(rng.integers(1, 30, 2))) < 0.6
        painted = np.zeros(mask.shape, int)
        for g in mask_regions(mask, 0):
            painted[g.r0 : g.r1, g.c0 : g.c1] += 1
        assert (painted == mask).all()  # disjoint, and exactly the mask


def test_block_design_partitions_the_blocks_and_keeps_every_class_on_both_sides(rng):
    scene = field_scene(rng)
    d = small_design(scene)
    grid = np.asarray(d["grid"])
    has_labels = folds.expand(np.arange(grid.size).reshape(grid.shape), 4, scene.shape)[scene.mask != 0]
    live = np.zeros(grid.size, bool)
    live[np.unique(has_labels)] = True
    assert ((grid.ravel() >= 0) == live).all()  # every block with labels in exactly one fold, the others in none
    tests = [folds.fold_parts(d, f, [scene.shape])[1][0] for f in range(3)]
    assert (sum(t.astype(int) for t in tests) == folds.expand(grid >= 0, 4, scene.shape)).all()  # a partition
    assert d["required_classes"] == [1, 2, 3]
    for f, rec in enumerate(d["folds"]):
        train, test = folds.fold_parts(d, f, [scene.shape])
        assert not (train[0] & folds.near(test[0], 1)).any()  # the guard
        reach = folds.window_cover(train[0], 8)
        for c in (1, 2, 3):  # recounted from the masks, not read from the record
            assert ((scene.mask == c) & test[0]).sum() >= 10 and ((scene.mask == c) & reach).sum() >= 10
        assert rec["both_sides"] == [1, 2, 3] and rec["missing"] == []
        expected = np.bincount(scene.mask[test[0]], minlength=4)
        expected[0] = 0  # unlabelled pixels are not counted
        assert rec["test_pixels"] == expected.tolist()


@pytest.mark.parametrize("seed", range(6))
def test_no_training_window_of_any_fold_touches_a_test_pixel(tmp_path, seed):
    rng = np.random.default_rng(seed)
    scene = field_scene(rng, size=int(rng.integers(40, 64)))
    guard, size = int(rng.integers(0, 3)), int(rng.choice([8, 12]))
    d = small_design(scene, k=int(rng.integers(2, 4)), block=int(rng.choice([4, 6])), guard=guard, patch=size,
                     seed=seed)
    path = folds.save_design(d, tmp_path / "d.json")
    for f in range(d["k"]):
        data = prepare([scene], {"kind": "folds", "design": str(path), "fold": f}, size, int(rng.integers(1, 5)))
        test = data.test_masks[0]
        check_windows(data, size, guard)
        painted = np.zeros(scene.shape, int)
        for g in data.split["train"]:
            painted[g.r0 : g.r1, g.c0 : g.c1] += 1
        assert (painted == data.train_masks[0]).all() and not (data.train_masks[0] & test).any()
        x, y = data.test_pixels()
        assert y.size == test.sum() and (np.sort(y.ravel()) == np.sort(scene.mask[test])).all()
        held = data.held_out()
        for w in held.windows if held is not None else []:
            assert test[w.r : w.r + size, w.c : w.c + size].all()


def test_design_file_round_trips(tmp_path, rng):
    d = small_design(field_scene(rng))
    path = folds.save_design(d, tmp_path / "design.json")
    back = folds.load_design(str(path))
    assert back.pop("source") == str(path) and len(back.pop("sha256")) == 64
    assert back == json.loads(json.dumps(d))
    assert json.loads(path.read_text())["format"] == "specdm.fold_design" and back["version"] == 1


def test_a_fold_split_fits_normalization_on_its_training_part_only(tmp_path, rng):
    scene = field_scene(rng)
    d = small_design(scene, guard=2)
    path = folds.save_design(d, tmp_path / "d.json")
    train, test = folds.fold_parts(d, 0, [scene.shape])
    guard_px = ~train[0] & ~test[0]
    assert guard_px.any()
    image = scene.images[0].copy()
    image[np.argwhere(test[0])[0][0], np.argwhere(test[0])[0][1]] = 1e6  # an outlier in a test block
    image[np.argwhere(guard_px)[0][0], np.argwhere(guard_px)[0][1]] = -1e6  # and one in the guard margin
    outlying = Scene([image], scene.mask, NAMES, ignore_index=0)
    data = prepare([outlying], {"kind": "folds", "design": str(path), "fold": 0}, 8, 2)
    assert data.normalizer.high.max() < 1e4 and data.normalizer.low.min() > -1e4
    expected = image[train[0]]
    np.testing.assert_allclose(data.normalizer.low, expected.min(0))
    np.testing.assert_allclose(data.normalizer.high, expected.max(0))


def test_bad_designs_are_refused_naming_the_file(tmp_path, rng):
    scene = field_scene(rng)
    d = small_design(scene)
    path = folds.save_design(d, tmp_path / "d.json")
    other = field_scene(rng, size=40)
    with pytest.raises(ConfigError, match=r"d\.json: design is for a \(48, 48\) scene"):
        split_parts([other], {"kind": "folds", "design": str(path), "fold": 0})
    with pytest.raises(ConfigError, match=r"d\.json: data.split.fold 3 is out of range: the design has folds 0..2"):
        split_parts([scene], {"kind": "folds", "design": str(path), "fold": 3})
    with pytest.raises(ConfigError, match="'no_such_design' is neither a fold design file .* packaged .*indian_pines"):
        split_parts([scene], {"kind": "folds", "design": "no_such_design", "fold": 0})
    with pytest.raises(ConfigError, match=r"missing\.json: fold design file not found"):
        split_parts([scene], {"kind": "folds", "design": str(tmp_path / "missing.json"), "fold": 0})
    relabelled = Scene(scene.images, np.where(scene.mask == 1, 2, scene.mask), NAMES, ignore_index=0)
    with pytest.raises(ConfigError, match=r"d\.json: design was made for other labels"):
        split_parts([relabelled], {"kind": "folds", "design": str(path), "fold": 0})
    for change, message in (({"version": 2}, "version 2"), ({"format": "x"}, "is not a fold design"),
                            ({"grid": [[7]]}, "block grid"), ({"k": 2}, "declares k = 2")):
        bad = folds.save_design({**d, **change}, tmp_path / "bad.json")
        with pytest.raises(ConfigError, match=rf"bad\.json: .*{message}"):
            folds.load_design(str(bad))


def test_config_errors_come_before_any_training(tmp_path, rng):
    """Through a config: the design is read and checked in prepare_data, which runs before either stage."""
    from specdm.config import load_config

    data = write_fake_files(tmp_path / "data", rng)
    d = folds.save_design(small_design(field_scene(rng, size=40)), tmp_path / "d.json")
    cfg = tiny_config({**data, "ignore_index": 0, "split": {"kind": "folds", "design": str(d), "fold": 0}})
    with pytest.raises(ConfigError, match=r"d\.json: design is for a \(40, 40\) scene"):
        prepare_data(load_config(str(write_config(tmp_path / "c.yaml", cfg))).data)
    for split, message in (({"kind": "folds"}, "kind folds needs fold"),
                           ({"kind": "rows", "train": [0, 8], "fold": 1}, "fold apply to kind folds"),
                           ({"kind": "folds", "fold": 0, "design": "indian_pines", "k": 3}, "k make a design"),
                           ({"kind": "folds", "fold": 0, "train": [0, 8]}, "leave out train and test")):
        with pytest.raises(ConfigError, match=message):
            load_config(str(write_config(tmp_path / "c.yaml", tiny_config({**data, "split": split}))))


def test_a_design_computed_from_the_label_map(tmp_path, rng):
    data = write_fake_files(tmp_path / "data", rng)
    from specdm.config import load_config

    cfg = tiny_config({**data, "ignore_index": 0,
                       "split": {"kind": "folds", "design": None, "fold": 1, "k": 2, "block": 8, "guard": 1}})
    prepared = prepare_data(load_config(str(write_config(tmp_path / "c.yaml", cfg))).data)
    record = prepared.split_record()["split"]
    assert record["kind"] == "folds" and record["k"] == 2 and record["block"] == 8 and record["guard"] == 1
    assert record["classes_both_sides"] == [1, 2, 3] and record["classes_missing"] == []
    check_windows(prepared, 16, 1)


def test_scene_designs_hold_whole_scenes(rng):
    scenes = [Scene(*fake_scene(rng, size=24, classes=2, change=True), ["no change", "change"], task="change",
                    name=f"city{i}") for i in range(6)]
    d = compute_design(scenes, 8, k=3)
    assert d["unit"] == "scenes" and sorted(s["fold"] for s in d["scenes"]) == [0, 0, 1, 1, 2, 2]
    for f in range(3):
        data = prepare(scenes, {"kind": "folds", "design": None, "fold": f, "k": 3}, 8, 8)
        held = {s["name"] for s in d["scenes"] if s["fold"] == f}
        assert {scenes[g.scene].name for g in data.split["test"]} == held
        assert all(m.all() == (s.name in held) and m.any() == (s.name in held) for m, s in zip(data.test_masks, scenes))
        assert not {scenes[w.scene].name for w in data.train.windows} & held
        order = [s.name for s in scenes]
        assert data.split_record()["split"]["fold_table"]["test_scenes"] == sorted(held, key=order.index)


def test_a_rows_split_as_a_design_gives_the_same_parts(rng):
    scene = field_scene(rng)
    spec = {"kind": "rows", "train": [0, 36], "test": [36, 48]}
    d = design_from_split([scene], spec, 8, "rows")
    assert d["k"] == 1 and d["block"] == 12 and d["guard"] == 0
    rows = split_parts([scene], spec)
    train, test = folds.fold_parts(d, 0, [scene.shape])
    assert (train[0] == rows.train[0]).all() and (test[0] == rows.test[0]).all()
    with pytest.raises(ConfigError, match="in neither part"):
        design_from_split([scene], {"kind": "rows", "train": [0, 30], "test": [36, 48]}, 8)


# --------------------------------------------------------------------------- label-scarce settings


@pytest.mark.parametrize("keep, cell", [(0.05, 4), (0.2, 4), (0.5, 8), (0.2, 3)])
def test_thinned_labels_keep_the_share_in_whole_cells(keep, cell, rng, tmp_path):
    scene = field_scene(rng, size=64)
    path = folds.save_design(small_design(scene, k=2, block=8, guard=1, patch=8), tmp_path / "d.json")
    rows = {"kind": "rows", "train": [0, 48], "test": [48, 64]}
    for split in (rows, {"kind": "folds", "design": str(path), "fold": 0}):
        data = prepare([scene], split, 8, 2, labels_keep=keep, labels_cell=cell, labels_seed=3)
        train, test = data.train_masks[0], data.test_masks[0]
        thinned = data.scenes[0].mask
        labelled_train = (scene.mask != 0) & train
        kept = (thinned != 0) & train
        target = keep * labelled_train.sum()
        assert target <= kept.sum() < target + cell * cell  # the share, within one cell's worth, and no more
        assert not ((thinned != 0) & ~train & ~test).any()  # nothing kept outside the training part
        assert (thinned[test] == scene.mask[test]).all()  # the test part keeps its labels
        assert (thinned[kept] == scene.mask[kept]).all()
        # kept labels come in whole cells of the grid that touch no test pixel
        cells = np.zeros((-(-64 // cell),) * 2, bool)
        for r, c in zip(*np.nonzero(kept)):
            cells[r // cell, c // cell] = True
        for r, c in zip(*np.nonzero(cells)):
            sl = (slice(r * cell, (r + 1) * cell), slice(c * cell, (c + 1) * cell))
            assert not test[sl].any() and (kept[sl] == labelled_train[sl]).all()
        rec = data.labels
        assert rec["kept_pixels"] == kept.sum() and rec["labelled_train_pixels"] == labelled_train.sum()
        assert rec["kept_share"] == pytest.approx(kept.sum() / labelled_train.sum(), abs=1e-6)
        for c, name in enumerate(NAMES[1:], 1):
            assert rec["kept_pixels_per_class"].get(name, 0) == ((thinned == c) & train).sum()
        present = {n for c, n in enumerate(NAMES) if c and (scene.mask[train] == c).any()}
        assert set(rec["classes_kept"]) | set(rec["classes_lost"]) == present
        # supervised windows hold a kept label; the image windows are every training window
        for w in data.train.windows:
            assert (thinned[w.r : w.r + 8, w.c : w.c + 8] != 0).any()
        image = data.image_windows()
        assert len(image) >= len(data.train) and set(data.train.windows) <= set(image.windows)
        # stage statistics see only the kept labels
        stats = data.train_statistics()
        assert stats.counts[1:].sum() == kept.sum()


def test_thinning_is_seeded(rng):
    scene = field_scene(rng, size=64)
    spec = {"kind": "rows", "train": [0, 48], "test": [48, 64]}
    a, b, c = (prepare([scene], spec, 8, 2, labels_keep=0.2, labels_cell=4, labels_seed=s) for s in (1, 1, 2))
    assert (a.scenes[0].mask == b.scenes[0].mask).all() and (a.scenes[0].mask != c.scenes[0].mask).any()
    full = prepare([scene], spec, 8, 2)
    assert full.scenes[0] is scene and full.labels["kept_share"] == 1.0


def test_thinning_a_fully_labelled_scene_adds_an_unlabelled_class(rng):
    """A change map labels every pixel: thinned pixels get a value of their own, one past the classes, named
    'unlabelled', which is the scene's ignore_index; kept and test pixels keep their labels."""
    images, mask = fake_scene(rng, size=32, classes=2, change=True)
    scene = Scene(images, mask, ["no change", "change"], task="change", name="city", source="city.tif")
    data = prepare([scene], {"kind": "rows", "train": [0, 24], "test": [24, 32]}, 8, 4, labels_keep=0.2)
    ref = data.reference
    assert ref.class_names == ["no change", "change", "unlabelled"] and ref.ignore_index == 2
    assert np.array_equal(ref.mask[24:], mask[24:])  # the test part untouched
    kept = ref.mask[:24] != 2
    assert np.array_equal(ref.mask[:24][kept], mask[:24][kept])
    assert abs(kept.sum() / kept.size - 0.2) <= 8 * 8 / kept.size  # within one cell of the share


# --------------------------------------------------------------------------- the CLI


def test_cli_folds_writes_a_design_that_a_config_uses(tmp_path, rng, capsys):
    from specdm.cli import main
    from specdm.config import load_config

    data = write_fake_files(tmp_path / "data", rng)
    cfg_path = write_config(tmp_path / "c.yaml", tiny_config({**data, "ignore_index": 0}))
    out = tmp_path / "design.json"
    args = ["folds", str(cfg_path), "--k", "2", "--block", "8", "--guard", "1", "--restarts", "1", "--steps", "300",
            "--out", str(out)]
    assert main(args) == 0
    shown = capsys.readouterr().out
    assert "| 1 class_1 | " in shown and "fold 1: train / test" in shown and f"design: {out}" in shown
    d = folds.load_design(str(out))
    assert d["made_by"].startswith("specdm folds") and d["k"] == 2 and d["patch_size"] == 16
    assert main(args) == 2 and "exists already" in capsys.readouterr().err
    cfg = load_config(str(cfg_path), [f"data.split={{kind: folds, design: {out}, fold: 1}}"])
    check_windows(prepare_data(cfg.data), 16, 1)
    assert main(["folds", str(cfg_path), "--from-split", "--out", str(tmp_path / "rows.json")]) == 0
    assert folds.load_design(str(tmp_path / "rows.json"))["k"] == 1
    capsys.readouterr()
    assert main(["folds", "--show", "indian_pines"]) == 0  # a packaged design's table, without data or config
    assert "| 13 Wheat | 205 | 0.020 | " in capsys.readouterr().out
    assert main(["folds", "--show", "nope"]) == 2 and "'nope' is neither" in capsys.readouterr().err


def test_cli_parses_folds_without_importing_torch():
    import subprocess
    import sys

    probe = ("import sys; from specdm.cli import build_parser; "
             "build_parser().parse_args(['folds', 'c', '--out', 'o.json']); "
             "print(sorted(m for m in ('torch', 'diffusers', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- the packaged designs, on the real data


def _required_on_both_sides(design, scenes):
    names = [s.name for s in scenes]
    masks = [s.mask for s in scenes]
    folds.check_design(design, 0, names, masks, scenes[0].class_names, scenes[0].ignore_index)
    for f in range(design["k"]):
        train, test = folds.fold_parts(design, f, [m.shape for m in masks], names)
        for c in design["required_classes"]:
            in_test = sum(int(((m == c) & t).sum()) for m, t in zip(masks, test))
            in_windows = sum(int(((m == c) & folds.window_cover(t, design["patch_size"])).sum())
                             for m, t in zip(masks, train))
            assert in_test >= design["min_side"] and in_windows >= design["min_side"], (design["name"], f, c)


@pytest.mark.shared_data
def test_packaged_indian_pines_design(data_dir):
    from specdm.datasets import load_scenes

    scenes = load_scenes("indian_pines", root=data_dir)
    d = folds.load_design("indian_pines")
    assert d["k"] == 4 and d["block"] == 8 and d["guard"] == 2
    assert len(d["required_classes"]) == 13 and 13 in d["required_classes"]  # Wheat among them
    _required_on_both_sides(d, scenes)
    for f in range(4):
        data = prepare(scenes, {"kind": "folds", "design": "indian_pines", "fold": f}, 32, 4, min_labelled=0.1)
        check_windows(data, 32, 2)
        assert len(data.train) >= 50


@pytest.mark.shared_data
def test_packaged_indian_pines_rows_design_is_the_protocol_split(data_dir):
    from specdm.datasets import load_scenes

    scenes = load_scenes("indian_pines", root=data_dir)
    d = folds.load_design("indian_pines_rows")
    rows = split_parts(scenes, {"kind": "rows", "train": [0, 87], "test": [87, 145]})
    train, test = folds.fold_parts(d, 0, [scenes[0].shape])
    assert (train[0] == rows.train[0]).all() and (test[0] == rows.test[0]).all()
    assert d["folds"][0]["both_sides"] == [2, 3, 5, 6, 10, 11, 14]  # PROTOCOL.md's averaged classes


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["oscd", "oscd_protocol"])
def test_packaged_oscd_designs(data_dir, name):
    from specdm.datasets import load_scenes

    scenes = load_scenes("oscd", root=data_dir)
    d = folds.load_design(name)
    _required_on_both_sides(d, scenes)
    assert d["required_classes"] == [0, 1]
    if name == "oscd":
        assert d["k"] == 4 and all(len(rec["test_scenes"]) == 2 for rec in d["folds"])
    else:
        assert d["folds"][0]["test_scenes"] == ["oscd_hongkong", "oscd_rennes"]
