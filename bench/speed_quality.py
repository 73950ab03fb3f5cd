"""Does the fast path learn as well? Whole runs with ``train.speed`` plain and fast, several seeds, scored alike.

For each config, seed and speed: ``specdm run CONFIG --set train.speed=S --set train.seed=K`` (stage 1, stage 2,
the synthetic set) in ``--work/<config>/<speed>_s<K>`` (an existing finished run is reused), then ``specdm
evaluate`` of its set with ONE encoder folder per config (trained on the real training windows at the first
evaluation, seed 0), so the FDs are comparable. Reported per run: stage 1's held-out PSNR / SAM
(``model/stage1_quality.json``), FD (image, mask, joint), mSAD, sPr/sRec and the label-fidelity ratios, and the
run's wall time; then per speed the mean and the seed spread (min-max), and fast minus plain per seed.

    .venv/bin/python bench/speed_quality.py sentinel2_demo --seeds 0,1 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, SPECDM, command_line, finish, header_md, machine_info, other_load  # noqa: E402

SPEEDS = ("plain", "fast")


def scores(run_dir: Path) -> dict:
    q = json.loads((run_dir / "model" / "stage1_quality.json").read_text())
    held = q.get("held_out") or q["train"]
    ev = json.loads((run_dir / "synthetic" / "evaluation" / "evaluation.json").read_text())
    dist, spec, fid = ev["distribution"], ev["spectral"], ev.get("label_fidelity") or {}
    out = {"psnr_held_out": held["psnr"], "sam_held_out": held["sam_rad"]}
    for kind, d in dist.items():
        if isinstance(d, dict) and "fd" in d:
            out[f"fd_{kind}"] = d["fd"]
    out["msad_rad"] = spec.get("msad_rad")
    pr = spec.get("precision_recall") or {}
    out["spr"], out["srec"] = pr.get("precision"), pr.get("recall")
    out["fidelity_min_ratio"] = fid.get("min_ratio")
    out["fidelity_ratio"] = {c["name"]: c["ratio"] for c in fid.get("classes", []) if c.get("in_training_split")}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("configs", nargs="+")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", type=Path, default=REPO / "runs" / "speed_quality")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "speed_quality")
    a = p.parse_args()
    t0 = time.time()
    seeds = [int(s) for s in a.seeds.split(",")]
    result = {"command": command_line(), "machine": machine_info(), "background": other_load(), "runs": []}
    for name in a.configs:
        cfg_name = Path(name).stem
        for seed in seeds:
            for speed in SPEEDS:
                run = a.work / cfg_name / f"{speed}_s{seed}"
                t = time.time()
                if not (run / "synthetic" / "metadata.json").is_file():
                    cmd = [SPECDM, "--threads", str(a.threads), "run", name, "--run-dir", str(run),
                           "--set", f"train.speed={speed}", "--set", f"train.seed={seed}"]
                    cmd += ["--resume"] if run.exists() else []
                    subprocess.run(cmd, check=True)
                wall = time.time() - t
                if not (run / "synthetic" / "evaluation" / "evaluation.json").is_file():
                    subprocess.run([SPECDM, "--threads", str(a.threads), "evaluate", name, str(run / "synthetic"),
                                    "--encoders", str(a.work / cfg_name / "encoders")], check=True)
                row = {"config": cfg_name, "seed": seed, "speed": speed, "run_wall_s": round(wall, 1), **scores(run)}
                result["runs"].append(row)
                print(json.dumps(row), flush=True)
    return finish(a.out, "speed_quality", result, t0, markdown)


def markdown(r: dict) -> str:
    lines = header_md("Fast vs plain training: what is learned", r)
    keys = ["psnr_held_out", "sam_held_out", "fd_image", "fd_mask", "fd_joint", "msad_rad", "spr", "srec",
            "fidelity_min_ratio"]
    keys = [k for k in keys if any(x.get(k) is not None for x in r["runs"])]
    lines += ["| config | speed | seed | " + " | ".join(keys) + " | run wall (s) |",
              "|---|---|---:|" + "---:|" * len(keys) + "---:|"]
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    for x in r["runs"]:
        lines.append(f"| {x['config']} | {x['speed']} | {x['seed']} | " + " | ".join(fmt(x.get(k)) for k in keys)
                     + f" | {x['run_wall_s']} |")
    lines += ["", "Per config and speed: mean [min, max] over seeds; fast - plain: per seed.", "",
              "| config | quantity | plain | fast | fast - plain per seed |", "|---|---|---|---|---|"]
    for cfg in dict.fromkeys(x["config"] for x in r["runs"]):
        for k in keys:
            by = {s: {x["seed"]: x.get(k) for x in r["runs"] if x["config"] == cfg and x["speed"] == s} for s in SPEEDS}
            if any(v is None for d in by.values() for v in d.values()):
                continue
            cell = lambda d: f"{statistics.mean(d.values()):.4g} [{min(d.values()):.4g}, {max(d.values()):.4g}]"  # noqa: E731
            diffs = ", ".join(f"{by['fast'][s] - by['plain'][s]:+.3g}" for s in by["plain"] if s in by["fast"])
            lines.append(f"| {cfg} | {k} | {cell(by['plain'])} | {cell(by['fast'])} | {diffs} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
