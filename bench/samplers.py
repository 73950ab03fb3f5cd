"""Quality vs steps of the samplers: how few network evaluations match DDPM-1000 (the paper's sampler)?

For each sampler setting, N samples with the same seeds (sample i of run seed s uses SeedSequence([s, i]))
are written with ``specdm.workflow.synthesize`` (what ``specdm sample`` runs), the time spent in the
pipeline (denoising + decoding, excluding file writing and the dataset card) is measured, and the set is
scored with ``specdm.evaluation.evaluate`` against the real training split, all with ONE encoder folder
(trained on the first evaluation, reused after) so the Frechet distances are comparable.

The noise level of the metrics is estimated from a second DDPM-1000 set with another run seed (and,
cheaply, a second set of one fast sampler). Rule: a candidate *matches* DDPM-1000 when, for every metric
in ``--criteria``, ``metric <= reference * (1 + tol)`` with ``tol = max(--tolerance,
|m(seed a) - m(seed b)| / mean)`` of the two DDPM-1000 sets (lower is better for FD and mSAD, so being
better than the reference passes). The recommended default is the matching setting with the fewest
network evaluations (ties: the faster one).

    .venv/bin/python bench/samplers.py runs/indian_pines/model --config indian_pines --n auto
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import REPO, command_line, header_md, machine_info, other_load, write_results  # noqa: E402

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


def parse_setting(s: str) -> tuple[str, int]:
    name, _, steps = s.strip().partition(":")
    if name not in ("ddpm", "ddim", "dpm++") or not steps.isdigit():
        raise argparse.ArgumentTypeError(f"bad sampler setting '{s}' (want NAME:STEPS, NAME in ddpm, ddim, dpm++)")
    return name, int(steps)


def settings(text: str) -> list[tuple[str, int]]:
    return [parse_setting(s) for s in text.split(",") if s.strip()]


def label(name: str, steps: int, seed: int) -> str:
    return f"{name}-{steps}" + ("" if seed == 0 else f"-seed{seed}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--config", default="indian_pines", help="config of the real data (packaged name or YAML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--n", default="200", help="samples per set, or 'auto' (fit --budget-min from a timed batch)")
    p.add_argument("--budget-min", type=float, default=25.0, help="time budget of the whole script for --n auto")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--seed", type=int, default=0, help="run seed of every set")
    p.add_argument("--noise-seed", type=int, default=1, help="run seed of the second reference set")
    p.add_argument("--reference", type=parse_setting, default=("ddpm", 1000))
    p.add_argument("--candidates", type=settings,
                   default=settings("ddim:10,ddim:20,ddim:25,ddim:50,dpm++:10,dpm++:20,dpm++:25,dpm++:50,ddpm:250"))
    p.add_argument("--noise-extra", type=settings, default=settings("ddim:20"),
                   help="cheap settings also sampled with --noise-seed (a second noise estimate); '' for none")
    p.add_argument("--tolerance", type=float, default=0.05)
    p.add_argument("--criteria", default="joint,msad", help=f"metrics that must match, of {', '.join(METRICS)}")
    p.add_argument("--encoder-steps", type=int, default=400)
    p.add_argument("--encoders", type=Path, default=None, help="shared feature encoder folder (default WORK/encoders)")
    p.add_argument("--work", type=Path, default=Path("/tmp/specdm-bench/samplers"),
                   help="synthetic sets and evaluations (outside the repository)")
    p.add_argument("--keep", action="store_true", help="keep the synthetic sets in WORK")
    p.add_argument("--timing-repeats", type=int, default=3, help="timed batches per setting (the fastest counts)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "samplers")
    args = p.parse_args()
    criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]
    if unknown := set(criteria) - set(METRICS):
        p.error(f"unknown criteria {sorted(unknown)}")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from specdm.config import load_config
    from specdm.evaluation.evaluate import evaluate
    from specdm.pipelines.synthesis import SpecDMPipeline
    from specdm import workflow

    t_start = time.time()
    result = {"command": command_line(), "machine": machine_info(), "background": other_load()}
    cfg = load_config(args.config, args.overrides)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    encoders = args.encoders or work / "encoders"

    # --- time in the pipeline only (denoise + decode), accumulated over every call
    timer = {"s": 0.0}
    orig_call = SpecDMPipeline.__call__

    def timed_call(self, *a, **k):
        t = time.perf_counter()
        out = orig_call(self, *a, **k)
        timer["s"] += time.perf_counter() - t
        return out

    SpecDMPipeline.__call__ = timed_call

    ref_name, ref_steps = args.reference
    runs = [(ref_name, ref_steps, args.seed), (ref_name, ref_steps, args.noise_seed)]
    runs += [(n, s, args.seed) for n, s in args.candidates if (n, s) != args.reference]
    runs += [(n, s, args.noise_seed) for n, s in args.noise_extra]
    total_nfe = sum(s for _, s, _ in runs)

    # --- calibration: seconds per (sample x network evaluation) at this batch size
    pipe = SpecDMPipeline.from_pretrained(args.model_dir)
    b = args.batch_size
    calib_steps = 20
    pipe(list(range(2)), seed=99, sampler="ddpm", num_inference_steps=2)  # warm-up
    t = time.perf_counter()
    pipe(list(range(b)), seed=99, sampler="ddpm", num_inference_steps=calib_steps)
    per_nfe = (time.perf_counter() - t) / (b * calib_steps)
    eval_guess_s = 60.0  # per evaluation (data loading, features, sPr/sRec); encoders on top, once
    timing_nfe = args.timing_repeats * sum(s for s in {s for _, s, _ in runs})
    if args.n == "auto":
        budget = args.budget_min * 60 - (time.time() - t_start) - len(runs) * eval_guess_s - 120
        budget -= per_nfe * b * timing_nfe
        n = int(budget / (per_nfe * total_nfe)) // 10 * 10
        n = max(20, min(n, 1000))
    else:
        n = int(args.n)
    result["calibration"] = {
        "batch": b, "steps": calib_steps, "seconds_per_sample_per_nfe": per_nfe,
        "total_nfe_per_sample": total_nfe, "predicted_sampling_s": per_nfe * (total_nfe * n + timing_nfe * b), "n": n,
        "n_rule": f"--n {args.n}" + (f": largest multiple of 10 fitting {args.budget_min} min with "
                                     f"{eval_guess_s:.0f} s per evaluation" if args.n == "auto" else ""),
    }
    print(f"calibration: {per_nfe * 1e3:.2f} ms per sample per network evaluation (batch {b}); "
          f"{len(runs)} sets, {total_nfe} evaluations per sample in all -> N = {n} "
          f"(predicted sampling {result['calibration']['predicted_sampling_s'] / 60:.1f} min)", flush=True)

    # --- speed: one batch of b samples per setting, settings interleaved, repeated; the fastest repeat counts
    # (background load on a shared machine only ever slows a run down)
    distinct = list(dict.fromkeys((nm, st) for nm, st, _ in runs))
    times = {sv: [] for sv in distinct}
    for rep in range(args.timing_repeats):
        for nm, st in distinct:
            t = time.perf_counter()
            pipe(list(range(1000, 1000 + b)), seed=args.seed, sampler=nm, num_inference_steps=st)
            times[(nm, st)].append(time.perf_counter() - t)
        print(f"timing repeat {rep + 1}: " + ", ".join(f"{nm}-{st} {times[(nm, st)][-1]:.1f} s" for nm, st in distinct), flush=True)
    speed = {f"{nm}-{st}": {"batch_s": v, "best_s": min(v), "samples_per_s": b / min(v), "median_s": float(np.median(v))}
             for (nm, st), v in times.items()}
    result["timing"] = {"batch": b, "repeats": args.timing_repeats, "settings": speed,
                        "rule": "pipeline call (denoising + decoding) on one batch, settings interleaved, fastest repeat"}
    del pipe
    timer["s"] = 0.0

    rows = []
    for name, steps, seed in runs:
        lab = label(name, steps, seed)
        synth = work / "sets" / lab
        timer["s"] = 0.0
        t = time.time()
        workflow.synthesize(args.model_dir, synth, n, name, steps, 0.0, b, seed, image_format="npy", previews=0,
                            overwrite=True, command=f"bench/samplers.py ({lab})")
        wall = time.time() - t
        pipe_s = timer["s"]
        t = time.time()
        ev = evaluate(cfg, synth, work / "eval" / lab, encoder_dir=encoders, seed=0, encoder_steps=args.encoder_steps,
                      overwrite=True, command=f"bench/samplers.py ({lab})")
        ev_s = time.time() - t
        row = {"label": lab, "sampler": name, "steps": steps, "nfe": steps, "seed": seed, "n": n,
               "pipeline_s": round(pipe_s, 2), "sample_wall_s": round(wall, 2), "set_samples_per_s": n / pipe_s,
               "samples_per_s": speed[f"{name}-{steps}"]["samples_per_s"],
               "evaluate_s": round(ev_s, 1), "encoders_reused": ev["encoders"]["reused"]}
        row.update({k: g(ev) for k, (_, g) in METRICS.items()})
        row.update({k: g(ev) for k, g in EXTRA.items()})
        rows.append(row)
        dst = args.out / "evaluations" / lab
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy(work / "eval" / lab / "evaluation.md", dst / "evaluation.md")
        print(f"{lab:>16}: {n / pipe_s:7.2f} samples/s in the set  FD joint {row['joint']:.4g}  image {row['image']:.4g}  "
              f"mask {row['mask']:.4g}  mSAD {row['msad']:.4g}  (sampling {pipe_s:.0f} s, eval {ev_s:.0f} s)", flush=True)
        if not args.keep:
            shutil.rmtree(synth, ignore_errors=True)
    SpecDMPipeline.__call__ = orig_call

    ref = rows[0]
    ref2 = rows[1]
    noise = {k: abs(ref[k] - ref2[k]) / ((ref[k] + ref2[k]) / 2) for k in METRICS}
    extra_noise = {}
    for name, steps in args.noise_extra:
        a = next((r for r in rows if r["sampler"] == name and r["steps"] == steps and r["seed"] == args.seed), None)
        bb = next((r for r in rows if r["sampler"] == name and r["steps"] == steps and r["seed"] == args.noise_seed), None)
        if a and bb:
            extra_noise[f"{name}-{steps}"] = {k: abs(a[k] - bb[k]) / ((a[k] + bb[k]) / 2) for k in METRICS}
    tol = {k: max(args.tolerance, noise[k]) for k in METRICS}
    for r in rows:
        r["ratio"] = {k: r[k] / ref[k] for k in METRICS}
        r["speedup"] = r["samples_per_s"] / ref["samples_per_s"]
        r["set_speedup"] = r["set_samples_per_s"] / ref["set_samples_per_s"]
        r["nfe_ratio"] = ref["nfe"] / r["nfe"]
        r["passes"] = {k: r[k] <= ref[k] * (1 + tol[k]) for k in METRICS}
        r["matches"] = all(r["passes"][k] for k in criteria)
        r["matches_all_metrics"] = all(r["passes"].values())
    cands = [r for r in rows if r["seed"] == args.seed and r is not ref and r["matches"]]
    best = min(cands, key=lambda r: (r["nfe"], -r["samples_per_s"])) if cands else None
    cands_all = [r for r in cands if r["matches_all_metrics"]]
    best_all = min(cands_all, key=lambda r: (r["nfe"], -r["samples_per_s"])) if cands_all else None

    result.update({
        "model_dir": str(args.model_dir),
        "config": cfg.name,
        "n": n,
        "batch_size": b,
        "seed": args.seed,
        "noise_seed": args.noise_seed,
        "reference": label(ref_name, ref_steps, args.seed),
        "encoders": str(encoders),
        "encoder_steps": args.encoder_steps,
        "criteria": criteria,
        "rule": (f"match: for each of {criteria}, metric <= reference * (1 + tol), tol = max({args.tolerance}, "
                 f"relative difference between the two {ref_name}-{ref_steps} sets (seeds {args.seed}, {args.noise_seed}))"),
        "noise_reference_relative": noise,
        "noise_extra_relative": extra_noise,
        "tolerance": tol,
        "rows": rows,
        "recommended": best and {"label": best["label"], "sampler": best["sampler"], "steps": best["steps"],
                                 "speedup": best["speedup"], "nfe_ratio": best["nfe_ratio"], "ratio": best["ratio"]},
        "recommended_all_metrics": best_all and {"label": best_all["label"], "speedup": best_all["speedup"],
                                                 "ratio": best_all["ratio"]},
        "target_20x_met": bool(best and best["speedup"] >= 20),
    })
    png = args.out / "samplers.png"
    plot(rows, ref, tol, png, n)
    result["plot"] = str(png.relative_to(REPO)) if png.is_relative_to(REPO) else str(png)
    result["wall_time_s"] = time.time() - t_start
    result["background_at_end"] = other_load()
    j, m = write_results(args.out, "samplers", result, markdown(result))
    if not args.keep:
        shutil.rmtree(work / "sets", ignore_errors=True)
    print()
    print(markdown(result))
    print(f"results: {j}\n         {m}\n         {png}")
    return 0


def plot(rows, ref, tol, path: Path, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["joint", "image", "mask", "msad"]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    markers = {"ddpm": "s", "ddim": "o", "dpm++": "^"}
    for ax, k in zip(axes, keys):
        for name in ("ddim", "dpm++", "ddpm"):
            pts = sorted((r["nfe"], r[k]) for r in rows if r["sampler"] == name and r["seed"] == ref["seed"])
            if pts:
                ax.plot(*zip(*pts), marker=markers[name], label=name)
        others = [(r["nfe"], r[k]) for r in rows if r["seed"] != ref["seed"]]
        if others:
            ax.scatter(*zip(*others), marker="x", color="k", label="other seed", zorder=3)
        ax.axhline(ref[k], color="grey", lw=0.8)
        ax.axhspan(ref[k] * (1 - tol[k]), ref[k] * (1 + tol[k]), color="grey", alpha=0.2,
                   label=f"{ref['label']} +- {100 * tol[k]:.0f}%")
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations per sample")
        ax.set_title(METRICS[k][0])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"quality vs network evaluations ({n} samples per set; lower is better)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def markdown(r: dict) -> str:
    lines = header_md("Sampler quality vs steps", r)
    c = r["calibration"]
    lines += [
        f"- model `{r['model_dir']}`, real data config `{r['config']}`; N = {r['n']} samples per set "
        f"({c['n_rule']}), batch {r['batch_size']}, run seed {r['seed']} for every set (sample i: SeedSequence([seed, i])).",
        f"- one encoder folder for all evaluations (`{r['encoders']}`, {r['encoder_steps']} steps, seed 0).",
        f"- speed: samples/s = {r['timing']['batch']} / time of one pipeline call on a batch of {r['timing']['batch']} "
        f"(denoising + decoding; file writing and the card excluded), settings interleaved, fastest of "
        f"{r['timing']['repeats']} repeats; 'set' = N / pipeline time while writing the evaluated set (more exposed "
        f"to background load). Calibration {1e3 * c['seconds_per_sample_per_nfe']:.2f} ms per sample per network evaluation.",
        f"- rule: {r['rule']}.",
        "",
        "| setting | NFE | samples/s | speed-up | set samples/s | FD joint | FD image | FD mask | mSAD (rad) | KID joint | sPr / sRec | joint / mSAD vs ref | match |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--:|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {x['label']} | {x['nfe']} | {x['samples_per_s']:.2f} | {x['speedup']:.1f}x | {x['set_samples_per_s']:.2f} | {x['joint']:.4g} | "
            f"{x['image']:.4g} | {x['mask']:.4g} | {x['msad']:.4g} | {x['kid_joint']:.3g} | "
            f"{x['precision']:.3f} / {x['recall']:.3f} | {x['ratio']['joint']:.3f} / {x['ratio']['msad']:.3f} | "
            f"{'yes' if x['matches'] else 'no'}{'' if x['matches_all_metrics'] or not x['matches'] else ' (not all FDs)'} |")
    nz = r["noise_reference_relative"]
    lines += [
        "",
        f"Real half vs real half FD joint (noise floor of the real data, half as many samples): "
        f"{r['rows'][0]['fd_joint_real_halves']:.4g}.",
        "",
        f"Noise between two {r['reference']} sets (seeds {r['seed']} and {r['noise_seed']}), relative: "
        + ", ".join(f"{METRICS[k][0]} {100 * v:.1f}%" for k, v in nz.items()) + ".",
    ]
    for name, v in r["noise_extra_relative"].items():
        lines.append(f"Noise between two {name} sets (same seeds): " + ", ".join(f"{METRICS[k][0]} {100 * x:.1f}%" for k, x in v.items()) + ".")
    lines.append("Tolerance used: " + ", ".join(f"{METRICS[k][0]} {100 * v:.1f}%" for k, v in r["tolerance"].items()) + ".")
    lines.append("")
    rec = r["recommended"]
    if rec:
        lines.append(f"**Fewest-step match: {rec['label']}**, {rec['speedup']:.1f}x faster than {r['reference']} "
                     f"({rec['nfe_ratio']:.0f}x fewer network evaluations); FD joint ratio {rec['ratio']['joint']:.3f}, "
                     f"mSAD ratio {rec['ratio']['msad']:.3f}, FD image {rec['ratio']['image']:.3f}, FD mask {rec['ratio']['mask']:.3f}.")
        ra = r["recommended_all_metrics"]
        lines.append(f"Fewest-step setting matching on every FD and mSAD: "
                     + (f"{ra['label']} ({ra['speedup']:.1f}x)." if ra else "none."))
        lines.append(f"20x speed-up at matching quality: {'met' if r['target_20x_met'] else 'NOT met'}.")
    else:
        lines.append(f"**No candidate matches {r['reference']}** under the rule above.")
    lines += ["", f"![quality vs network evaluations]({Path(r['plot']).name})", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
