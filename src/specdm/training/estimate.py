"""How long will this run take here? The run's own training steps, timed before the real ones.

Hosts of one kind differ several-fold in speed, so a time written in a README cannot promise much; this
measures the host at hand. Each training stage is timed by calling its real trainer on a fresh network inside
:func:`~specdm.training.engine.measure_steps`: the same step function, speed settings (bf16, layout, fused
optimizer), EMA and torch threads as the run, ``warmup`` steps thrown away and the median of ``repeats``
timed steps kept; the range is that of the timed steps. One-off work that scales with the data (encoding the
training windows for stage 2, the stage-1 report) and sampling are timed on a batch and scaled. The estimate is
printed before the first training step and costs a few seconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from specdm.training.engine import StepTimes, measure_steps

__all__ = ["Estimate", "Part", "time_call", "time_stage"]


@dataclass
class Part:
    """One part of a run: ``seconds`` (its estimate) and ``low``/``high`` (its range); ``rate`` for the message
    (e.g. "10.2 steps/s")."""

    name: str
    seconds: float
    low: float
    high: float
    rate: str = ""


@dataclass
class Estimate:
    parts: list[Part] = field(default_factory=list)

    def stage(self, name: str, steps: int, times: StepTimes) -> None:
        """A training stage of ``steps`` steps whose step was timed as ``times``."""
        lo, hi = times.range
        self.parts.append(Part(name, steps * times.median, steps * lo, steps * hi, f"{1 / times.median:.1f} steps/s"))

    def add(self, name: str, seconds: float, spread: float = 0.2) -> None:
        """Work measured in one go: ``seconds``, range +- ``spread``."""
        self.parts.append(Part(name, seconds, seconds * (1 - spread), seconds * (1 + spread)))

    @property
    def total_s(self) -> float:
        return sum(p.seconds for p in self.parts)

    @property
    def range_s(self) -> tuple[float, float]:
        return sum(p.low for p in self.parts), sum(p.high for p in self.parts)

    def message(self) -> str:
        lo, hi = self.range_s
        # a stage's one-off work under half a second is counted, not listed
        shown = [p for p in self.parts if not (p.name.endswith("other work") and p.seconds < 0.5)]
        parts = ", ".join(f"{p.name} {_fmt(p.seconds)}" + (f" at {p.rate}" if p.rate else "") for p in shown)
        return f"estimated time on this host: about {_fmt(self.total_s)} (range {_fmt(lo)} to {_fmt(hi)}; {parts})"

    def to_dict(self) -> dict:
        lo, hi = self.range_s
        return {"total_s": self.total_s, "range_s": [lo, hi],
                "parts": [{"name": p.name, "seconds": p.seconds, "low": p.low, "high": p.high, "rate": p.rate}
                          for p in self.parts]}


def _fmt(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def time_stage(train: Callable[[], object], warmup: int = 3, repeats: int = 8) -> StepTimes:
    """Step times of ``train()`` (a call of a trainer on a fresh network) inside
    :func:`~specdm.training.engine.measure_steps`; torch's random state is left as it was."""
    with torch.random.fork_rng(devices=[]), measure_steps(warmup, repeats) as measured:
        train()
    return measured.last


def time_call(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall time of ``fn()`` after one warm-up call (torch's random state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)
