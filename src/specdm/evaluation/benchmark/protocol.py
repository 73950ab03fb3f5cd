"""The benchmark protocol over spatial folds and label settings: cells, and the summary that pools them.

``specdm benchmark CONFIG`` (``docs/folds.md``, ``../shared/PROTOCOL.md``) runs one single-split benchmark
(:func:`~specdm.evaluation.benchmark.run.benchmark`) per *cell*: a fold of a spatial fold design and a label
setting (the share of the training part's labels kept, ``data.labels_keep``), each in its own folder
``OUT/fold<i>/<setting>/`` with its own ``benchmark.json``, resumable. This module names the cells and pools
them: every run of every cell is tagged with its fold and label setting, runs pair by the unit
``(fold, seed)`` (seed k of fold i of every arm shares the initialization and the real batch order), and
:func:`~specdm.evaluation.benchmark.run.summarize` gives, per model, label setting, metric and arm, the
paired differences to ``real`` and to ``classical``, their 95 % intervals, p-values, minimum detectable effects
and the Holm-corrected verdicts, with one primary comparison declared before the first training.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from specdm import __version__
from specdm.errors import ConfigError, OutputError
from specdm.evaluation.benchmark.run import RESULT_FILE, summarize
from specdm.evaluation.records import json_safe, write_json
from specdm.evaluation.tasks import METRICS

__all__ = ["DEFAULT_LABELS", "PROTOCOL_FILE", "Cell", "combine", "label_setting", "parse_labels", "parse_primary",
           "parse_steps", "primary_of", "write_protocol"]

DEFAULT_LABELS = (0.05, 0.2, 1.0)  # label-scarce settings users hold (about 5 % and 20 % of the labels) and all
PROTOCOL_FILE = "protocol.json"  # what was declared before the first training: design, cells, primary


def label_setting(share: float) -> str:
    """The name of a label setting: ``"full"`` for 1, else the kept share in percent (``"5%"``, ``"20%"``)."""
    return "full" if share >= 1 else f"{share * 100:g}%"


def parse_labels(text: str) -> list[float]:
    """``"0.05,0.2,1"`` -> ``[0.05, 0.2, 1.0]``: shares of the training part's labels, in (0, 1]."""
    try:
        shares = [float(v) for v in text.split(",")]
    except ValueError:
        shares = []
    if not shares or any(not (0 < s <= 1) for s in shares) or len(set(shares)) != len(shares):
        raise ConfigError(f"--labels '{text}' must be distinct shares in (0, 1], e.g. 0.05,0.2,1")
    return sorted(shares)


def parse_steps(text: str | int, models: Sequence[str], shares: Sequence[float]) -> dict[str, dict[str, int]]:
    """Training steps per model and label setting, ``{model: {setting: steps}}``, from one number (``"2000"``) or
    comma-separated ``KEY=N`` items whose KEY is a model (``unet=500``), a label setting (``5%=500``) or both
    (``segformer/5%=2000``); the most specific item wins and every (model, setting) must get a number. A budget is
    past real-only's plateau in that setting (bench/real_only_budget.py)."""
    settings = [label_setting(s) for s in shares]
    text = str(text).strip()
    out: dict[str, dict[str, int]] = {m: {} for m in models}
    try:
        items = [tuple(i.split("=", 1)) if "=" in i else ("", i) for i in text.split(",")]
        rank = {}
        for key, value in items:
            key, n = key.strip(), int(value)
            model, _, setting = key.partition("/") if "/" in key else ((key, "", "") if key in models else ("", "", key))
            if (model and model not in models) or (setting and setting not in settings) or n < 1:
                raise ValueError(key)
            for m in [model] if model else models:
                for st in [setting] if setting else settings:
                    r = bool(model) + bool(setting)
                    if rank.get((m, st), -1) <= r:
                        out[m][st], rank[(m, st)] = n, r
    except ValueError:
        out = {}
    if not out or any(sorted(v) != sorted(settings) for v in out.values()):
        raise ConfigError(f"--steps '{text}' must give every model and label setting a number of steps: one number, "
                          f"or KEY=N items with KEY a model ({', '.join(models)}), a setting ({', '.join(settings)}) "
                          "or MODEL/SETTING, e.g. 2000,unet=1000 or unet=1000,segformer=4000")
    return {m: {st: out[m][st] for st in settings} for m in models}


