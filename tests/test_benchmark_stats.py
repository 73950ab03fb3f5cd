"""The benchmark's statistics: paired t-test p-values and minimum detectable effects against scipy and by hand,
Holm's adjustment by hand, the primary / exploratory roles and "not enough seeds"."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from specdm.evaluation.benchmark.run import paired_summary, summarize
from specdm.evaluation.benchmark.stats import holm, mde, paired_stats, verdict

REAL = np.array([0.40, 0.50, 0.45, 0.38, 0.52])
ARM = np.array([0.44, 0.53, 0.50, 0.37, 0.58])  # differences 0.04, 0.03, 0.05, -0.01, 0.06


def test_paired_stats_equal_scipy_and_the_formula():
    d = ARM - REAL
    s = paired_stats(dict(enumerate(d)))
    assert s["n"] == 5 and s["units"] == [0, 1, 2, 3, 4]
    assert s["diff_mean"] == pytest.approx(0.034) and s["diff_std"] == pytest.approx(d.std(ddof=1))
    assert s["p"] == pytest.approx(stats.ttest_rel(ARM, REAL).pvalue, rel=1e-10)
    assert s["t"] == pytest.approx(stats.ttest_rel(ARM, REAL).statistic, rel=1e-10)
    # MDE = (t(0.975, 4) + t(0.8, 4)) * sd / sqrt(5) with t(0.975, 4) = 2.776445, t(0.8, 4) = 0.940965
    assert s["mde80"] == pytest.approx((2.776445 + 0.940965) * d.std(ddof=1) / math.sqrt(5), rel=1e-6)
    half = 2.776445 * d.std(ddof=1) / math.sqrt(5)
    np.testing.assert_allclose(s["diff_ci95"], (0.034 - half, 0.034 + half), rtol=1e-5)
    # units may be (fold, seed) pairs: the same numbers, sorted units
    folds = paired_stats({(f, k): v for (f, k), v in zip([(1, 0), (0, 1), (0, 0), (1, 1), (2, 0)], d)})
    assert folds["units"] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    assert folds["p"] == pytest.approx(s["p"]) and folds["mde80"] == pytest.approx(s["mde80"])
    # a smaller hand case: differences 0.04, 0.03, 0.05 (mean 0.04, sd 0.01): t = 0.04 / (0.01 / sqrt 3)
    small = paired_stats({0: 0.04, 1: 0.03, 2: 0.05})
    assert small["p"] == pytest.approx(2 * stats.t.sf(0.04 / (0.01 / math.sqrt(3)), 2), rel=1e-6)
    assert small["mde80"] == pytest.approx((4.302653 + 1.060660) * 0.01 / math.sqrt(3), rel=1e-5)
    assert mde(0.01, 3) == pytest.approx(small["mde80"])


def test_paired_stats_edge_cases():
    one = paired_stats({0: 0.1})
    assert one["n"] == 1 and math.isnan(one["p"]) and math.isnan(one["mde80"]) and math.isnan(one["diff_std"])
    assert verdict(one["p"], one["diff_mean"], 1) == "not enough seeds"
    assert paired_stats({0: 0.1, 1: 0.1})["p"] == 0.0  # no spread, not zero: certain
    assert paired_stats({0: 0.0, 1: 0.0})["p"] == 1.0
    assert verdict(0.01, 0.02, 3) == "helps" and verdict(0.01, -0.02, 3) == "hurts"
    assert verdict(0.05, 0.02, 3) == "no clear effect" and verdict(math.nan, 0.02, 3) == "no clear effect"


def test_paired_summary_carries_p_and_mde():
    s = paired_summary({"real": dict(enumerate(REAL)), "arm": dict(enumerate(ARM))})
    assert s["arm"]["p"] == pytest.approx(stats.ttest_rel(ARM, REAL).pvalue, rel=1e-10)
    assert s["arm"]["mde80"] == pytest.approx(mde(float((ARM - REAL).std(ddof=1)), 5))
    assert s["real"]["p"] == 1.0 and s["real"]["n"] == 5


def test_holm_by_hand():
    # sorted: d 0.005 (x4 = 0.02), a 0.01 (x3 = 0.03), c 0.03 (x2 = 0.06), b 0.04 (x1 = 0.04 -> running max 0.06)
    adj = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": math.nan})
    assert adj["d"] == pytest.approx(0.02) and adj["a"] == pytest.approx(0.03)
    assert adj["c"] == pytest.approx(0.06) and adj["b"] == pytest.approx(0.06) and math.isnan(adj["e"])
    assert holm({"x": 0.4, "y": 0.6}) == {"x": pytest.approx(0.8), "y": pytest.approx(0.8)}
    assert holm({"x": 0.9, "y": 0.8}) == {"x": 1.0, "y": 1.0}  # capped at 1
    assert holm({}) == {}


def _runs(scores: dict, model="unet", setting="full") -> list[dict]:
    """Fake runs: ``scores[arm] = [miou of seed 0, 1, ...]`` (F1 = miou / 2)."""
    return [{"model": model, "setting": setting, "arm": arm, "seed": k, "scores": {"miou": v, "f1": v / 2}}
            for arm, values in scores.items() for k, v in enumerate(values)]


def test_summary_roles_holm_and_primary():
    real = np.array([0.30, 0.35, 0.32, 0.31, 0.36])
    scores = {"real": real, "classical": real + [0.05, 0.06, 0.04, 0.05, 0.06],
              "classical+x x1": real + [0.08, 0.07, 0.09, 0.08, 0.10],
              "x x1": real + [0.02, -0.01, 0.03, 0.01, 0.02]}  # fmt: skip
    primary = {"model": "unet", "setting": "full", "metric": "miou", "arm": "classical+x x1", "reference": "classical"}
    runs = _runs({k: list(v) for k, v in scores.items()})
    out = summarize(runs, primary)["unet"]["full"]

    def p(a, b):
        return stats.ttest_rel(np.asarray(scores[a]), np.asarray(scores[b])).pvalue

    # primary: its own p, no Holm
    e = out["miou"]["classical+x x1"]["vs_classical"]
    assert e["role"] == "primary" and "p_holm" not in e and e["p"] == pytest.approx(p("classical+x x1", "classical"))
    assert e["verdict"] == verdict(e["p"], e["diff_mean"], 5) == "helps"
    # exploratory: vs real of classical, classical+x, x; vs classical of x: Holm over those four
    family = {("classical", "real"): p("classical", "real"), ("classical+x x1", "real"): p("classical+x x1", "real"),
              ("x x1", "real"): p("x x1", "real"), ("x x1", "classical"): p("x x1", "classical")}  # fmt: skip
    ordered = sorted(family.items(), key=lambda kv: kv[1])
    expected, running = {}, 0.0
    for i, (k, v) in enumerate(ordered):
        running = max(running, min(1.0, (4 - i) * v))
        expected[k] = running
    for (arm, ref), want in expected.items():
        entry = out["miou"][arm] if ref == "real" else out["miou"][arm]["vs_classical"]
        assert entry["role"] == "exploratory" and entry["p"] == pytest.approx(family[arm, ref])
        assert entry["p_holm"] == pytest.approx(want)
        assert entry["verdict"] == verdict(want, entry["diff_mean"], 5)
    # x x1 vs real: p about 0.1 raw, 'no clear effect'; classical vs real: significant even after Holm
    assert out["miou"]["classical"]["verdict"] == "helps"
    # secondary metric: unadjusted interval, no Holm
    f1 = out["f1"]["classical"]
    assert f1["role"] == "secondary metric" and "p_holm" not in f1 and f1["verdict"] == f1["verdict_unadjusted"]
    assert out["miou"]["real"]["verdict"] == "reference"


def test_holm_can_turn_a_raw_effect_into_no_clear_effect():
    real = np.zeros(3)
    # five exploratory comparisons each with raw p = 0.023 (differences 0.08, 0.12, 0.14, scaled: same t):
    # Holm multiplies the smallest by 5
    arms = {f"s{i} x1": real + np.array([0.08, 0.12, 0.14]) * (1 + i / 100) for i in range(5)}
    out = summarize(_runs({"real": list(real), **{k: list(v) for k, v in arms.items()}}))["unet"]["full"]["miou"]
    for arm in arms:
        e = out[arm]
        assert e["p"] < 0.05 and e["verdict_unadjusted"] == "helps"
        assert e["p_holm"] > 0.05 and e["verdict"] == "no clear effect"


def test_one_seed_arms_say_not_enough_seeds():
    runs = _runs({"real": [0.3, 0.4, 0.35], "classical": [0.35, 0.42, 0.4]})
    runs += _runs({"one x1": [0.5]})  # seed 0 only
    out = summarize(runs)["unet"]["full"]
    for metric in ("miou", "f1"):
        e = out[metric]["one x1"]
        assert e["n"] == 1 and e["verdict"] == e["verdict_unadjusted"] == "not enough seeds"
        assert e["vs_classical"]["verdict"] == "not enough seeds"
    assert out["miou"]["classical"]["verdict"] != "not enough seeds"
    only = summarize(_runs({"real": [0.3], "classical": [0.4]}))["unet"]["full"]["miou"]["classical"]
    assert only["verdict"] == "not enough seeds"  # never "no clear effect" on one seed


def test_summary_pairs_by_any_unit():
    runs = [{"model": "unet", "setting": "full", "arm": arm, "seed": k, "fold": f,
             "scores": {"miou": base + (0.05 if arm == "classical" else 0) + 0.01 * f * k, "f1": base}}
            for arm in ("real", "classical") for f in (0, 1) for k, base in enumerate([0.3, 0.32])]  # fmt: skip
    by_seed = summarize([r for r in runs if r["fold"] == 0])["unet"]["full"]["miou"]["classical"]
    assert by_seed["n"] == 2
    e = summarize(runs, unit=lambda r: (r["fold"], r["seed"]))["unet"]["full"]["miou"]["classical"]
    assert e["n"] == 4 and e["seeds"] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert e["diff_mean"] == pytest.approx(0.05) and e["p"] == 0.0 and e["verdict"] == "helps"
