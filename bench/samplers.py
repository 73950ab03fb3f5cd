"""Quality vs steps of the samplers: how few network evaluations match DDPM-1000 (the paper's sampler)?

For each sampler setting, N samples with the same seeds (sample i of run seed s uses SeedSequence([s, i]))
are written with ``specdm.recipes.sampling.sample_model`` (what ``specdm sample`` runs) and scored with
``specdm.evaluation.evaluate`` against the real training split, all with ONE encoder folder (trained on
the first evaluation, reused after) so the Frechet distances are comparable.

Speed: one pipeline call (denoising + decoding) on a batch per setting, settings interleaved, fastest of
``--timing-repeats``; the time spent in the pipeline while writing each evaluated set is reported too.

Noise: the reference is sampled with two run seeds (``--seed``, ``--noise-seed``), and the
``--noise-extra`` settings with ``--noise-seeds`` as well (their spread over seeds is reported).
Rule (the brief's): a setting *matches* the reference when, for every metric in ``--criteria``, its mean
over the seeds it was sampled with is ``<= mean of the two reference sets * (1 + tol)``, ``tol =
max(--tolerance, relative difference of the two reference sets)``; lower is better for FD and mSAD, so
being better than the reference passes. The recommended default is the matching setting with the
fewest network evaluations (ties: the faster one). Standard errors of the seed means are shown beside.

Settings are ``NAME:STEPS[:ETA]`` with NAME one of ``specdm.schedulers.SAMPLERS`` (ETA: DDIM's stochasticity, default 0).
``--merge PREVIOUS.json`` takes the rows (and timings) of an earlier run with the same model, N, batch,
seeds and encoder folder, and runs only the settings it lacks.

    .venv/bin/python bench/samplers.py runs/indian_pines/model --config indian_pines --n 200 --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import REPO, command_line, finish, header_md, machine_info, other_load  # noqa: E402

METRICS = {  # key -> (label, getter)
    "joint": ("FD joint", lambda r: r["distribution"]["joint"]["fd"]),
    "image": ("FD image", lambda r: r["distribution"]["image"]["fd"]),
    "mask": ("FD mask", lambda r: r["distribution"]["mask"]["fd"]),
    "msad": ("mSAD (rad)", lambda r: r["spectral"]["msad_rad"]),
}
EXTRA = {
    "kid_joint": lambda r: r["distribution"]["joint"]["kid_mean"],
    "precision": lambda r: r["spectral"]["precision_recall"]["precision"],
    "recall": lambda r: r["spectral"]["precision_recall"]["recall"],
    "class_tv": lambda r: r["spectral"]["class_proportion_tv"],
    "fd_joint_real_halves": lambda r: r["distribution"]["joint"]["fd_real_halves"],
}


def known_samplers() -> tuple[str, ...]:
    try:
        from specdm.schedulers import SAMPLERS

        return tuple(SAMPLERS)
    except ImportError:
        return ("ddpm", "ddim", "dpm++")


def parse_setting(s: str) -> tuple[str, int, float]:
    parts = s.strip().split(":")
    try:
        name, steps, eta = parts[0], int(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0
    except (IndexError, ValueError):
        raise argparse.ArgumentTypeError(f"bad sampler setting '{s}' (want NAME:STEPS[:ETA])") from None
    names = known_samplers()
    if name not in names or len(parts) > 3 or (eta and name != "ddim"):
        raise argparse.ArgumentTypeError(f"bad sampler setting '{s}' (NAME in {', '.join(names)}; ETA for ddim only)")
    return name, steps, eta


def settings(text: str) -> list[tuple[str, int, float]]:
    return [parse_setting(s) for s in text.split(",") if s.strip()]


def setting_label(name: str, steps: int, eta: float = 0.0) -> str:
    return f"{name}-{steps}" + (f"-eta{eta:g}" if eta else "")


def label(name: str, steps: int, eta: float, seed: int, base_seed: int) -> str:
    return setting_label(name, steps, eta) + ("" if seed == base_seed else f"-seed{seed}")


def series(row: dict) -> str:
    return row["sampler"] + (f" eta={row.get('eta', 0):g}" if row.get("eta") else "")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--config", default="indian_pines", help="config of the real data (packaged name or YAML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--n", default=None,
                   help="samples per set (default 200, or that of --merge), or 'auto' (fit --budget-min from a timed batch)")
    p.add_argument("--budget-min", type=float, default=25.0, help="time budget of the whole script for --n auto")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--seed", type=int, default=0, help="run seed of every set")
    p.add_argument("--noise-seed", type=int, default=1, help="run seed of the second reference set")
    p.add_argument("--reference", type=parse_setting, default=("ddpm", 1000, 0.0))
    p.add_argument("--candidates", type=settings,
                   default=settings("ddim:5,ddim:10,ddim:20,ddim:25,ddim:50,dpm++:5,dpm++:10,dpm++:20,dpm++:25,dpm++:50,"
                                    "ddpm:250"))
    p.add_argument("--noise-extra", type=settings, default=settings("ddim:20"),
                   help="cheap settings also sampled with --noise-seeds (noise estimate); '' for none")
    p.add_argument("--noise-seeds", default="1", help="run seeds of the --noise-extra sets, comma-separated")
    p.add_argument("--tolerance", type=float, default=0.05)
    p.add_argument("--criteria", default="joint,msad", help=f"metrics that must match, of {', '.join(METRICS)}")
    p.add_argument("--encoder-steps", type=int, default=400)
    p.add_argument("--encoders", type=Path, default=None, help="shared feature encoder folder (default WORK/encoders)")
    p.add_argument("--work", type=Path, default=Path("/tmp/specdm-bench/samplers"),
                   help="synthetic sets and evaluations (outside the repository)")
    p.add_argument("--merge", type=Path, default=None, help="results JSON of an earlier run to extend")
    p.add_argument("--keep", action="store_true", help="keep the synthetic sets in WORK")
    p.add_argument("--timing-repeats", type=int, default=3, help="timed batches per setting (the fastest counts)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--no-threads-check", dest="threads_check", action="store_false",
                   help="skip timing one batch with 1 thread vs one thread per core")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "samplers")
    args = p.parse_args()
    criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]
    if unknown := set(criteria) - set(METRICS):
        p.error(f"unknown criteria {sorted(unknown)}")
    noise_seeds = [int(s) for s in args.noise_seeds.split(",") if s.strip()]

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from specdm.recipes import sampling
    from specdm.config import SamplingConfig, load_config
    from specdm.evaluation.evaluate import evaluate
    from specdm.pipelines import SpecDMPipeline

    t_start = time.time()
    result = {"command": command_line(), "machine": machine_info(), "background": other_load()}
    cfg = load_config(args.config, args.overrides)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    encoders = (args.encoders or work / "encoders").resolve()
    b = args.batch_size

    ref_set = args.reference
    runs = [(*ref_set, args.seed), (*ref_set, args.noise_seed)]
    runs += [(*c, args.seed) for c in args.candidates if c != ref_set]
    runs += [(*c, s) for c in args.noise_extra for s in [args.seed, *noise_seeds]]
    runs = list(dict.fromkeys(runs))

    previous_rows, previous_speed, merged_from = {}, {}, None
    if args.merge:
        prev = json.loads(args.merge.read_text())
        for key, want in (("batch_size", b), ("seed", args.seed), ("encoders", str(encoders)), ("model_dir", str(args.model_dir))):
            if str(prev.get(key)) != str(want):
                p.error(f"--merge: {args.merge} has {key} = {prev.get(key)}, this run {want}")
        if args.n not in (None, "auto") and int(args.n) != prev["n"]:
            p.error(f"--merge: {args.merge} has n = {prev['n']}, this run {args.n}")
        args.n = str(prev["n"])
        previous_rows = {r["label"]: {**r, "eta": r.get("eta", 0.0)} for r in prev["rows"]}
        history = prev.get("history") or [{"command": prev["command"], "wall_time_s": prev["wall_time_s"],
                                           "loadavg_at_start": prev["machine"]["loadavg_at_start"]}]
        for r in previous_rows.values():
            r.setdefault("run", len(history))
        previous_speed = prev["timing"]["settings"]
        merged_from = {"file": str(args.merge), "command": prev["command"], "wall_time_s": prev["wall_time_s"],
                       "machine": prev["machine"], "labels": sorted(previous_rows)}
        result["merged_from"] = merged_from
    if not args.merge:
        history = []
    args.n = args.n or "200"
    todo = [r for r in runs if label(*r, args.seed) not in previous_rows]
    total_nfe = sum(s for _, s, _, _ in todo)

    # --- time in the pipeline only (denoise + decode), accumulated over every call
    timer = {"s": 0.0}
    orig_call = SpecDMPipeline.__call__

    def timed_call(self, *a, **k):
        t = time.perf_counter()
        out = orig_call(self, *a, **k)
        timer["s"] += time.perf_counter() - t
        return out

    SpecDMPipeline.__call__ = timed_call

    # --- calibration: seconds per (sample x network evaluation) at this batch size
    pipe = SpecDMPipeline.from_pretrained(args.model_dir)
    calib_steps = 20
    pipe(list(range(2)), seed=99, sampler="ddpm", num_inference_steps=2)  # warm-up
    t = time.perf_counter()
    pipe(list(range(b)), seed=99, sampler="ddpm", num_inference_steps=calib_steps)
    per_nfe = (time.perf_counter() - t) / (b * calib_steps)
    # threads: torch's default (one per core) against 1, on one DDIM-20 batch, interleaved; on a shared
    # machine the default can be far slower (threads wait for each other while other work holds a core)
    threads_check = {}
    if args.threads_check:
        t_set = torch.get_num_threads()
        for k in (1, os.cpu_count() or 1) * 2:
            torch.set_num_threads(k)
            t = time.perf_counter()
            pipe(list(range(b)), seed=99, sampler="ddim", num_inference_steps=20)
            threads_check.setdefault(str(k), []).append(time.perf_counter() - t)
        torch.set_num_threads(t_set)
        threads_check = {k: {"batch_s": v, "samples_per_s": b / min(v)} for k, v in threads_check.items()}
        print(f"threads check (ddim-20, batch {b}): "
              + ", ".join(f"{k} thread(s) {v['samples_per_s']:.2f} samples/s" for k, v in threads_check.items()), flush=True)
    result["threads_check"] = threads_check
    result["threads"] = torch.get_num_threads()
    distinct = [s for s in dict.fromkeys((nm, st, eta) for nm, st, eta, _ in runs) if setting_label(*s) not in previous_speed]
    timing_nfe = args.timing_repeats * sum(st for _, st, _ in distinct)
    eval_guess_s = 30.0  # per evaluation (data loading, features, sPr/sRec); encoders on top, once
    if args.n == "auto":
        budget = args.budget_min * 60 - (time.time() - t_start) - len(todo) * eval_guess_s - 120
        budget -= per_nfe * b * timing_nfe
        n = int(budget / (per_nfe * max(total_nfe, 1))) // 10 * 10
        n = max(20, min(n, 1000))
    else:
        n = int(args.n)
    result["calibration"] = {
        "batch": b, "steps": calib_steps, "seconds_per_sample_per_nfe": per_nfe,
        "total_nfe_per_sample": total_nfe, "predicted_sampling_s": per_nfe * (total_nfe * n + timing_nfe * b), "n": n,
        "n_rule": f"--n {args.n}" + (f": largest multiple of 10 fitting {args.budget_min} min with "
                                     f"{eval_guess_s:.0f} s per evaluation" if args.n == "auto" else ""),
    }
    print(f"calibration: {per_nfe * 1e3:.2f} ms per sample per network evaluation (batch {b}, decoding included); "
          f"{len(todo)} sets to run, {total_nfe} evaluations per sample in all -> N = {n} "
          f"(predicted sampling {result['calibration']['predicted_sampling_s'] / 60:.1f} min)", flush=True)

    # --- speed: one batch of b samples per setting, settings interleaved, repeated; the fastest repeat counts
    # (background load on a shared machine only ever slows a run down)
    times = {s: [] for s in distinct}
    for rep in range(args.timing_repeats if distinct else 0):
        for nm, st, eta in distinct:
            t = time.perf_counter()
            pipe(list(range(1000, 1000 + b)), seed=args.seed, sampler=nm, num_inference_steps=st, eta=eta)
            times[(nm, st, eta)].append(time.perf_counter() - t)
        print(f"timing repeat {rep + 1}: " + ", ".join(f"{setting_label(*s)} {times[s][-1]:.1f} s" for s in distinct), flush=True)
    speed = {**previous_speed,
             **{setting_label(*s): {"batch_s": v, "best_s": min(v), "samples_per_s": b / min(v), "median_s": float(np.median(v))}
                for s, v in times.items()}}
    result["timing"] = {"batch": b, "repeats": args.timing_repeats, "settings": speed,
                        "rule": "pipeline call (denoising + decoding) on one batch, settings interleaved, fastest repeat"}
    del pipe
    timer["s"] = 0.0

    rows = []
    for name, steps, eta, seed in runs:
        lab = label(name, steps, eta, seed, args.seed)
        if lab in previous_rows:
            rows.append(previous_rows[lab])
            continue
        synth = work / "sets" / lab
        timer["s"] = 0.0
        t = time.time()
        settings = SamplingConfig(num_samples=n, sampler=name, num_inference_steps=steps, eta=eta, batch_size=b,
                                  seed=seed, image_format="npy", previews=0)
        sampling.sample_model(args.model_dir, synth, settings, overwrite=True, command=f"bench/samplers.py ({lab})")
        wall = time.time() - t
        pipe_s = timer["s"]
        t = time.time()
        ev = evaluate(cfg, synth, work / "eval" / lab, encoder_dir=encoders, seed=0, encoder_steps=args.encoder_steps,
                      overwrite=True, command=f"bench/samplers.py ({lab})")
        ev_s = time.time() - t
        row = {"label": lab, "sampler": name, "steps": steps, "eta": eta, "nfe": steps, "seed": seed, "n": n,
               "pipeline_s": round(pipe_s, 2), "sample_wall_s": round(wall, 2), "set_samples_per_s": n / pipe_s,
               "samples_per_s": speed[setting_label(name, steps, eta)]["samples_per_s"],
               "evaluate_s": round(ev_s, 1), "encoders_reused": ev["encoders"]["reused"], "run": len(history) + 1}
        row.update({k: g(ev) for k, (_, g) in METRICS.items()})
        row.update({k: g(ev) for k, g in EXTRA.items()})
        rows.append(row)
        dst = args.out / "evaluations" / lab
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy(work / "eval" / lab / "evaluation.md", dst / "evaluation.md")
        print(f"{lab:>18}: {n / pipe_s:7.2f} samples/s in the set  FD joint {row['joint']:.4g}  image {row['image']:.4g}  "
              f"mask {row['mask']:.4g}  mSAD {row['msad']:.4g}  (sampling {pipe_s:.0f} s, eval {ev_s:.0f} s)", flush=True)
        if not args.keep:
            shutil.rmtree(synth, ignore_errors=True)
    SpecDMPipeline.__call__ = orig_call
    # merged rows not asked for this time are kept too (the full curve)
    asked = {r["label"] for r in rows}
    rows += [r for lab, r in previous_rows.items() if lab not in asked]

    def rows_of(setting, seeds=None):
        return [r for r in rows if (r["sampler"], r["steps"], r.get("eta", 0.0)) == tuple(setting)
                and (seeds is None or r["seed"] in seeds)]

    ref_rows = rows_of(ref_set, [args.seed, args.noise_seed])
    ref_mean = {k: float(np.mean([r[k] for r in ref_rows])) for k in METRICS}
    ref_diff = {k: abs(ref_rows[0][k] - ref_rows[1][k]) / ref_mean[k] for k in METRICS}
    spread = {}
    for s in dict.fromkeys((r["sampler"], r["steps"], r.get("eta", 0.0)) for r in rows):
        rs = rows_of(s)
        if len(rs) >= 2 and tuple(s) != tuple(ref_set):
            vals = {k: [r[k] for r in rs] for k in METRICS}
            spread[setting_label(*s)] = {
                "seeds": [r["seed"] for r in rs],
                "mean": {k: float(np.mean(v)) for k, v in vals.items()},
                "std": {k: float(np.std(v, ddof=1)) for k, v in vals.items()},
                "cv": {k: float(np.std(v, ddof=1) / np.mean(v)) for k, v in vals.items()},
            }
    # the brief's rule: tol = max(tolerance, relative difference of the two reference sets); each setting is
    # judged on the mean over the seeds it was sampled with (a 4-seed mean is 2x less noisy than one set)
    tol = {k: max(args.tolerance, ref_diff[k]) for k in METRICS}
    ref_speed = speed[setting_label(*ref_set)]["samples_per_s"]
    for r in rows:
        r["ratio"] = {k: r[k] / ref_mean[k] for k in METRICS}
        r["speedup"] = r["samples_per_s"] / ref_speed
        r["nfe_ratio"] = ref_set[1] / r["nfe"]
    summary = []
    for st in dict.fromkeys((r["sampler"], r["steps"], r.get("eta", 0.0)) for r in rows):
        rs = rows_of(st)
        k_seeds = len(rs)
        mean = {k: float(np.mean([r[k] for r in rs])) for k in METRICS}
        se = {k: float(np.std([r[k] for r in rs], ddof=1) / math.sqrt(k_seeds)) / ref_mean[k] if k_seeds > 1 else None
              for k in METRICS}
        passes = {k: mean[k] <= ref_mean[k] * (1 + tol[k]) for k in METRICS}
        summary.append({
            "setting": setting_label(*st), "sampler": st[0], "steps": st[1], "eta": st[2], "nfe": st[1],
            "seeds": [r["seed"] for r in rs], "is_reference": tuple(st) == tuple(ref_set),
            "samples_per_s": rs[0]["samples_per_s"], "speedup": rs[0]["samples_per_s"] / ref_speed,
            "nfe_ratio": ref_set[1] / st[1], "mean": mean, "ratio": {k: mean[k] / ref_mean[k] for k in METRICS},
            "ratio_se": se, "passes": passes, "matches": all(passes[k] for k in criteria),
            "matches_all_metrics": all(passes.values()),
        })
    cands = [x for x in summary if not x["is_reference"] and x["matches"]]
    best = min(cands, key=lambda x: (x["nfe"], -x["samples_per_s"])) if cands else None
    cands_all = [x for x in cands if x["matches_all_metrics"]]
    best_all = min(cands_all, key=lambda x: (x["nfe"], -x["samples_per_s"])) if cands_all else None
    kinds = {name: i for i, name in enumerate(known_samplers())}
    summary.sort(key=lambda x: (not x["is_reference"], kinds.get(x["sampler"], 99), x["sampler"], x["eta"], x["steps"]))
    kinds = {name: i for i, name in enumerate(known_samplers())}
    rows.sort(key=lambda r: ((r["sampler"], r["steps"], r.get("eta", 0.0)) != tuple(ref_set), r["seed"] != args.seed,
                             kinds.get(r["sampler"], 99), r["sampler"], r.get("eta", 0.0), r["steps"], r["seed"]))

    ref_label = setting_label(*ref_set)
    result.update({
        "model_dir": str(args.model_dir),
        "config": cfg.name,
        "n": n,
        "batch_size": b,
        "seed": args.seed,
        "noise_seed": args.noise_seed,
        "noise_seeds": noise_seeds,
        "reference": ref_label,
        "reference_mean": ref_mean,
        "encoders": str(encoders),
        "encoder_steps": args.encoder_steps,
        "criteria": criteria,
        "rule": (f"match: for each of {criteria}, the setting's mean over its seeds <= mean of the two {ref_label} "
                 f"sets (seeds {args.seed}, {args.noise_seed}) x (1 + tol), tol = max({args.tolerance}, relative "
                 f"difference of the two {ref_label} sets)"),
        "noise_reference_relative": ref_diff,
        "noise_spread": spread,
        "tolerance": tol,
        "rows": rows,
        "settings": summary,
        "recommended": best and {k: best[k] for k in ("setting", "sampler", "steps", "eta", "seeds", "speedup",
                                                       "nfe_ratio", "ratio", "ratio_se")},
        "recommended_all_metrics": best_all and {k: best_all[k] for k in ("setting", "seeds", "speedup", "ratio")},
        "target_20x_met": bool(best and best["speedup"] >= 20),
    })
    png = args.out / "samplers.png"
    plot(rows, summary, ref_mean, ref_label, tol, png, n)
    result["plot"] = str(png.relative_to(REPO)) if png.is_relative_to(REPO) else str(png)
    new_sets = sum(r["run"] == len(history) + 1 for r in rows)

    def add_history(result):
        result["history"] = history + ([{"command": result["command"], "wall_time_s": result["wall_time_s"],
                                         "loadavg_at_start": result["machine"]["loadavg_at_start"], "sets": new_sets}]
                                       if new_sets or not history else [])

    finish(args.out, "samplers", result, t_start, markdown, stamped=add_history, also=[png])
    if not args.keep:
        shutil.rmtree(work / "sets", ignore_errors=True)
    return 0


def plot(rows, summary, ref_mean, ref_label, tol, path: Path, n: int) -> None:
    """Per setting: the mean over its seeds (error bar: std over seeds where several), every set as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["joint", "image", "mask", "msad"]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    markers = {"ddpm": "s", "ddim": "o", "dpm++": "^"}
    names = list(dict.fromkeys(series(x) for x in summary))
    for ax, k in zip(axes, keys):
        for name in names:
            xs = sorted((x for x in summary if series(x) == name), key=lambda x: x["nfe"])
            means = [x["mean"][k] for x in xs]
            errs = [float(np.std([r[k] for r in rows if r["label"].startswith(x["setting"]) and
                                  (r["sampler"], r["steps"], r.get("eta", 0.0)) == (x["sampler"], x["steps"], x["eta"])], ddof=1))
                    if len(x["seeds"]) > 1 else 0.0 for x in xs]
            line = ax.errorbar([x["nfe"] for x in xs], means, yerr=errs, marker=markers.get(name.split()[0], "D"),
                               ls="-" if "eta" not in name else "--", capsize=3, label=name)
            pts = [(r["nfe"], r[k]) for r in rows if series(r) == name]
            ax.scatter(*zip(*pts), s=8, color=line[0].get_color(), alpha=0.5)
        ax.axhline(ref_mean[k], color="grey", lw=0.8)
        ax.axhspan(ref_mean[k] * (1 - tol[k]), ref_mean[k] * (1 + tol[k]), color="grey", alpha=0.2,
                   label=f"{ref_label} (mean of 2 seeds) +- {100 * tol[k]:.0f}%")
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations per sample")
        ax.set_title(METRICS[k][0])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"quality vs network evaluations ({n} samples per set; mean over seeds +- std where several, "
                 "dots: single sets; lower is better)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)


