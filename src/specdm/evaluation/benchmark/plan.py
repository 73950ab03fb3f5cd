"""What the benchmark trains: its arms, in report order, and the command-line lists they come from.

Arms (``/work/shared/PROTOCOL.md``): ``real``; ``classical`` (real + flips,
rotations, mixup and noise, :mod:`specdm.augment.classical`); ``<name> x<a>`` per
synthetic set and amount ``a``: real + the first ``round(a * N_real)`` synthetic
samples in file order (:mod:`specdm.augment.synthetic`), each batch drawing a
share ``a / (1 + a)`` from them (``a = 1``: half the batch is synthetic);
``classical+<name> x<a>`` (the stacked arm): the same mix of real and synthetic
samples with classical augmentation on every batch, which is what a user would run,
so synthetic data must beat ``classical``, not only ``real``;
``pretrain+<name> x<a>``: the same compute in two phases, first the synthetic pool alone with
classical augmentation for a share :data:`PRETRAIN_SHARE` of the steps, then the real windows
with classical augmentation from those weights for the rest (synthetic pretraining, real
fine-tuning: what is done when synthetic data differ from the real domain);
``synthetic_only``: the first synthetic set at the largest amount, no real
sample (share 1). In the limited-real setting, ``real`` and every synthetic set
at the largest amount are re-run on a fixed share of the real windows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from specdm.errors import ConfigError

__all__ = ["DEFAULT_MODELS", "FIXED_ARMS", "PRETRAIN_SHARE", "Arm", "parse_amounts", "parse_synthetic", "plan_arms"]

DEFAULT_MODELS = {"segmentation": ("unet", "segformer"), "change": ("siamdiff",)}
FIXED_ARMS = ("real", "classical", "synthetic_only")
PRETRAIN_SHARE = 0.5  # share of a pretrain arm's steps spent on the synthetic pool before real fine-tuning


@dataclass(frozen=True)
class Arm:
    """One training recipe. ``kind``: real, classical, synthetic, stacked, pretrain or synthetic_only; ``setting``:
    full or limited.

    An arm trains on the real windows of its setting plus the classical augmentation of its batches
    (classical, stacked) and/or ``amount`` x the real window count from the synthetic set ``synthetic``
    (synthetic, stacked).
    """

    setting: str
    kind: str
    synthetic: str | None = None
    amount: float | None = None

    @property
    def id(self) -> str:
        if self.kind == "synthetic":
            return f"{self.synthetic} x{self.amount:g}"
        if self.kind == "stacked":
            return f"classical+{self.synthetic} x{self.amount:g}"
        if self.kind == "pretrain":
            return f"pretrain+{self.synthetic} x{self.amount:g}"
        return self.kind

    @property
    def mix(self) -> float | None:
        """Synthetic share of each batch."""
        if self.kind == "synthetic_only":
            return 1.0
        return self.amount / (1 + self.amount) if self.kind in ("synthetic", "stacked") else None

    @property
    def augment(self) -> str | None:
        """The batch augmentation of this arm (a name of :data:`specdm.augment.classical.AUGMENTATIONS`)."""
        return "classical" if self.kind in ("classical", "stacked", "pretrain") else None

    def pool_size(self, n_real: int) -> int:
        """Synthetic samples this arm draws from, for ``n_real`` real windows (0 without a synthetic set)."""
        return round(self.amount * n_real) if self.synthetic else 0


def parse_synthetic(items: Iterable[str]) -> dict[str, Path]:
    """``["NAME=DIR", ...]`` -> ``{NAME: Path(DIR)}``; names are word characters, dots or dashes."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not path or not re.fullmatch(r"[\w.-]+", name) or name in FIXED_ARMS:
            raise ConfigError(f"--synthetic '{item}' must look like NAME=DIR, NAME of letters, digits, _ . - "
                              f"and not one of {', '.join(FIXED_ARMS)}")  # fmt: skip
        if name in out:
            raise ConfigError(f"--synthetic name '{name}' is given twice")
        out[name] = Path(path)
    return out


def parse_amounts(text: str) -> list[float]:
    """``"1,3,5"`` -> ``[1, 3, 5]`` (positive numbers)."""
    try:
        amounts = [float(a) for a in text.split(",")]
    except ValueError:
        amounts = []
    if not amounts or any(not math.isfinite(a) or a <= 0 for a in amounts):
        raise ConfigError(f"--amounts '{text}' must be comma-separated positive numbers, e.g. 1,3,5")
    return [int(a) if a.is_integer() else a for a in amounts]


def plan_arms(arms: Sequence[str] | None, synthetic: Sequence[str], amounts: Sequence[float], limited: float) -> list[Arm]:
    """Arms in report order; ``arms`` selects by name (real, classical, a synthetic name, ``classical+<name>``,
    ``pretrain+<name>``, synthetic_only); by default all but the pretrain arms."""
    known = ["real", "classical", *synthetic, *(f"classical+{s}" for s in synthetic),
             *(f"pretrain+{s}" for s in synthetic), "synthetic_only"]
    # pretrain arms only when named (they are an alternative way to use a set, not part of the default grid)
    chosen = [a for a in known if not a.startswith("pretrain+")] if arms is None else list(arms)
    unknown = [a for a in chosen if a not in known]
    if unknown:
        raise ConfigError(f"unknown arm(s) {', '.join(unknown)}", hint=f"choose from {', '.join(known)}")
    if "real" not in chosen:
        raise ConfigError("arm 'real' is the reference of every comparison and cannot be left out")
    if "synthetic_only" in chosen and not synthetic:
        raise ConfigError("arm 'synthetic_only' needs a --synthetic set")
    top = max(amounts)
    plan = [Arm("full", "real")]
    if "classical" in chosen:
        plan.append(Arm("full", "classical"))
    plan += [Arm("full", "synthetic", s, a) for s in synthetic if s in chosen for a in amounts]
    plan += [Arm("full", "stacked", s, a) for s in synthetic if f"classical+{s}" in chosen for a in amounts]
    plan += [Arm("full", "pretrain", s, a) for s in synthetic if f"pretrain+{s}" in chosen for a in amounts]
    if "synthetic_only" in chosen:
        plan.append(Arm("full", "synthetic_only", synthetic[0], top))
    if limited:
        plan += [Arm("limited", "real")] + [Arm("limited", "synthetic", s, top) for s in synthetic if s in chosen]
    return plan
