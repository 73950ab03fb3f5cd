"""``specdm benchmark CONFIG --task denoise|sr4 --synthetic NAME=DIR [--cross-scene CONFIG2]``: HSIGene's restoration
tables (8, 9) on specdm's data: does synthetic data help a denoiser or a x4 super-resolver?

- Training windows: ``real``, every window of the config's training part (whatever its labels; normalized by the
  training split); ``NAME``, windows of a synthetic data set (any method's, with or without masks; samples of
  any size are tiled into windows; the data's own units normalized like the real windows); ``real+NAME``, both
  pooled (each batch draws from the pool in its share of all windows). Arms default to ``real``, ``NAME`` and
  ``real+NAME`` of every set.
- Task models: :mod:`specdm.evaluation.restoration` (compact DnCNN-like denoiser, Gaussian noise sigma 0.2;
  compact residual CNN on the bicubic image for x4), the same steps, batch size and learning rate in every arm.
  Seed ``k`` of every arm shares the initialization, the real batch order, the D4 draws and the noise draws.
- Tests: ``held_out``, every test region of the config, whole; ``cross/<scene>``, every scene of ``--cross-scene``
  whole, a scene neither the generator nor the real arm saw, normalized by its own training split (its units may
  differ), with the same band count (align both configs to one grid, ``data.align``). Degraded once, with a fixed
  noise draw (seed 12345), the same for every arm and seed; the degraded input's own scores are the floor.
- Scores: PSNR, SSIM, SAM (:func:`~specdm.evaluation.restoration.restoration_scores`); per arm mean +- std over
  seeds; each synthetic arm against ``real``, paired by seed (:mod:`~specdm.evaluation.benchmark.stats`: paired
  std, p, minimum detectable effect; PSNR comparisons Holm-corrected across arms and tests), SAM's difference
  signed so that > 0 is better.

``OUT/restoration.json`` is written after every training (``--resume`` skips the finished ones), ``OUT/report.md``
at the end.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from specdm import __version__
from specdm.config import Config
from specdm.data.datamodule import PreparedData, prepare_data
from specdm.errors import ConfigError, DataError, OutputError
from specdm.evaluation.benchmark.stats import NOT_ENOUGH, holm, paired_stats, verdict
from specdm.evaluation.records import json_safe, log, write_json
from specdm.evaluation.restoration import DEFAULT_SIGMA, SR_SCALE, degrade, restoration_scores, restore, train_restorer
from specdm.output.dataset import SyntheticDataset

__all__ = ["RESULT_FILE", "TEST_NOISE_SEED", "restoration_benchmark"]

RESULT_FILE = "restoration.json"
TEST_NOISE_SEED = 12345
METRICS = ("psnr", "ssim", "sam_rad")
HIGHER_BETTER = {"psnr": True, "ssim": True, "sam_rad": False}


def _real_windows(data: PreparedData) -> np.ndarray:
    ps = data.image_windows()
    x, _ = ps.batch(range(len(ps)))
    x = x.numpy()
    return x.reshape(-1, *x.shape[2:]) if x.shape[1] > 1 else x[:, 0]  # every date a window


def synthetic_windows(path: Path, data: PreparedData, limit: int | None = None) -> tuple[np.ndarray, dict]:
    """Windows ``(N, C, P, P)`` of a synthetic data set in the real data's normalized units: each sample's images
    (every date) tiled into patch-size windows (a sample of the patch size is one window); at most ``limit``."""
    ds = SyntheticDataset(path)
    ref = data.reference
    size = data.train.size
    bands = ds.meta.get("band_names")
    if bands is not None and len(bands) != ref.num_bands:
        raise DataError(f"holds {len(bands)} bands, the config's data {ref.num_bands}; generate it from a model "
                        "trained on this config's bands (or align both to one grid with data.align)", path)
    out = []
    for k in range(len(ds)):
        for im in ds[k]["images"]:
            if im.shape[0] != ref.num_bands:
                raise DataError(f"sample {ds.indices[k]} has {im.shape[0]} bands, the config's data {ref.num_bands}",
                                path)
            x = np.moveaxis(data.normalizer(np.moveaxis(im, 0, -1)), -1, 0)
            h, w = x.shape[-2:]
            for r in range(0, h - size + 1, size):
                for c in range(0, w - size + 1, size):
                    out.append(x[:, r : r + size, c : c + size])
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise DataError(f"holds no complete sample of at least {size}x{size} pixels", path)
    x = np.stack(out[:limit]).astype(np.float32)
    return x, {"path": str(path), "samples": len(ds), "windows": len(x), "method": ds.meta.get("method"),
               "model": ds.meta.get("model")}


def _crop(x: np.ndarray, task: str) -> np.ndarray:
    if task != "sr4":
        return x
    h, w = (x.shape[-2] // SR_SCALE) * SR_SCALE, (x.shape[-1] // SR_SCALE) * SR_SCALE
    return x[..., :h, :w]


def _tests(cfg: Config, data: PreparedData, task: str, sigma: float, cross: Config | None) -> dict:
    """Every test image: ``name -> (clean (C, H, W), degraded (C, H, W))``, degraded once with a fixed noise draw."""
    gen = torch.Generator().manual_seed(TEST_NOISE_SEED)
    images = {}
    for j, g in enumerate(data.split.get("test") or []):
        full = data.scene_image(g.scene)[:, :, g.r0 : g.r1, g.c0 : g.c1]
        for t, im in enumerate(full):
            name = ("held_out" + (f"/{j}" if len(data.split["test"]) > 1 else "")
                    + (f"/t{t + 1}" if len(full) > 1 else ""))
            images[name] = _crop(im, task)
    if not images:
        raise ConfigError(f"config '{cfg.name}' has no test region; the restoration benchmark scores on held-out "
                          "regions")
    if cross is not None:
        other = prepare_data(cross.data.model_copy(update={"super_resolved": []}))
        ref, o = data.reference, other.reference
        if o.num_bands != ref.num_bands:
            raise ConfigError(f"--cross-scene {cross.name}: {o.num_bands} bands against {ref.num_bands}; align both "
                              "configs to one wavelength grid (data.align) so that the bands match")
        for i, s in enumerate(other.scenes):
            for t, im in enumerate(other.scene_image(i)):
                images[f"cross/{s.name}" + (f"/t{t + 1}" if len(s.images) > 1 else "")] = _crop(im, task)
    out = {}
    for name, clean in images.items():
        c = torch.from_numpy(np.ascontiguousarray(clean))[None].float()
        out[name] = (clean, degrade(c, task, sigma, gen)[0].numpy())
    return out


def restoration_benchmark(cfg: Config, task: str, synthetic: dict[str, Path], out_dir: Path, seeds: int = 3,
                          steps: int = 1000, batch_size: int = 16, lr: float = 1e-3, arms: list[str] | None = None,
                          cross: Config | None = None, sigma: float = DEFAULT_SIGMA, max_synthetic: int | None = 4000,
                          resume: bool = False, overwrite: bool = False, command: str = "", device=None) -> dict:
    """Run the benchmark (module docstring) into ``out_dir``; returns the result (also ``restoration.json``)."""
    out_dir = Path(out_dir)
    result_file = out_dir / RESULT_FILE
    if result_file.is_file() and not (resume or overwrite):
        raise OutputError("holds a restoration benchmark", result_file,
                          hint="pass --resume to continue it or --overwrite to replace it")
    t0 = time.time()
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    data = prepare_data(cfg.data.model_copy(update={"super_resolved": []}))
    real = _real_windows(data)
    pools, info = {}, {}
    for name, path in synthetic.items():
        pools[name], info[name] = synthetic_windows(Path(path), data, max_synthetic)
    arms = arms or ["real", *synthetic, *(f"real+{n}" for n in synthetic)]
    for arm in arms:
        base = arm.removeprefix("real+")
        if arm != "real" and base not in pools:
            raise ConfigError(f"arm '{arm}' needs --synthetic {base}=DIR")
    tests = _tests(cfg, data, task, sigma, cross)
    settings = {"task": task, "seeds": seeds, "steps": steps, "batch_size": batch_size, "lr": lr, "sigma": sigma,
                "lr_schedule": "cosine", "loss": "L1", "optimizer": "Adam", "max_synthetic": max_synthetic,
                "data": cfg.data.model_dump(mode="json"), "cross_scene": None if cross is None else cross.name,
                "synthetic": {n: str(p) for n, p in synthetic.items()}}
    runs = {}
    if result_file.is_file() and resume:
        import json

        old = json.loads(result_file.read_text())
        free = ("seeds", "synthetic")  # more seeds and more synthetic sets may be added on resume
        same_sets = all(old["settings"]["synthetic"].get(n, p) == p for n, p in settings["synthetic"].items())
        if not same_sets or {k: v for k, v in old["settings"].items() if k not in free} != json_safe(
                {k: v for k, v in settings.items() if k not in free}):
            raise OutputError("holds a benchmark with other settings (or another set under one of these names); "
                              "use --overwrite or another --out", result_file)
        settings["synthetic"] = {**old["settings"]["synthetic"], **settings["synthetic"]}
        runs = old["runs"]
    out_dir.mkdir(parents=True, exist_ok=True)
    baselines = {name: restoration_scores(deg, clean) for name, (clean, deg) in tests.items()}
    result = {"specdm": __version__, "command": command, "settings": settings, "synthetic": info,
              "real_windows": len(real), "tests": {n: list(c.shape) for n, (c, _) in tests.items()},
              "input_scores": baselines, "runs": runs,
              "host": {"machine": platform.machine(), "threads": torch.get_num_threads(), "device": str(device)}}
    for seed in range(seeds):
        for arm in arms:
            key = f"{arm}/{seed}"
            if key in runs:
                continue
            t = time.time()
            if arm == "real":
                sets = [real]
            elif arm.startswith("real+"):
                sets = [real, pools[arm.removeprefix("real+")]]
            else:
                sets = [pools[arm]]
            model = train_restorer(task, sets, steps, batch_size, lr, seed, sigma=sigma, device=device)
            scores = {name: restoration_scores(restore(model, deg), clean) for name, (clean, deg) in tests.items()}
            runs[key] = {"arm": arm, "seed": seed, "scores": scores, "seconds": round(time.time() - t, 1)}
            log(f"{task} {key}: " + ", ".join(f"{n} PSNR {s['psnr']:.2f}" for n, s in scores.items()))
            write_json(result_file, result)
    result["summary"] = summarize(result, arms)
    result["wall_seconds"] = round(time.time() - t0, 1)
    result["output"] = {"json": str(result_file), "markdown": str(out_dir / "report.md")}
    write_json(result_file, result)
    (out_dir / "report.md").write_text(format_markdown(result))
    return result


def summarize(result: dict, arms: list[str]) -> dict:
    """Per test and arm: mean and std of every metric over seeds; every non-real arm against ``real``, paired by
    seed (differences signed so that > 0 is better), PSNR comparisons Holm-adjusted across arms and tests."""
    runs = list(result["runs"].values())
    tests = list(result["tests"])
    out = {"arms": {}, "vs_real": {}}
    for test in tests:
        out["arms"][test] = {}
        for arm in arms:
            vals = {m: [r["scores"][test][m] for r in runs if r["arm"] == arm] for m in METRICS}
            out["arms"][test][arm] = {m: {"mean": float(np.mean(v)) if v else math.nan,
                                          "std": float(np.std(v, ddof=1)) if len(v) > 1 else math.nan, "n": len(v)}
                                      for m, v in vals.items()}
    family = {}
    for test in tests:
        out["vs_real"][test] = {}
        for arm in arms:
            if arm == "real":
                continue
            entry = {}
            for m in METRICS:
                sign = 1 if HIGHER_BETTER[m] else -1
                a = {r["seed"]: r["scores"][test][m] for r in runs if r["arm"] == arm}
                b = {r["seed"]: r["scores"][test][m] for r in runs if r["arm"] == "real"}
                diffs = {s: sign * (a[s] - b[s]) for s in a if s in b}
                st = paired_stats(diffs)
                st["verdict_unadjusted"] = verdict(st["p"], st["diff_mean"], st["n"])
                entry[m] = st
            out["vs_real"][test][arm] = entry
            family[(test, arm)] = entry["psnr"]["p"]
    adjusted = holm(family)
    for (test, arm), p in adjusted.items():
        e = out["vs_real"][test][arm]["psnr"]
        e["p_holm"] = p
        e["verdict"] = verdict(p, e["diff_mean"], e["n"])
    return out


def _f(v, spec=".3f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def format_markdown(result: dict) -> str:
    """The report: per test, each arm's scores (mean +- std over seeds) beside the degraded input's, then each
    synthetic arm against real (paired by seed) with its verdict."""
    s = result["settings"]
    task = {"denoise": f"denoising (Gaussian noise sigma {s['sigma']:g})", "sr4": "x4 super-resolution"}[s["task"]]
    lines = [f"# Restoration benchmark: {task}", "", "```", result.get("command", ""), "```", "",
             f"{s['seeds']} seeds, {s['steps']} steps of batch {s['batch_size']}, Adam from {s['lr']:g} (cosine), "
             f"L1; {result['real_windows']} real training windows"
             + "".join(f"; {n}: {i['windows']} windows of {i['samples']} samples ({i['path']})"
                       for n, i in result["synthetic"].items())
             + f". Wall time {_f(result.get('wall_seconds'), '.0f')} s.", ""]
    summary = result["summary"]
    floor = "noisy input" if s["task"] == "denoise" else "bicubic"
    for test, arms in summary["arms"].items():
        b = result["input_scores"][test]
        lines += [f"## {test} ({' x '.join(map(str, result['tests'][test]))})", "",
                  "| arm | PSNR (dB) | SSIM | SAM (rad) |", "|---|---|---|---|",
                  f"| {floor} | {_f(b['psnr'], '.2f')} | {_f(b['ssim'])} | {_f(b['sam_rad'], '.4f')} |"]
        for arm, m in arms.items():
            lines.append(f"| {arm} | {_f(m['psnr']['mean'], '.2f')} +- {_f(m['psnr']['std'], '.2f')} | "
                         f"{_f(m['ssim']['mean'])} +- {_f(m['ssim']['std'])} | {_f(m['sam_rad']['mean'], '.4f')} +- "
                         f"{_f(m['sam_rad']['std'], '.4f')} |")
        lines.append("")
        for arm, e in summary["vs_real"].get(test, {}).items():
            p = e["psnr"]
            ci = p["diff_ci95"]
            lines.append(f"- {arm} vs real: PSNR {_f(p['diff_mean'], '+.2f')} dB (95 % CI {_f(ci[0], '+.2f')} to "
                         f"{_f(ci[1], '+.2f')}, n = {p['n']}, Holm p {_f(p.get('p_holm'))}, "
                         f"MDE {_f(p['mde80'], '.2f')})"
                         f": **{p.get('verdict', NOT_ENOUGH)}**; SSIM {_f(e['ssim']['diff_mean'], '+.3f')}, SAM "
                         f"{_f(-e['sam_rad']['diff_mean'], '+.4f')} rad ({e['sam_rad']['verdict_unadjusted']})")
        lines.append("")
    return "\n".join(lines)
