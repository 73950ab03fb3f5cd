"""``specdm evaluate`` on a tiny fake scene: real windows copied back must score near perfectly,
corrupted ones badly; encoders are stored and reused; the CLI writes both reports."""

from __future__ import annotations

import json
import math
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import tiny_config, write_config, write_fake_files

from specdm.cli import main
from specdm.config import load_config
from specdm.errors import ConfigError, DataError, OutputError
from specdm.evaluation.evaluate import evaluate
from specdm.output.dataset import MARKER, DatasetWriter, image_dirs
from specdm.data.datamodule import prepare_data

STEPS = 20  # encoder training steps: tiny, the features only need to be fixed


def _strict_json(path):
    def no_nan(name):
        raise AssertionError(f"{path} holds {name}")

    return json.loads(path.read_text(), parse_constant=no_nan)


def _real(folder, change=False) -> SimpleNamespace:
    """A fake scene (classes 1..3 labelled, 0 = ignored), its config and its training windows."""
    data = write_fake_files(folder / "scene", np.random.default_rng(0), change=change)
    cfg_path = write_config(folder / "real.yaml", tiny_config({**data, "stride": 4, "ignore_index": 0}))
    cfg = load_config(str(cfg_path))
    prepared = prepare_data(cfg.data)
    x, y = (t.numpy() for t in prepared.train.batch(range(len(prepared.train))))
    norm = prepared.normalizer
    phys = np.moveaxis(norm.inverse(np.moveaxis(x, 2, -1)), -1, 2)
    return SimpleNamespace(cfg=cfg, cfg_path=cfg_path, x=x, y=y, phys=phys, norm=norm.to_dict(),
                           classes=prepared.reference.class_names, source=prepared.reference.source)  # fmt: skip


def write_synthetic(folder, images, masks, real, normalization=None):
    """A synthetic data set of ``images`` (N, T, C, H, W) in the data's own units and ``masks`` (N, H, W)."""
    n, t, c, size, _ = images.shape
    writer = DatasetWriter(folder, n, t, c, size, len(real.classes), "npy", "png")
    for i in range(n):
        writer.write(i, images[i], masks[i])
    meta = {
        MARKER: "test",
        "num_samples": n,
        "images": image_dirs(t),
        "format": {"image": "npy", "mask": "png"},
        "class_names": real.classes,
        "ignore_index": 0,
        "normalization": normalization or real.norm,
    }
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    real = _real(root)
    rng = np.random.default_rng(1)
    perm = np.array([3, 0, 5, 1, 4, 2])  # every band moves
    corrupt = real.phys[:, :, perm]
    wrong = rng.integers(0, len(real.classes), real.y.shape)
    real.copy_dir = write_synthetic(root / "copy", real.phys, real.y, real)
    real.corrupt_dir = write_synthetic(root / "corrupt", corrupt, wrong, real)
    real.encoders = root / "encoders"
    real.root = root
    return real


def _run(real, synth, out, encoders=None, **kw):
    kw.setdefault("max_spectra", 2000)
    return evaluate(real.cfg, synth, out, encoders or real.encoders, encoder_steps=STEPS, **kw)


def test_copied_windows_score_near_perfectly_and_corrupted_ones_badly(seg):
    good = _run(seg, seg.copy_dir, seg.root / "out_copy")
    bad = _run(seg, seg.corrupt_dir, seg.root / "out_corrupt")

    for kind in ("image", "mask", "joint"):
        g, b = good["distribution"][kind], bad["distribution"][kind]
        assert g["fd"] < 1e-3 * b["fd"], kind
        assert g["fd"] < 0.1 * g["fd_real_halves"], kind  # below the noise floor: same samples
        assert g["kid_mean"] < b["kid_mean"], kind
    assert "pair" not in good["distribution"]
    assert good["distribution"]["image"]["n_real"] == good["distribution"]["image"]["n_synthetic"] == len(seg.x)
    assert good["distribution"]["joint"]["feature_dim"] == 128

    gs, bs = good["spectral"], bad["spectral"]
    assert gs["msad_rad"] == pytest.approx(0, abs=1e-4)
    assert bs["msad_rad"] > 0.1
    assert gs["msad_classes"] == [1, 2, 3]  # class 0 is the ignore_index
    assert gs["msad_deg"] == pytest.approx(math.degrees(gs["msad_rad"]))
    assert gs["class_proportion_tv"] == pytest.approx(0, abs=1e-9)
    assert bs["class_proportion_tv"] > 0.05
    for c in gs["per_class"]:
        assert c["real_fraction"] == pytest.approx(c["synthetic_fraction"])
    assert gs["precision_recall"]["precision"] > 0.8 and gs["precision_recall"]["recall"] > 0.8
    assert bs["precision_recall"]["precision"] < 0.3
    assert gs["precision_recall"]["n_spectra"] == 2000 and gs["precision_recall"]["k"] == 10
    assert gs["diversity"]["applicable"] is False

    assert good["inception_fid"]["computed"] is False and "--inception" in good["inception_fid"]["note"]
    assert good["warnings"] == []
    assert _strict_json(seg.root / "out_copy" / "evaluation.json") == good
    report = (seg.root / "out_copy" / "evaluation.md").read_text()
    assert "mSAD" in report and "sPr / sRec" in report and "not applicable" in report
    # label fidelity: copies of real windows carry the real labels, corrupted ones do not
    gf, bf = good["label_fidelity"], bad["label_fidelity"]
    assert [c["class"] for c in gf["classes"]] == [1, 2, 3]  # the ignore class is not scored
    for c in gf["classes"]:
        assert 0 <= c["ceiling"] <= 1 and c["nearest_real_class"]["class"] == c["class"]
    assert gf["min_ratio"] > 0.9 and bf["min_ratio"] < gf["min_ratio"]
    assert "## Label fidelity" in report


