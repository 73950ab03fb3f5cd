"""Training steps per second of both stages and of the benchmark's task models: speed variants side by side.

For each config, thread count and stage, every variant trains a fresh, identically seeded network through
specdm's own trainer (:func:`specdm.training.autoencoder.train_autoencoder`, :func:`~specdm.training.diffusion.
train_latent_denoiser`; the task models through :func:`specdm.evaluation.downstream.train_downstream`) for
``--warmup + --repeats`` steps; the variants alternate in ``--rounds`` rounds, so each ratio is measured in one
run under the same load. A step's time is its wall time (data, forward, backward, optimizer, EMA); reported:
the median over all timed steps of all rounds, and the spread of the per-round medians.

Also counted (torch's ``FlopCounterMode``, convolutions and matrix products of forward and backward: one step of
the plain variant) and set against the machine's measured peak: a 2048 x 2048 matrix product in float32 and in
bfloat16 at the same thread count.

Variants: ``plain`` (float32, default AdamW: specdm 0.1's path), ``fused`` (plain + fused AdamW, foreach
clipping/EMA), ``bf16`` (plain + bf16 autocast, contiguous layout), ``fast`` (the default: fused + bf16 +
channels-last; bf16 only where the CPU runs it natively, see specdm.speed), ``fast_native_gn`` (fast with
torch's GroupNorm kernels on the channels-last tensors instead of specdm's contiguous copy).

    .venv/bin/python bench/step_speed.py sentinel2_demo indian_pines --threads 1,2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, command_line, finish, header_md, machine_info, other_load  # noqa: E402

VARIANTS = {  # name -> (LoopConfig.speed, LoopConfig.mixed_precision)
    "plain": ("plain", "auto"),
    "fused": ("fast", "no"),
    "bf16": ("plain", "bf16"),
    "fast": ("fast", "auto"),
    "fast_native_gn": ("fast", "auto"),  # fast, but torch's own GroupNorm on the channels-last tensors
}
TASKS = ("unet", "segformer", "siamdiff", "pixel")


def peak_gflops(threads: int) -> dict:
    """Median GFLOP/s of a 2048 x 2048 matrix product in float32 and bfloat16 at ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        for _ in range(3):
            a @ b
        times = []
        for _ in range(10):
            t = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t)
        out[name] = round(2 * 2048**3 / statistics.median(times) / 1e9, 1)
    return out


def stage_runner(cfg, data, stage: int):
    """``run(loop, ckpt)`` training a fresh seeded network of ``stage`` through specdm's trainer."""
    import torch

    from specdm.models.denoisers import build_denoiser
    from specdm.recipes.stages import build_autoencoder
    from specdm.training.autoencoder import train_autoencoder
    from specdm.training.diffusion import Latents, Unconditional, train_latent_denoiser

    a, d, ref = cfg.autoencoder, cfg.diffusion, data.reference
    ae0 = build_autoencoder(a, ref.num_bands, ref.num_classes, len(ref.images))
    zc, zs = ae0.latent_channels, cfg.data.patch_size // ae0.downsampling
    gen = torch.Generator().manual_seed(0)
    mean, std = torch.randn(64, zc, zs, zs, generator=gen), 0.1 * torch.rand(64, zc, zs, zs, generator=gen)

    def run(loop, ckpt):
        torch.manual_seed(cfg.train.seed)
        if stage == 1:
            return train_autoencoder(data.train, build_autoencoder(a, ref.num_bands, ref.num_classes, len(ref.images)),
                                     loop, ckpt, a.sad_weight, a.kl_weight)
        unet = build_denoiser(zc, zs, tuple(d.block_out_channels), d.layers_per_block, d.norm_num_groups)
        return train_latent_denoiser(unet, Latents(mean, std, torch.ones(zc)), Unconditional(), loop, ckpt,
                                     cfg.schedule())

    steps = (a.steps, a.batch_size, a.lr, None) if stage == 1 else (d.steps, d.batch_size, d.lr, d.ema_decay)
    return run, steps


def task_arrays(data, model: str):
    """Training arrays of a task model on the config's windows (change: the window paired with itself)."""
    import numpy as np

    x, y = (t.numpy() for t in data.train.batch(range(len(data.train))))
    if model == "siamdiff":
        x = np.stack([x[:, 0], x[:, -1]], axis=1)
        y = (y > 0).astype(np.int64) if y.max() > 1 else y
        return x, y
    return x[:, 0], y


def time_task(data, model: str, variant: str, steps: int, batch_size: int) -> list[float]:
    """Step times of ``steps`` steps of a task model (time between consecutive batches, the first dropped)."""
    from specdm.evaluation.downstream import train_downstream

    x, y = task_arrays(data, model)
    stamps = []
    train_downstream(model, [(x, y)], steps + 1, batch_size, 1e-3, 0, data.reference.ignore_index,
                     augment="classical", num_classes=int(y.max()) + 1, progress=False,
                     on_batch=lambda *_: stamps.append(time.perf_counter()), speed=VARIANTS[variant][0])
    return [b - a for a, b in zip(stamps[:-1], stamps[1:])]


