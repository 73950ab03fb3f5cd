"""The training loop shared by both stages, on accelerate.

The same code runs on CPU, one GPU or many processes (``accelerate launch``).
Each step's randomness (which items, which augmentation, which noise) is drawn
from a generator seeded by ``(seed, step)`` for the *whole* batch on every
process, and each process keeps its own slice. So a run on W processes with
``batch_size / W`` items each makes the same update as one process with the
whole batch, and a resumed run continues exactly where it stopped.

Checkpoints (``step_XXXXXXX`` folders under the checkpoint folder) hold tensors in
safetensors files and everything else in JSON, so resuming never unpickles
anything (a checkpoint folder from elsewhere cannot run code)::

    model.safetensors       the model's state dict (unwrapped)
    optimizer.safetensors   the optimizer's per-parameter tensors, ``state.<param>.<name>``
    aux_optimizer.safetensors  the same for the second optimizer (:class:`AuxOptimizer`)   [with one]
    ema.safetensors         the EMA's shadow parameters, ``shadow.<i>``        [with EMA]
    training_state.json     the optimizer's param groups and scalar state (step counters) as
                            numbers, the EMA's counters, the loss scaler's state, the step
    progress.json           written last: format, step and the SHA-256 of every file above

No RNG state is stored: each step's randomness is drawn from ``(seed, step)``.
Folders written by older versions through accelerate's ``save_state`` (pickles) are
refused with a :class:`CheckpointError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from accelerate import Accelerator
from diffusers.training_utils import EMAModel
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from tqdm.auto import tqdm

from specdm.errors import CheckpointError, ConfigError, OutputError
from specdm.speed import Speed, match_layout, resolve_speed, to_channels_last


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
    mixed_precision: str = "auto"  # "auto", "no", "bf16", "fp16" (specdm.speed.resolve_speed)
    log_every: int = 25
    speed: str = "plain"  # "fast" or "plain" (specdm.speed); configs default to fast (train.speed)
    lr_min: float | None = None  # None: constant lr; else annealed from lr to lr_min on a cosine over the steps

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (from 0): ``lr``, or the cosine from ``lr`` to ``lr_min`` (a function of
        the step alone, so a resumed run continues the schedule exactly)."""
        if self.lr_min is None:
            return self.lr
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * step / max(1, self.steps)))

    def resolve(self, device) -> Speed:
        return resolve_speed(self.speed, self.mixed_precision, False, device)


@dataclass
class AuxOptimizer:
    """A part of the model with its own AdamW (e.g. discriminators): the parameters of the submodule
    ``model.<module>`` leave the main optimizer, and on the steps where the step function returns a third
    value (a loss), that loss updates them (after the main update, its gradients alone)."""

    module: str
    lr: float


class StepRandom:
    """Randomness of one step (``step``, from 0): drawn for the whole batch, returned for this process' slice."""

    def __init__(self, seed: int, step: int, batch_size: int, shard: slice, device):
        self.step = step
        self.gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))
        self.batch_size, self.shard, self.device = batch_size, shard, device

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(self.batch_size, *shape, generator=self.gen)[self.shard].to(self.device)

    def integers(self, high: int) -> torch.Tensor:
        return torch.randint(0, high, (self.batch_size,), generator=self.gen)[self.shard].to(self.device)


StepFn = Callable[[torch.nn.Module, torch.Tensor, StepRandom], tuple]


def make_accelerator(mixed_precision: str = "no") -> Accelerator:
    """accelerate's Accelerator; only fp16 goes through its mixed precision (loss scaling), bf16 autocast is
    the engine's own (:class:`~specdm.speed.Speed`), so runs of both precisions can share a process."""
    return Accelerator(mixed_precision="fp16" if mixed_precision == "fp16" else "no")


@dataclass
class StepTimes:
    """One :func:`train_loop` call timed inside :func:`measure_steps`: its ``desc``, the ``steps`` it was configured
    for, the wall time of each timed step (after the warm-up) and ``wall``, the whole call's wall time."""

    desc: str
    steps: int
    seconds: list[float] = field(default_factory=list)
    wall: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def range(self) -> tuple[float, float]:
        return min(self.seconds), max(self.seconds)


@dataclass
class Measurement:
    """What :func:`measure_steps` recorded: one :class:`StepTimes` per :func:`train_loop` call, in call order."""

    warmup: int
    repeats: int
    loops: list[StepTimes] = field(default_factory=list)

    @property
    def last(self) -> StepTimes:
        if not self.loops:
            raise RuntimeError("no training loop ran inside measure_steps")
        return self.loops[-1]


_MEASURING: Measurement | None = None


