"""Memory of ``specdm sample`` as N grows, and interrupt + resume giving the same data set.

1. ``specdm sample MODEL -n N`` for each N in ``--sizes`` (a subprocess each): peak RSS (``ru_maxrss``
   from ``os.wait4`` and the polled RSS of the process tree), RSS over time, samples/s from the progress
   bar (steady state) and end to end, and the time of the dataset card (which reads every sample back).
2. Interrupt + resume: ``-n R`` run uninterrupted into A; the same command into B is sent SIGINT once
   ``--interrupt-at`` of the samples are written, then rerun with ``--resume``. A and B must hold the same
   samples: masks bitwise, images within ``--atol`` in normalized units ([0, 1] per band by the model's
   normalization) -- batches are cut differently after a resume, and CPU kernels may round differently
   for other batch compositions.

    .venv/bin/python bench/memory.py runs/indian_pines/model
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import REPO, SPECDM, Child, command_line, header_md, machine_info, other_load, finish  # noqa: E402


def child_env(a) -> dict:
    env = {"HF_HUB_OFFLINE": "1"}
    if a.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(a.threads)
    return env


def du_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def sample_cmd(a, out: Path, n: int, resume: bool = False, batch_size: int | None = None) -> list[str]:
    cmd = [*a.specdm.split(), "sample", str(a.model_dir), "--out", str(out), "-n", str(n), "--sampler", a.sampler,
           "--steps", str(a.steps), "--batch-size", str(batch_size or a.batch_size), "--image-format", a.image_format]
    return cmd + (["--resume"] if resume else ["--overwrite"])


def rss_at(trace, t: float) -> float | None:
    before = [r for s, r in trace if s <= t]
    return round(before[-1] / 2**20, 1) if before else None


def run_size(a, n: int) -> dict:
    out = a.work / f"n{n}"
    cmd = sample_cmd(a, out, n)
    print(f"sampling N = {n}: {' '.join(cmd)}", flush=True)
    child = Child(cmd, env=child_env(a), log=a.work / f"n{n}.log")
    res = child.wait()
    if res["returncode"] != 0:
        raise SystemExit(f"N = {n} failed:\n" + "\n".join(child.err_tail))
    rate = child.step_rate("sampling", skip=a.batch_size)
    prog = [p for p in child.progress if p[1].startswith("sampling")]
    t_first, t_last = prog[0][0], prog[-1][0]
    res.update({
        "n": n,
        "samples_per_s_steady": rate and rate["steps_per_s"],
        "samples_per_s_end_to_end": n / res["wall_s"],
        "startup_s": round(t_first, 1),
        "sampling_s": round(t_last - t_first, 1),
        "card_s": round(res["wall_s"] - t_last, 1),
        "rss_mb_at": {f"{q}%": rss_at(child.rss_trace, t_first + q / 100 * (t_last - t_first)) for q in (0, 25, 50, 75, 100)},
        "disk_mb": du_mb(out),
    })
    print(f"  N = {n}: peak RSS {res['peak_rss_mb_maxrss']} MB (tree {res['peak_rss_mb_tree_polled']} MB), "
          f"{res['samples_per_s_steady']:.2f} samples/s steady, {res['wall_s']:.0f} s wall, RSS during sampling "
          f"{res['rss_mb_at']}", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return res


def load_set(path: Path):
    from specdm.data.normalize import Normalizer
    from specdm.output.dataset import SyntheticDataset

    ds = SyntheticDataset(path)
    norm = Normalizer.from_dict(ds.meta["normalization"])
    return ds, norm


def resume_check(a) -> dict:
    n = a.resume_n
    A, B = a.work / "resume_A", a.work / "resume_B"
    print(f"interrupt + resume, N = {n}", flush=True)
    ca = Child(sample_cmd(a, A, n), env=child_env(a), log=a.work / "resume_A.log")
    ra = ca.wait()
    assert ra["returncode"] == 0, ca.err_tail
    cb = Child(sample_cmd(a, B, n), env=child_env(a), log=a.work / "resume_B1.log")
    target = int(a.interrupt_at * n)
    sent_at = None
    while cb.proc.poll() is None:
        done = len(list((B / "masks").glob("*.png"))) if (B / "masks").is_dir() else 0
        if done >= target:
            cb.send(signal.SIGINT)
            sent_at = done
            break
        time.sleep(0.2)
    rb1 = cb.wait()
    done_after_kill = len(list((B / "masks").glob("*.png")))
    tmp_left = len(list(B.rglob(".*.tmp")))
    cb2 = Child(sample_cmd(a, B, n, resume=True, batch_size=a.resume_batch_size), env=child_env(a), log=a.work / "resume_B2.log")
    rb2 = cb2.wait()
    assert rb2["returncode"] == 0, cb2.err_tail

    dsa, norm = load_set(A)
    dsb, _ = load_set(B)
    assert dsa.indices == dsb.indices == list(range(n)), (len(dsa), len(dsb))
    mask_diff_samples, mask_diff_pixels = 0, 0
    max_abs, max_norm = 0.0, 0.0
    span = np.asarray(norm.high - norm.low, dtype=np.float64).reshape(-1, 1, 1)
    for k in range(n):
        x, y = dsa[k], dsb[k]
        d = int((x["mask"] != y["mask"]).sum())
        mask_diff_pixels += d
        mask_diff_samples += d > 0
        diff = np.abs(x["images"].astype(np.float64) - y["images"].astype(np.float64))
        max_abs = max(max_abs, float(diff.max()))
        max_norm = max(max_norm, float((diff / span).max()))
    meta_a, meta_b = json.loads((A / "metadata.json").read_text()), json.loads((B / "metadata.json").read_text())
    out = {
        "n": n,
        "uninterrupted": ra,
        "interrupted": {**rb1, "sigint_sent_at_samples": sent_at, "samples_done_after_interrupt": done_after_kill,
                        "temp_files_left": tmp_left},
        "resumed": {**rb2, "samples_written": n - done_after_kill, "batch_size": a.resume_batch_size or a.batch_size},
        "complete": bool(meta_a.get("complete") and meta_b.get("complete")),
        "masks_equal_bitwise": mask_diff_pixels == 0,
        "mask_samples_differing": mask_diff_samples,
        "mask_pixels_differing": mask_diff_pixels,
        "images_max_abs_diff_data_units": max_abs,
        "images_max_abs_diff_normalized": max_norm,
        "atol_normalized": a.atol,
        "images_within_atol": max_norm <= a.atol,
    }
    print(f"  interrupted at {done_after_kill}/{n} (exit {rb1['returncode']}), resumed (exit {rb2['returncode']}); "
          f"masks equal: {out['masks_equal_bitwise']} ({mask_diff_pixels} pixels differ); images max |diff| "
          f"{max_norm:.2e} normalized ({max_abs:.3g} data units)", flush=True)
    if not a.keep:
        shutil.rmtree(A, ignore_errors=True)
        shutil.rmtree(B, ignore_errors=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--sizes", default="1000,10000", help="comma-separated N for the memory runs ('' to skip)")
    p.add_argument("--sampler", default="ddim")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--image-format", default="tif", choices=["tif", "npy", "zarr"])
    p.add_argument("--resume-n", type=int, default=2000, help="N of the interrupt + resume check (0 to skip)")
    p.add_argument("--interrupt-at", type=float, default=0.5, help="fraction of samples written before SIGINT")
    p.add_argument("--resume-batch-size", type=int, default=None,
                   help="batch size of the resumed run (default: the same; another one cuts batches differently)")
    p.add_argument("--atol", type=float, default=1e-4, help="image tolerance, normalized units")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the specdm processes (default: unset)")
    p.add_argument("--specdm", default=SPECDM, help="the specdm command (default: the virtual environment's)")
    p.add_argument("--limit-mb", type=float, default=2048)
    p.add_argument("--work", type=Path, default=Path("/tmp/specdm-bench/memory"))
    p.add_argument("--keep", action="store_true")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "memory")
    a = p.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    result = {"command": command_line(), "machine": machine_info(), "background": other_load(),
              "model_dir": str(a.model_dir), "sampler": a.sampler, "steps": a.steps, "batch_size": a.batch_size,
              "image_format": a.image_format, "threads": a.threads or "torch default"}
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    result["sizes"] = [run_size(a, n) for n in sizes]
    result["peak_rss_mb"] = max((max(r["peak_rss_mb_tree_polled"], r["peak_rss_mb_maxrss"]) for r in result["sizes"]), default=None)
    result["under_limit"] = result["peak_rss_mb"] is not None and result["peak_rss_mb"] < a.limit_mb
    result["limit_mb"] = a.limit_mb
    result["resume"] = resume_check(a) if a.resume_n else None
    return finish(a.out, "memory", result, t0, markdown)


def markdown(r: dict) -> str:
    lines = header_md("Memory of `specdm sample` and interrupt + resume", r)
    lines += [f"- model `{r['model_dir']}`, sampler {r['sampler']} with {r['steps']} steps, batch {r['batch_size']}, "
              f"images as {r['image_format']}, torch threads per process: {r['threads']}.", ""]
    if r["sizes"]:
        lines += [
            "| N | peak RSS (MB, ru_maxrss) | peak RSS (MB, polled tree) | RSS at 0/25/50/75/100% of sampling (MB) | "
            "samples/s (steady) | samples/s (end to end) | startup (s) | sampling (s) | card (s) | wall (s) | disk (MB) |",
            "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for x in r["sizes"]:
            lines.append(
                f"| {x['n']} | {x['peak_rss_mb_maxrss']} | {x['peak_rss_mb_tree_polled']} | "
                f"{' / '.join(str(v) for v in x['rss_mb_at'].values())} | {x['samples_per_s_steady']:.2f} | "
                f"{x['samples_per_s_end_to_end']:.2f} | {x['startup_s']} | {x['sampling_s']} | {x['card_s']} | "
                f"{x['wall_s']:.0f} | {x['disk_mb']} |")
        lines += ["", f"Peak RSS {'stays under' if r['under_limit'] else 'EXCEEDS'} {r['limit_mb']:.0f} MB "
                  f"(max {r['peak_rss_mb']} MB).", ""]
    rs = r["resume"]
    if rs:
        lines += [
            f"## Interrupt + resume (N = {rs['n']})",
            "",
            f"- uninterrupted run: {rs['uninterrupted']['wall_s']:.0f} s, exit {rs['uninterrupted']['returncode']}.",
            f"- interrupted run: SIGINT once {rs['interrupted']['sigint_sent_at_samples']} masks were on disk; exit "
            f"{rs['interrupted']['returncode']}, {rs['interrupted']['samples_done_after_interrupt']} samples complete, "
            f"{rs['interrupted']['temp_files_left']} temporary files left.",
            f"- `--resume` (batch {rs['resumed'].get('batch_size', r['batch_size'])}): wrote the remaining "
            f"{rs['resumed']['samples_written']} samples in {rs['resumed']['wall_s']:.0f} s, "
            f"exit {rs['resumed']['returncode']}; both data sets marked complete: {rs['complete']}.",
            f"- masks equal bitwise: **{rs['masks_equal_bitwise']}** ({rs['mask_samples_differing']} samples, "
            f"{rs['mask_pixels_differing']} pixels differ).",
            f"- images: max |difference| {rs['images_max_abs_diff_normalized']:.2e} in normalized units "
            f"({rs['images_max_abs_diff_data_units']:.3g} in data units); within {rs['atol_normalized']:g}: "
            f"**{rs['images_within_atol']}**.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
