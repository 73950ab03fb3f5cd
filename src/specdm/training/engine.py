"""The training loop shared by both stages, on accelerate.

The same code runs on CPU, one GPU or many processes (``accelerate launch``).
Each step's randomness (which items, which augmentation, which noise) is drawn
from a generator seeded by ``(seed, step)`` for the *whole* batch on every
process, and each process keeps its own slice. So a run on W processes with
``batch_size / W`` items each makes the same update as one process with the
whole batch, and a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from accelerate import Accelerator
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from specdm.errors import CheckpointError, ConfigError


@dataclass
class LoopConfig:
    steps: int
    batch_size: int
    lr: float
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    ema_decay: float | None = None
    grad_clip: float | None = 1.0
    mixed_precision: str = "no"
    log_every: int = 25


class StepRandom:
    """Randomness of one step: drawn for the whole batch, returned for this process' slice."""

    def __init__(self, seed: int, step: int, batch_size: int, shard: slice, device):
        self.gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))
        self.batch_size, self.shard, self.device = batch_size, shard, device

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(self.batch_size, *shape, generator=self.gen)[self.shard].to(self.device)

    def integers(self, high: int) -> torch.Tensor:
        return torch.randint(0, high, (self.batch_size,), generator=self.gen)[self.shard].to(self.device)


StepFn = Callable[[torch.nn.Module, torch.Tensor, StepRandom], tuple[torch.Tensor, dict]]


def make_accelerator(mixed_precision: str = "no") -> Accelerator:
    return Accelerator(mixed_precision=mixed_precision)


def train_loop(
    model: torch.nn.Module,
    step_fn: StepFn,
    num_items: int,
    cfg: LoopConfig,
    ckpt_dir: Path,
    resume: bool = False,
    desc: str = "training",
    accelerator: Accelerator | None = None,
) -> torch.nn.Module:
    """Train ``model`` for ``cfg.steps`` steps; returns the unwrapped model (EMA weights if used).

    ``step_fn(model, items, rnd)`` gets this process' item indices (into a data
    set of ``num_items`` items) and its :class:`StepRandom`, and returns
    ``(loss, logs)``.
    """
    acc = accelerator or make_accelerator(cfg.mixed_precision)
    world, rank = acc.num_processes, acc.process_index
    if cfg.batch_size % world:
        raise ConfigError(f"batch size {cfg.batch_size} is not divisible by the {world} processes")
    local = cfg.batch_size // world
    shard = slice(rank * local, (rank + 1) * local)

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    model, optimizer = acc.prepare(model, optimizer)
    ema = None
    if cfg.ema_decay:
        ema = EMAModel(acc.unwrap_model(model).parameters(), decay=cfg.ema_decay)
        ema.to(acc.device)
        acc.register_for_checkpointing(ema)

    ckpt_dir = Path(ckpt_dir)
    start = 0
    if resume:
        last = latest_checkpoint(ckpt_dir)
        if last is not None:
            acc.load_state(str(last))
            start = json.loads((last / "progress.json").read_text())["step"]
            acc.print(f"resuming {desc} from step {start} ({last})")

    log_file = ckpt_dir / "train_log.jsonl"
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=desc, disable=not acc.is_main_process)
    model.train()
    for step in bar:
        rnd = StepRandom(cfg.seed, step, cfg.batch_size, shard, acc.device)
        items = rnd.integers(num_items)
        with acc.autocast():
            loss, logs = step_fn(model, items, rnd)
        if not torch.isfinite(loss):
            raise CheckpointError(f"{desc}: loss became {loss.item()} at step {step}; lower the learning rate", ckpt_dir)
        optimizer.zero_grad(set_to_none=True)
        acc.backward(loss)
        if cfg.grad_clip:
            acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.step(acc.unwrap_model(model).parameters())
        done = step + 1
        if acc.is_main_process and (done % cfg.log_every == 0 or done == cfg.steps):
            bar.set_postfix(loss=f"{loss.item():.4f}")
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            with log_file.open("a") as f:
                f.write(json.dumps({"step": done, "loss": loss.item(), **logs}) + "\n")
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_checkpoint(acc, ckpt_dir, done, cfg.keep_checkpoints)
    bar.close()
    acc.wait_for_everyone()
    net = acc.unwrap_model(model)
    if ema is not None:
        ema.copy_to(net.parameters())
    net.eval()
    return net


def save_checkpoint(acc: Accelerator, ckpt_dir: Path, step: int, keep: int) -> None:
    """Write ``step_XXXXXXX`` (model, optimizer, EMA, RNG states) and prune old ones."""
    path = ckpt_dir / f"step_{step:07d}"
    acc.save_state(str(path))
    if acc.is_main_process:
        (path / "progress.json").write_text(json.dumps({"step": step}))
        for old in sorted(ckpt_dir.glob("step_*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest complete checkpoint (one with ``progress.json``), or None."""
    done = [p for p in sorted(Path(ckpt_dir).glob("step_*")) if (p / "progress.json").is_file()]
    return done[-1] if done else None
