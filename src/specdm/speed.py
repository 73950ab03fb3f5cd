"""How a training step is run fast, without changing what it computes beyond rounding.

Two modes (``train.speed``):

- ``plain``: float32, contiguous (NCHW) tensors, torch's single-tensor AdamW, per-tensor gradient
  clipping and EMA updates: the path of specdm 0.1, kept bit for bit (``tests/test_regression.py``).
- ``fast`` (default): where the hardware runs bfloat16 natively (a CPU with AVX512-BF16 or AMX, a CUDA
  GPU with bf16), the forward and backward passes run under bfloat16 autocast (weights, optimizer state,
  EMA and losses stay float32) with convolutions in the channels-last layout, which oneDNN's bf16 kernels
  need to be fast; GroupNorm layers then normalize a contiguous copy (torch's channels-last GroupNorm is
  several times slower on CPU). Everywhere, AdamW is the fused kernel and gradient clipping and EMA
  updates work on all tensors at once. ``docs/performance.md`` has the measured ratio of each part.

``train.compile: true`` adds ``torch.compile`` (inductor) of the model on top; it costs tens of seconds
of compilation per model and shape, so it is off by default (measured in ``docs/performance.md``).
"""

from __future__ import annotations

import contextlib
import functools
import platform
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SPEEDS", "ChannelsLastGroupNorm", "Speed", "native_bf16", "resolve_speed"]

SPEEDS = ("fast", "plain")


@dataclass(frozen=True)
class Speed:
    """The resolved speed features of one training run (plain values, see the module docstring)."""

    precision: str = "no"  # "no" (float32), "bf16" (autocast), "fp16" (accelerate's autocast + loss scaling)
    channels_last: bool = False
    fused: bool = False  # fused AdamW, foreach gradient clipping and EMA
    compile: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def plain(self) -> bool:
        return self == Speed()

    def autocast(self, device: torch.device):
        """The bf16 autocast context of this run (a no-op context otherwise)."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)

    def optimizer(self, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        """AdamW without weight decay: fused when ``fused``, else torch's default (single tensor on CPU)."""
        if self.fused:
            return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 arithmetic natively: a CUDA GPU that supports it, or an x86 CPU with
    AVX512-BF16 or AMX-BF16 and oneDNN (elsewhere torch emulates bf16, slower than float32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu" or platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return torch.backends.mkldnn.is_available() and bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def resolve_speed(speed: str = "plain", mixed_precision: str = "auto", compile: bool = False,
                  device: str | torch.device = "cpu") -> Speed:
    """The :class:`Speed` of a run on ``device``: ``speed`` "fast" or "plain" (see the module docstring);
    ``mixed_precision`` "auto" (bf16 in fast mode where :func:`native_bf16`, else none), "no", "bf16" or
    "fp16" (an explicit choice holds in either mode)."""
    if speed not in SPEEDS:
        raise ValueError(f"speed must be one of {SPEEDS}, got {speed!r}")
    fast = speed == "fast"
    if mixed_precision == "auto":
        precision = "bf16" if fast and native_bf16(device) else "no"
    else:
        precision = mixed_precision
    # channels-last pays off with oneDNN's bf16 kernels; in float32 it was measured level (docs/performance.md)
    return Speed(precision, fast and precision == "bf16", fast, compile)


class ChannelsLastGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` that normalizes a contiguous copy of a channels-last input and returns channels-last:
    torch's GroupNorm kernels are several times slower on channels-last CPU tensors than the two copies.
    The same parameters and state dict as ``nn.GroupNorm``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            y = F.group_norm(x.contiguous(), self.num_groups, self.weight, self.bias, self.eps)
            return y.contiguous(memory_format=torch.channels_last)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


def to_channels_last(model: nn.Module) -> Callable[[], None]:
    """Put ``model``'s 4-d parameters in the channels-last layout and its GroupNorm layers on
    :class:`ChannelsLastGroupNorm`; returns the function that undoes both (contiguous parameters and plain
    GroupNorm again, so the model saves and samples as before)."""
    swapped = [m for m in model.modules() if type(m) is nn.GroupNorm]
    for m in swapped:
        m.__class__ = ChannelsLastGroupNorm
    model.to(memory_format=torch.channels_last)

    def undo() -> None:
        for m in swapped:
            m.__class__ = nn.GroupNorm
        model.to(memory_format=torch.contiguous_format)

    return undo


def match_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give every tensor of the optimizer's state the memory layout of its parameter (a state loaded from a
    checkpoint is contiguous; a channels-last parameter wants channels-last moments)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for k, v in optimizer.state.get(p, {}).items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                    optimizer.state[p][k] = torch.empty_like(p, dtype=v.dtype).copy_(v)
