"""The run folder: ``config.yaml``, ``model/``, ``checkpoints/``, ``synthetic/``; claimed once, never clobbered."""

from __future__ import annotations

from pathlib import Path

from specdm import __version__
from specdm.config import Config
from specdm.output.dataset import claim_folder
from specdm.training.engine import LoopConfig

RUN_MARKER = ".specdm-run"


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool, create: bool = True) -> None:
    """Create ``run_dir``; an existing one is only continued (``resume``) or replaced (``overwrite``,
    and only if specdm made it). ``create=False`` only checks, so that a run whose input fails
    its checks leaves no folder behind that would block the corrected re-run."""
    claim_folder(run_dir, (Path(run_dir) / RUN_MARKER).is_file(), resume, overwrite, "run", create)
    if create:
        (Path(run_dir) / RUN_MARKER).write_text(__version__)


def loop_config(cfg: Config, steps: int, batch_size: int, lr: float, ema_decay: float | None = None) -> LoopConfig:
    """The engine's settings of one training stage: its steps, batch and learning rate (and EMA), with the run's
    seed, checkpoint interval and speed settings (``train``)."""
    t = cfg.train
    return LoopConfig(steps, batch_size, lr, t.seed, t.checkpoint_every, ema_decay=ema_decay,
                      mixed_precision=t.mixed_precision, speed=t.speed)
