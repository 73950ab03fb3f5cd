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
- Arms (real, classical, ``<name> x<a>``, synthetic_only: see
  :mod:`specdm.evaluation.benchmark.plan`), every one trained with Adam from
  ``lr`` (annealed to 0 by a cosine, or constant) for ``steps`` batches of
  ``batch_size`` (:func:`train_downstream`).
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
  difference to ``real`` with its 95 % t-interval (:func:`paired_summary`);
  verdict "helps" / "hurts" when that interval lies above / below 0, else
  "no clear effect".
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from specdm import __version__
from specdm.augment.synthetic import load_synthetic
from specdm.config import Config, DataConfig
from specdm.data.datamodule import PreparedData, prepare_data
from specdm.errors import ConfigError, DataError, OutputError
from specdm.evaluation.benchmark.plan import DEFAULT_MODELS, PRETRAIN_SHARE, Arm, plan_arms
from specdm.evaluation.classification import PIXELS_PER_WINDOW
from specdm.evaluation.downstream import train_downstream
from specdm.evaluation.fit import check_lr_schedule, predict_tiled
from specdm.evaluation.records import json_safe, log, write_json
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
    for g in data.split["test"]:
        s = data.scenes[g.scene]
        ims = np.stack([data.normalizer(crop(im, g)).transpose(2, 0, 1) for im in s.images])
        test.append((ims[0] if task == "segmentation" else ims, crop(s.mask, g)))
    train_classes = _labelled((crop(data.scenes[g.scene].mask, g) for g in data.split["train"]), ref.ignore_index)
    test_classes = _labelled((m for _, m in test), ref.ignore_index)
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
        "test_pixels": int(sum(m.size for _, m in test)),
        "labelled_test_pixels": int(sum((m != ref.ignore_index).sum() for _, m in test)),
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


def _run_one(model_name: str, arm: Arm, seed: int, real: _Data, pools: dict, settings: dict, device, progress) -> dict:
    """Train one (model, arm, seed) and score it on the pooled test regions."""
    t0 = time.time()
    sets = _training_sets(arm, real, pools)
    kw = dict(num_classes=real.num_classes, class_weights="balanced" if real.task == "change" else None,
              device=device, progress=progress, lr_schedule=settings["lr_schedule"])
    common = (settings["batch_size"], settings["lr"], seed, real.ignore_index)
    if arm.kind == "pretrain":  # the synthetic pool alone first, then the real windows from those weights
        pre_steps = round(PRETRAIN_SHARE * settings["steps"])
        # every batch synthetic (share 1, as synthetic_only; class weights still counted on the real windows)
        pre = train_downstream(model_name, sets, pre_steps, *common, 1.0, arm.augment, **kw)
        net = train_downstream(model_name, [sets[0]], settings["steps"] - pre_steps, *common, None, arm.augment,
                               init=pre, **kw)
    else:
        net = train_downstream(model_name, sets, settings["steps"], *common, arm.mix, arm.augment, **kw)
    t1 = time.time()
    preds = [predict_tiled(net, image, settings["tile"], settings["overlap"]) for image, _ in real.test]
    pred = np.concatenate([p.ravel() for p in preds])
    target = np.concatenate([m.ravel() for _, m in real.test])
    return {
        "model": model_name,
        **asdict(arm),
        "arm": arm.id,
        "seed": seed,
        "mix": arm.mix,
        "real_windows": 0 if arm.kind == "synthetic_only" else len(sets[0][0]),
        "synthetic_samples": len(sets[1][0]) if arm.synthetic else 0,
        "scores": _scores(model_name, real, pred, target),
        "train_s": round(t1 - t0, 2),
        "eval_s": round(time.time() - t1, 2),
    }


def _scores(model_name: str, real: _Data, pred: np.ndarray, target: np.ndarray) -> dict:
    s = score(model_name, pred, target, real.num_classes, real.ignore_index, real.classes)
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in s.items()}


def _key(run: dict) -> tuple:
    return run["model"], run["setting"], run["arm"], run["seed"]


def _verdict(ci) -> str:
    lo, hi = (math.nan if v is None else v for v in ci)
    return "helps" if lo > 0 else "hurts" if hi < 0 else "no clear effect"


