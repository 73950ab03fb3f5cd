"""What the benchmark trains: its arms, in report order, the primary comparison, and the command-line lists
they come from.

Arms (``/work/shared/PROTOCOL.md``): ``real``; ``classical`` (real + the classical recipe of the run: by default
:func:`~specdm.augment.classical.classical_augment`'s flips, rotations, mixup and noise, or a recipe of
:data:`specdm.augment.classical.RECIPES` named or chosen on validation, see
:mod:`specdm.evaluation.benchmark.classical_choice`); ``<name> x<a>`` per
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
``self_training`` (only when named): the control for any generator that saw the training image: the real-only
model of the same seed pseudo-labels the unlabelled training windows (:mod:`specdm.evaluation.selftrain`) and a
fresh model (same seed, steps, batch size, optimizer) trains on the real windows plus those, with the classical
recipe, each batch drawing the pseudo-labelled windows' share of all windows;
``synthetic_only``: the first synthetic set at the largest amount, no real
sample (share 1). In the limited-real setting, ``real``, ``self_training`` (if named) and every synthetic set at
the largest amount are re-run on a fixed share of the real windows.

The primary comparison (PROTOCOL "declare one primary comparison before running") is one
``{model, setting, metric, arm, reference}``: by default (:func:`default_primary`) the stacked arm of the first
synthetic set at the first amount against ``classical``, on the first model and its first metric, in the most
label-scarce setting that has both arms; :func:`parse_primary` reads ``--primary``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from specdm.errors import ConfigError

__all__ = ["DEFAULT_MODELS", "FIXED_ARMS", "PRETRAIN_SHARE", "Arm", "default_primary", "parse_amounts",
           "parse_primary", "parse_synthetic", "plan_arms"]

DEFAULT_MODELS = {"segmentation": ("unet", "segformer"), "change": ("siamdiff",)}
FIXED_ARMS = ("real", "classical", "self_training", "synthetic_only")
REFERENCES = ("real", "classical")  # the arms a comparison may be made against
PRETRAIN_SHARE = 0.5  # share of a pretrain arm's steps spent on the synthetic pool before real fine-tuning


@dataclass(frozen=True)
class Arm:
    """One training recipe. ``kind``: real, classical, self_training, synthetic, stacked, pretrain or
    synthetic_only; ``setting``: full or limited.

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
        """``"classical"`` when this arm's batches get the run's classical recipe (by default the recipe
        ``classical`` of :data:`specdm.augment.classical.RECIPES`; the benchmark resolves it per model), else None."""
        return "classical" if self.kind in ("classical", "stacked", "pretrain", "self_training") else None

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
    """Arms in report order; ``arms`` selects by name (real, classical, self_training, a synthetic name,
    ``classical+<name>``, ``pretrain+<name>``, synthetic_only); by default all but the pretrain arms and
    self_training."""
    known = ["real", "classical", "self_training", *synthetic, *(f"classical+{s}" for s in synthetic),
             *(f"pretrain+{s}" for s in synthetic), "synthetic_only"]
    # pretrain arms and self-training only when named (an alternative way to use a set, a control)
    default = [a for a in known if not a.startswith("pretrain+") and a != "self_training"]
    chosen = default if arms is None else list(arms)
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
    if "self_training" in chosen:
        plan.append(Arm("full", "self_training"))
    plan += [Arm("full", "synthetic", s, a) for s in synthetic if s in chosen for a in amounts]
    plan += [Arm("full", "stacked", s, a) for s in synthetic if f"classical+{s}" in chosen for a in amounts]
    plan += [Arm("full", "pretrain", s, a) for s in synthetic if f"pretrain+{s}" in chosen for a in amounts]
    if "synthetic_only" in chosen:
        plan.append(Arm("full", "synthetic_only", synthetic[0], top))
    if limited:
        plan += [Arm("limited", "real")]
        if "self_training" in chosen:
            plan.append(Arm("limited", "self_training"))
        plan += [Arm("limited", "synthetic", s, top) for s in synthetic if s in chosen]
    return plan


def _settings_by_scarcity(plan: Sequence[Arm], shares: Mapping[str, float]) -> list[str]:
    """The settings of ``plan``, most label-scarce first (``shares``: setting -> share of the labels kept)."""
    settings = list(dict.fromkeys(a.setting for a in plan))
    return sorted(settings, key=lambda s: (shares.get(s, 1.0), settings.index(s)))


def default_primary(plan: Sequence[Arm], models: Sequence[str], metrics: Mapping[str, Sequence[str]],
                    shares: Mapping[str, float]) -> dict | None:  # fmt: skip
    """The comparison declared primary unless one is given: on ``models[0]`` and its first metric, in the most
    label-scarce setting (``shares``) holding both arms, the first of: ``classical+<first set> x<first amount>``
    vs ``classical``; ``<first set> x<first amount>`` vs ``real``; ``classical`` vs ``real``; ``self_training``
    vs ``real``. None when the plan has only ``real``."""
    first_stacked = next((a.id for a in plan if a.kind == "stacked"), None)
    first_synthetic = next((a.id for a in plan if a.kind == "synthetic"), None)
    candidates = [(first_stacked, "classical"), (first_synthetic, "real"), ("classical", "real"),
                  ("self_training", "real")]  # fmt: skip
    for arm, reference in candidates:
        if arm is None:
            continue
        for setting in _settings_by_scarcity(plan, shares):
            ids = {a.id for a in plan if a.setting == setting}
            if {arm, reference} <= ids:
                model = models[0]
                return {"model": model, "setting": setting, "metric": metrics[model][0], "arm": arm,
                        "reference": reference}  # fmt: skip
    return None


def parse_primary(text: str, plan: Sequence[Arm], models: Sequence[str], metrics: Mapping[str, Sequence[str]],
                  shares: Mapping[str, float]) -> dict:  # fmt: skip
    """``"ARM vs REFERENCE"`` or ``"MODEL/SETTING/ARM vs REFERENCE"`` (REFERENCE: real or classical; SETTING may be
    empty) -> the primary comparison; model defaults to the first, setting to the most label-scarce one holding
    both arms, the metric is the model's first. Both arms must be planned in that setting."""
    parts = text.split("/")
    model, setting = (parts[0].strip(), parts[1].strip() or None) if len(parts) == 3 else (models[0], None)
    arm, sep, reference = parts[-1].rpartition(" vs ")
    arm, reference = arm.strip(), reference.strip()
    if len(parts) not in (1, 3) or not sep or not arm or reference not in REFERENCES or arm == reference:
        raise ConfigError(f"--primary '{text}' must look like 'ARM vs REFERENCE' or 'MODEL/SETTING/ARM vs REFERENCE', "
                          f"REFERENCE one of {', '.join(REFERENCES)}, e.g. 'classical+joint x1 vs classical'")
    if model not in models:
        raise ConfigError(f"--primary '{text}': model {model!r} is not benchmarked",
                          hint=f"models: {', '.join(models)}")
    settings = [setting] if setting else _settings_by_scarcity(plan, shares)
    for s in settings:
        ids = [a.id for a in plan if a.setting == s]
        if {arm, reference} <= set(ids):
            return {"model": model, "setting": s, "metric": metrics[model][0], "arm": arm, "reference": reference}
    where = f"setting {setting!r}" if setting else "any setting"
    raise ConfigError(f"--primary '{text}': arms {arm!r} and {reference!r} are not both planned in {where}",
                      hint="planned: " + "; ".join(f"{s}: {', '.join(a.id for a in plan if a.setting == s)}"
                                                  for s in dict.fromkeys(a.setting for a in plan)))
