"""Training step time of both stages on 1 process vs 2 CPU processes (``accelerate launch --cpu``).

Each run trains ``--steps`` steps of stage 1 (``specdm train-autoencoder``) then of stage 2
(``specdm train-diffusion``) in a fresh run folder, with the config's global batch (the engine splits
the batch over processes, so 2 processes make the same updates as 1). The step time is the steady state
of the progress bar: from step ``--skip`` to the last step before the end (the final step also writes a
checkpoint), timestamped as the bar's lines arrive; startup, data preparation and stage 2's latent
encoding are reported separately. Threads: ``OMP_NUM_THREADS`` per process as given by ``--layouts``
(default 1 process x all cores, 1 x 1, and 2 processes x cores/2: on 2 cores, 2 processes get 1 thread each). Peak memory: the polled RSS summed over the process tree
and ``ru_maxrss`` (largest single process).

    .venv/bin/python bench/training.py indian_pines --steps 30
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ACCELERATE, REPO, SPECDM, Child, command_line, header_md, machine_info, other_load, finish  # noqa: E402

STAGES = {"autoencoder": ("train-autoencoder", "stage 1"), "diffusion": ("train-diffusion", "stage 2")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(a, procs: int, stage: str, run_dir: Path) -> list[str]:
    sub = [STAGES[stage][0], a.config, "--run-dir", str(run_dir), "--set", f"{stage}.steps={a.steps}",
           *(x for o in a.overrides for x in ("--set", o))]
    if stage == "autoencoder":
        sub.append("--overwrite")
    if procs == 1:
        return [SPECDM, *sub]
    return [ACCELERATE, "launch", "--cpu", "--num_processes", str(procs), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_port", str(free_port()), "-m", "specdm.cli", *sub]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="packaged config name or YAML path")
    p.add_argument("--steps", type=int, default=30, help="steps of each stage")
    p.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the step time")
    p.add_argument("--layouts", default=None,
                   help="PROCESSESxTHREADS list, e.g. 1x2,1x1,2x1 (default: 1 x all cores, 1 x 1, 2 x cores/2)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--work", type=Path, default=Path("/tmp/specdm-bench/training"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "training")
    a = p.parse_args()
    if Path(a.config).is_file():  # the children run in --work
        a.config = str(Path(a.config).resolve())
    a.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    from specdm.config import load_config

    cfg = load_config(a.config, a.overrides)
    result = {"command": command_line(), "machine": machine_info(), "background": other_load(), "config": cfg.name,
              "steps": a.steps, "skip": a.skip,
              "global_batch": {"autoencoder": cfg.autoencoder.batch_size, "diffusion": cfg.diffusion.batch_size},
              "runs": []}
    cores = os.cpu_count() or 1
    layouts = a.layouts or f"1x{cores},1x1,2x{max(1, cores // 2)}"
    layouts = list(dict.fromkeys(tuple(int(v) for v in x.split("x")) for x in layouts.split(",")))
    for procs, threads in layouts:
        run_dir = a.work / f"p{procs}x{threads}"
        shutil.rmtree(run_dir, ignore_errors=True)
        for stage in STAGES:
            cmd = command(a, procs, stage, run_dir)
            print(f"{procs} process(es), {stage}: {' '.join(cmd)}", flush=True)
            env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
            child = Child(cmd, env=env, cwd=a.work, log=a.work / f"p{procs}x{threads}_{stage}.log")
            res = child.wait()
            if res["returncode"] != 0:
                raise SystemExit("failed:\n" + "\n".join(child.err_tail))
            rate = child.step_rate(STAGES[stage][1], skip=a.skip, before_end=True)
            row = {"processes": procs, "threads_per_process": threads, "stage": stage, **res, "step_time": rate,
                   "s_per_step": rate and rate["s_per_step"], "steps_per_s": rate and rate["steps_per_s"],
                   "before_first_step_s": rate and rate["first_update_s"], "cmd": " ".join(Path(c).name if c in (SPECDM, ACCELERATE) else c for c in cmd)}
            result["runs"].append(row)
            print(f"  {rate['s_per_step']:.3f} s/step ({rate['steps_per_s']:.2f} steps/s), peak RSS {res['peak_rss_mb_tree_polled']} MB "
                  f"(tree), wall {res['wall_s']:.0f} s", flush=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    first = result["runs"][0]
    base = {r["stage"]: r["s_per_step"] for r in result["runs"]
            if (r["processes"], r["threads_per_process"]) == (first["processes"], first["threads_per_process"])}
    result["baseline"] = f"{first['processes']} x {first['threads_per_process']}"
    for r in result["runs"]:
        r["speedup_vs_1"] = base.get(r["stage"]) and base[r["stage"]] / r["s_per_step"]
    return finish(a.out, "training", result, t0, markdown)


def markdown(r: dict) -> str:
    lines = header_md("Training step time: 1 vs 2 CPU processes", r)
    gb = r["global_batch"]
    lines += [
        f"- config `{r['config']}`, {r['steps']} steps per stage, global batch {gb['autoencoder']} (stage 1) and "
        f"{gb['diffusion']} (stage 2) whatever the number of processes; step time from step {r['skip']} to the last "
        "step before the end (the final step also writes a checkpoint).",
        "",
        f"| stage | processes x threads | s/step | steps/s | speed-up vs {r['baseline']} | before first step (s) | wall (s) | peak RSS (MB, all processes) | peak RSS (MB, largest process) | command |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for x in r["runs"]:
        lines.append(
            f"| {x['stage']} | {x['processes']} x {x['threads_per_process']} | {x['s_per_step']:.3f} | {x['steps_per_s']:.2f} | "
            f"{x['speedup_vs_1']:.2f}x | {x['before_first_step_s']} | {x['wall_s']:.0f} | {x['peak_rss_mb_tree_polled']} | "
            f"{x['peak_rss_mb_maxrss']} | `{x['cmd']}` |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