class Cell:
    """One fold x label setting: its folder under the protocol's output folder, one single-split benchmark per
    model in it (``<model>/benchmark.json``: each model trains its own budget)."""

    def __init__(self, out_dir: Path, fold: int, share: float):
        self.fold, self.share, self.setting = fold, share, label_setting(share)
        self.dir = Path(out_dir) / f"fold{fold}" / self.setting.replace("%", "pct")

    def result_file(self, model: str) -> Path:
        return self.dir / model / RESULT_FILE

    def __repr__(self) -> str:
        return f"Cell(fold {self.fold}, {self.setting})"


def primary_of(models: Sequence[str], shares: Sequence[float], stacked_arm: str | None) -> dict | None:
    """The default primary comparison: the stacked synthetic arm vs ``classical``, first model, its first metric,
    in the most label-scarce setting (None without a synthetic arm)."""
    if not stacked_arm:
        return None
    model = models[0]
    return {"model": model, "setting": label_setting(min(shares)), "metric": METRICS[model][0], "arm": stacked_arm,
            "reference": "classical"}


def parse_primary(text: str, models: Sequence[str], shares: Sequence[float], arms: Sequence[str]) -> dict:
    """``"ARM vs REFERENCE"`` or ``"MODEL/SETTING/ARM vs REFERENCE"`` (SETTING a label setting such as ``5%`` or
    ``full``; default the most label-scarce; MODEL default the first) -> the primary comparison."""
    parts = text.split("/")
    model, setting = (parts[0].strip(), parts[1].strip()) if len(parts) == 3 else (models[0], label_setting(min(shares)))
    arm, sep, reference = parts[-1].rpartition(" vs ")
    arm, reference = arm.strip(), reference.strip()
    settings = [label_setting(x) for x in shares]
    if len(parts) not in (1, 3) or not sep or reference not in ("real", "classical") or arm == reference:
        raise ConfigError(f"--primary '{text}' must look like 'ARM vs REFERENCE' or 'MODEL/SETTING/ARM vs REFERENCE' "
                          "(REFERENCE real or classical), e.g. 'unet/5%/classical+specdm x1 vs classical'")
    if model not in models or setting not in settings or arm.split(" x")[0] not in arms:
        raise ConfigError(f"--primary '{text}': model, label setting or arm is not part of the protocol",
                          hint=f"models {', '.join(models)}; settings {', '.join(settings)}; arms {', '.join(arms)}")
    return {"model": model, "setting": setting, "metric": METRICS[model][0], "arm": arm, "reference": reference}


