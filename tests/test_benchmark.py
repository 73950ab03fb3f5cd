"""``specdm benchmark`` on tiny fake scenes: every arm x seed is stored and paired, the averaged
classes come from the data, reports are written and rebuilt, resume skips finished runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import single_thread, tiny_config, write_config, write_fake_files
from test_evaluate import write_synthetic

from specdm.cli import main
from specdm.config import load_config
from specdm.errors import ConfigError, DataError, OutputError
from specdm.evaluation.benchmark import plan
from specdm.evaluation.benchmark import run as bm
from specdm.data.datamodule import prepare_data

STEPS = 12
FAST = dict(steps=STEPS, batch_size=4, lr=1e-3, amounts=[1], limited=0.5, progress=False, device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def _setup(folder, change=False):
    """A fake scene and a synthetic set made of its own training windows (data units).

    Segmentation: classes 1..4 (0 = unlabelled); class 4 is removed from the training rows and
    class 3 from the test rows, so only classes 1 and 2 are labelled in both.
    """
    data = write_fake_files(folder / "scene", np.random.default_rng(0), change=change, classes=2 if change else 5)
    if not change:
        mask = np.load(data["mask"])
        mask[:32][mask[:32] == 4] = 1
        mask[32:][mask[32:] == 3] = 2
        np.save(data["mask"], mask)
    cfg_path = write_config(folder / "real.yaml", tiny_config({**data, "ignore_index": None if change else 0}))
    cfg = load_config(str(cfg_path))
    prepared = prepare_data(cfg.data)
    x, y = (t.numpy() for t in prepared.train.batch(range(len(prepared.train))))
    phys = np.moveaxis(prepared.normalizer.inverse(np.moveaxis(x, 2, -1)), -1, 2)
    real = type("Real", (), {"classes": prepared.reference.class_names, "norm": prepared.normalizer.to_dict()})
    synth = write_synthetic(folder / "synth", phys, y, real)
    return cfg, cfg_path, synth


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    cfg, cfg_path, synth = _setup(root)
    out = root / "out"
    args = ["benchmark", str(cfg_path), "--synthetic", f"copy={synth}", "--out", str(out), "--seeds", "2",
            "--steps", str(STEPS), "--batch-size", "4", "--models", "unet", "--amounts", "1", "--limited", "0.5",
            "--device", "cpu"]  # fmt: skip
    with single_thread():
        assert main(args) == 0
    return cfg, synth, out, args, json.loads((out / "benchmark.json").read_text())


def test_every_arm_and_seed_is_stored_and_summarized(seg):
    _, _, _, args, result = seg
    runs = {(r["setting"], r["arm"], r["seed"]) for r in result["runs"]}
    arms = [("full", "real"), ("full", "classical"), ("full", "copy x1"), ("full", "classical+copy x1"),
            ("full", "synthetic_only"), ("limited", "real"), ("limited", "copy x1")]  # fmt: skip
    assert runs == {(s, a, k) for s, a in arms for k in (0, 1)}
    assert len(result["runs"]) == 14 and result["complete"]
    full = {r["arm"]: r for r in result["runs"] if r["setting"] == "full" and r["seed"] == 0}
    assert full["copy x1"]["mix"] == 0.5 and full["copy x1"]["synthetic_samples"] == full["real"]["real_windows"] == 15
    assert full["synthetic_only"]["mix"] == 1.0 and full["synthetic_only"]["real_windows"] == 0
    limited = [r for r in result["runs"] if r["setting"] == "limited"]
    assert {r["real_windows"] for r in limited} == {8} and result["data"]["limited_windows"] == 8
    assert result["data"]["limited_indices"] == sorted(np.random.default_rng(0).choice(15, 8, replace=False).tolist())

    s = result["summary"]["unet"]
    for setting, arm in arms:
        for metric in ("miou", "f1"):
            entry = s[setting][metric][arm]
            assert entry["seeds"] == [0, 1] and entry["n"] == 2
            values = [r["scores"][metric] for r in result["runs"] if (r["setting"], r["arm"]) == (setting, arm)]
            assert entry["mean"] == pytest.approx(np.mean(values))
            lo, hi = entry["diff_ci95"]
            expected = "reference" if arm == "real" else "helps" if lo > 0 else "hurts" if hi < 0 else "no clear effect"
            assert entry["verdict"] == expected
    # the stacked arm is also compared with classical augmentation, seed by seed
    stacked = s["full"]["miou"]["classical+copy x1"]["vs_classical"]
    by = {(r["arm"], r["seed"]): r["scores"]["miou"] for r in result["runs"] if r["setting"] == "full"}
    diffs = [by[("classical+copy x1", k)] - by[("classical", k)] for k in (0, 1)]
    assert stacked["diff_mean"] == pytest.approx(np.mean(diffs)) and stacked["seeds"] == [0, 1]
    assert full["classical+copy x1"]["kind"] == "stacked" and full["classical+copy x1"]["mix"] == 0.5
    md = (seg[2] / "report.md").read_text()
    assert "| real + classical aug. + copy x1 | 2 |" in md and "vs classical" in md
    assert result["command"] == "specdm " + " ".join(args)
    assert result["settings"]["steps"] == STEPS and result["settings"]["batch_size"] == 4
    assert {"platform", "cpu_count", "torch"} <= set(result["machine"]) and result["wall_time_s"] > 0


def test_classes_averaged_are_those_labelled_in_both_regions(seg):
    result = seg[4]
    d = result["data"]
    assert d["classes_train"] == [1, 2, 3] and d["classes_test"] == [1, 2, 4]
    assert d["classes_averaged"] == [1, 2]
    run = result["runs"][0]["scores"]
    iou = [np.nan if v is None else v for v in run["per_class_iou"]]
    assert len(iou) == 5 and run["miou"] == pytest.approx(np.nanmean(iou[1:3]))
    assert d["test_regions"] == [{"scene": "image", "rows": [32, 48], "cols": [0, 48]}]
    labelled = int((np.load(seg[0].data.mask)[32:] != 0).sum())
    assert sum(map(sum, run["confusion"])) == d["labelled_test_pixels"] == labelled


def test_reports_hold_the_table_rows_and_rebuild_identically(seg):
    _, _, out, _, result = seg
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for row in ("| real only | 2 |", "| real + classical aug. | 2 |", "| real + copy x1 | 2 |", "| copy only (x1 pool) | 2 |"):
        assert row in md
    assert "Limited real data (8 of 15 windows" in md and "Per-class IoU" in md
    assert "![" in md and "plots/unet_full.png" in md and (out / "plots" / "unet_limited.png").is_file()
    assert "<td>real + copy x1</td>" in html and html.count("data:image/png;base64,") == 2
    (out / "report.md").unlink()
    assert main(["benchmark", "--report-only", str(out)]) == 0
    assert (out / "report.md").read_text() == md


def test_same_seed_reproduces_and_arms_share_real_batches(seg, tmp_path, monkeypatch):
    cfg, synth, _, _, result = seg
    batches = {}
    train = bm.train_downstream

    def recording(name, sets, *a, **kw):
        log = batches.setdefault((len(sets[0][0]), len(sets)), [])
        return train(name, sets, *a, **kw, on_batch=lambda step, r, s: log.append(r.copy()))

    monkeypatch.setattr(bm, "train_downstream", recording)
    again = bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, models=["unet"], arms=["real", "copy"], **FAST)
    before = {(r["setting"], r["arm"]): r["scores"] for r in result["runs"] if r["seed"] == 0}
    for r in again["runs"]:
        assert r["scores"] == before[(r["setting"], r["arm"])]  # same seed, same numbers
    real_only, mixed = batches[(15, 1)], batches[(15, 2)]
    assert len(real_only) == len(mixed) == STEPS
    for r0, r1 in zip(real_only, mixed):
        assert len(r1) == 2 and np.array_equal(r1, r0[:2])


def test_resume_skips_finished_runs_and_adds_seeds(seg, tmp_path, monkeypatch):
    cfg, synth = seg[:2]
    calls = []
    train = bm.train_downstream
    monkeypatch.setattr(bm, "train_downstream", lambda *a, **kw: calls.append(a[0]) or train(*a, **kw))
    kw = dict(models=["unet"], arms=["real", "copy"], **{**FAST, "limited": 0})
    bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, **kw)
    assert len(calls) == 2
    with pytest.raises(OutputError, match="--resume"):
        bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, **kw)
    result = bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=2, resume=True, **kw)
    assert len(calls) == 4 and len(result["runs"]) == 4 and len(result["invocations"]) == 2
    assert result["summary"]["unet"]["full"]["miou"]["copy x1"]["seeds"] == [0, 1]
    bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=2, resume=True, **kw)
    assert len(calls) == 4
    with pytest.raises(OutputError, match="another config"):
        bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=2, resume=True, **{**kw, "steps": STEPS + 1})
    with pytest.raises(OutputError, match="lr schedule"):
        bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=2, resume=True, **kw, lr_schedule="constant")
    assert result["settings"]["lr_schedule"] == "cosine"
    # a config field that a later specdm adds outside `data` does not block resuming; a change of the data does
    stored = json.loads((tmp_path / "benchmark.json").read_text())
    stored["fingerprint"]["config"]["autoencoder"]["field_of_an_older_version"] = 1
    (tmp_path / "benchmark.json").write_text(json.dumps(stored))
    bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=2, resume=True, **kw)
    assert len(calls) == 4
    # ... nor does a field a later specdm adds to `data` with a default (absent from older files)
    stored = json.loads((tmp_path / "benchmark.json").read_text())
    del stored["fingerprint"]["config"]["data"]["rgb_bands"]
    (tmp_path / "benchmark.json").write_text(json.dumps(stored))
    bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=2, resume=True, **kw)
    assert len(calls) == 4
    other = cfg.model_copy(update={"data": cfg.data.model_copy(update={"stride": cfg.data.stride + 1})})
    with pytest.raises(OutputError, match="another config"):
        bm.benchmark(other, {"copy": synth}, tmp_path, seeds=2, resume=True, **kw)


def test_resume_adds_a_synthetic_set_and_trains_only_its_arms(seg, tmp_path, monkeypatch):
    cfg, synth = seg[:2]
    calls = []
    train = bm.train_downstream
    monkeypatch.setattr(bm, "train_downstream", lambda *a, **kw: calls.append(a[0]) or train(*a, **kw))
    kw = dict(models=["unet"], **{**FAST, "limited": 0})
    first = bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, arms=["real", "copy"], **kw)
    assert len(calls) == 2
    result = bm.benchmark(cfg, {"copy": synth, "again": synth}, tmp_path, seeds=1, arms=["real", "copy", "again"],
                          resume=True, **kw)
    assert len(calls) == 3  # only "again x1" trained; real and copy kept and paired with it
    kept = {r["arm"]: r["scores"]["miou"] for r in result["runs"]}
    assert kept["real"] == first["runs"][0]["scores"]["miou"]
    assert set(result["summary"]["unet"]["full"]["miou"]) == {"real", "copy x1", "again x1"}
    # the same folder under the same name, same seed and batches: the new arm repeats the stored one exactly
    assert kept["again x1"] == pytest.approx(kept["copy x1"])
    for changed, match in (({"copy": tmp_path / "elsewhere", "again": synth}, r"set\(s\) copy missing or pointing"),
                           ({"copy": synth}, r"set\(s\) again missing"),
                           ({"again": synth, "copy": synth}, "first synthetic set")):
        with pytest.raises(OutputError, match=match):
            bm.benchmark(cfg, changed, tmp_path, seeds=1, arms=["real"], resume=True, **kw)
    assert len(calls) == 3


def test_pretrain_arm_trains_on_synthetic_then_fine_tunes_on_real(seg, tmp_path, monkeypatch):
    """pretrain+NAME: the first half of the steps on synthetic batches only, the rest on real batches only,
    starting from the first phase's weights; both phases with classical augmentation; same total steps."""
    cfg, synth = seg[:2]
    calls = []
    train = bm.train_downstream

    def recording(name, sets, steps, *a, **kw):
        log = {"steps": steps, "real": 0, "synthetic": 0, "augment": a[5], "init": kw.get("init")}
        calls.append(log)

        def on_batch(step, r, s):
            log["real"] += len(r)
            log["synthetic"] += len(s)

        net = train(name, sets, steps, *a, **kw, on_batch=on_batch)
        log["weights"] = {k: v.clone() for k, v in net.state_dict().items()}
        log["net"] = net
        return net

    monkeypatch.setattr(bm, "train_downstream", recording)
    result = bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, models=["unet"], arms=["real", "pretrain+copy"],
                          **{**FAST, "limited": 0})
    pre, fine = calls[1], calls[2]
    assert pre["steps"] + fine["steps"] == STEPS and pre["steps"] == round(bm.PRETRAIN_SHARE * STEPS)
    assert pre["real"] == 0 and pre["synthetic"] == pre["steps"] * FAST["batch_size"]
    assert fine["synthetic"] == 0 and fine["real"] == fine["steps"] * FAST["batch_size"]
    assert pre["augment"] == fine["augment"] == "classical" and fine["init"] is pre["net"]
    # `init` really is the starting point: one step of lr 0 from it leaves the pretrained weights as they were,
    # while the seeded initialization of the same call without `init` differs from them
    bands, p = np.load(cfg.data.image).shape[-1], cfg.data.patch_size  # the fake scene is (rows, cols, bands)
    x = np.random.default_rng(0).random((2, bands, p, p), np.float32)
    y = np.ones((2, *x.shape[-2:]), np.int64)
    kept = train("unet", [(x, y)], 1, 2, 1e-12, 0, num_classes=5, progress=False, init=pre["net"]).state_dict()
    fresh = train("unet", [(x, y)], 1, 2, 1e-12, 0, num_classes=5, progress=False).state_dict()
    floats = [k for k, v in pre["weights"].items() if v.is_floating_point() and "running" not in k]
    assert all(torch.allclose(kept[k], pre["weights"][k], atol=1e-6) for k in floats)
    assert any(not torch.allclose(fresh[k], pre["weights"][k], atol=1e-6) for k in floats)
    arm = next(a for a in result["arms"] if a["id"] == "pretrain+copy x1")
    assert arm["kind"] == "pretrain" and arm["mix"] is None
    assert "copy x1 pretraining, then real + classical aug." in (tmp_path / "report.md").read_text()
    assert "vs_classical" not in result["summary"]["unet"]["full"]["miou"]["pretrain+copy x1"]  # no classical arm run


