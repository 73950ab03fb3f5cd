"""``specdm benchmark CONFIG --rgb-model MODEL``: does RGB -> synthetic spectra classify better than RGB?

The HyperLDM paper's downstream experiment (its Table VI), with the benchmark's seeds, resume and
paired differences. A 1-D CNN pixel classifier
(:func:`~specdm.evaluation.classification.train_pixel_classifier`: ``steps`` Adam steps of 256
spectra from lr 2e-3, cosine-annealed; seed ``k`` fixes its initialization and batch draws) is
trained on the labelled pixels of every training region of the config's split (``ignore_index``
left out; labels from the real mask) as

- ``rgb``: the RGB of those pixels, made exactly as the model makes its RGB (the model's
  ``specdm.json`` settings, :func:`~specdm.conditions.rgb.rgb_from_scene` on the data-unit region);
- ``real``: the real spectra, normalized by the training split;
- ``synthetic xM``: M HyperLDM versions of each training region's RGB, normalized alike (versions
  ``0..M-1`` of one draw, so x1 is part of x3).

and scored (OA, AA, kappa; :func:`~specdm.evaluation.classification.classification_scores`) on the
labelled pixels of every test region, pooled: ``rgb`` on RGB, ``real`` on real spectra, each
``synthetic xM`` arm on one HyperLDM version of the test regions' RGB (an RGB camera only: test
condition ``synthetic``) and on the real test spectra (``real``).

The versions are drawn once (training region ``j`` with seed ``2j + 1``, test region ``j`` with seed
``2j``; for one region of each the seeds 1 and 0 of ``bench/hyperldm_tables.py``) and kept in
``OUT/versions/`` beside a record of how they were made, so resuming and every seed reuse them.
Summary per (arm, test condition): mean +- std over seeds and the per-seed difference to ``rgb``
on RGB and to ``real`` on real spectra, on the seeds both have, with the Student-t 95 % interval and
the verdict of :mod:`specdm.evaluation.benchmark.run`.

This stage loads no network of its own (``docs/design.md``: evaluation does not import models or
pipelines): the caller passes ``load_model(model_dir, device)``, i.e.
:func:`specdm.pipelines.load_pipeline` (the CLI does), and gets back an object with ``info``
(``specdm.json``), ``sample_image``, ``steps`` and ``hashes``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from specdm import __version__
from specdm.conditions.rgb import rgb_from_scene
from specdm.config import Config
from specdm.data.datamodule import PreparedData, prepare_data
from specdm.errors import ConfigError, DataError, OutputError
from specdm.evaluation.benchmark.run import (RESULT_FILE, _load_previous, _machine, _pairing_keys, _verdict,
                                             paired_summary, result_saver)
from specdm.evaluation.classification import (PIXEL_BATCH, PIXEL_LR, classification_scores, predict_pixels,
                                              train_pixel_classifier)
from specdm.evaluation.records import json_safe, log, write_json
from specdm.schedulers import SAMPLERS

__all__ = ["METRICS", "RGB_SAMPLER", "rgb_arms", "rgb_benchmark", "summarize_rgb"]

METRICS = ("oa", "aa", "kappa")
RGB_SAMPLER = "ddpm"  # the paper's table and bench/hyperldm_tables.py: DDPM over the model's T steps
VERSIONS_DIR = "versions"


@dataclass
class _Region:
    """One region of the split: its data-unit spectra, its RGB and its labelled pixels."""

    record: dict
    real: np.ndarray  # (H, W, C), data units
    rgb: np.ndarray  # (H, W, 3) in [0, 1]
    labelled: np.ndarray  # (H * W,) bool
    labels: np.ndarray  # (labelled pixels,)


def rgb_arms(amounts: Sequence[int]) -> list[dict]:
    """The arms in report order, each with the test conditions it is scored on."""
    arms = [{"id": "rgb", "kind": "rgb", "tests": ["rgb"]}, {"id": "real", "kind": "real", "tests": ["real"]}]
    return arms + [{"id": f"synthetic x{m}", "kind": "synthetic", "amount": m, "tests": ["synthetic", "real"]}
                   for m in amounts]  # fmt: skip


def _check_amounts(amounts) -> list[int]:
    out = []
    for a in amounts:
        if isinstance(a, bool) or not float(a).is_integer() or a < 1:
            raise ConfigError(f"amount {a!r}: with --rgb-model an amount is a number of HyperLDM versions of the "
                              "training region(s), a whole number of 1 or more, e.g. 1,3,5")
        out.append(int(a))
    return sorted(set(out))


def _model_record(model_dir: Path) -> dict:
    """The model folder's ``specdm.json`` (read here as JSON: this stage does not import :mod:`specdm.models`), so
    that a wrong folder is refused before anything is loaded."""
    f = model_dir / "specdm.json"
    if not f.is_file():
        inner = model_dir / "model"
        raise DataError("is not a specdm model folder (specdm.json missing)", model_dir,
                        hint=f"did you mean {inner}?" if (inner / "specdm.json").is_file() else
                        "--rgb-model takes the model/ folder of a method: hyperldm run")
    try:
        record = json.loads(f.read_text())
        return {"method": str(record.get("method", "specdm")), "source": dict(record.get("source") or {})}
    except (OSError, ValueError, AttributeError, TypeError) as e:
        raise DataError(f"specdm.json cannot be read ({e})", model_dir) from None


def _regions(data: PreparedData, split: str, rgb_settings: dict) -> list[_Region]:
    ignore = data.reference.ignore_index
    out = []
    for g in data.split[split]:
        s = data.scenes[g.scene]
        real = s.images[0][g.r0 : g.r1, g.c0 : g.c1]
        mask = s.mask[g.r0 : g.r1, g.c0 : g.c1].reshape(-1)
        labelled = mask != ignore if ignore is not None else np.ones(mask.size, bool)
        record = {"scene": s.name, "rows": [g.r0, g.r1], "cols": [g.c0, g.c1]}
        out.append(_Region(record, real, rgb_from_scene(real, s.wavelengths, s.band_names, **rgb_settings),
                           labelled, mask[labelled]))
    return out


def _flat(image: np.ndarray, region: _Region) -> np.ndarray:
    """The labelled pixels ``(P, C)`` of an ``(H, W, C)`` image of ``region``."""
    return image.reshape(-1, image.shape[-1])[region.labelled]


def _versions(pipe, region: _Region, k: int, seed: int, path: Path, made_with: dict, reuse: bool, sample_kw: dict
              ) -> tuple[np.ndarray, dict]:
    """``k`` HyperLDM versions ``(k, H, W, C)`` (data units) of the region's RGB: read from ``path`` when its
    record (``path``.json) says they were made the same way, else sampled and written."""
    made_with = json.loads(json.dumps(json_safe({**made_with, "seed": seed, "versions": k, "region": region.record})))
    record_file = path.with_suffix(".json")
    if reuse and path.is_file() and record_file.is_file():
        try:
            record = json.loads(record_file.read_text())
            versions = np.load(path)
        except (OSError, ValueError):
            record, versions = {}, None
        if record.get("made_with") == made_with and versions is not None and versions.shape == (k, *region.real.shape):
            return versions, {**record, "reused": True}
    t0 = time.time()
    versions = np.moveaxis(pipe.sample_image(region.rgb, k, seed=seed, **sample_kw), 1, -1).astype(np.float32)
    try:
        np.save(path, versions)
    except OSError as e:
        raise OutputError(f"cannot write ({e.strerror or e})", path) from None
    record = {"made_with": made_with, "file": str(path), "seconds": round(time.time() - t0, 1)}
    write_json(record_file, record)  # written last: a record means the versions are complete
    return versions, {**record, "reused": False}


def summarize_rgb(runs: Sequence[dict]) -> dict:
    """``{metric: {arm: {test: {mean, std, n, seeds, vs_rgb, vs_real}}}}``.

    ``vs_rgb`` / ``vs_real``: the per-seed difference to the ``rgb`` arm on RGB / the ``real`` arm on real
    spectra, on the seeds both have (:func:`~specdm.evaluation.benchmark.run.paired_summary`: with the paired
    t-test ``p`` and ``mde80``), with its verdict (unadjusted 95 % interval; "not enough seeds" below 2);
    ``{"verdict": "reference"}`` for the reference itself.
    """
    table: dict = {}
    for r in runs:
        for test, s in r["tests"].items():
            for m in METRICS:
                v = s[m]
                table.setdefault(m, {}).setdefault((r["arm"], test), {})[r["seed"]] = math.nan if v is None else v
    out: dict = {}
    for metric, rows in table.items():
        refs = {"rgb": rows.get(("rgb", "rgb")), "real": rows.get(("real", "real"))}
        for (arm, test), values in rows.items():
            own = paired_summary({arm: values}, arm)[arm]
            entry = {k: own[k] for k in ("mean", "std", "n")} | {"seeds": sorted(values)}
            for name, ref in refs.items():
                if (arm, test) == (name, name):
                    entry[f"vs_{name}"] = {"verdict": "reference"}
                    continue
                seeds = sorted(set(values) & set(ref or {}))
                if not seeds:
                    continue
                d = paired_summary({"ref": {k: ref[k] for k in seeds}, "arm": {k: values[k] for k in seeds}}, "ref")
                d = d["arm"]
                entry[f"vs_{name}"] = {"diff_mean": d["diff_mean"], "diff_std": d["diff_std"],
                                       "diff_ci95": d["diff_ci95"], "p": d["p"], "mde80": d["mde80"], "seeds": seeds,
                                       "verdict": _verdict(d["diff_ci95"], d["n"])}
            out.setdefault(metric, {}).setdefault(arm, {})[test] = entry
    return out


def rgb_benchmark(
    cfg: Config,
    model_dir,
    out_dir,
    seeds: int = 3,
    steps: int = 1500,
    amounts: Sequence[int] = (1, 3, 5),
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
    sampler: str = RGB_SAMPLER,
    num_inference_steps: int | None = None,
    progress: bool = True,
    *,
    load_model: Callable,
    device: str | None = None,
) -> dict:
    """Train and score every (arm, seed) of the protocol above; write ``<out_dir>/benchmark.json`` after every
    training, then ``report.md`` and ``report.html``; returns the JSON dict.

    ``model_dir``: a ``method: hyperldm`` model folder trained on the config's scene (same bands), loaded with
    ``load_model(model_dir, device)`` (:func:`specdm.pipelines.load_pipeline`); anything else is a
    :class:`DataError` / :class:`CheckpointError` naming it, before any sampling or training. ``seeds``: seeds
    ``0..seeds-1`` of every arm; ``steps``: classifier steps; ``amounts``: numbers of versions per arm;
    ``sampler``, ``num_inference_steps``: how the versions are drawn (``device`` for sampling only, default CUDA
    when available; the classifiers train on the CPU). An existing benchmark.json is continued with ``resume``
    (finished runs kept, seeds may be added; the config's ``data`` section, the model folder and its weights,
    steps, amounts and sampling must match) or replaced with ``overwrite`` (the versions are then drawn again).
    """
    from specdm.evaluation.benchmark.report import write_report

    t_start = time.time()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if seeds < 1 or steps < 1 or not amounts:
        raise ConfigError("seeds and steps must be >= 1 and amounts not empty")
    amounts = _check_amounts(amounts)
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler '{sampler}'", hint=f"use one of {', '.join(SAMPLERS)}")
    data = prepare_data(cfg.data)
    ref = data.reference
    if ref.task != "segmentation":
        raise ConfigError(f"config '{cfg.name}' holds {ref.task} data; the RGB benchmark classifies the labelled "
                          "pixels of a segmentation scene")
    if not data.split["test"]:
        raise ConfigError(f"config '{cfg.name}' has no test split; the benchmark scores on held-out test regions")
    record = _model_record(model_dir)
    if "rgb" not in record["source"]:  # what the model is conditioned on, not which method made it
        raise DataError(f"was trained by method '{record['method']}', whose models are not conditioned on RGB; "
                        "--rgb-model needs an RGB-conditioned model (for example method: hyperldm)", model_dir,
                        hint="for synthetic data sets use --synthetic NAME=DIR")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipe = load_model(model_dir, device)
    pipe.info.check_scene(ref, model_dir)
    rgb_settings, head = pipe.info.source["rgb"], pipe.info.source.get("head")
    train, test = _regions(data, "train", rgb_settings), _regions(data, "test", rgb_settings)
    y_train = np.concatenate([g.labels for g in train])
    y_test = np.concatenate([g.labels for g in test])
    if not len(y_train) or not len(y_test):
        raise DataError(f"config '{cfg.name}' has no labelled pixel in its {'training' if not len(y_train) else 'test'}"
                        " region(s)", ref.source)
    sampling_steps = pipe.steps(sampler, num_inference_steps)
    model = {"dir": str(model_dir.resolve()), "weights": pipe.hashes(model_dir)}
    settings = {"seeds": list(range(seeds)), "steps": steps, "batch_size": PIXEL_BATCH, "lr": PIXEL_LR,
                "lr_schedule": "cosine", "classifier": "SpectralPixelClassifier (1-D CNN over each spectrum)",
                "amounts": amounts, "sampler": sampler, "sampling_steps": sampling_steps, "device": str(device),
                "classifier_device": "cpu"}  # fmt: skip
    fingerprint = {"experiment": "rgb", "config": cfg.model_dump(mode="json"), "model": model,
                   **{k: settings[k] for k in ("steps", "batch_size", "lr", "amounts", "sampler", "sampling_steps")}}

    result_file = out_dir / RESULT_FILE
    old = _load_previous(result_file, resume, overwrite)
    if old is not None and _pairing_keys(old.get("fingerprint", {})) != _pairing_keys(json_safe(fingerprint)):
        raise OutputError("was made with another config, model, classifier steps, amounts or sampling (or is "
                          "not an --rgb-model benchmark); its runs cannot be paired with new ones", result_file,
                          hint="pass --overwrite to start afresh, or another --out")
    try:
        (out_dir / VERSIONS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"is not writable ({e.strerror})", out_dir) from None

    # the versions: drawn once, reused by every seed and by --resume
    made_with = {"model": model, "sampler": sampler, "sampling_steps": sampling_steps, "rgb": rgb_settings}
    sample_kw = {"sampler": sampler, "num_inference_steps": sampling_steps}
    top = max(amounts)
    drawn, versions_record = {}, {"train": [], "test": []}
    for split, regions, k, first_seed in (("train", train, top, 1), ("test", test, 1, 0)):
        for j, g in enumerate(regions):
            path = out_dir / VERSIONS_DIR / f"{split}_{j}.npy"
            v, rec = _versions(pipe, g, k, first_seed + 2 * j, path, made_with, not overwrite, sample_kw)
            drawn[split, j] = v
            versions_record[split].append({"region": g.record, "seed": first_seed + 2 * j, "versions": k,
                                           "file": str(path), "seconds": rec["seconds"], "reused": rec["reused"]})
            log(f"{split} region {j} ({g.record['scene']} rows {g.record['rows'][0]}-{g.record['rows'][1] - 1}): "
                f"{k} version(s) " + ("reused" if rec["reused"] else f"sampled in {rec['seconds']:.1f} s"))
    del pipe

    norm = data.normalizer
    sources = {"rgb": np.concatenate([_flat(g.rgb, g) for g in train]),
               "real": np.concatenate([_flat(norm(g.real), g) for g in train])}
    for m in amounts:
        sources[f"synthetic x{m}"] = np.concatenate([_flat(norm(drawn["train", j][v]), g)
                                                     for v in range(m) for j, g in enumerate(train)])
    labels = {a: np.tile(y_train, len(x) // len(y_train)) for a, x in sources.items()}
    tests = {"rgb": np.concatenate([_flat(g.rgb, g) for g in test]),
             "real": np.concatenate([_flat(norm(g.real), g) for g in test]),
             "synthetic": np.concatenate([_flat(norm(drawn["test", j][0]), g) for j, g in enumerate(test)])}

    arms = rgb_arms(amounts)
    runs = list(old["runs"]) if old else []
    invocations = list(old["invocations"]) if old else []
    done = {(r["arm"], r["seed"]) for r in runs}
    todo = [(a, s) for s in settings["seeds"] for a in arms if (a["id"], s) not in done]
    if done:
        log(f"resuming {result_file}: {len(done)} run(s) kept, {len(todo)} to train")
    log(f"RGB benchmark on config '{cfg.name}': {len(y_train)} labelled training pixels in {len(train)} region(s), "
        f"{len(y_test)} labelled test pixels in {len(test)} region(s); {len(todo)} training(s) of {steps} steps")

    def classes(regions):
        return sorted({int(c) for g in regions for c in np.unique(g.labels)})

    base = {
        "specdm_benchmark": __version__,
        "experiment": "rgb",
        "command": command,
        "fingerprint": fingerprint,
        "settings": settings,
        "data": {"config": cfg.name, "task": ref.task, "scenes": [s.name for s in data.scenes],
                 "split": cfg.data.split.model_dump(), "train_regions": [g.record for g in train],
                 "test_regions": [g.record for g in test], "labelled_train_pixels": int(len(y_train)),
                 "labelled_test_pixels": int(len(y_test)), "bands": ref.num_bands, "class_names": ref.class_names,
                 "ignore_index": ref.ignore_index, "classes_train": classes(train), "classes_test": classes(test)},
        "model": {**model, "rgb": rgb_settings, "head": head},
        "versions": versions_record,
        "arms": arms,
        "conventions": {
            "training": f"labelled pixels of every training region (ignore_index left out), real labels; "
                        f"SpectralPixelClassifier, {steps} Adam steps of {PIXEL_BATCH} pixels drawn with replacement, "
                        f"lr {PIXEL_LR:g} cosine-annealed to 0; seed k fixes initialization and draws",
            "rgb": "RGB made from the data-unit spectra with the model's RGB settings (specdm.json source.rgb), "
                   "as the model sees RGB",
            "synthetic": "arm xM: versions 0..M-1 of each training region's RGB (data units, normalized by the "
                         "training split like the real spectra, not clipped); test condition 'synthetic': version 0 "
                         "of each test region's RGB (an RGB camera only)",
            "versions": "drawn once per region (training region j: seed 2j + 1, test region j: seed 2j) and kept in "
                        "OUT/versions/, reused by every seed and by --resume",
            "test": "labelled pixels of all test regions pooled into one confusion matrix per run and test condition",
            "summary": "per (arm, test condition): mean +- std (ddof 1) over seeds; per-seed difference to rgb on RGB "
                       "and to real on real spectra on the seeds both have, mean +- std and Student-t 95 % interval; "
                       "helps / hurts when the interval lies above / below 0, else no clear effect (not enough seeds "
                       "below 2 seeds); paired t-test p and minimum detectable effect at 80 % power (mde80) stored, "
                       "not corrected for multiple comparisons",
        },
        "warnings": [f"class {c} is labelled in the test region(s) but not in the training region(s)"
                     for c in sorted(set(classes(test)) - set(classes(train)))],
        "machine": _machine(device),
    }
    save = result_saver(result_file, base, invocations, command, t_start, runs, summarize_rgb,
                        lambda r: (r["arm"], r["seed"]), [(a["id"], s) for a in arms for s in settings["seeds"]])

    result = save(0)
    k = ref.num_classes
    for i, (arm, seed) in enumerate(todo, 1):
        t0 = time.time()
        net = train_pixel_classifier(sources[arm["id"]], labels[arm["id"]], k, seed, steps, progress)
        t1 = time.time()
        scores = {}
        for t in arm["tests"]:
            s = classification_scores(predict_pixels(net, tests[t]), y_test, k, ref.ignore_index)
            scores[t] = {**{m: s[m] for m in METRICS}, "per_class_accuracy": np.asarray(s["per_class_accuracy"]).tolist()}
        runs.append(json_safe({"arm": arm["id"], "seed": seed, "amount": arm.get("amount"),
                               "train_pixels": len(sources[arm["id"]]), "tests": scores,
                               "train_s": round(t1 - t0, 2), "eval_s": round(time.time() - t1, 2)}))
        result = save(i)
        log(f"[{i}/{len(todo)}] {arm['id']} seed {seed}: {time.time() - t0:.0f} s, "
            + ", ".join(f"OA on {t} {scores[t]['oa']:.4f}" for t in arm["tests"]))
    result = json_safe(result)
    result["output"] = write_report(result, out_dir)
    return result