def combine(out_dir: Path, cells: Sequence[Cell], protocol: Mapping, command: str = "",
            extra_wall_s: float = 0.0) -> dict:
    """Pool the cells that have results into ``OUT/benchmark.json`` (and return it): every run tagged with its
    fold and label setting, the summary over ``(fold, seed)`` units against the protocol's primary comparison,
    per cell its data record (label share kept, classes, classical recipe chosen) and wall time."""
    out_dir = Path(out_dir)
    runs, cell_records, wall = [], [], extra_wall_s
    for cell in cells:
        for model in protocol["models"]:
            path = cell.result_file(model)
            if not path.is_file():
                cell_records.append({"fold": cell.fold, "setting": cell.setting, "model": model,
                                     "status": "not run yet"})
                continue
            try:
                res = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise OutputError(f"cannot be read ({e})", path) from None
            for r in res["runs"]:
                runs.append({**r, "fold": cell.fold, "setting": cell.setting, "cell_setting": r["setting"]})
            wall += res.get("wall_time_s", 0.0)
            data = res.get("data", {})
            cell_records.append({
                "fold": cell.fold, "setting": cell.setting, "model": model, "share": cell.share, "status":
                "complete" if res.get("complete") else "partial", "runs": len(res["runs"]),
                "steps": res.get("settings", {}).get("steps"), "wall_time_s": res.get("wall_time_s"),
                "train_windows": data.get("train_windows"), "labels": data.get("labels"),
                "classes_averaged": data.get("classes_averaged"),
                "labelled_test_pixels": data.get("labelled_test_pixels"),
                "classical_recipe": (res.get("settings", {}).get("classical_recipe") or {}).get(model),
                "classical_choice": (res.get("classical_choice") or {}).get(model), "path": str(path)})
    primary = protocol.get("primary")
    summary = summarize(runs, primary, unit=lambda r: (r["fold"], r["seed"])) if runs else {}
    result = json_safe({
        "specdm_benchmark": __version__,
        "protocol": dict(protocol),
        "command": command,
        "cells": cell_records,
        "complete": all(c.get("status") == "complete" for c in cell_records),
        "wall_time_s": round(wall, 1),
        "runs": runs,
        "summary": summary,
        "primary": _primary_result(summary, primary),
        "conventions": {
            "units": "a unit is (fold, seed): seed k of fold i of every arm shares the network initialization and "
                     "the order of real batches; differences are taken per unit and pooled over folds and seeds",
            "test": "each fold's test part, predicted whole scene (tiled) and scored on its labelled test pixels "
                    "(pooled into one confusion matrix per run)",
            "labels": "a label setting keeps about that share of the training part's labelled pixels, as whole "
                      "random cells (data.labels_keep, docs/folds.md); the image stays available unlabelled",
            "statistics": "per comparison: mean and paired std of the differences, Student-t 95 % interval, paired "
                          "t-test p, minimum detectable effect at 80 % power; the primary comparison (declared in "
                          f"{PROTOCOL_FILE} before the first training) on its own p, every other one on the model's "
                          "first metric Holm-adjusted across all of them (p_holm); fewer than 2 units: not enough "
                          "seeds",
        },
    })
    write_json(out_dir / RESULT_FILE, result)
    return result


def _primary_result(summary: Mapping, primary: Mapping | None) -> dict | None:
    """The primary comparison's numbers, or where it stands when they are not there yet."""
    if not primary:
        return None
    entry = summary.get(primary["model"], {}).get(primary["setting"], {}).get(primary["metric"], {}).get(primary["arm"])
    if entry is None:
        return {**primary, "status": "not run yet"}
    c = entry if primary["reference"] == "real" else entry.get("vs_classical")
    if c is None:
        return {**primary, "status": "reference arm not run yet"}
    sd, n, mde = c["diff_std"], c["n"], c["mde80"]
    return {**primary, "status": "measured", "n_units": n, "diff_mean": c["diff_mean"], "diff_std": sd,
            "diff_ci95": c["diff_ci95"], "p": c["p"], "mde80": mde, "verdict": c.get("verdict"),
            "units_for_0.03": _units_for(sd, 0.03)}


def _units_for(sd: float, effect: float) -> int | None:
    """Units (fold x seed pairs) a paired t-test needs to detect ``effect`` at 80 % power with this paired std."""
    from specdm.evaluation.benchmark.stats import mde

    if sd is None or not math.isfinite(sd) or sd <= 0:
        return None
    for n in range(2, 1001):
        if mde(sd, n) <= effect:
            return n
    return None


def write_protocol(out_dir: Path, protocol: dict) -> dict:
    """``OUT/protocol.json``: the protocol declared before the first training (design, folds, label settings,
    models, arms, seeds, steps, primary). A stored one must match (resume), or it is an :class:`OutputError`."""
    path = Path(out_dir) / PROTOCOL_FILE
    protocol = json_safe(protocol)
    if path.is_file():
        stored = json.loads(path.read_text())
        keys = [k for k in protocol if k not in ("declared", "command") and stored.get(k) != protocol[k]]
        if keys:
            raise OutputError(f"was declared with other {', '.join(keys)}; its cells cannot be pooled with new ones",
                              path, hint="give the same settings, or another --out")
        return stored
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_json(path, {**protocol, "declared": time.strftime("%Y-%m-%d %H:%M:%S")})
    return json.loads(path.read_text())
