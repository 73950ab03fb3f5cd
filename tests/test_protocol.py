"""``specdm benchmark CONFIG``: the protocol over spatial folds and label settings, end to end on a tiny scene.

A fold design computed from the label map (saved once), per fold and label setting a SpecDM generator trained on
that cell's data, the arms real, classical (chosen on validation), self_training and classical+specdm x1 with
paired seeds, cells pooled over (fold, seed) units, the primary comparison declared before the first training.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import single_thread, tiny_config, write_config, write_fake_files

from specdm.cli import main
from specdm.config import load_config
from specdm.data.datamodule import prepare_data
from specdm.errors import ConfigError
from specdm.evaluation.benchmark.protocol import (Cell, label_setting, parse_labels, parse_primary, parse_steps,
                                                  primary_of)

pytestmark = pytest.mark.usefixtures("one_thread")

ARGS = ["--labels", "0.5,1", "--seeds", "2", "--steps", "6", "--batch-size", "4", "--models", "unet"]


@pytest.fixture(scope="module")
def protocol(tmp_path_factory):
    """Fold 0 of a computed design, two label settings, run through the CLI."""
    tmp = tmp_path_factory.mktemp("protocol")
    data = write_fake_files(tmp / "data", np.random.default_rng(0), size=64, classes=5)
    cfg = tiny_config({**data, "ignore_index": 0})
    cfg["data"].pop("split")
    path = write_config(tmp / "cfg.yaml", cfg)
    out = tmp / "out"
    with single_thread():
        assert main(["benchmark", str(path), "--out", str(out), "--folds", "0", *ARGS]) == 0
    return tmp, path, out, json.loads((out / "benchmark.json").read_text())


def test_protocol_runs_every_arm_of_its_cells_paired_by_fold_and_seed(protocol):
    tmp, _, out, result = protocol
    proto = json.loads((out / "protocol.json").read_text())
    assert proto["design"] == str(out / "design.json") and (out / "design.json").is_file()
    assert proto["arms"] == ["real", "classical", "self_training", "classical+specdm"]
    assert proto["primary"] == {"model": "unet", "setting": "50%", "metric": "miou", "arm": "classical+specdm x1",
                                "reference": "classical"}
    done = [c for c in result["cells"] if c["status"] == "complete"]
    assert all(c["model"] == "unet" and c["steps"] == 6 for c in done)
    assert {(c["fold"], c["setting"]) for c in done} == {(0, "50%"), (0, "full")}
    assert {c["setting"] for c in result["cells"]} == {"50%", "full"} and not result["complete"]
    runs = result["runs"]
    assert {(r["setting"], r["arm"]) for r in runs} == {(s, a) for s in ("50%", "full") for a in
                                                        ("real", "classical", "self_training", "classical+specdm x1")}
    assert all(r["fold"] == 0 for r in runs) and sorted({r["seed"] for r in runs}) == [0, 1]
    entry = result["summary"]["unet"]["50%"]["miou"]["classical+specdm x1"]["vs_classical"]
    assert entry["seeds"] == [[0, 0], [0, 1]] and entry["role"] == "primary"
    assert result["primary"]["status"] == "measured" and result["primary"]["n_units"] == 2
    # every cell has its generator, trained on that cell's labels only
    for c in done:
        gen = out / "generators" / f"fold0-{Cell(out, 0, c['share']).dir.name}"
        meta = json.loads((gen / "synthetic" / "metadata.json").read_text())
        assert meta["complete"] and meta["num_samples"] == 6
    half = next(c for c in done if c["setting"] == "50%")
    assert 0.3 < half["labels"]["kept_share"] < 0.7
    report = (out / "report.md").read_text()
    assert "Primary comparison" in report and "classical+specdm x1 vs classical (mIoU, primary)" in report


def test_the_generator_of_a_cell_sees_only_the_cells_training_labels(protocol):
    """The cell's data: fold 0's training part, labels thinned to the setting; the generator's stage 1 read the
    same normalization and its set's labels come from those windows."""
    tmp, path, out, _ = protocol
    cfg = load_config(str(path), ["data.split={kind: folds, design: " + str(out / "design.json") + ", fold: 0}",
                                  "data.labels_keep=0.5"])
    data = prepare_data(cfg.data)
    test = data.test_masks[0]
    assert data.reference.mask[test].size and not data.train_masks[0][test].any()
    gen = json.loads((out / "generators" / "fold0-50pct" / "model" / "specdm.json").read_text())
    assert gen["normalization"] == data.normalizer.to_dict()


