"""HyperLDM tables: RGB -> spectra on a spatially held-out region (Table II style) and pixel classification
on RGB vs RGB -> synthetic spectra vs real spectra (Table VI style).

    python bench/hyperldm_tables.py CONFIG [--s1-steps N] [--s2-steps N] [--baseline-steps N] [-k 10]
        [--variants hyperldm,no_rgb_decoder,no_library,baseline] [--classification-seeds 3] [--threads 1]

Variants (each trained in ``runs/hyperldm_bench/<config>/<variant>``, reused when there):

- ``hyperldm``: the conditional VQ autoencoder with the library head, the decoder seeing the RGB,
  and the RGB-conditioned denoiser (T = 100; the config's defaults, so zero terminal SNR and the SSIM term
  since they were added: the stored ``hyperldm`` rows of ``bench/results/hyperldm/*.json`` predate them);
- ``no_rgb_decoder``: the same without the RGB in the decoder (the paper's ablation);
- ``no_library``: the direct output head instead of the library mixture;
- ``baseline``: the one-to-one residual CNN (:class:`specdm.models.hscnn.RGBToSpectra`), same pairs and loss;
- ``ssim``, ``zero_snr``, ``ssim_zero_snr`` (only when named in ``--variants``): ``hyperldm`` with stage 2's
  loss MSE + 0.1 x (1 - SSIM(x0_hat, x0)), with the schedule rescaled to zero terminal SNR (v prediction), or
  both (today's defaults); ``discriminators``: today's defaults with stage 1's discriminators (both stages
  trained). A run folder
  holding only a copy of ``hyperldm``'s stage 1 (``model/autoencoder``, ``specdm.json``,
  ``stage1_quality.json``) retrains stage 2 alone.
- ``features`` / ``folded``: the denoiser's RGB input (``hyperldm.denoiser_rgb``), stage 2 only.
- ``--stage2-seed N``: stage-2-only variants again with ``train.seed=N`` (rows ``VARIANT@seedN``).

Every model gets the RGB of the whole held-out region (the config's ``test`` split, made as in training:
``conditions.rgb``) and returns K versions of it (tiled, ``HyperLDMPipeline.sample_image``, DDPM, T steps).
Scores, the mean over versions: RMSE, MPSNR and MSSIM in normalized units on [0, 1] (PROTOCOL.md), SAM
(radians) and MRAE in the data's units; SD (mean pairwise spectral angle between versions per pixel) and SDM
(mean pairwise feature distance) with the features of a 1-D CNN pixel classifier trained on the real
labelled training pixels (``metrics.spectral_diversity``). The baseline's K versions are identical (SD = SDM = 0).

Classification (``--classification-seeds``): the 1-D CNN pixel classifier trained on the labelled training
pixels as RGB, as real spectra, or as 1x / 3x / 5x HyperLDM versions of the training region's RGB (labels of
the real pixels), scored on the held-out region: RGB on its RGB, real on its real spectra, synthetic on one
HyperLDM version of its RGB (an RGB camera only) and on its real spectra. Results: ``--out``/<config>.json, .md.
The same experiment with every region of the split, paired differences and resume:
``specdm benchmark CONFIG --rgb-model runs/hyperldm_bench/<config>/hyperldm/model`` (the classifier,
``train_pixel_classifier``, is shared with it).
A rerun reuses the trained models and the sampled versions (and their recorded times) and rescores them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from _common import REPO, command_line, machine_info
from safetensors.torch import load_file, save_file

from specdm.config import load_config
from specdm.data.datamodule import prepare_data
from specdm.evaluation.classification import classification_scores
from specdm.evaluation.classification import predict_pixels as predict
from specdm.evaluation.classification import train_pixel_classifier as train_classifier
from specdm.metrics import spectral_diversity
from specdm.metrics.reference import mrae, psnr, rmse, ssim
from specdm.metrics.spectral import sad_stats
from specdm.models.hscnn import RGBToSpectra
from specdm.pipelines import HyperLDMPipeline
from specdm.recipes import hyperldm as recipe
from specdm.recipes import train
from specdm.recipes.run_dir import RUN_MARKER, prepare_run_dir
from specdm.training.engine import LoopConfig
from specdm.training.hyperldm import train_rgb_regressor

VARIANTS = {
    "hyperldm": [],
    "no_rgb_decoder": ["hyperldm.use_rgb=false"],
    "no_library": ["hyperldm.library=null"],
    "baseline": [],
    "ssim": ["diffusion.ssim_weight=0.1", "diffusion.zero_terminal_snr=false"],
    "zero_snr": ["diffusion.ssim_weight=0", "diffusion.zero_terminal_snr=true"],
    "ssim_zero_snr": ["diffusion.ssim_weight=0.1", "diffusion.zero_terminal_snr=true"],
    "discriminators": ["diffusion.ssim_weight=0.1", "diffusion.zero_terminal_snr=true", "hyperldm.discriminators=true"],
    "features": ["hyperldm.denoiser_rgb=features"],
    "folded": ["hyperldm.denoiser_rgb=folded"],
}
# variants that differ from `hyperldm` in stage 2 only: they start from a copy of its stage 1
STAGE2_ONLY = {"ssim", "zero_snr", "ssim_zero_snr", "features", "folded"}
STAGE1_FILES = ("autoencoder", "specdm.json", "stage1_quality.json", "real_examples.safetensors")
DEFAULT_VARIANTS = "hyperldm,no_rgb_decoder,no_library,baseline"
COLUMNS = ("rmse", "mrae", "sam_rad", "mssim", "mpsnr", "sd", "sdm")


def train_variant(config: str, name: str, a, run_dir: Path):
    """Train one HyperLDM variant (both stages) unless its model folder is complete; returns (cfg, pipe, seconds)."""
    base, _, seed = name.partition("@seed")
    sets = ["method=hyperldm", f"autoencoder.steps={a.s1_steps}", f"diffusion.steps={a.s2_steps}",
            f"hyperldm.max_spectra={a.max_spectra}", *VARIANTS[base], *([f"train.seed={seed}"] if seed else [])]
    name = base
    cfg = load_config(config, sets)
    t0 = time.time()
    first = run_dir.parent / "hyperldm" / "model"
    if name in STAGE2_ONLY and not (run_dir / "model").exists() and (first / "autoencoder").is_dir():
        (run_dir / "model").mkdir(parents=True)
        for f in STAGE1_FILES:
            if (first / f).is_dir():
                shutil.copytree(first / f, run_dir / "model" / f)
            elif (first / f).is_file():
                shutil.copy2(first / f, run_dir / "model" / f)
        shutil.copy2(first.parent / RUN_MARKER, run_dir / RUN_MARKER)
        print(f"{name}: stage 1 copied from {first}", flush=True)
    if not (run_dir / "model" / "unet").is_dir():
        prepare_run_dir(run_dir, resume=True, overwrite=False)
        data = prepare_data(cfg.data)
        train(cfg, run_dir, "stage1", resume=True, data=data)
        train(cfg, run_dir, "stage2", resume=True, data=data)
    return cfg, sets, HyperLDMPipeline.from_pretrained(run_dir / "model"), time.time() - t0


def region(data, split: str):
    """(real data-unit image (H, W, C), mask (H, W)) of the first region of ``split``."""
    g = data.split[split][0]
    s = data.scenes[g.scene]
    return s.images[0][g.r0 : g.r1, g.c0 : g.c1], s.mask[g.r0 : g.r1, g.c0 : g.c1]


def scores(versions: np.ndarray, real: np.ndarray, norm, features) -> dict:
    """Table II scores of versions (K, H, W, C) against the real image (H, W, C), both in data units."""
    rn = norm(real)

    def one(vd):
        v = np.clip(norm(vd), 0, 1)
        return {"rmse": rmse(v, rn), "mpsnr": psnr(v, rn), "mssim": ssim(v, rn),
                "sam_rad": sad_stats(vd, real)["mean_rad"], "mrae": mrae(vd, real)}

    per = [one(vd) for vd in versions]
    out = {k: float(np.mean([p[k] for p in per])) for k in per[0]}
    if len(versions) > 1:
        div = spectral_diversity(versions, features=lambda s: features(norm(s)), max_pixels=4000)
        out.update(sd=div["sd"], sdm=div["sdm"], mean_of_versions=one(versions.mean(0)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("--s1-steps", type=int, default=1500)
    p.add_argument("--s2-steps", type=int, default=1500)
    p.add_argument("--baseline-steps", type=int, default=1500)
    p.add_argument("--max-spectra", type=int, default=128)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--variants", default=DEFAULT_VARIANTS)
    p.add_argument("--classification-seeds", type=int, default=0,
                   help="0: no classification table (one already in the result file is kept)")
    p.add_argument("--classifier-steps", type=int, default=1500)
    p.add_argument("--sampler", default="ddpm")
    p.add_argument("--samplers", default="",
                   help="few-step sampler sweep on the first variant's model: NAME:STEPS,... (e.g. "
                        "ddpm:100,ddim:10,ddim:20,dpm++:10,dpm++:20,dpm++sde:20); same K, seed and RGB as the table")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "hyperldm")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--stage2-seed", type=int, default=0,
                   help="N > 0: the variants (stage-2-only ones) retrained with train.seed=N on hyperldm's stage 1, "
                        "rows and folders named VARIANT@seedN (repeat the stage-2 comparisons over seeds)")
    p.add_argument("--work", type=Path, default=REPO / "runs" / "hyperldm_bench",
                   help="where the variants' run folders live (<work>/<config>/<variant>)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    name = Path(a.config).stem
    a.out.mkdir(parents=True, exist_ok=True)
    result_file = a.out / f"{name}.json"
    result = json.loads(result_file.read_text()) if result_file.is_file() else {"rows": {}}
    result.update(config=a.config, k=a.k, sampler=a.sampler, machine=machine_info(),
                  budget={"stage1_steps": a.s1_steps, "stage2_steps": a.s2_steps, "baseline_steps": a.baseline_steps,
                          "max_spectra": a.max_spectra})
    runs = a.work / name
    base_cfg = load_config(a.config, ["method=hyperldm"])
    data = prepare_data(base_cfg.data)
    norm = data.normalizer
    ref = data.reference
    real_test, mask_test = region(data, "test")
    real_train, mask_train = region(data, "train")
    ignore = ref.ignore_index
    lab_tr = mask_train.reshape(-1) != ignore if ignore is not None else np.ones(mask_train.size, bool)
    lab_te = mask_test.reshape(-1) != ignore if ignore is not None else np.ones(mask_test.size, bool)
    feat_net = train_classifier(norm(real_train).reshape(-1, ref.num_bands)[lab_tr], mask_train.reshape(-1)[lab_tr],
                                ref.num_classes, 0, a.classifier_steps)

    def features(spectra):
        with torch.no_grad():
            return feat_net.features(torch.from_numpy(np.asarray(spectra, np.float32))).numpy()

    pipes = {}
    names = a.variants.split(",")
    if a.stage2_seed:
        wrong = [v for v in names if v not in STAGE2_ONLY]
        if wrong:
            raise SystemExit(f"--stage2-seed retrains stage 2 on hyperldm's stage 1: {', '.join(wrong)} "
                             f"differ in stage 1 (use {', '.join(sorted(STAGE2_ONLY))})")
        names = [f"{v}@seed{a.stage2_seed}" for v in names]
    for variant in names:
        t0 = time.time()
        if variant == "baseline":
            cfg = base_cfg
            info = pipes["hyperldm"].info if "hyperldm" in pipes else None
            model_file = runs / "baseline" / "model.safetensors"
            rgb_fn = recipe.window_rgb(info)
            net = RGBToSpectra(ref.num_bands)
            old = result["rows"].get("baseline")
            if model_file.is_file() and old is not None:
                net.load_state_dict(load_file(str(model_file)))
                t0 -= old["train_s"]
            else:
                torch.manual_seed(0)
                loop = LoopConfig(a.baseline_steps, cfg.autoencoder.batch_size, 1e-3, 0, 10**9)
                net = train_rgb_regressor(data.train, net, rgb_fn, loop, runs / "baseline" / "checkpoints",
                                          cfg.hyperldm.l1_weight, cfg.hyperldm.cosine_weight)
                save_file(net.state_dict(), str(model_file))
            train_s = time.time() - t0
            rgb = recipe.region_rgb(data, info)[0][1]
            t1 = time.time()
            with torch.no_grad():
                out = net(torch.from_numpy(np.moveaxis(rgb, -1, 0)[None].copy()))[0].numpy()
            version = norm.inverse(np.moveaxis(np.clip(out, 0, 1), 0, -1))
            row = scores(version[None], real_test, norm, features)
            row.update(sd=0.0, sdm=0.0, train_s=round(train_s), sample_s=round(time.time() - t1, 1),
                       sets=["RGBToSpectra(width 64, 4 residual blocks)", f"steps={a.baseline_steps}"])
        else:
            cfg, sets, pipe, train_s = train_variant(a.config, variant, a, runs / variant)
            pipes[variant] = pipe
            saved, old = runs / variant / "test_versions.npy", result["rows"].get(variant)
            if saved.is_file() and old is not None:  # a rerun rescores the versions it sampled before
                versions, train_s, sample_s = np.load(saved), old["train_s"], old["sample_s"]
            else:
                rgb = recipe.region_rgb(data, pipe.info)[0][1]
                t1 = time.time()
                versions = np.moveaxis(pipe.sample_image(rgb, a.k, seed=0, sampler=a.sampler), 1, -1)
                sample_s = time.time() - t1
                np.save(saved, versions.astype(np.float32))
            row = scores(versions, real_test, norm, features)
            q = json.loads((runs / variant / "model" / "stage1_quality.json").read_text())["held_out"]
            row.update(train_s=round(train_s), sample_s=round(sample_s, 1), sets=sets,
                       stage1_held_out={k: q[k] for k in ("psnr", "ssim", "sam_rad", "rmse")},
                       head=pipe.info.source["head"])
        result["rows"][variant] = row
        print(variant, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items() if k != "sets"},
              flush=True)
        result_file.write_text(json.dumps(result, indent=1))
    if a.samplers:
        first = a.variants.split(",")[0]
        result["samplers"] = sampler_sweep(a, pipes[first], first, data, real_test, norm, features, runs,
                                           result.get("samplers", {}))
        result_file.write_text(json.dumps(result, indent=1))
    if a.classification_seeds:
        result["classification"] = classification(a, data, pipes["hyperldm"], norm, real_train, mask_train,
                                                  real_test, mask_test, lab_tr, lab_te, runs)
    result["command"] = command_line()
    result_file.write_text(json.dumps(result, indent=1))
    (a.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))


def sampler_sweep(a, pipe, variant: str, data, real_test, norm, features, runs, old: dict) -> dict:
    """Table II scores, SD/SDM and sampling time of the K versions of the held-out RGB per ``NAME:STEPS``
    setting (same seed, K and tiling as the table); versions cached in ``runs/<variant>/samplers/``."""
    rgb = recipe.region_rgb(data, pipe.info)[0][1]
    out = {}
    folder = runs / variant / "samplers"
    folder.mkdir(exist_ok=True)
    for setting in a.samplers.split(","):
        name, steps = setting.split(":")
        saved = folder / f"{name}_{steps}.npy"
        if saved.is_file() and setting in old:
            versions, sample_s = np.load(saved), old[setting]["sample_s"]
        else:
            t1 = time.time()
            versions = np.moveaxis(pipe.sample_image(rgb, a.k, seed=0, sampler=name,
                                                     num_inference_steps=int(steps)), 1, -1)
            sample_s = time.time() - t1
            np.save(saved, versions.astype(np.float32))
        row = scores(versions, real_test, norm, features)
        row.update(sample_s=round(sample_s, 1), steps=pipe.steps(name, int(steps)))
        out[setting] = row
        print(variant, setting, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()
                                 if k != "mean_of_versions"}, flush=True)
    return out


def classification(a, data, pipe, norm, real_train, mask_train, real_test, mask_test, lab_tr, lab_te, runs) -> dict:
    """Table VI: OA / AA / kappa (mean and std over seeds) of the pixel classifier per training source."""
    ref = data.reference
    k = ref.num_classes
    t0 = time.time()
    rgb_train, rgb_test = (recipe.rgb_from_scene(im, ref.wavelengths, ref.band_names, **pipe.info.source["rgb"])
                           for im in (real_train, real_test))
    synth_file = runs / "hyperldm" / "train_versions.npy"
    if synth_file.is_file():
        synth_train = np.load(synth_file)
    else:
        synth_train = np.moveaxis(pipe.sample_image(rgb_train, 5, seed=1, sampler=a.sampler), 1, -1)
        np.save(synth_file, synth_train.astype(np.float32))
    synth_s = time.time() - t0
    synth_test = np.load(runs / "hyperldm" / "test_versions.npy")[0]
    flat = lambda im: im.reshape(-1, im.shape[-1])  # noqa: E731
    y_tr, y_te = mask_train.reshape(-1)[lab_tr], mask_test.reshape(-1)[lab_te]
    sources = {"rgb": (flat(rgb_train)[lab_tr], y_tr),
               "real": (flat(norm(real_train))[lab_tr], y_tr)}
    for m in (1, 3, 5):
        sources[f"synthetic_x{m}"] = (np.concatenate([flat(norm(v))[lab_tr] for v in synth_train[:m]]),
                                      np.tile(y_tr, m))
    tests = {"rgb": {"rgb": flat(rgb_test)[lab_te]}, "real": {"real": flat(norm(real_test))[lab_te]}}
    for m in (1, 3, 5):
        tests[f"synthetic_x{m}"] = {"synthetic": flat(np.clip(norm(synth_test), 0, 1))[lab_te],
                                    "real": flat(norm(real_test))[lab_te]}
    rows = {}
    for arm, (x, y) in sources.items():
        runs_ = {t: [] for t in tests[arm]}
        for seed in range(a.classification_seeds):
            net = train_classifier(x, y, k, seed, a.classifier_steps)
            for t, xt in tests[arm].items():
                s = classification_scores(predict(net, xt), y_te, k, ref.ignore_index)
                runs_[t].append({m: s[m] for m in ("oa", "aa", "kappa")})
        rows[arm] = {t: {m: [float(np.mean([r[m] for r in v])), float(np.std([r[m] for r in v]))]
                         for m in ("oa", "aa", "kappa")} for t, v in runs_.items()}
        print(arm, rows[arm], flush=True)
    return {"seeds": a.classification_seeds, "classifier_steps": a.classifier_steps, "rows": rows,
            "synthesis_s": round(synth_s), "wall_s": round(time.time() - t0),
            "train_pixels": int(lab_tr.sum()), "test_pixels": int(lab_te.sum())}


def markdown(result: dict) -> str:
    b = result["budget"]
    lines = [f"# HyperLDM tables: {result['config']}", "",
             f"Command: `{result.get('command', '')}`", "",
             f"Budget: stage 1 {b['stage1_steps']} steps, stage 2 {b['stage2_steps']} steps, baseline "
             f"{b['baseline_steps']} steps, library {b['max_spectra']} spectra; K = {result['k']} versions, "
             f"sampler {result['sampler']}; one CPU thread.", "",
             "| model | RMSE | MRAE | SAM (rad) | MSSIM | MPSNR (dB) | SD (rad) | SDM | train s | sample s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["rows"].items():
        lines.append(f"| {name} | {r['rmse']:.4f} | {r['mrae']:.4f} | {r['sam_rad']:.4f} | {r['mssim']:.4f} | "
                     f"{r['mpsnr']:.2f} | {r['sd']:.4f} | {r['sdm']:.4f} | {r['train_s']} | {r['sample_s']} |")
    means = {n: r["mean_of_versions"] for n, r in result["rows"].items() if "mean_of_versions" in r}
    if means:
        lines += ["", "The mean of the K versions, scored like one version:", "",
                  "| model | RMSE | MRAE | SAM (rad) | MSSIM | MPSNR (dB) |", "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {n} | {r['rmse']:.4f} | {r['mrae']:.4f} | {r['sam_rad']:.4f} | {r['mssim']:.4f} | "
                  f"{r['mpsnr']:.2f} |" for n, r in means.items()]
    sweep = result.get("samplers")
    if sweep:
        lines += ["", "Samplers on the same model (K versions of the held-out RGB, seed 0):", "",
                  "| sampler:steps | RMSE | MRAE | SAM (rad) | MSSIM | MPSNR (dB) | SD (rad) | SDM | sample s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {n} | {r['rmse']:.4f} | {r['mrae']:.4f} | {r['sam_rad']:.4f} | {r['mssim']:.4f} | "
                  f"{r['mpsnr']:.2f} | {r['sd']:.4f} | {r['sdm']:.4f} | {r['sample_s']} |" for n, r in sweep.items()]
    c = result.get("classification")
    if c:
        lines += ["", f"Pixel classification ({c['seeds']} seeds, {c['classifier_steps']} steps each; mean +- std; "
                      f"{c['train_pixels']} training / {c['test_pixels']} test pixels; wall {c['wall_s']} s)", "",
                  "| trained on | tested on | OA | AA | kappa |", "|---|---|---:|---:|---:|"]
        for arm, tests in c["rows"].items():
            for t, s in tests.items():
                lines.append(f"| {arm} | {t} | " + " | ".join(f"{s[m][0]:.3f} +- {s[m][1]:.3f}"
                                                              for m in ("oa", "aa", "kappa")) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