def test_files_from_before_lr_schedules_resume_as_constant(seg, tmp_path):
    cfg, synth = seg[:2]
    kw = dict(models=["unet"], arms=["real"], **{**FAST, "limited": 0})
    bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, lr_schedule="constant", **kw)
    path = tmp_path / bm.RESULT_FILE
    old = json.loads(path.read_text())
    del old["fingerprint"]["lr_schedule"]  # as written before the option existed
    path.write_text(json.dumps(old))
    result = bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, resume=True, lr_schedule="constant", **kw)
    assert len(result["runs"]) == 1 and len(result["invocations"]) == 2
    with pytest.raises(OutputError, match="lr schedule"):
        bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, resume=True, **kw)


def test_two_synthetic_sets_with_segformer_and_pixel(seg, tmp_path):
    pytest.importorskip("transformers")
    cfg, synth = seg[:2]
    result = bm.benchmark(cfg, {"copy": synth, "again": synth}, tmp_path, seeds=1, models=["segformer", "pixel"],
                          **{**FAST, "limited": 0, "steps": 3})
    arms = [a["id"] for a in result["arms"]]
    assert arms == ["real", "classical", "copy x1", "again x1", "classical+copy x1", "classical+again x1",
                    "synthetic_only"]
    assert next(a for a in result["arms"] if a["id"] == "synthetic_only")["synthetic"] == "copy"
    assert len(result["runs"]) == 14
    pixel = next(r["scores"] for r in result["runs"] if r["model"] == "pixel")
    assert {"oa", "aa", "kappa", "per_class_accuracy"} <= set(pixel)
    assert set(result["summary"]["pixel"]["full"]) == {"oa", "aa", "kappa"}
    assert set(result["summary"]["segformer"]["full"]["miou"]) == set(arms)
    md = (tmp_path / "report.md").read_text()
    assert "### segformer" in md and "### pixel" in md and "| real + again x1 | 1 |" in md