def test_an_existing_protocol_is_only_continued_and_with_the_same_settings(protocol, capsys):
    tmp, path, out, _ = protocol
    assert main(["benchmark", str(path), "--out", str(out), "--folds", "1", *ARGS]) == 2
    assert "holds a benchmark protocol" in capsys.readouterr().err
    assert main(["benchmark", str(path), "--out", str(out), "--folds", "1", "--resume", *ARGS[:-2],
                 "--models", "segformer"]) == 2
    assert "was declared with other models" in capsys.readouterr().err


def test_the_primary_model_runs_first_over_every_cell(protocol, tmp_path, monkeypatch):
    """Model-major order: the primary comparison's model over every cell (settings in order, then folds), then
    the other model; each cell's generator is asked for before its first training."""
    from specdm.recipes import benchmark as recipe

    tmp, path, out, _ = protocol
    calls = []
    monkeypatch.setattr(recipe, "benchmark", lambda ccfg, synthetic, cell_dir, **kw: calls.append(
        (kw["models"][0], cell_dir.parent.parent.name, cell_dir.parent.name, sorted(synthetic))))
    monkeypatch.setattr(recipe, "_generator", lambda ccfg, cell, o, kind, resume: o / f"gen-{cell.fold}-{cell.setting}")
    monkeypatch.setattr(recipe, "combine", lambda *a: {"cells": []})
    monkeypatch.setattr(recipe, "write_protocol_report", lambda *a: None)
    primary = {"model": "unet", "setting": "50%", "metric": "miou", "arm": "classical+specdm x1",
               "reference": "classical"}
    recipe.run_protocol(load_config(str(path)), tmp_path / "o", design=str(out / "design.json"), folds=[0, 1],
                        labels=(0.5, 1.0), models=["segformer", "unet"], seeds=1, steps=6, primary=primary)
    cells = [("fold0", "50pct"), ("fold1", "50pct"), ("fold0", "full"), ("fold1", "full")]
    assert [c[:3] for c in calls] == [(m, f, s) for m in ("unet", "segformer") for f, s in cells]
    assert all(c[3] == ["specdm"] for c in calls)
    # a complete cell (restored from a copy, say) is kept: neither its generator nor its trainings run again
    done = tmp_path / "o" / "fold1" / "full" / "segformer" / "benchmark.json"
    done.parent.mkdir(parents=True)
    done.write_text(json.dumps({"complete": True}))
    (tmp_path / "o" / "fold0" / "50pct" / "unet").mkdir(parents=True)
    (tmp_path / "o" / "fold0" / "50pct" / "unet" / "benchmark.json").write_text(json.dumps({"complete": False}))
    calls.clear()
    recipe.run_protocol(load_config(str(path)), tmp_path / "o", design=str(out / "design.json"), folds=[0, 1],
                        labels=(0.5, 1.0), models=["segformer", "unet"], seeds=1, steps=6, primary=primary,
                        resume=True)
    assert [c[:3] for c in calls] == [(m, f, s) for m in ("unet", "segformer") for f, s in cells][:-1]


def test_protocol_options_are_checked(capsys):
    assert parse_labels("1,0.05,0.2") == [0.05, 0.2, 1.0] and label_setting(0.05) == "5%" and label_setting(1) == "full"
    for bad in ("0", "1.5", "0.2,0.2", "x"):
        with pytest.raises(ConfigError):
            parse_labels(bad)
    assert primary_of(["unet", "segformer"], [1, 0.2], "classical+specdm x1")["setting"] == "20%"
    m = ["unet", "segformer"]
    assert parse_steps("500", m, [0.05, 1]) == {"unet": {"5%": 500, "full": 500}, "segformer": {"5%": 500, "full": 500}}
    assert parse_steps("5%=250,full=2000", m, [0.05, 1])["segformer"] == {"5%": 250, "full": 2000}
    assert parse_steps("2000,unet=1000,segformer/full=4000", m, [0.05, 1]) == {
        "unet": {"5%": 1000, "full": 1000}, "segformer": {"5%": 2000, "full": 4000}}
    for bad in ("5%=250", "5%=250,20%=3,full=1", "x", "5%=0,full=1", "pixel=3"):
        with pytest.raises(ConfigError):
            parse_steps(bad, m, [0.05, 1])
    assert parse_primary("segformer/full/classical vs real", ["unet", "segformer"], [0.2, 1], ["real", "classical"]) == {
        "model": "segformer", "setting": "full", "metric": "miou", "arm": "classical", "reference": "real"}
    with pytest.raises(ConfigError):
        parse_primary("unet/50%/classical vs real", ["unet"], [0.2, 1], ["real", "classical"])

    assert main(["benchmark", "indian_pines", "--synthetic", "a=b", "--folds", "0"]) == 2
    assert "belong to the protocol over folds" in capsys.readouterr().err