def test_encoders_are_saved_then_reused_with_identical_numbers(seg, tmp_path):
    first = _run(seg, seg.copy_dir, tmp_path / "a", tmp_path / "enc", seed=3)
    weights = tmp_path / "enc" / "image" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    second = _run(seg, seg.corrupt_dir, tmp_path / "b", tmp_path / "enc", seed=3)
    third = _run(seg, seg.copy_dir, tmp_path / "c", tmp_path / "enc", seed=3)
    assert not first["encoders"]["reused"] and second["encoders"]["reused"] and third["encoders"]["reused"]
    assert weights.stat().st_mtime_ns == stamp
    assert third["distribution"] == first["distribution"]
    assert first["encoders"]["models"]["image"]["training"]["seed"] == 3
    assert first["encoders"]["models"]["mask"]["training"]["steps"] == STEPS

    with pytest.raises(OutputError, match="other settings"):  # another seed: not the same encoders
        _run(seg, seg.copy_dir, tmp_path / "d", tmp_path / "enc", seed=4)
    retrained = _run(seg, seg.copy_dir, tmp_path / "d", tmp_path / "enc", seed=4, overwrite=True)
    assert not retrained["encoders"]["reused"] and weights.stat().st_mtime_ns != stamp


def test_change_detection_uses_pair_encoder(tmp_path):
    real = _real(tmp_path, change=True)
    synth = write_synthetic(tmp_path / "copy", real.phys, real.y, real)
    out = _run(real, synth, tmp_path / "out", tmp_path / "enc")
    d = out["distribution"]
    assert set(d) == {"image", "pair", "mask", "joint"}
    assert d["image"]["n_real"] == 2 * d["pair"]["n_real"] == 2 * len(real.x)
    assert sorted(out["encoders"]["models"]) == ["image", "mask", "pair"]
    assert out["encoders"]["models"]["pair"]["config"]["in_channels"] == 12
    assert d["pair"]["fd"] < 0.1 * d["pair"]["fd_real_halves"]
    assert out["spectral"]["msad_rad"] == pytest.approx(0, abs=1e-4)


def test_max_samples_reads_only_the_first_samples(seg, tmp_path):
    """A set whose first half copies the real windows and whose second half is corrupt scores as a copy
    when only the first half is read."""
    n = len(seg.x)
    rng = np.random.default_rng(2)
    images = np.concatenate([seg.phys, seg.phys[:, :, ::-1]])
    masks = np.concatenate([seg.y, rng.integers(0, len(seg.classes), seg.y.shape)])
    synth = write_synthetic(tmp_path / "mixed", images, masks, seg)
    first = _run(seg, synth, tmp_path / "first", max_samples=n)
    whole = _run(seg, synth, tmp_path / "whole")
    assert (first["synthetic"]["samples"], first["synthetic"]["samples_in_set"]) == (n, 2 * n)
    assert first["distribution"]["image"]["n_synthetic"] == n
    assert first["spectral"]["msad_rad"] == pytest.approx(0, abs=1e-4)
    assert first["spectral"]["class_proportion_tv"] == pytest.approx(0, abs=1e-9)
    assert whole["synthetic"]["samples"] == 2 * n and whole["spectral"]["msad_rad"] > 0.05
    assert f"the first of {2 * n}" in (tmp_path / "first" / "evaluation.md").read_text()
    with pytest.raises(ConfigError, match="max_samples=1"):
        _run(seg, synth, tmp_path / "none", max_samples=1)