def test_change_detection_with_siamdiff(tmp_path):
    cfg, _, synth = _setup(tmp_path, change=True)
    result = bm.benchmark(cfg, {"copy": synth}, tmp_path / "out", seeds=2, **{**FAST, "steps": 6})
    assert result["settings"]["models"] == ["siamdiff"]
    assert len(result["runs"]) == 2 * 7  # real, classical, copy, classical+copy, synthetic_only, limited x2
    scores = result["runs"][0]["scores"]
    assert {"f1_change", "iou_change", "miou"} <= set(scores) and len(scores["confusion"]) == 2
    assert set(result["summary"]["siamdiff"]["limited"]["f1_change"]) == {"real", "copy x1"}
    assert "F1 (change)" in (tmp_path / "out" / "report.md").read_text()
    with pytest.raises(ConfigError, match="do not fit change"):
        bm.benchmark(cfg, {}, tmp_path / "out2", seeds=1, models=["unet"], **FAST)


def test_bad_inputs_are_named_errors(seg, tmp_path):
    cfg, synth = seg[:2]
    with pytest.raises(ConfigError, match="NAME=DIR"):
        plan.parse_synthetic(["nodir"])
    with pytest.raises(ConfigError, match="real"):
        plan.parse_synthetic(["real=x"])
    with pytest.raises(ConfigError, match="positive"):
        plan.parse_amounts("1,-2")
    assert plan.parse_amounts("1,0.5") == [1, 0.5]
    with pytest.raises(ConfigError, match="lr schedule"):
        bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, lr_schedule="linear", **FAST)
    with pytest.raises(ConfigError, match="cannot be left out"):
        bm.benchmark(cfg, {"copy": synth}, tmp_path, seeds=1, arms=["copy"], **FAST)
    meta = json.loads((synth / "metadata.json").read_text())
    other = tmp_path / "other"
    other.mkdir()
    for f in synth.iterdir():
        (other / f.name).symlink_to(f)
    (other / "metadata.json").unlink()
    meta["normalization"]["high"] = [2 * v for v in meta["normalization"]["high"]]
    (other / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="normalization differs"):
        bm.benchmark(cfg, {"other": other}, tmp_path / "o", seeds=1, **FAST)