@contextlib.contextmanager
def measure_steps(warmup: int = 3, repeats: int = 8):
    """Inside this context :func:`train_loop` only times its step: each call runs ``warmup + repeats`` steps from
    step 0 with the run's own settings (speed features, optimizer, EMA, threads), writes nothing (no checkpoint,
    log or progress bar, no resume) and records the wall time of the last ``repeats`` steps in the yielded
    :class:`Measurement`. A trainer called inside it returns a model trained for those few steps."""
    global _MEASURING
    if _MEASURING is not None:
        raise RuntimeError("measure_steps contexts do not nest")
    _MEASURING = measurement = Measurement(warmup, repeats)
    try:
        yield measurement
    finally:
        _MEASURING = None


def train_loop(
    model: torch.nn.Module,
    step_fn: StepFn,
    num_items: int,
    cfg: LoopConfig,
    ckpt_dir: Path,
    resume: bool = False,
    desc: str = "training",
    accelerator: Accelerator | None = None,
    aux: AuxOptimizer | None = None,
) -> torch.nn.Module:
    """Train ``model`` for ``cfg.steps`` steps; returns the unwrapped model (EMA weights if used).

    ``step_fn(model, items, rnd)`` gets this process' item indices (into a data
    set of ``num_items`` items) and its :class:`StepRandom`, and returns
    ``(loss, logs)``; with ``aux``, ``(loss, logs, aux_loss)``, ``aux_loss`` None on the
    steps that leave the auxiliary parameters alone.
    """
    acc = accelerator or make_accelerator(cfg.mixed_precision)
    world, rank = acc.num_processes, acc.process_index
    if cfg.batch_size % world:
        raise ConfigError(f"batch size {cfg.batch_size} is not divisible by the {world} processes")
    local = cfg.batch_size // world
    shard = slice(rank * local, (rank + 1) * local)
    speed = cfg.resolve(acc.device)
    t_call = time.perf_counter()
    timing = None
    if _MEASURING is not None:
        timing = StepTimes(desc, cfg.steps)
        _MEASURING.loops.append(timing)
    undo_layout = to_channels_last(model) if speed.channels_last else None

    if aux is None:
        main_params = list(model.parameters())
        aux_optimizer = None
        optimizer = speed.optimizer(main_params, cfg.lr)
        model, optimizer = acc.prepare(model, optimizer)
    else:
        main_params = [p for n, p in model.named_parameters() if not n.startswith(aux.module + ".")]
        optimizer = speed.optimizer(main_params, cfg.lr)
        aux_params = list(model.get_submodule(aux.module).parameters())
        aux_optimizer = speed.optimizer(aux_params, aux.lr)
        model, optimizer, aux_optimizer = acc.prepare(model, optimizer, aux_optimizer)
    ema = None
    if cfg.ema_decay:
        ema = EMAModel(acc.unwrap_model(model).parameters(), decay=cfg.ema_decay, foreach=speed.fused)
        ema.to(acc.device)

    ckpt_dir = Path(ckpt_dir)
    start = 0
    if resume and timing is None:
        last = latest_checkpoint(ckpt_dir)
        if last is not None:
            start = load_checkpoint(acc, last, model, optimizer, ema, aux_optimizer)
            if speed.channels_last:
                for opt in (optimizer, aux_optimizer):
                    if opt is not None:
                        match_layout(opt)
            acc.print(f"resuming {desc} from step {start} ({last})")
    end = _MEASURING.warmup + _MEASURING.repeats if timing is not None else cfg.steps
    autocast = (lambda: speed.autocast(acc.device)) if speed.precision == "bf16" else acc.autocast

    def clip(params) -> None:
        if not cfg.grad_clip:
            return
        if speed.fused:  # one foreach norm over all gradients (accelerate's clip has no foreach switch)
            acc.unscale_gradients()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
        else:
            acc.clip_grad_norm_(params, cfg.grad_clip)

    log_file = ckpt_dir / "train_log.jsonl"
    bar = tqdm(range(start, end), initial=start, total=end, desc=desc,
               disable=not acc.is_main_process or timing is not None)
    model.train()
    t_log, logged = time.perf_counter(), start
    for step in bar:
        t_step = time.perf_counter()
        rnd = StepRandom(cfg.seed, step, cfg.batch_size, shard, acc.device)
        items = rnd.integers(num_items)
        with autocast():
            loss, logs, *rest = step_fn(model, items, rnd)
        aux_loss = rest[0] if aux_optimizer is not None else None
        for value in (loss, aux_loss):
            if value is not None and not torch.isfinite(value):
                raise CheckpointError(f"{desc}: loss became {value.item()} at step {step}; lower the learning rate",
                                      ckpt_dir)
        optimizer.zero_grad(set_to_none=True)
        acc.backward(loss)
        clip(main_params)
        if cfg.lr_min is not None:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr_at(step)
        optimizer.step()
        if aux_loss is not None:
            aux_optimizer.zero_grad(set_to_none=True)
            acc.backward(aux_loss)
            clip(aux_params)
            aux_optimizer.step()
            logs = {**logs, "aux_loss": aux_loss.item()}
        if ema is not None:
            ema.step(acc.unwrap_model(model).parameters())
        if timing is not None:
            if step >= _MEASURING.warmup:
                timing.seconds.append(time.perf_counter() - t_step)
            continue
        done = step + 1
        if acc.is_main_process and (done % cfg.log_every == 0 or done == cfg.steps):
            bar.set_postfix(loss=f"{loss.item():.4f}")
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            now = time.perf_counter()  # wall time per step since the last log line (includes any checkpoint)
            with log_file.open("a") as f:
                f.write(json.dumps({"step": done, "loss": loss.item(), **logs,
                                    "s_per_step": round((now - t_log) / (done - logged), 5)}) + "\n")
            t_log, logged = now, done
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_checkpoint(acc, ckpt_dir, done, cfg.keep_checkpoints, model, optimizer, ema, aux_optimizer)
    bar.close()
    acc.wait_for_everyone()
    net = acc.unwrap_model(model)
    if ema is not None and timing is None:
        ema.copy_to(net.parameters())
    if undo_layout is not None:
        undo_layout()
    if timing is not None:
        timing.wall = time.perf_counter() - t_call
    net.eval()
    return net



