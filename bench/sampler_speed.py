"""Sampling speed per sampler setting and torch thread count (no quality; see samplers.py for that).

One pipeline call (denoising + decoding) on a batch per setting and thread count, interleaved, fastest of
``--repeats`` (settings with more than ``--max-repeat-nfe`` network evaluations are timed once).

    .venv/bin/python bench/sampler_speed.py runs/indian_pines/model --settings ddpm:1000,dpm++:10,dpm++:20,ddim:50
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, command_line, header_md, machine_info, other_load, write_results  # noqa: E402
from samplers import setting_label, settings  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--settings", type=settings, default=settings("ddpm:1000,ddim:50,dpm++:10,dpm++:20"))
    p.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1 and one per core)")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-repeat-nfe", type=int, default=100)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sampler_speed")
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from specdm.pipelines import SpecDMPipeline

    t0 = time.time()
    threads = [int(x) for x in a.threads.split(",")] if a.threads else sorted({1, os.cpu_count() or 1})
    result = {"command": command_line(), "machine": machine_info(), "background": other_load(),
              "model_dir": str(a.model_dir), "batch_size": a.batch_size}
    pipe = SpecDMPipeline.from_pretrained(a.model_dir)
    b = a.batch_size
    pipe(list(range(2)), sampler="ddim", num_inference_steps=2)
    times = {}
    for rep in range(a.repeats):
        for nm, st, eta in a.settings:
            if rep and st > a.max_repeat_nfe:
                continue
            for k in threads:
                torch.set_num_threads(k)
                t = time.perf_counter()
                pipe(list(range(b)), seed=0, sampler=nm, num_inference_steps=st, eta=eta)
                times.setdefault((setting_label(nm, st, eta), k), []).append(time.perf_counter() - t)
        print(f"repeat {rep + 1}: " + ", ".join(f"{s} x{k} {v[-1]:.1f} s" for (s, k), v in times.items()), flush=True)
    rows = [{"setting": s, "threads": k, "batch_s": v, "best_s": min(v), "samples_per_s": b / min(v)}
            for (s, k), v in times.items()]
    ref = {r["threads"]: r["samples_per_s"] for r in rows if r["setting"] == setting_label(*a.settings[0])}
    for r in rows:
        r["speedup_vs_first"] = r["samples_per_s"] / ref[r["threads"]]
    result.update({"rows": rows, "reference": setting_label(*a.settings[0]), "threads": threads,
                   "wall_time_s": time.time() - t0, "background_at_end": other_load()})
    lines = header_md("Sampling speed by sampler and threads", result) + [
        f"- model `{a.model_dir}`, batch {b}; pipeline call (denoising + decoding), fastest of {a.repeats} "
        f"(settings above {a.max_repeat_nfe} network evaluations: one call).",
        "",
        f"| setting | threads | samples/s | s per batch | speed-up vs {result['reference']} (same threads) |",
        "|---|---:|---:|---:|---:|",
        *(f"| {r['setting']} | {r['threads']} | {r['samples_per_s']:.2f} | {r['best_s']:.2f} | {r['speedup_vs_first']:.1f}x |"
          for r in rows),
        "",
    ]
    md = "\n".join(lines)
    j, m = write_results(a.out, "sampler_speed", result, md)
    print(md)
    print(f"results: {j}\n         {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