def test_normalization_mismatch_is_warned(seg, tmp_path):
    other = {**seg.norm, "high": [2 * v for v in seg.norm["high"]]}
    synth = write_synthetic(tmp_path / "s", seg.phys, seg.y, seg, normalization=other)
    out = _run(seg, synth, tmp_path / "out")
    assert any("normalization differs" in w for w in out["warnings"])
    assert "normalization differs" in (tmp_path / "out" / "evaluation.md").read_text()


def test_band_mismatch_names_both(seg, tmp_path):
    synth = write_synthetic(tmp_path / "s", seg.phys[:, :, :5], seg.y, seg)
    with pytest.raises(DataError) as e:
        _run(seg, synth, tmp_path / "out")
    assert str(synth) in str(e.value) and seg.source in str(e.value)
    assert "5 bands" in str(e.value) and "has 6" in str(e.value)


def test_inception_fid_with_local_torchscript(seg, tmp_path):
    class Fake(torch.nn.Module):  # 64 features instead of 2048 keep the test's sqrtm cheap
        def __init__(self):
            super().__init__()
            self.register_buffer("w", torch.randn(3 * 4 * 4, 64, generator=torch.Generator().manual_seed(0)))

        def forward(self, x):
            assert x.shape[1:] == (3, 299, 299)
            return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1) @ self.w

    path = tmp_path / "inception.pt"
    torch.jit.script(Fake()).save(str(path))
    good = _run(seg, seg.copy_dir, tmp_path / "a", inception=path)["inception_fid"]
    bad = _run(seg, seg.corrupt_dir, tmp_path / "b", inception=path)["inception_fid"]
    assert good["computed"] and good["n_real"] == good["n_synthetic"] == len(seg.x)
    assert good["fid"] < 1e-3 * bad["fid"]


def test_cli_writes_reports_and_refuses_to_overwrite(seg, tmp_path, capsys):
    synth = tmp_path / "synth"
    shutil.copytree(seg.copy_dir, synth)
    args = ["evaluate", str(seg.cfg_path), str(synth), "--encoder-steps", str(STEPS), "--max-spectra", "500"]
    assert main(args) == 0
    assert "mSAD" in capsys.readouterr().out
    result = _strict_json(synth / "evaluation" / "evaluation.json")
    assert (synth / "evaluation" / "evaluation.md").is_file()
    assert (synth / "evaluation" / "encoders" / "encoders.json").is_file()
    assert result["command"] == "specdm " + " ".join(args)
    assert result["spectral"]["precision_recall"]["n_spectra"] == 500

    assert main(args) == 2
    err = capsys.readouterr().err
    assert "evaluation.json" in err and "--overwrite" in err
    assert main([*args, "--overwrite"]) == 0


def test_cli_missing_metadata_exits_2_naming_the_folder(seg, tmp_path, capsys):
    empty = tmp_path / "not_a_dataset"
    empty.mkdir()
    assert main(["evaluate", str(seg.cfg_path), str(empty)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "metadata.json" in err


def test_texture_real_halves_and_relabelled_shares_are_reported(seg, tmp_path):
    """Copies of the real windows have the real texture; a smoothed copy has less; a cleaned set's relabelled
    share stands beside each class's label fidelity."""
    from scipy import ndimage

    good = _run(seg, seg.copy_dir, tmp_path / "copy")
    t = good["texture"]
    assert t["within_window_std"]["ratio"] == pytest.approx(1.0) and t["edge_density"]["ratio"] == pytest.approx(1.0)
    assert all(r["ratio"] == pytest.approx(1.0) for r in t["class_spread"])
    assert [r["class"] for r in t["class_spread"]] == [1, 2, 3]
    halves = good["spectral"]["precision_recall"]["real_halves"]
    assert 0 < halves["recall"] <= 1 and good["spectral"]["precision_recall"]["recall_vs_real_halves"] > 0.8
    smooth = ndimage.gaussian_filter(seg.phys, sigma=(0, 0, 0, 2, 2))
    folder = write_synthetic(tmp_path / "smooth", smooth, seg.y, seg)
    meta = json.loads((folder / "metadata.json").read_text())
    meta["clean"] = {"rule": "test", "per_class": {seg.classes[1]: {"relabelled_share": 0.25}}}
    (folder / "metadata.json").write_text(json.dumps(meta))
    res = _run(seg, folder, tmp_path / "smooth_eval")
    assert res["texture"]["within_window_std"]["ratio"] < 0.95 and res["texture"]["edge_density"]["ratio"] < 0.9
    rows = {r["class"]: r for r in res["label_fidelity"]["classes"]}
    assert rows[1]["relabelled_share"] == 0.25 and rows[2]["relabelled_share"] is None
    report = (tmp_path / "smooth_eval" / "evaluation.md").read_text()
    assert "## Texture" in report and "relabelled (%)" in report and "| 25.0 |" in report
    assert res["treatments"]["clean"]["rule"] == "test"
