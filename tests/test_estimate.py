"""The run-time estimate: printed before the first real training step by every method, from the run's own steps."""

from __future__ import annotations

import pytest
import torch
from conftest import single_thread, tiny_method_config, write_config

from specdm.cli import main
from specdm.training import engine
from specdm.training.engine import LoopConfig, measure_steps, train_loop
from specdm.training.estimate import Estimate, time_stage


@pytest.mark.parametrize("method", ["specdm", "layout", "controllable", "hyperldm"])
def test_every_method_prints_its_estimate_before_the_first_training_step(method, tmp_path, monkeypatch, capsys):
    """The estimate's line is on stdout when the first step of the real training starts (steps of the dry run,
    inside measure_steps, do not count), and it names every training loop of the method."""
    seen = {}
    real_step = engine.StepRandom

    def spy(*args, **kwargs):
        if engine._MEASURING is None and "out" not in seen:
            seen["out"] = capsys.readouterr().out
        return real_step(*args, **kwargs)

    monkeypatch.setattr(engine, "StepRandom", spy)
    cfg = write_config(tmp_path / "cfg.yaml", tiny_method_config(tmp_path, method))
    with single_thread():
        assert main(["run", str(cfg), "--run-dir", str(tmp_path / "run")]) == 0
    out = seen["out"]
    assert out.count("estimated time on this host: about") == 1
    line = next(x for x in out.splitlines() if x.startswith("estimated time"))
    assert "stage 1" in line and "stage 2" in line and "sampling and writing" in line and "steps/s" in line
    assert "reconstructs" not in out  # the dry run's own report is not shown


def test_estimate_adds_its_parts_and_reports_a_range():
    est = Estimate()
    times = engine.StepTimes("stage 1 (autoencoder)", 100, [0.1, 0.2, 0.3])
    est.stage("stage 1", 100, times)
    est.add("sampling", 10.0, spread=0.5)
    assert est.total_s == pytest.approx(100 * 0.2 + 10.0)
    assert est.range_s == pytest.approx((100 * 0.1 + 5.0, 100 * 0.3 + 15.0))
    assert "about 30 s (range 15 s to 45 s; stage 1 20 s at 5.0 steps/s, sampling 10 s)" in est.message()


def test_time_stage_runs_the_real_step_without_writing_and_leaves_the_random_state(tmp_path):
    """Inside measure_steps a trainer runs warmup + repeats steps of its own step function, writes no checkpoint
    or log, and records one time per timed step; torch's random state is as before."""
    net = torch.nn.Linear(3, 1)
    calls = []

    def step(model, items, rnd):
        calls.append(rnd.step)
        return model(torch.ones(len(items), 3)).square().mean(), {}

    state = torch.get_rng_state()
    times = time_stage(lambda: train_loop(net, step, 8, LoopConfig(1000, 4, 0.1, checkpoint_every=1), tmp_path / "c"),
                       warmup=2, repeats=5)
    assert torch.equal(state, torch.get_rng_state())
    assert calls == list(range(7)) and len(times.seconds) == 5 and times.steps == 1000
    assert times.desc == "training" and not (tmp_path / "c").exists()
    with measure_steps(1, 1) as measured:
        train_loop(net, step, 8, LoopConfig(10, 4, 0.1), tmp_path / "c", desc="a")
        train_loop(net, step, 8, LoopConfig(20, 4, 0.1), tmp_path / "c", desc="b")
    assert [(m.desc, m.steps, len(m.seconds)) for m in measured.loops] == [("a", 10, 1), ("b", 20, 1)]