def paired_summary(results: Mapping[str, Mapping[int, float]], reference_arm: str = "real") -> dict[str, dict]:
    """Mean and std over seeds of each arm, and of its per-seed difference to ``reference_arm``.

    ``results[arm][seed]`` is one score. Every arm must have exactly the
    reference's seeds. Standard deviations use ``ddof=1`` (NaN for one seed);
    ``diff_ci95`` is the Student-t 95 % interval of the mean difference.
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
        diff = values - ref
        std = float(values.std(ddof=1)) if n > 1 else float("nan")
        diff_std = float(diff.std(ddof=1)) if n > 1 else float("nan")
        half = float(stats.t.ppf(0.975, n - 1) * diff_std / np.sqrt(n)) if n > 1 else float("nan")
        summary[arm] = {
            "mean": float(values.mean()),
            "std": std,
            "diff_mean": float(diff.mean()),
            "diff_std": diff_std,
            "diff_ci95": (float(diff.mean()) - half, float(diff.mean()) + half),
            "n": n,
        }
    return summary


def summarize(runs: Sequence[dict]) -> dict:
    """``{model: {setting: {metric: {arm: paired summary + verdict + seeds}}}}`` against that setting's ``real``.

    Each arm is compared on the seeds it shares with ``real`` (all of them once the benchmark is complete).
    """
    table: dict = {}
    for r in runs:
        for metric in METRICS[r["model"]]:
            v = r["scores"][metric]
            by_arm = table.setdefault(r["model"], {}).setdefault(r["setting"], {}).setdefault(metric, {})
            by_arm.setdefault(r["arm"], {})[r["seed"]] = math.nan if v is None else v
    out: dict = {}
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
                    s["verdict"] = "reference" if arm == "real" else _verdict(s["diff_ci95"])
                    classical = by_arm.get("classical")
                    if classical and arm not in ("real", "classical"):  # the comparison a user makes
                        both = sorted(set(values) & set(classical))
                        if both:
                            c = paired_summary({"classical": {k: classical[k] for k in both},
                                                arm: {k: values[k] for k in both}}, "classical")[arm]
                            s["vs_classical"] = {"diff_mean": c["diff_mean"], "diff_std": c["diff_std"],
                                                 "diff_ci95": c["diff_ci95"], "seeds": both,
                                                 "verdict": _verdict(c["diff_ci95"])}
                    dest[arm] = s
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
    stored = {"lr_schedule": "constant", **old.get("fingerprint", {})}
    if _pairing_keys(stored) != _pairing_keys(json_safe(fingerprint)):
        raise OutputError("was made with another config, steps, batch size, lr, lr schedule, limited "
                          "share or tiling; its runs cannot be paired with new ones", result_file,
                          hint="pass --overwrite to start afresh, or another --out")  # fmt: skip
    why = _synthetic_compatible(stored.get("synthetic", {}), json_safe(fingerprint)["synthetic"])
    if why:
        raise OutputError(f"was made with other synthetic sets ({why}); its runs cannot be paired with new ones",
                          result_file, hint="keep every stored --synthetic NAME=DIR (new ones may be added after "
                          "them), pass --overwrite to start afresh, or another --out")  # fmt: skip
    return old


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
) -> dict:
    """Train every (model, arm, amount, seed) of the protocol above, score on the test split, report.

    ``synthetic``: ``{name: data set folder}`` in arm order (the first one also
    feeds ``synthetic_only``). ``seeds``: seeds ``0..seeds-1``. ``models``
    default to ``unet, segformer`` (segmentation) or ``siamdiff`` (change);
    ``pixel`` may be added for segmentation data. ``limited``: share of the real
    windows of the limited-real setting (0 = skip it). ``arms``: names to run
    (default all; ``real`` is required). Writes ``<out_dir>/benchmark.json``
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
    real = _real_data(cfg, limited)
    models = list(models or DEFAULT_MODELS[real.task])
    wrong = [m for m in models if m not in TASK_MODELS[real.task]]
    if wrong:
        raise ConfigError(f"model(s) {', '.join(wrong)} do not fit {real.task} data",
                          hint=f"choose from {', '.join(TASK_MODELS[real.task])}")
    amounts = list(amounts)
    plan = plan_arms(arms, list(synthetic), amounts, limited)
    patch = cfg.data.patch_size
    settings = {"seeds": list(range(seeds)), "steps": steps, "batch_size": batch_size, "lr": lr,
                "lr_schedule": lr_schedule, "optimizer": f"Adam, {lr_schedule} learning rate from lr", "models": models,
                "amounts": amounts, "limited": limited, "limited_seed": LIMITED_SEED, "arms": [a.id for a in plan if a.setting == "full"],
                "tile": patch, "overlap": patch // 4, "device": str(device)}  # fmt: skip
    fingerprint = {"config": cfg.model_dump(mode="json"), "synthetic": {k: str(v) for k, v in synthetic.items()},
                   **{k: settings[k] for k in ("steps", "batch_size", "lr", "lr_schedule", "limited", "tile",
                                               "overlap")}}  # fmt: skip

    result_file = out_dir / RESULT_FILE
    old = _previous(result_file, fingerprint, resume, overwrite)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"is not writable ({e.strerror})", out_dir) from None
    runs = list(old["runs"]) if old else []
    invocations = list(old["invocations"]) if old else []
    done = {_key(r) for r in runs}

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
         f"{len(real.test)} test region(s), {len(todo)} training(s) of {steps} steps, batch {batch_size}, on {device}")
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
            "summary": "per arm: mean +- std (ddof 1) over seeds; per-seed difference to `real` of the same "
                       "model and setting, mean +- std and Student-t 95 % interval; helps / hurts when the interval "
                       "lies above / below 0, else no clear effect",
        },
        "warnings": warnings,
        "machine": _machine(device),
    }
    planned = [(m, a.setting, a.id, s) for m in models for a in plan for s in settings["seeds"]]
    save = result_saver(result_file, base, invocations, command, t_start, runs, summarize, _key, planned)

    result = save(0)
    for i, (model_name, arm, seed) in enumerate(todo, 1):
        run = _run_one(model_name, arm, seed, real, pools, settings, device, progress)
        runs.append(run)
        result = save(i)
        metric = METRICS[model_name][0]
        log(f"[{i}/{len(todo)}] {model_name} {arm.setting} {arm.id} seed {seed}: {run['train_s'] + run['eval_s']:.0f} s "
             f"(total {time.time() - t_start:.0f} s), {metric} {run['scores'][metric]:.4f}")
    result = json_safe(result)
    result["output"] = write_report(result, out_dir)
    return result
