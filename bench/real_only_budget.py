"""Real-only score against training steps: the budget at which the downstream tables are run.

Runs ``specdm benchmark <config> --arms real`` once per step count (each with its own cosine
schedule, as the tables use), same seeds, and tabulates the mean score per budget with the
paired difference to the next smaller budget. A budget is justified when doubling it no
longer moves the score measurably (paired 95 % interval across zero).

    python bench/real_only_budget.py indian_pines --model unet --steps 500,1000,2000,4000 --seeds 3

A cell of the protocol over folds (docs/folds.md) is given with ``--set``, e.g.
``--set "data.split={kind: folds, design: indian_pines, fold: 0}" --set data.labels_keep=0.05``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np

from _common import REPO, SPECDM, command_line, machine_info

METRIC = {"unet": "miou", "segformer": "miou", "pixel": "oa", "siamdiff": "f1_change"}


def paired(a: dict[int, float], b: dict[int, float]) -> dict:
    """Mean, sd and 95 % t interval of b - a over the seeds both hold."""
    from scipy import stats

    seeds = sorted(set(a) & set(b))
    d = np.array([b[s] - a[s] for s in seeds])
    if len(d) < 2:
        return {"n": len(d), "mean": float(d.mean()) if len(d) else None}
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return {"n": len(d), "mean": float(d.mean()), "sd": float(d.std(ddof=1)),
            "ci": [float(d.mean() - half), float(d.mean() + half)]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--model", default="unet")
    p.add_argument("--steps", default="500,1000,2000,4000")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override passed to specdm benchmark (repeatable), e.g. a fold split and label share")
    p.add_argument("--reuse", action="append", default=[], metavar="STEPS=BENCHMARK_JSON",
                   help="take the real-only runs of one budget from an existing benchmark.json of the same config, "
                        "steps, batch size, lr and schedule (checked) instead of training them again")
    a = p.parse_args()
    out = Path(a.out or REPO / "bench" / "results" / "downstream" / f"{a.config}_real_budget_{a.model}")
    out.mkdir(parents=True, exist_ok=True)
    metric = METRIC.get(a.model, "miou")
    budgets = [int(s) for s in a.steps.split(",")]
    reuse = {int(k): Path(v) for k, v in (item.split("=", 1) for item in a.reuse)}
    rows, scores = [], {}
    for n in budgets:
        sub = out / f"steps_{n}"
        start = time.time()
        if n in reuse:
            result = json.loads(reuse[n].read_text())
            st = result["settings"]
            if result["config"]["name"] != a.config or st["steps"] != n or a.model not in st["models"]:
                raise SystemExit(f"{reuse[n]}: not a {a.config} benchmark of {a.model} at {n} steps")
            runs = [r for r in result["runs"] if r["arm"] == "real" and r.get("setting", "full") == "full"
                    and r["model"] == a.model and r["seed"] < a.seeds]
            if st.get("lr_schedule", "constant") != "cosine" or st["batch_size"] != 16 or st["lr"] != 1e-3:
                raise SystemExit(f"{reuse[n]}: made with another schedule, batch size or learning rate")
            scores[n] = {r["seed"]: r["scores"][metric] for r in runs}
            vals = np.array(list(scores[n].values()))
            rows.append({"steps": n, "seeds": len(vals), "mean": float(vals.mean()), "sd": float(vals.std(ddof=1)),
                         "wall_s_this_invocation": 0.0, "benchmark_wall_s": None,
                         "reused_from": str(reuse[n]), "train_s": round(sum(r["train_s"] for r in runs), 1)})
            continue
        subprocess.run([SPECDM, "--threads", str(a.threads), "benchmark", a.config, "--design", "split", "--arms", "real",
                        "--seeds", str(a.seeds), "--steps", str(n), "--models", a.model, "--amounts", "1",
                        "--limited", "0", "--out", str(sub), "--resume",
                        *(x for o in a.overrides for x in ("--set", o))], check=True)
        wall = time.time() - start
        result = json.loads((sub / "benchmark.json").read_text())
        runs = [r for r in result["runs"] if r["arm"] == "real" and r.get("setting", "full") == "full"]
        scores[n] = {r["seed"]: r["scores"][metric] for r in runs}
        vals = np.array(list(scores[n].values()))
        rows.append({"steps": n, "seeds": len(vals), "mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if len(vals) > 1 else None,
                     "wall_s_this_invocation": round(wall, 1), "benchmark_wall_s": result.get("wall_time_s"),
                     "train_s": round(sum(r["train_s"] for r in runs), 1)})
    for prev, row in zip(rows, rows[1:]):
        row["vs_previous"] = paired(scores[prev["steps"]], scores[row["steps"]])
    summary = {"command": command_line(), "config": a.config, "overrides": a.overrides, "model": a.model, "metric": metric,
               "rows": rows, "machine": machine_info()}
    (out / "budget.json").write_text(json.dumps(summary, indent=1))
    lines = [f"# Real-only {a.model} on {a.config}{' (' + ', '.join(a.overrides) + ')' if a.overrides else ''}: "
             f"{metric} against training steps", "",
             f"`{summary['command']}`", "",
             f"| steps | seeds | {metric} | diff vs previous budget (paired, 95 % CI) | training time, all seeds (s) | source |",
             "|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        v = r.get("vs_previous")
        diff = "—" if not v else (f"{v['mean']:+.3f} [{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}]" if "ci" in v else f"{v['mean']:+.3f}")
        sd = f" ± {r['sd']:.3f}" if r["sd"] is not None else ""
        src = f"runs of `{r['reused_from']}`" if r.get("reused_from") else f"`{out.name}/steps_{r['steps']}`"
        lines.append(f"| {r['steps']} | {r['seeds']} | {r['mean']:.3f}{sd} | {diff} | {r['train_s']} | {src} |")
    (out / "budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
