"""Running ``specdm benchmark``: train and score every (model, arm, seed), summarize, write ``benchmark.json``.

Protocol (``/work/shared/PROTOCOL.md``):

- Real training data: the windows of the config's TRAINING split (normalized,
  as every stage sees them) with their masks; segmentation models take
  ``(N, C, P, P)``, ``siamdiff`` takes ``(N, 2, C, P, P)`` with mask 1 = change,
  0 = no change. Test data: every test region of the split, whole (the test
  rows of Indian Pines, the whole test cities of OSCD), normalized by the
  training split's normalization and predicted with :func:`predict_tiled`
  (tile = patch size, overlap = patch size // 4). The pixels of all test
  regions are pooled into ONE confusion matrix per run.
- Arms (real, classical, self_training, ``<name> x<a>``, synthetic_only: see
  :mod:`specdm.evaluation.benchmark.plan`), every one trained with Adam from
  ``lr`` (annealed to 0 by a cosine, or constant) for ``steps`` batches of
  ``batch_size`` (:func:`train_downstream`). The classical arms use one recipe per model
  (``classical``: named, or ``"auto"``: chosen on validation rows of the training regions,
  :mod:`specdm.evaluation.benchmark.classical_choice`).
- Limited real data: a fixed quarter (``limited``) of the real windows, drawn
  with ``numpy.random.default_rng(0)``, the same for every arm; arms ``real``
  and every synthetic set at the largest amount (pool = amount x the limited
  window count) are re-run on it.
- Pairing: seed ``k`` of every arm shares the network initialization and the
  stream of real batches (see :func:`specdm.evaluation.fit.batch_indices`).
- Scores: segmentation (``unet``, ``segformer``): mIoU and macro F1 over the
  classes labelled in both the training and the test regions (``ignore_index``
  left out), per-class scores of every class; change detection
  (``siamdiff``, class-balanced cross-entropy): F1 and IoU of the change class
  and mIoU; pixel classification (``pixel``, each spectrum on its own, trained
  on up to ``PIXELS_PER_WINDOW`` labelled pixels per window of each batch):
  OA, AA, kappa over labelled test pixels.
- Summary: per arm and metric, mean +- std over seeds and the per-seed
  difference to ``real`` (and to ``classical``) with its 95 % t-interval, paired std, paired t-test p-value
  and minimum detectable effect at 80 % power (:func:`paired_summary`, :mod:`.stats`). One comparison is
  declared primary before the first training (``settings.primary``); every other one on a model's first
  metric is exploratory and Holm-corrected across the benchmark (:func:`summarize`). Verdict "helps" /
  "hurts" when the (adjusted) p < 0.05, else "no clear effect"; "not enough seeds" below 2 pairs.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from specdm import __version__
from specdm.augment.classical import RECIPES
from specdm.augment.synthetic import load_synthetic
from specdm.config import Config, DataConfig
from specdm.data.datamodule import PreparedData, prepare_data
from specdm.errors import ConfigError, DataError, OutputError
from specdm.evaluation.benchmark.classical_choice import (CHOICE_SEED, OUTSIDE, VALIDATION_SHARE, carve_validation,
                                                          choose_recipe)
from specdm.evaluation.benchmark.plan import (DEFAULT_MODELS, PRETRAIN_SHARE, Arm, default_primary, parse_primary,
                                              plan_arms)
from specdm.evaluation.benchmark.stats import NOT_ENOUGH, holm, paired_stats, verdict
from specdm.evaluation.classification import PIXELS_PER_WINDOW
from specdm.evaluation.downstream import train_downstream
from specdm.evaluation.fit import check_lr_schedule, predict_tiled
from specdm.evaluation.records import json_safe, log, write_json
from specdm.evaluation.selftrain import PSEUDO_THRESHOLD, UNLABELLED, pseudo_label_windows
from specdm.evaluation.tasks import METRICS, TASK_MODELS, score

__all__ = ["LIMITED_SEED", "RESULT_FILE", "benchmark", "paired_summary", "summarize"]

LIMITED_SEED = 0
RESULT_FILE = "benchmark.json"


# --------------------------------------------------------------------------- data


@dataclass
class _Data:
    """Real training windows, the limited subset, the test regions and the label conventions."""

    task: str
    x: np.ndarray
    y: np.ndarray
    limited: np.ndarray
    test: list[tuple[np.ndarray, np.ndarray]]
    num_classes: int
    ignore_index: int | None
    classes: list[int]
    prepared: PreparedData
    info: dict
    _unlabelled: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def unlabelled(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The training part's image as windows (stride half a window) with the setting's labels: what the
        self-training control labels; None where every pixel is labelled (no ignore_index)."""
        if self.ignore_index is None:
            return None
        if self._unlabelled is None:
            ps = self.prepared.image_windows(stride=max(1, self.prepared.train.size // 2))
            x, y = (t.numpy() for t in ps.batch(range(len(ps))))
            self._unlabelled = (x[:, 0] if self.task == "segmentation" else x, y)
        return self._unlabelled


def _labelled(masks: Iterable[np.ndarray], ignore_index: int | None) -> set[int]:
    return {int(c) for m in masks for c in np.unique(m)} - {ignore_index}


def _real_data(cfg: Config, limited: float) -> _Data:
    data = prepare_data(cfg.data)
    ref = data.reference
    if not data.split["test"]:
        raise ConfigError(f"config '{cfg.name}' has no test split; the benchmark scores on held-out test regions")
    x, y = (t.numpy() for t in data.train.batch(range(len(data.train))))
    task = ref.task
    if task == "segmentation":
        x = x[:, 0]
    if len(x) < 2:
        raise DataError(f"config '{cfg.name}' gives {len(x)} training window; at least 2 are needed", ref.source)
    n_limited = max(1, round(limited * len(x))) if limited else 0
    subset = np.sort(np.random.default_rng(LIMITED_SEED).choice(len(x), n_limited, replace=False))

    def crop(a, g):
        return a[g.r0 : g.r1, g.c0 : g.c1]

    test = []
    if data.parts is not None and data.parts.masked:  # a fold: predict each scene whole, score its test part
        for i, part in enumerate(data.test_masks):
            if part.any():
                ims = data.scene_image(i)
                test.append((ims[0] if task == "segmentation" else ims, np.where(part, data.scenes[i].mask, OUTSIDE)))
        train_masks = [s.mask[m] for s, m in zip(data.scenes, data.train_masks)]
    else:  # rectangles: each test region cropped (as specdm 0.1 did, so stored results stay comparable)
        for g in data.split["test"]:
            s = data.scenes[g.scene]
            ims = np.stack([data.normalizer(crop(im, g)).transpose(2, 0, 1) for im in s.images])
            test.append((ims[0] if task == "segmentation" else ims, crop(s.mask, g)))
        train_masks = [crop(data.scenes[g.scene].mask, g) for g in data.split["train"]]
    train_classes = _labelled(train_masks, ref.ignore_index)
    test_classes = _labelled((m[m != OUTSIDE] for _, m in test), ref.ignore_index)
    classes = sorted(train_classes & test_classes)
    if task == "segmentation" and not classes:
        raise DataError(f"no class of config '{cfg.name}' is labelled in both the training and the test regions",
                        ref.source)

    def region(g):
        return {"scene": data.scenes[g.scene].name, "rows": [g.r0, g.r1], "cols": [g.c0, g.c1]}

    info = {
        "config": cfg.name,
        "task": task,
        "scenes": [s.name for s in data.scenes],
        "split": cfg.data.split.model_dump(),
        "train_regions": [region(g) for g in data.split["train"]],
        "test_regions": [region(g) for g in data.split["test"]],
        "train_windows": len(x),
        "patch_size": cfg.data.patch_size,
        "limited_windows": int(n_limited),
        "limited_indices": subset.tolist(),
        "test_pixels": int(sum((m != OUTSIDE).sum() for _, m in test)),
        "labelled_test_pixels": int(sum(((m != ref.ignore_index) & (m != OUTSIDE)).sum() for _, m in test)),
        **data.split_record(),
        "bands": ref.num_bands,
        "class_names": ref.class_names,
        "ignore_index": ref.ignore_index,
        "classes_train": sorted(train_classes),
        "classes_test": sorted(test_classes),
        "classes_averaged": classes,
    }
    return _Data(task, x, y, subset, test, ref.num_classes, ref.ignore_index, classes, data, info)


def _synthetic_pool(path: Path, real: _Data, limit: int) -> tuple[np.ndarray, np.ndarray, dict, list[str]]:
    """The first ``limit`` samples of a synthetic set as training arrays shaped like the real windows,
    its record and its warnings; its normalization and patch size must be the real data's."""
    synthetic = load_synthetic(path, real.prepared, limit, real.info["config"], strict=True)
    x = synthetic.x[:, 0] if real.task == "segmentation" else synthetic.x
    info = {**synthetic.info(), "normalization": "recorded normalization equals the real training split's"}
    return x, synthetic.y, info, synthetic.warnings


# --------------------------------------------------------------------------- training and scoring


def _training_sets(arm: Arm, real: _Data, pools: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """The real windows of the arm's setting, then its synthetic pool if it has one (the classical
    source instead acts on the batches, :attr:`Arm.augment`)."""
    real_set = (real.x[real.limited], real.y[real.limited]) if arm.setting == "limited" else (real.x, real.y)
    if not arm.synthetic:
        return [real_set]
    px, py = pools[arm.synthetic]
    n = arm.pool_size(len(real_set[0]))
    return [real_set, (px[:n], py[:n])]


def _self_training_pool(teacher, arm: Arm, real: _Data, threshold: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """The pseudo-labelled windows of the self-training arm: every real training window (the unlabelled training
    image, for now), real labels kept on the windows of the arm's setting, pseudo labels of ``teacher`` at
    ``threshold`` elsewhere (:func:`~specdm.evaluation.selftrain.pseudo_label_windows`)."""
    fill = UNLABELLED if real.ignore_index is None else real.ignore_index
    if real.unlabelled is not None and arm.setting == "full":  # the training part's image, labelled or not
        x, kept = real.unlabelled
        return pseudo_label_windows(teacher, x, kept, threshold, real.ignore_index)
    kept = real.y
    if arm.setting == "limited":
        kept = np.full_like(real.y, fill)
        kept[real.limited] = real.y[real.limited]
    return pseudo_label_windows(teacher, real.x, kept, threshold, real.ignore_index)


def _run_one(model_name: str, arm: Arm, seed: int, real: _Data, pools: dict, settings: dict, device, progress,
             teachers: dict | None = None) -> dict:
    """Train one (model, arm, seed) and score it on the pooled test regions. ``teachers``: real-only models by
    ``(model, setting, seed)``, filled by the real arm and taken by the self-training arm (trained anew if
    missing, e.g. on resume)."""
    t0 = time.time()
    sets = _training_sets(arm, real, pools)
    kw = dict(num_classes=real.num_classes, class_weights="balanced" if real.task == "change" else None,
              device=device, progress=progress, lr_schedule=settings["lr_schedule"], speed=settings["speed"])
    common = (settings["batch_size"], settings["lr"], seed, real.ignore_index)
    recipe = settings["classical_recipe"][model_name] if arm.augment else None
    extra = {}
    if arm.kind == "pretrain":  # the synthetic pool alone first, then the real windows from those weights
        pre_steps = round(PRETRAIN_SHARE * settings["steps"])
        # every batch synthetic (share 1, as synthetic_only; class weights still counted on the real windows)
        pre = train_downstream(model_name, sets, pre_steps, *common, 1.0, recipe, **kw)
        net = train_downstream(model_name, [sets[0]], settings["steps"] - pre_steps, *common, None, recipe,
                               init=pre, **kw)
    elif arm.kind == "self_training":  # the real-only model of this seed labels the unlabelled windows
        key = (model_name, arm.setting, seed)
        teacher = (teachers or {}).pop(key, None)
        if teacher is None:
            teacher = train_downstream(model_name, sets, settings["steps"], *common, None, None, **kw)
        px, py, extra["pseudo_labels"] = _self_training_pool(teacher, arm, real, settings["self_training_threshold"])
        del teacher
        # each batch draws the pseudo-labelled windows' share of all windows (mix None), real batches paired
        net = train_downstream(model_name, [sets[0], (px, py)], settings["steps"], *common, None, recipe, **kw)
    else:
        net = train_downstream(model_name, sets, settings["steps"], *common, arm.mix, recipe, **kw)
        if arm.kind == "real" and teachers is not None and (model_name, arm.setting, seed) in teachers:
            teachers[(model_name, arm.setting, seed)] = net
    t1 = time.time()
    preds = [predict_tiled(net, image, settings["tile"], settings["overlap"]) for image, _ in real.test]
    pred = np.concatenate([p.ravel() for p in preds])
    target = np.concatenate([m.ravel() for _, m in real.test])
    scored = target != OUTSIDE
    pred, target = pred[scored], target[scored]
    return {
        "model": model_name,
        **asdict(arm),
        "arm": arm.id,
        "seed": seed,
        "mix": arm.mix,
        "augment": recipe,
        "real_windows": 0 if arm.kind == "synthetic_only" else len(sets[0][0]),
        "synthetic_samples": len(sets[1][0]) if arm.synthetic else 0,
        **extra,
        "scores": _scores(model_name, real, pred, target),
        "train_s": round(t1 - t0, 2),
        "eval_s": round(time.time() - t1, 2),
    }


def _scores(model_name: str, real: _Data, pred: np.ndarray, target: np.ndarray) -> dict:
    s = score(model_name, pred, target, real.num_classes, real.ignore_index, real.classes)
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in s.items()}


def _key(run: dict) -> tuple:
    return run["model"], run["setting"], run["arm"], run["seed"]


def _verdict(ci, n: int | None = None) -> str:
    """From a 95 % interval of the mean difference: "helps" / "hurts" when it lies above / below 0, else
    "no clear effect"; "not enough seeds" with fewer than 2 pairs (``n``)."""
    if n is not None and n < 2:
        return NOT_ENOUGH
    lo, hi = (math.nan if v is None else v for v in ci)
    return "helps" if lo > 0 else "hurts" if hi < 0 else "no clear effect"


def paired_summary(results: Mapping[str, Mapping[Hashable, float]], reference_arm: str = "real") -> dict[str, dict]:
    """Mean and std over seeds of each arm, and the statistics of its per-seed difference to ``reference_arm``.

    ``results[arm][unit]`` is one score; a unit is a seed (or any sortable key, e.g. ``(fold, seed)``). Every
    arm must have exactly the reference's units. Standard deviations use ``ddof=1`` (NaN for one unit);
    ``diff_ci95`` is the Student-t 95 % interval of the mean difference, ``p`` the two-sided paired t-test
    p-value and ``mde80`` the minimum detectable effect at 80 % power (:func:`~.stats.paired_stats`).
    """
    if reference_arm not in results:
        raise ValueError(f"reference arm {reference_arm!r} not in results ({', '.join(results)})")
    seeds = sorted(results[reference_arm])
    ref = np.array([results[reference_arm][s] for s in seeds], dtype=np.float64)
    n = len(seeds)
    summary = {}
    for arm, by_seed in results.items():
        if sorted(by_seed) != seeds:
            raise ValueError(f"arm {arm!r} has seeds {sorted(by_seed)}, reference {reference_arm!r} has {seeds}")
        values = np.array([by_seed[s] for s in seeds], dtype=np.float64)
        d = paired_stats(dict(zip(seeds, values - ref)))
        summary[arm] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if n > 1 else float("nan"),
            "diff_mean": d["diff_mean"],
            "diff_std": d["diff_std"],
            "diff_ci95": d["diff_ci95"],
            "p": d["p"],
            "mde80": d["mde80"],
            "n": n,
        }
    return summary


def _comparison(c: dict, seeds: list) -> dict:
    """The fields of one comparison (``paired_summary`` entry ``c`` on ``seeds``), with its unadjusted verdict."""
    return {"diff_mean": c["diff_mean"], "diff_std": c["diff_std"], "diff_ci95": c["diff_ci95"], "p": c["p"],
            "mde80": c["mde80"], "n": c["n"], "seeds": seeds, "verdict_unadjusted": _verdict(c["diff_ci95"], c["n"])}


def _is_primary(primary: Mapping | None, model: str, setting: str, metric: str, arm: str, reference: str) -> bool:
    return bool(primary) and (model, setting, metric, arm, reference) == tuple(
        primary[k] for k in ("model", "setting", "metric", "arm", "reference"))


def summarize(runs: Sequence[dict], primary: Mapping | None = None,
              unit: Callable[[dict], Hashable] = lambda r: r["seed"]) -> dict:
    """``{model: {setting: {metric: {arm: paired summary + verdict + seeds}}}}`` against that setting's ``real``.

    Each arm is compared on the seeds it shares with ``real`` (all of them once the benchmark is complete), and
    every arm but ``real`` and ``classical`` also with ``classical`` (``vs_classical``). Each comparison has its
    mean, paired std and 95 % interval of the differences, the paired t-test ``p``, the minimum detectable effect
    ``mde80`` and a ``role``: on the first metric of a model (the verdict metric), ``primary`` for the one
    declared comparison ``primary`` (``{model, setting, metric, arm, reference}``; verdict from its own p) and
    ``exploratory`` for every other one, whose ``p_holm`` is Holm-adjusted across all exploratory comparisons of
    the benchmark and gives their verdict; other metrics are ``secondary metric`` (verdict from the unadjusted
    interval, ``verdict_unadjusted`` everywhere). Fewer than 2 pairs: "not enough seeds". ``unit(run)`` is what
    pairs runs (the seed; e.g. ``(fold, seed)`` once runs carry folds); ``seeds`` lists the units.
    """
    table: dict = {}
    for r in runs:
        for metric in METRICS[r["model"]]:
            v = r["scores"][metric]
            by_arm = table.setdefault(r["model"], {}).setdefault(r["setting"], {}).setdefault(metric, {})
            by_arm.setdefault(r["arm"], {})[unit(r)] = math.nan if v is None else v
    out: dict = {}
    comparisons = []  # (model, setting, metric, arm, reference, entry)
    for model, settings in table.items():
        for setting, metrics in settings.items():
            for metric, by_arm in metrics.items():
                ref = by_arm.get("real")
                if not ref:
                    continue
                dest = out.setdefault(model, {}).setdefault(setting, {}).setdefault(metric, {})
                for arm, values in by_arm.items():
                    seeds = sorted(set(values) & set(ref))
                    if not seeds:
                        continue
                    s = paired_summary({"real": {k: ref[k] for k in seeds}, arm: {k: values[k] for k in seeds}})[arm]
                    s["seeds"] = seeds
                    if arm == "real":
                        s["verdict"] = "reference"
                    else:
                        s["verdict_unadjusted"] = _verdict(s["diff_ci95"], s["n"])
                        comparisons.append((model, setting, metric, arm, "real", s))
                    classical = by_arm.get("classical")
                    if classical and arm not in ("real", "classical"):  # the comparison a user makes
                        both = sorted(set(values) & set(classical))
                        if both:
                            c = paired_summary({"classical": {k: classical[k] for k in both},
                                                arm: {k: values[k] for k in both}}, "classical")[arm]
                            s["vs_classical"] = _comparison(c, both)
                            comparisons.append((model, setting, metric, arm, "classical", s["vs_classical"]))
                    dest[arm] = s
    family = {}
    for i, (model, setting, metric, arm, reference, e) in enumerate(comparisons):
        if metric != METRICS[model][0]:
            e["role"], e["verdict"] = "secondary metric", e["verdict_unadjusted"]
        elif _is_primary(primary, model, setting, metric, arm, reference):
            e["role"], e["verdict"] = "primary", verdict(e["p"], e["diff_mean"], e["n"])
        else:
            e["role"] = "exploratory"
            family[i] = e["p"]
    for i, p in holm(family).items():
        e = comparisons[i][-1]
        e["p_holm"] = p
        e["verdict"] = verdict(p, e["diff_mean"], e["n"])
    return out


# --------------------------------------------------------------------------- the command


def _machine(device) -> dict:
    name = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "cpu"
    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "device": str(device), "device_name": name}  # fmt: skip


def result_saver(result_file: Path, base: dict, invocations: list, command: str, t_start: float, runs: list,
                 summarize_runs: Callable, key: Callable, planned: Sequence) -> Callable[[int], dict]:
    """``save(trained)`` of a benchmark (segmentation/change or ``--rgb-model``): ``base`` plus this invocation
    (``trained`` trainings so far) after the stored ``invocations``, the total wall time, ``runs``, their
    summary and whether every ``planned`` run key (``key(run)``) is done, written to ``result_file``."""
    previous_wall = sum(i["wall_time_s"] for i in invocations)

    def save(trained: int) -> dict:
        wall = round(time.time() - t_start, 1)
        finished = {key(r) for r in runs}
        result = {**base, "invocations": [*invocations, {"command": command, "wall_time_s": wall, "trainings": trained}],
                  "wall_time_s": round(previous_wall + wall, 1), "runs": runs, "summary": summarize_runs(runs),
                  "complete": all(k in finished for k in planned)}  # fmt: skip
        write_json(result_file, result)
        return result

    return save


def _pairing_keys(fingerprint: dict) -> dict:
    """What decides whether stored runs pair with new ones: every setting, and of the config only its ``data``
    section (the benchmark reads nothing else; a config field added in a later specdm must not block resuming).
    Files from before learning-rate schedules count as ``constant``."""
    out = dict(fingerprint)
    if isinstance(out.get("config"), dict):
        out["config"] = _data_section(out["config"].get("data"))
    out.pop("synthetic", None)  # compared on its own: sets may be added (_synthetic_compatible)
    return out


def _data_section(data):
    """A stored ``data`` section with today's defaults filled in (a field a later specdm adds to ``data`` with
    a default that keeps the old behaviour must not block resuming), or as stored when it no longer validates."""
    try:
        return DataConfig.model_validate(data).model_dump(mode="json")
    except (ValueError, TypeError):
        return data


def _synthetic_compatible(stored: dict, new: dict) -> str | None:
    """Why stored runs cannot pair with ``new`` synthetic sets, or None when they can.

    Sets may be added: every stored name must name the same folder, and the first set (the one
    ``synthetic_only`` draws from) must stay first."""
    changed = [k for k, v in stored.items() if new.get(k) != v]
    if changed:
        return f"synthetic set(s) {', '.join(changed)} missing or pointing elsewhere"
    if stored and next(iter(stored)) != next(iter(new), None):
        return f"the first synthetic set (synthetic_only's) was {next(iter(stored))}"
    return None


def _load_previous(result_file: Path, resume: bool, overwrite: bool) -> dict | None:
    """The stored result file to continue (``resume``), or None to start afresh; an existing file is an
    :class:`OutputError` without ``resume`` or ``overwrite``. Whether its runs pair is the caller's check."""
    if not result_file.exists() or overwrite:
        return None
    if not resume:
        raise OutputError("exists", result_file, hint="pass --resume to continue it or --overwrite to replace it")
    try:
        return json.loads(result_file.read_text())
    except (OSError, ValueError) as e:
        raise OutputError(f"cannot be read to resume ({e})", result_file) from None


def _previous(result_file: Path, fingerprint: dict, resume: bool, overwrite: bool) -> dict | None:
    """The stored result to continue (``resume``), or None to start afresh."""
    old = _load_previous(result_file, resume, overwrite)
    if old is None:
        return None
    stored = {"lr_schedule": "constant", "classical": "classical", "self_training_threshold": PSEUDO_THRESHOLD,
              "speed": "plain", **old.get("fingerprint", {})}  # files from before these options: their values then
    if _pairing_keys(stored) != _pairing_keys(json_safe(fingerprint)):
        raise OutputError("was made with another config, steps, batch size, lr, lr schedule, limited "
                          "share, tiling, classical recipe, self-training threshold or speed; its runs cannot be paired "
                          "with new ones", result_file,
                          hint="pass --overwrite to start afresh, or another --out")  # fmt: skip
    why = _synthetic_compatible(stored.get("synthetic", {}), json_safe(fingerprint)["synthetic"])
    if why:
        raise OutputError(f"was made with other synthetic sets ({why}); its runs cannot be paired with new ones",
                          result_file, hint="keep every stored --synthetic NAME=DIR (new ones may be added after "
                          "them), pass --overwrite to start afresh, or another --out")  # fmt: skip
    return old


def _primary(primary, old: dict | None, plan: Sequence[Arm], models: Sequence[str], shares: dict,
             done: int) -> dict | None:
    """The primary comparison: the one stored in a resumed file (a different explicit one is refused: it was
    declared before the first training), else ``primary`` (text for :func:`parse_primary`, or a dict), else the
    default (:func:`default_primary`)."""
    stored = (old or {}).get("settings", {}).get("primary")
    if isinstance(primary, str):
        primary = parse_primary(primary, plan, models, METRICS, shares)
    elif primary is not None:
        primary = parse_primary(f"{primary.get('model', models[0])}/{primary.get('setting') or ''}/"
                                f"{primary.get('arm')} vs {primary.get('reference')}", plan, models, METRICS, shares)
    if stored:
        kept = {k: stored[k] for k in ("model", "setting", "metric", "arm", "reference")}
        if primary is not None and primary != kept:
            raise ConfigError(f"the primary comparison was declared before the first training as {kept['arm']} vs "
                              f"{kept['reference']} ({kept['model']}, {kept['setting']}, {kept['metric']}); it "
                              "cannot change on resume", hint="leave --primary out, or start afresh with --overwrite")
        return stored
    chosen = primary or default_primary(plan, models, METRICS, shares)
    if chosen is None:
        return None
    how = "given" if primary else "default"
    return {**chosen, "declared": f"{how}, before the first training" if not done else
            f"{how}, when {done} stored run(s) had finished (file from before declarations)"}


def _classical_recipes(classical: str, models: Sequence[str], plan: Sequence[Arm],
                       old: dict | None) -> tuple[dict, list[str]]:
    """The recipe of the classical arms per model so far: ``classical`` itself, or for ``"auto"`` the stored
    choices of a resumed file; and the models whose choice must still be made."""
    if not any(a.augment for a in plan):
        return {m: None for m in models}, []
    if classical != "auto":
        return {m: classical for m in models}, []
    stored = (old or {}).get("classical_choice", {})
    recipes = {m: stored[m]["recipe"] if m in stored else None for m in models}
    return recipes, [m for m in models if recipes[m] is None]


def _choose_classical(real: _Data, model_name: str, settings: dict, device, progress) -> dict:
    """Choose the classical recipe of ``model_name`` on the last rows of the training regions (never test)."""
    train_idx, regions, record = carve_validation(real.prepared, VALIDATION_SHARE, real.task)
    y = real.y[train_idx]
    hide = record.pop("hide", None)
    if hide is not None:  # a block design: the validation pixels' labels are hidden in the training windows
        y = np.where(hide, real.ignore_index, y)
    choice = choose_recipe(
        model_name, (real.x[train_idx], y), regions, list(RECIPES), settings["steps"],
        settings["batch_size"], settings["lr"], CHOICE_SEED, real.ignore_index, num_classes=real.num_classes,
        class_weights="balanced" if real.task == "change" else None, lr_schedule=settings["lr_schedule"],
        tile=settings["tile"], overlap=settings["overlap"], device=device, progress=progress, speed=settings["speed"],
    )  # fmt: skip
    return {**choice, "validation": record}


def benchmark(
    cfg: Config,
    synthetic: dict[str, Path],
    out_dir,
    seeds: int = 3,
    steps: int = 2000,
    batch_size: int = 16,
    lr: float = 1e-3,
    lr_schedule: str = "cosine",
    models: Sequence[str] | None = None,
    amounts: Sequence[float] = (1, 3, 5),
    limited: float = 0.25,
    arms: Sequence[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
    device: str | None = None,
    progress: bool = True,
    classical: str = "classical",
    primary: str | Mapping | None = None,
    self_training_threshold: float = PSEUDO_THRESHOLD,
    speed: str = "fast",
) -> dict:
    """Train every (model, arm, amount, seed) of the protocol above, score on the test split, report.

    ``synthetic``: ``{name: data set folder}`` in arm order (the first one also
    feeds ``synthetic_only``). ``seeds``: seeds ``0..seeds-1``. ``models``
    default to ``unet, segformer`` (segmentation) or ``siamdiff`` (change);
    ``pixel`` may be added for segmentation data. ``limited``: share of the real
    windows of the limited-real setting (0 = skip it). ``arms``: names to run
    (default all but pretrain+<name> and self_training; ``real`` is required). ``classical``: the recipe of the
    classical arms (classical, stacked, pretrain, self_training): a name of
    :data:`specdm.augment.classical.RECIPES`, or ``"auto"``: per model, the recipe that scores best on a
    validation part carved from the training regions (:mod:`.classical_choice`; one training per recipe, recorded
    under ``classical_choice``). ``primary``: the primary comparison (``"ARM vs REFERENCE"`` or
    ``"MODEL/SETTING/ARM vs REFERENCE"``, see :func:`~.plan.parse_primary`; default
    :func:`~.plan.default_primary`), stored in the settings before the first training; every other comparison
    is exploratory and Holm-corrected (:func:`summarize`). ``self_training_threshold``: the confidence a pseudo
    label needs (arm ``self_training``). Writes ``<out_dir>/benchmark.json``
    after every training, then ``report.md`` / ``report.html``
    (:mod:`specdm.evaluation.benchmark.report`); an existing benchmark.json is continued
    with ``resume`` (finished runs skipped; seeds, models, arms, amounts and
    synthetic sets may be added) or replaced with ``overwrite``. ``device`` defaults to CUDA when
    available. Returns the JSON dict.
    """
    from specdm.evaluation.benchmark.report import write_report

    t_start = time.time()
    out_dir = Path(out_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if seeds < 1 or steps < 1 or batch_size < 1 or lr <= 0 or not amounts or min(amounts) <= 0:
        raise ConfigError("seeds, steps and batch size must be >= 1, lr > 0 and amounts positive")
    check_lr_schedule(lr_schedule)
    if not 0 <= limited <= 1:
        raise ConfigError(f"limited={limited} must be a share of the real windows in [0, 1]")
    if classical != "auto" and classical not in RECIPES:
        raise ConfigError(f"unknown classical recipe {classical!r}", hint=f"use 'auto' or one of {', '.join(RECIPES)}")
    if not 0 < self_training_threshold <= 1:
        raise ConfigError(f"self-training threshold {self_training_threshold} must be in (0, 1]")
    real = _real_data(cfg, limited)
    models = list(models or DEFAULT_MODELS[real.task])
    wrong = [m for m in models if m not in TASK_MODELS[real.task]]
    if wrong:
        raise ConfigError(f"model(s) {', '.join(wrong)} do not fit {real.task} data",
                          hint=f"choose from {', '.join(TASK_MODELS[real.task])}")
    amounts = list(amounts)
    plan = plan_arms(arms, list(synthetic), amounts, limited)
    patch = cfg.data.patch_size
    shares = {"full": 1.0, "limited": limited}
    settings = {"seeds": list(range(seeds)), "steps": steps, "batch_size": batch_size, "lr": lr,
                "lr_schedule": lr_schedule, "optimizer": f"Adam, {lr_schedule} learning rate from lr", "models": models,
                "amounts": amounts, "limited": limited, "limited_seed": LIMITED_SEED, "arms": [a.id for a in plan if a.setting == "full"],
                "tile": patch, "overlap": patch // 4, "device": str(device), "classical": classical,
                "self_training_threshold": self_training_threshold, "speed": speed}  # fmt: skip
    fingerprint = {"config": cfg.model_dump(mode="json"), "synthetic": {k: str(v) for k, v in synthetic.items()},
                   **{k: settings[k] for k in ("steps", "batch_size", "lr", "lr_schedule", "limited", "tile",
                                               "overlap", "classical", "self_training_threshold", "speed")}}  # fmt: skip

    result_file = out_dir / RESULT_FILE
    old = _previous(result_file, fingerprint, resume, overwrite)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"is not writable ({e.strerror})", out_dir) from None
    runs = list(old["runs"]) if old else []
    invocations = list(old["invocations"]) if old else []
    done = {_key(r) for r in runs}
    settings["primary"] = _primary(primary, old, plan, models, shares, len(done))
    settings["classical_recipe"], to_choose = _classical_recipes(classical, models, plan, old)
    choices = dict((old or {}).get("classical_choice") or {}) if classical == "auto" else {}

    top = max(amounts)
    pools, synth_info, warnings = {}, {}, []
    for name, path in synthetic.items():
        x, y, info, found = _synthetic_pool(path, real, round(top * len(real.x)))
        pools[name], synth_info[name] = (x, y), info
        warnings += [f"{name}: {w}" for w in found]
        for arm in plan:
            n_real = len(real.limited) if arm.setting == "limited" else len(real.x)
            if arm.synthetic == name and arm.pool_size(n_real) > len(x):
                warnings.append(f"{name}: {arm.setting} arm {arm.id} asks for {arm.pool_size(n_real)} synthetic "
                                f"samples, the data set holds {len(x)}; all of them are used")

    todo = [(m, arm, s) for m in models for s in settings["seeds"] for arm in plan if (m, arm.setting, arm.id, s) not in done]
    if done:
        log(f"resuming {result_file}: {len(done)} run(s) kept, {len(todo)} to train")
    log(f"benchmark on config '{cfg.name}' ({real.task}): {len(real.x)} real training windows, "
         f"{len(real.test)} test region(s), {len(todo)} training(s) of {steps} steps, batch {batch_size}, on {device}"
         + (f", {len(RECIPES) * len(to_choose)} more to choose the classical recipe" if to_choose else ""))
    arms_record = [{**asdict(a), "id": a.id, "mix": a.mix} for a in plan]
    planned = {(a["setting"], a["id"]) for a in arms_record}
    arms_record += [a for a in (old["arms"] if old else []) if (a["setting"], a["id"]) not in planned]
    base = {
        "specdm_benchmark": __version__,
        "command": command,
        "fingerprint": fingerprint,
        "config": fingerprint["config"],
        "settings": settings,
        "data": real.info,
        "synthetic": synth_info,
        "arms": arms_record,
        "classical_choice": choices,
        "conventions": {
            "test": "every test region whole, normalized by the training split, tiled prediction (tile = patch "
                    "size, overlap = patch size // 4); pixels of all test regions pooled into one confusion matrix",
            "segmentation": "mIoU and macro F1 over classes_averaged (labelled in both training and test regions, "
                            "ignore_index left out); per-class scores of every class",
            "change": "F1 and IoU of the change class (1), mIoU over {no change, change}; class-balanced "
                      "cross-entropy (weights from the real windows)",
            "pixel": "OA, AA, kappa over labelled test pixels; model sees each spectrum on its own; trained on up to "
                     f"{PIXELS_PER_WINDOW} labelled pixels per window of each batch",
            "synthetic_amount": "amount a: the first round(a * real windows) synthetic samples in file order; each "
                                "batch takes round(a / (1 + a) * batch size) of them",
            "synthetic_only": "first synthetic set at the largest amount, whole batch synthetic",
            "limited": f"a share `limited` of the real windows, numpy default_rng({LIMITED_SEED}).choice, same for "
                       "all arms; synthetic pools are then amount x the limited window count",
            "pairing": "seed k of every arm shares the initialization and the real batch order",
            "classical": "the classical arms (classical, classical+<set>, pretrain+<set>, self_training) use the "
                         "recipe settings.classical_recipe of their model: settings.classical names it, or 'auto' "
                         "chose it per model by the first metric on validation regions (the last "
                         f"{VALIDATION_SHARE:.0%} of the rows of every training region; the choice trains on the "
                         f"training windows above them, seed {CHOICE_SEED}, same steps, batch and optimizer), never "
                         "on test",
            "self_training": "the real-only model of the same model, setting and seed labels every real training "
                             "window (the unlabelled training image, for now): pixels whose top softmax probability "
                             "reaches settings.self_training_threshold get its class, the rest none, real labels "
                             "of the setting's windows kept; a fresh model (same seed, steps, batch, optimizer, "
                             "classical recipe) trains on the real windows plus these, each batch drawing their "
                             "share of all windows",
            "summary": "per arm: mean +- std (ddof 1) over seeds; per-seed difference to `real` (and to "
                       "`classical`) of the same model and setting: mean, paired std, Student-t 95 % interval, "
                       "two-sided paired t-test p and the minimum detectable effect at 80 % power, "
                       "MDE = (t(0.975, n-1) + t(0.8, n-1)) * paired std / sqrt(n) (closed-form approximation). "
                       "On each model's first metric, the comparison settings.primary (declared before the first "
                       "training) is judged on its own p; every other comparison is exploratory, its p "
                       "Holm-adjusted across all exploratory comparisons of the benchmark (p_holm) and judged on "
                       "that: helps / hurts when p < 0.05 (sign of the mean difference), else no clear effect; "
                       "fewer than 2 paired seeds: not enough seeds. Other metrics: the unadjusted interval",
        },
        "warnings": warnings,
        "machine": _machine(device),
    }
    planned = [(m, a.setting, a.id, s) for m in models for a in plan for s in settings["seeds"]]
    primary_spec = settings["primary"]
    save = result_saver(result_file, base, invocations, command, t_start, runs,
                        lambda rs: summarize(rs, primary_spec), _key, planned)  # fmt: skip

    result = save(0)  # the primary comparison is on file before any training
    for model_name in to_choose:
        log(f"choosing the classical recipe of {model_name} on validation ({', '.join(RECIPES)})")
        choices[model_name] = _choose_classical(real, model_name, settings, device, progress)
        settings["classical_recipe"][model_name] = choices[model_name]["recipe"]
        c = choices[model_name]
        log(f"classical recipe of {model_name}: {c['recipe']} ({c['metric']} "
            + ", ".join(f"{k} {v:.4f}" for k, v in c["scores"].items()) + ")")
        result = save(0)
    teachers = {(m, a.setting, s): None for m, a, s in todo if a.kind == "self_training"}
    for i, (model_name, arm, seed) in enumerate(todo, 1):
        run = _run_one(model_name, arm, seed, real, pools, settings, device, progress, teachers)
        runs.append(run)
        result = save(i)
        metric = METRICS[model_name][0]
        log(f"[{i}/{len(todo)}] {model_name} {arm.setting} {arm.id} seed {seed}: {run['train_s'] + run['eval_s']:.0f} s "
             f"(total {time.time() - t_start:.0f} s), {metric} {run['scores'][metric]:.4f}")
    result = json_safe(result)
    result["output"] = write_report(result, out_dir)
    return result