# ---------------------------------------------------------------------------------------------
# Checkpoints: safetensors + JSON, never pickle

FORMAT = "specdm-checkpoint"
FORMAT_VERSION = 1
MODEL_FILE, OPTIMIZER_FILE, EMA_FILE = "model.safetensors", "optimizer.safetensors", "ema.safetensors"
AUX_OPTIMIZER_FILE = "aux_optimizer.safetensors"
STATE_FILE, PROGRESS_FILE = "training_state.json", "progress.json"
# dtypes a 0-d tensor of the optimizer state (e.g. AdamW's step counter) may be stored as, by name
_SCALAR_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16,
    torch.int32, torch.int64, torch.bool)}
OLD_FORMAT_HINT = "restart the training with --overwrite (or delete the checkpoint folder)"
BROKEN_HINT = "delete this step folder to resume from the checkpoint before it, or restart the training with --overwrite"


def save_checkpoint(acc: Accelerator, ckpt_dir: Path, step: int, keep: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, ema: EMAModel | None = None,
                    aux_optimizer: torch.optim.Optimizer | None = None) -> Path:
    """Write ``step_XXXXXXX`` (model, optimizer, EMA, auxiliary optimizer: safetensors + JSON) and prune all
    but the newest ``keep``.

    Only the main process writes (into a hidden folder, renamed once complete); all processes wait.
    """
    ckpt_dir = Path(ckpt_dir)
    path = ckpt_dir / f"step_{step:07d}"
    if acc.is_main_process:
        tmp = ckpt_dir / f".{path.name}.tmp"
        try:
            _write_checkpoint(acc, tmp, path, step, model, optimizer, ema, aux_optimizer)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise OutputError(f"cannot write the checkpoint ({e.strerror or e})", path,
                              hint="check the disk's free space and the folder's permissions, then rerun with --resume") from None
        for old in sorted(ckpt_dir.glob("step_*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
    return path


def _write_checkpoint(acc: Accelerator, tmp: Path, path: Path, step: int, model, optimizer, ema,
                      aux_optimizer=None) -> None:
    """Write the checkpoint's files into ``tmp``, ``progress.json`` last, then rename ``tmp`` to ``path``."""
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = {MODEL_FILE: save_safetensors(_cpu_copies(acc.unwrap_model(model).state_dict()))}
    opt_json, opt_tensors = _encode_optimizer(optimizer.state_dict())
    files[OPTIMIZER_FILE] = save_safetensors(opt_tensors)
    ema_json = None
    if ema is not None:
        ema_json = ema.state_dict()
        shadow = {f"shadow.{i}": t for i, t in enumerate(ema_json.pop("shadow_params"))}
        files[EMA_FILE] = save_safetensors(_cpu_copies(shadow))
    scaler = getattr(acc, "scaler", None)
    state = {"step": step, "optimizer": opt_json, "ema": ema_json,
             "scaler": None if scaler is None else scaler.state_dict()}
    if aux_optimizer is not None:
        state["aux_optimizer"], aux_tensors = _encode_optimizer(aux_optimizer.state_dict())
        files[AUX_OPTIMIZER_FILE] = save_safetensors(aux_tensors)
    files[STATE_FILE] = json.dumps(state, indent=1).encode()
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    progress = {"format": FORMAT, "version": FORMAT_VERSION, "step": step,
                "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
    (tmp / PROGRESS_FILE).write_text(json.dumps(progress, indent=1))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def load_checkpoint(acc: Accelerator, path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    ema: EMAModel | None = None, aux_optimizer: torch.optim.Optimizer | None = None) -> int:
    """Restore model, optimizer (and EMA, loss scaler) from a folder written by :func:`save_checkpoint`;
    returns its step. Reads only JSON and safetensors; every file is checked against its recorded SHA-256.
    Raises :class:`CheckpointError` naming the file that is missing, corrupt or does not fit."""
    path = Path(path)
    progress = _read_json(path / PROGRESS_FILE)
    if not isinstance(progress, dict) or progress.get("format") != FORMAT:
        if isinstance(progress, dict) and "format" not in progress and "step" in progress:
            raise CheckpointError(
                "was written in accelerate's pickle-based checkpoint format by an older specdm; loading it would "
                "unpickle files, which can run arbitrary code, so it cannot be resumed safely", path, hint=OLD_FORMAT_HINT)
        raise CheckpointError(f"is not a {FORMAT} progress file", path / PROGRESS_FILE, hint=OLD_FORMAT_HINT)
    if progress.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"has checkpoint format version {progress.get('version')}; this specdm reads "
                              f"version {FORMAT_VERSION}", path / PROGRESS_FILE, hint=OLD_FORMAT_HINT)
    step, sums = progress.get("step"), progress.get("sha256")
    if not isinstance(step, int) or not isinstance(sums, dict) or path.name != f"step_{step:07d}":
        raise CheckpointError(f"is corrupt (step {step!r} does not match the folder name, or checksums missing)",
                              path / PROGRESS_FILE, hint=BROKEN_HINT)
    need = [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE] + ([EMA_FILE] if ema is not None else []) + (
        [AUX_OPTIMIZER_FILE] if aux_optimizer is not None else [])
    data = {}
    for name in need:
        f = path / name
        if name not in sums:
            what = {EMA_FILE: "EMA", AUX_OPTIMIZER_FILE: "a second optimizer (discriminators)"}.get(name, "it")
            raise CheckpointError(f"is not listed in {PROGRESS_FILE}; the checkpoint was written without {what}", f)
        if not f.is_file():
            raise CheckpointError("is missing; the checkpoint is incomplete", f, hint=BROKEN_HINT)
        data[name] = f.read_bytes()
        if hashlib.sha256(data[name]).hexdigest() != sums[name]:
            raise CheckpointError(f"is corrupt (its SHA-256 differs from the one in {PROGRESS_FILE})", f, hint=BROKEN_HINT)
    try:
        state = json.loads(data[STATE_FILE])
        if not isinstance(state, dict) or state.get("step") != step:
            raise ValueError(f"step {state.get('step') if isinstance(state, dict) else None!r}, expected {step}")
    except ValueError as e:
        raise CheckpointError(f"is corrupt ({e})", path / STATE_FILE, hint=BROKEN_HINT) from None

    tensors = {name: _read_safetensors(data[name], path / name) for name in need if name.endswith(".safetensors")}
    _fit(path / MODEL_FILE, lambda: acc.unwrap_model(model).load_state_dict(tensors[MODEL_FILE], strict=True))
    _fit(path / OPTIMIZER_FILE,
         lambda: optimizer.load_state_dict(_decode_optimizer(state["optimizer"], tensors[OPTIMIZER_FILE])))
    if ema is not None:
        _fit(path / EMA_FILE, lambda: _load_ema(ema, state.get("ema"), tensors[EMA_FILE]))
    if aux_optimizer is not None:
        _fit(path / AUX_OPTIMIZER_FILE, lambda: aux_optimizer.load_state_dict(
            _decode_optimizer(state.get("aux_optimizer"), tensors[AUX_OPTIMIZER_FILE])))
    scaler = getattr(acc, "scaler", None)
    if scaler is not None and state.get("scaler"):
        _fit(path / STATE_FILE, lambda: scaler.load_state_dict(state["scaler"]))
    return step


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest complete checkpoint (one with ``progress.json``), or None."""
    done = [p for p in sorted(Path(ckpt_dir).glob("step_*")) if (p / PROGRESS_FILE).is_file()]
    return done[-1] if done else None


def _cpu_copies(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies (no two share memory, as safetensors requires)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def _encode_optimizer(sd: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """An optimizer state dict as (JSON-able dict, tensors): tensors with a shape go to the safetensors
    file (``state.<param>.<name>``), 0-d tensors (step counters) become numbers with their dtype."""
    tensors: dict[str, torch.Tensor] = {}

    def enc(value, key: str):
        if isinstance(value, torch.Tensor):
            if value.ndim == 0:
                dtype = str(value.dtype).removeprefix("torch.")
                if dtype not in _SCALAR_DTYPES:
                    raise TypeError(f"optimizer state {key} has dtype {value.dtype}, which is not stored")
                return {"__scalar__": value.item(), "dtype": dtype}
            tensors[key] = value.detach().to("cpu", copy=True).contiguous()
            return {"__tensor__": key}
        if isinstance(value, tuple):
            return {"__tuple__": [enc(v, f"{key}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [enc(v, f"{key}.{i}") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if any(k.startswith("__") for k in map(str, value)):
                raise TypeError(f"optimizer state {key} has a key starting with '__'")
            return {str(k): enc(v, f"{key}.{k}") for k, v in value.items()}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"optimizer state {key} is a {type(value).__name__}, which is not stored")

    state = {str(i): enc(s, f"state.{i}") for i, s in sd["state"].items()}
    groups = [enc(g, f"param_groups.{i}") for i, g in enumerate(sd["param_groups"])]
    return {"state": state, "param_groups": groups}, tensors


def _decode_optimizer(js: dict, tensors: dict[str, torch.Tensor]) -> dict:
    """Inverse of :func:`_encode_optimizer` (unknown tensor keys or dtypes raise ValueError)."""
    used = set()

    def dec(value):
        if isinstance(value, list):
            return [dec(v) for v in value]
        if isinstance(value, dict):
            if "__tensor__" in value:
                key = value["__tensor__"]
                if key not in tensors:
                    raise ValueError(f"tensor '{key}' is missing")
                used.add(key)
                return tensors[key]
            if "__scalar__" in value:
                dtype = _SCALAR_DTYPES.get(value.get("dtype"))
                if dtype is None:
                    raise ValueError(f"unknown dtype {value.get('dtype')!r}")
                return torch.tensor(value["__scalar__"], dtype=dtype)
            if "__tuple__" in value:
                return tuple(dec(v) for v in value["__tuple__"])
            return {k: dec(v) for k, v in value.items()}
        return value

    if not isinstance(js, dict) or not isinstance(js.get("state"), dict) or not isinstance(js.get("param_groups"), list):
        raise ValueError(f"{STATE_FILE} holds no optimizer state")
    sd = {"state": {int(i): dec(s) for i, s in js["state"].items()}, "param_groups": dec(js["param_groups"])}
    extra = set(tensors) - used
    if extra:
        raise ValueError(f"unexpected tensors {sorted(extra)[:3]}")
    return sd


def _load_ema(ema: EMAModel, js: Any, tensors: dict[str, torch.Tensor]) -> None:
    if not isinstance(js, dict):
        raise ValueError(f"{STATE_FILE} holds no EMA state")
    n = len(ema.shadow_params)
    if set(tensors) != {f"shadow.{i}" for i in range(n)}:
        raise ValueError(f"holds {len(tensors)} shadow tensors, the model has {n} parameters")
    for i, p in enumerate(ema.shadow_params):
        t = tensors[f"shadow.{i}"]
        if t.shape != p.shape:
            raise ValueError(f"shadow.{i} has shape {tuple(t.shape)}, the parameter {tuple(p.shape)}")
    ema.load_state_dict({k: v for k, v in js.items() if k != "shadow_params"})
    with torch.no_grad():
        for i, p in enumerate(ema.shadow_params):
            p.copy_(tensors[f"shadow.{i}"])


def _read_json(f: Path):
    if not f.is_file():
        raise CheckpointError("is missing; the checkpoint is incomplete", f, hint=BROKEN_HINT)
    try:
        return json.loads(f.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"is corrupt ({e})", f, hint=BROKEN_HINT) from None


def _read_safetensors(data: bytes, f: Path) -> dict[str, torch.Tensor]:
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError) as e:
        raise CheckpointError(f"is corrupt ({e})", f, hint=BROKEN_HINT) from None


def _fit(f: Path, load: Callable[[], Any]) -> None:
    """Run ``load``; a state that does not fit the model or optimizer becomes a CheckpointError naming ``f``."""
    try:
        load()
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"does not fit this training run ({why})", f,
                              hint="resume with the same model and training settings, or restart with --overwrite") from None
