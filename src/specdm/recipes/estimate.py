"""The estimate the run skeleton prints for every method before its first training step: a dry run of the run.

The method's own stages run once, in a temporary folder, on the real data, with every training loop
cut to a few steps (:func:`~specdm.training.engine.measure_steps`): the same networks, step functions, speed
settings, EMA and torch threads as the run, and the same one-off work (encoding the windows, extracting
conditions, reports, saving). Each loop's median step time x its configured steps, plus the one-off work as
measured, plus sampling (one batch through the writer with the method's inputs, scaled to the data set's size)
is the estimate. What it leaves out is printed with it: importing and reading the data, which are done by then.
"""

from __future__ import annotations

import contextlib
import io
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState

from specdm.config import Config
from specdm.training.engine import measure_steps
from specdm.training.estimate import Estimate

__all__ = ["dry_run_estimate"]

Stage = Callable[[Config, Path, bool, object], object]  # (cfg, run_dir, resume, data) -> trained part
Sample = Callable[[Path, Path, int], object]  # (model_dir, out_dir, num_samples) -> the set's card/metadata


def dry_run_estimate(cfg: Config, data, stages: Sequence[Stage], sample: Sample | None, num_samples: int,
                     batch_size: int, warmup: int = 3, repeats: int = 8, show: bool = True,
                     started: float | None = None) -> Estimate:
    """Run ``stages`` (each ``stage(cfg, run_dir, False, data)``) in a temporary run folder inside
    :func:`measure_steps`, then ``sample(model_dir, out_dir, n)`` for one batch; return (and print, on the main
    process) the estimate of the whole run. ``started``: the run's start (``time.time()``); the time since then
    (reading the data, this dry run) is part of the estimate, done. Every process takes part (the stages
    synchronize); the random states of torch, numpy and Python are restored afterwards, so the real run is
    unchanged."""
    state = PartialState()
    est = Estimate()
    tmp = Path(tempfile.mkdtemp(prefix="specdm-estimate-")) if state.is_main_process else None
    tmp = Path(_broadcast(str(tmp) if tmp else ""))
    py, npy = random.getstate(), np.random.get_state()
    quiet = io.StringIO()  # the dry run's own messages (its stage-1 report, progress bars) would mislead
    try:
        with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            for stage in stages:
                with measure_steps(warmup, repeats) as measured:
                    t = time.perf_counter()
                    stage(cfg, tmp, False, data)
                    wall = time.perf_counter() - t
                for loop in measured.loops:
                    est.stage(loop.desc.split(" (")[0], loop.steps, loop)
                name = measured.loops[-1].desc.split(" (")[0] if measured.loops else "preparation"
                est.add(f"{name}: other work", max(0.0, wall - sum(loop.wall for loop in measured.loops)))
            if sample is not None and num_samples > 0:
                n = max(1, min(batch_size, num_samples))
                t = time.perf_counter()
                sample(tmp / "model", tmp / "synthetic", n)
                batch_s = time.perf_counter() - t
                est.add("sampling and writing", batch_s * num_samples / n)
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        state.wait_for_everyone()
        if state.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
    if started is not None:
        est.add("reading the data and this estimate (done)", time.time() - started, spread=0.0)
    if show and state.is_main_process:
        print(est.message(), flush=True)
    return est


def _broadcast(text: str) -> str:
    """``text`` of the main process on every process (a temporary folder's name)."""
    state = PartialState()
    if state.num_processes == 1:
        return text
    from accelerate.utils import broadcast_object_list

    box = [text]
    broadcast_object_list(box)
    return box[0]