def markdown(r: dict) -> str:
    lines = header_md("Sampler quality vs steps", r)
    c = r["calibration"]
    lines += [
        f"- model `{r['model_dir']}`, real data config `{r['config']}`; N = {r['n']} samples per set "
        f"({c['n_rule']}), batch {r['batch_size']}, run seed {r['seed']} for every set unless marked "
        "(sample i: SeedSequence([seed, i])).",
        f"- one encoder folder for all evaluations (`{r['encoders']}`, {r['encoder_steps']} steps, seed 0).",
        f"- speed: samples/s = {r['timing']['batch']} / time of one pipeline call on a batch of {r['timing']['batch']} "
        f"(denoising + decoding; file writing and the card excluded), settings interleaved, fastest of "
        f"{r['timing']['repeats']} repeats; 'set' = N / pipeline time while writing the evaluated set (more exposed "
        f"to background load).",
        f"- torch threads: {r['threads']}"
        + ("; threads check (DDIM-20, one batch, fastest of 2): " + ", ".join(
            f"{k} thread(s) {v['samples_per_s']:.2f} samples/s" for k, v in r["threads_check"].items()) if r["threads_check"] else "") + ".",
        f"- rule: {r['rule']}.",
    ]
    if len(r.get("history", [])) > 1:
        lines.append("- the sets come from these runs (each extends the one before with `--merge`; column 'run'):")
        for i, h in enumerate(r["history"], 1):
            lines.append(f"  {i}. `{h['command']}` ({h['wall_time_s']:.0f} s, {h.get('sets', '?')} new sets, load average "
                         f"at start {h['loadavg_at_start']})")
    lines += [
        "",
        "### Every set",
        "",
        "| set | run | NFE | samples/s | speed-up | set samples/s | FD joint | FD image | FD mask | mSAD (rad) | KID joint | sPr / sRec | joint / mSAD vs ref mean |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {x['label']} | {x.get('run', '')} | {x['nfe']} | {x['samples_per_s']:.2f} | {x['speedup']:.1f}x | {x['set_samples_per_s']:.2f} | "
            f"{x['joint']:.4g} | {x['image']:.4g} | {x['mask']:.4g} | {x['msad']:.4g} | {x['kid_joint']:.3g} | "
            f"{x['precision']:.3f} / {x['recall']:.3f} | {x['ratio']['joint']:.3f} / {x['ratio']['msad']:.3f} |")
    rm = r["reference_mean"]
    lines += [
        "",
        f"Reference (mean of the two {r['reference']} sets): " + ", ".join(f"{METRICS[k][0]} {v:.4g}" for k, v in rm.items())
        + f". Real half vs real half FD joint (half as many samples): {r['rows'][0]['fd_joint_real_halves']:.4g}.",
        "",
        f"Noise, relative difference between the two {r['reference']} sets: "
        + ", ".join(f"{METRICS[k][0]} {100 * v:.1f}%" for k, v in r["noise_reference_relative"].items()) + ".",
    ]
    for name, v in r["noise_spread"].items():
        lines.append(f"Noise, {name} over seeds {v['seeds']}: " + ", ".join(
            f"{METRICS[k][0]} {v['mean'][k]:.4g} +- {v['std'][k]:.2g} (cv {100 * v['cv'][k]:.1f}%)" for k in METRICS) + ".")
    lines.append("Tolerance used: " + ", ".join(f"{METRICS[k][0]} {100 * v:.1f}%" for k, v in r["tolerance"].items()) + ".")
    lines += [
        "",
        "### Per setting (mean over its seeds, as a ratio to the reference mean; +- standard error where several seeds)",
        "",
        "| setting | NFE | seeds | samples/s | speed-up | FD joint | FD image | FD mask | mSAD | match |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:--:|",
    ]

    def rat(x, k):
        return f"{x['ratio'][k]:.3f}" + (f" +- {x['ratio_se'][k]:.3f}" if x["ratio_se"][k] is not None else "")

    for x in r["settings"]:
        lines.append(f"| {x['setting']} | {x['nfe']} | {len(x['seeds'])} | {x['samples_per_s']:.2f} | {x['speedup']:.1f}x | "
                     f"{rat(x, 'joint')} | {rat(x, 'image')} | {rat(x, 'mask')} | {rat(x, 'msad')} | "
                     + ("reference" if x["is_reference"] else ("yes" if x["matches"] else "no")
                        + ("" if x["matches_all_metrics"] or not x["matches"] else " (not all FDs)")) + " |")
    lines.append("")
    rec = r["recommended"]
    if rec:
        lines.append(f"**Fewest-step match: {rec['setting']}** ({len(rec['seeds'])} seed(s)), {rec['speedup']:.1f}x faster "
                     f"than {r['reference']} ({rec['nfe_ratio']:.0f}x fewer network evaluations); ratios of its mean to the "
                     f"reference mean: FD joint {rec['ratio']['joint']:.3f}, mSAD {rec['ratio']['msad']:.3f}, FD image "
                     f"{rec['ratio']['image']:.3f}, FD mask {rec['ratio']['mask']:.3f}.")
        ra = r["recommended_all_metrics"]
        lines.append("Fewest-step setting matching on every FD and mSAD: "
                     + (f"{ra['setting']} ({ra['speedup']:.1f}x)." if ra else "none."))
        lines.append(f"20x speed-up at matching quality: {'met' if r['target_20x_met'] else 'NOT met'}.")
    else:
        lines.append(f"**No candidate matches {r['reference']}** under the rule above.")
    lines += ["", f"![quality vs network evaluations]({Path(r['plot']).name})", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