def native_group_norm(variant: str):
    """For ``fast_native_gn``: ChannelsLastGroupNorm runs torch's GroupNorm on the channels-last tensor itself."""
    import contextlib

    import torch.nn.functional as F

    from specdm.speed import ChannelsLastGroupNorm

    if variant != "fast_native_gn":
        return contextlib.nullcontext()
    patch = contextlib.ExitStack()
    original = ChannelsLastGroupNorm.forward
    ChannelsLastGroupNorm.forward = lambda self, x: F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
    patch.callback(setattr, ChannelsLastGroupNorm, "forward", original)
    return patch


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("configs", nargs="+", help="packaged config names or YAML paths")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--variants", default="plain,fast", help=f"from {', '.join(VARIANTS)}; the first is the baseline")
    p.add_argument("--stages", default="1,2")
    p.add_argument("--tasks", default=",".join(TASKS), help="task models to time (on the first config); '' for none")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--task-batch", type=int, default=16, help="the benchmark's default batch size")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "step_speed")
    a = p.parse_args()
    t0 = time.time()
    import torch

    from specdm.config import load_config
    from specdm.data.datamodule import prepare_data
    from specdm.evaluation.tasks import BF16_HELPS
    from specdm.speed import native_bf16
    from specdm.training.engine import LoopConfig, measure_steps

    variants = a.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    threads = [int(t) for t in a.threads.split(",")]
    result = {"command": command_line(), "machine": machine_info(), "background": other_load(),
              "native_bf16": native_bf16("cpu"), "variants": {v: VARIANTS[v] for v in variants},
              "rounds": a.rounds, "warmup": a.warmup, "repeats": a.repeats, "peak": {}, "rows": []}
    for th in threads:
        result["peak"][th] = peak_gflops(th)
        print(f"{th} thread(s): peak {result['peak'][th]} GFLOP/s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="specdm-step-speed-"))
    for ci, name in enumerate(a.configs):
        cfg = load_config(name)
        data = prepare_data(cfg.data)
        jobs = [(f"stage {s}", s) for s in map(int, a.stages.split(",")) if s]
        if ci == 0 and a.tasks:
            jobs += [(f"task {m}", m) for m in a.tasks.split(",")]
        for label, job in jobs:
            if isinstance(job, int):
                run, (steps, batch, lr, ema) = stage_runner(cfg, data, job)

                def timed(variant, warmup, repeats, run=run, batch=batch, lr=lr, ema=ema, steps=steps):
                    sp, mp = VARIANTS[variant]
                    loop = LoopConfig(steps, batch, lr, cfg.train.seed, 10**9, ema_decay=ema, mixed_precision=mp, speed=sp)
                    with native_group_norm(variant), measure_steps(warmup, repeats) as times:
                        run(loop, work / "ckpt")
                    return times.last.seconds

                flops = count_flops(lambda: timed("plain", 0, 1))
            else:
                batch = a.task_batch

                def timed(variant, warmup, repeats, job=job):
                    return time_task(data, job, variant, warmup + repeats, batch)[warmup:]

                flops = count_flops(lambda: time_task(data, job, "plain", 0, batch))
            for th in threads:
                torch.set_num_threads(th)
                per_round = {v: [] for v in variants}
                for v in variants:  # warm every variant once (allocator, oneDNN primitive caches)
                    timed(v, 1, 1)
                for _ in range(a.rounds):
                    for v in variants:
                        per_round[v].append(timed(v, a.warmup, a.repeats))
                base = statistics.median([t for r in per_round[variants[0]] for t in r])
                for v in variants:
                    times = [t for r in per_round[v] for t in r]
                    med = statistics.median(times)
                    medians = [statistics.median(r) for r in per_round[v]]
                    bf16_ok = isinstance(job, int) or BF16_HELPS[job]  # task models without a bf16 gain keep float32
                    precision = "bfloat16" if v == "bf16" or (v.startswith("fast") and result["native_bf16"] and bf16_ok) \
                        else "float32"
                    peak = result["peak"][th][precision]
                    row = {"config": cfg.name, "job": label, "threads": th, "variant": v, "batch": batch,
                           "s_per_step": med, "steps_per_s": 1 / med, "round_medians_s": medians,
                           "ratio": base / med, "gflop_per_step": flops / 1e9, "gflops": flops / med / 1e9,
                           "precision": precision, "peak_gflops": peak, "share_of_peak": flops / med / 1e9 / peak}
                    result["rows"].append(row)
                    print(f"{cfg.name} {label} {th} thread(s) {v}: {1 / med:.2f} steps/s (x{base / med:.2f}), "
                          f"{flops / med / 1e9:.0f} GFLOP/s = {row['share_of_peak']:.0%} of the {precision} peak", flush=True)
    return finish(a.out, "step_speed", result, t0, markdown)


def markdown(r: dict) -> str:
    lines = header_md("Training steps per second: speed variants side by side", r)
    lines += [
        f"- variants alternate in {r['rounds']} rounds of {r['warmup']} warm-up + {r['repeats']} timed steps; steps/s = "
        "1 / median step time over every timed step; 'rounds' = spread of the per-round medians (s/step).",
        f"- native bf16 on this CPU: {r['native_bf16']}. Peak (2048 x 2048 matrix product, GFLOP/s): "
        + "; ".join(f"{th} thread(s): float32 {p['float32']}, bfloat16 {p['bfloat16']}" for th, p in r["peak"].items()),
        "- GFLOP per step: convolutions and matrix products of forward + backward (torch FlopCounterMode), one step.",
        "",
        "| config | job | threads | variant | batch | steps/s | ratio to first | rounds (s/step) | GFLOP/step | GFLOP/s | precision | share of its peak |",
        "|---|---|---:|---|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for x in r["rows"]:
        lo, hi = min(x["round_medians_s"]), max(x["round_medians_s"])
        lines.append(f"| {x['config']} | {x['job']} | {x['threads']} | {x['variant']} | {x['batch']} | {x['steps_per_s']:.2f} | "
                     f"{x['ratio']:.2f}x | {lo:.4f}-{hi:.4f} | {x['gflop_per_step']:.2f} | {x['gflops']:.0f} | "
                     f"{x['precision']} | {x['share_of_peak']:.0%} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
