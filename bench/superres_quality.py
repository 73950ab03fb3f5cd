"""HSIGene's Tables 6 and 7 for specdm's super-resolution augmentation: how good are super-resolved scenes?

For a config and a super-resolver trained on it (``specdm superres CONFIG``), every method below super-resolves
(a) the held-out regions after downsampling them by each scale (antialiased bicubic), scored against the regions
themselves (PSNR, SSIM per band on [0, 1] by the training split's normalization, SAM, ERGAS with its scale), and
(b) the training part at each scale, the augmented data itself, scored without reference: sPr/sRec of its pixel
spectra against the real training pixels (k = 10, equal counts, 10 groups) and the NIQE-style distance of its
luminance (mean of the RGB bands) to the real training part's (BRISQUE features of 16x16 patches,
``specdm.metrics.no_reference``; 0 = the real scene's local statistics) with the GGD shape of its MSCN coefficients.

Methods: ``bicubic``; ``plain_cnn`` (a residual CNN without guidance, trained here on the same pairs and for the
same steps as the guided stage); ``guided_alone`` (the guided stage, guided by the bicubic RGB: Table 7 without
the RGB stage); ``both_stages`` (the RGB stage's diffusion, then the guided stage); on the held-out regions also
``guided_true_rgb`` (the guided stage with the true high-resolution RGB: what perfect RGB guidance would give).

    python bench/superres_quality.py indian_pines --model runs/indian_pines_superres/model --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, machine_info  # noqa: E402

from specdm.config import load_config  # noqa: E402
from specdm.data.datamodule import prepare_data  # noqa: E402
from specdm.metrics import reference_scores, spectral_precision_recall  # noqa: E402
from specdm.metrics.no_reference import scene_niqe  # noqa: E402
from specdm.metrics.reference import ergas  # noqa: E402
from specdm.models.superres import PlainSuperResolver, downsample, upsample  # noqa: E402
from specdm.pipelines.superres import SuperResolutionPipeline  # noqa: E402
from specdm.recipes.run_dir import loop_config  # noqa: E402
from specdm.recipes.skeleton import Run  # noqa: E402
from specdm.recipes.superres import training_windows  # noqa: E402
from specdm.training.superres import train_plain  # noqa: E402

METHODS = ("bicubic", "plain_cnn", "guided_alone", "both_stages")


def luminance(x: np.ndarray, rgb_bands) -> np.ndarray:
    """Mean of the RGB bands of a normalized (H, W, C) image, clipped to [0, 1]."""
    return np.clip(x[..., list(rgb_bands)], 0, 1).mean(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--model", type=Path, required=True, help="super-resolver folder (specdm superres CONFIG)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override (as the model's)")
    ap.add_argument("--plain-steps", type=int, default=None, help="plain CNN steps (default: the guided stage's)")
    ap.add_argument("--max-spectra", type=int, default=10000, help="spectra per set for sPr/sRec")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=Path("/tmp/specdm-bench/superres"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    cfg = load_config(args.config, args.overrides)
    out = args.out or Path(__file__).resolve().parent / "results" / "superres" / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    data = prepare_data(cfg.data.model_copy(update={"super_resolved": []}))
    pipe = SuperResolutionPipeline.from_pretrained(args.model)
    norm, ref = data.normalizer, data.reference
    rgb = list(ref.rgb_bands)
    scales = pipe.scales

    # the plain CNN baseline: same windows, scales, steps and schedule as the guided stage
    g = pipe.info.source["guided_stage"]
    steps = args.plain_steps or g["steps"]
    run = Run(cfg, args.work, data)
    torch.manual_seed(cfg.train.seed)
    plain = PlainSuperResolver(ref.num_bands)
    loop = dataclasses.replace(loop_config(cfg, steps, g["batch_size"], g["lr"]), lr_min=g["lr_min"],
                               checkpoint_every=10**9)
    t = time.time()
    plain = train_plain(training_windows(run), plain, scales, loop, args.work / f"plain_{cfg.name}", desc="plain CNN")
    plain_s = time.time() - t

    def restore(method: str, lr_data: np.ndarray, s: int, seed: int, hr_rgb=None) -> np.ndarray:
        """Normalized (sH, sW, C) super-resolution of a low-resolution image in data units."""
        if method in ("bicubic", "guided_alone", "both_stages"):
            kind = {"bicubic": ("bicubic", "bicubic"), "guided_alone": ("guided", "bicubic"),
                    "both_stages": ("guided", "diffusion")}[method]
            return norm(pipe(lr_data, s, seed=seed, method=kind[0], rgb_stage=kind[1]))
        x = torch.from_numpy(np.ascontiguousarray(norm(lr_data).transpose(2, 0, 1)))[None].float()
        up = upsample(x, (x.shape[-2] * s, x.shape[-1] * s))
        with torch.no_grad():
            y = plain(up) if method == "plain_cnn" else pipe.guided(up, torch.from_numpy(hr_rgb)[None].float())
        lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        return torch.minimum(torch.maximum(y, lo), hi)[0].numpy().transpose(1, 2, 0)

    # (a) reference scores: held-out regions downsampled and restored
    reference = {}
    for s in scales:
        rows = {}
        for j, region in enumerate(data.split.get("test") or []):
            im = data.scenes[region.scene].images[0][region.r0 : region.r1, region.c0 : region.c1]
            h, w = (im.shape[0] // s) * s, (im.shape[1] // s) * s
            hr = im[:h, :w]
            lr = downsample(torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1)))[None], s)[0].numpy()
            lr = lr.transpose(1, 2, 0)
            clean = norm(hr)
            for method in (*METHODS, "guided_true_rgb"):
                tm = time.time()
                got = restore(method, lr, s, args.seed + j, np.clip(clean[..., rgb], 0, 1).transpose(2, 0, 1).copy())
                sc = reference_scores(np.clip(got, 0, 1), np.clip(clean, 0, 1))
                sc["ergas"] = ergas(np.clip(got, 0, 1), np.clip(clean, 0, 1), 1 / s)
                sc["seconds"] = round(time.time() - tm, 2)
                rows.setdefault(method, []).append(sc)
        reference[f"x{s}"] = {m: {k: float(np.mean([r[k] for r in v])) for k in ("psnr", "ssim", "sam_rad", "ergas",
                                                                                  "seconds")}
                              for m, v in rows.items()}

    # (b) the augmented data: the training part super-resolved, without reference
    real_pix = np.concatenate([norm(data.scenes[r.scene].images[0][r.r0 : r.r1, r.c0 : r.c1]).reshape(-1, ref.num_bands)
                               for r in data.split["train"]])
    real_lum = [luminance(norm(data.scenes[r.scene].images[0][r.r0 : r.r1, r.c0 : r.c1]), rgb)
                for r in data.split["train"] if min(r.height, r.width) >= 16]
    augmented = {}
    for s in scales:
        for method in METHODS:
            tm = time.time()
            ims = [restore(method, data.scenes[r.scene].images[0][r.r0 : r.r1, r.c0 : r.c1], s, args.seed + k)
                   for k, r in enumerate(data.split["train"])]
            pix = np.concatenate([im.reshape(-1, ref.num_bands) for im in ims])
            pr = spectral_precision_recall(real_pix, pix, max_per_group=args.max_spectra // 10, seed=args.seed)
            nr = scene_niqe([luminance(im, rgb) for im in ims if min(im.shape[:2]) >= 16], real_lum)
            augmented.setdefault(f"x{s}", {})[method] = {
                "spr": pr["precision"], "srec": pr["recall"], "n_spectra": pr["n_spectra"],
                "niqe_to_real": nr["distance"], "mscn_shape": nr["mscn_shape"],
                "real_mscn_shape": nr["reference_mscn_shape"], "seconds": round(time.time() - tm, 1)}

    result = {"command": command_line(), "config": cfg.name, "model": str(args.model),
              "model_source": pipe.info.source, "plain_cnn": {"steps": steps, "train_seconds": round(plain_s, 1)},
              "reference": reference, "augmented": augmented, "wall_seconds": round(time.time() - t0, 1),
              "machine": machine_info()}
    (out / "superres_quality.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Super-resolution quality: {cfg.name}", "", "```", result["command"], "```", "",
             f"Model `{args.model}` (scales {scales}); plain CNN {steps} steps ({plain_s:.0f} s). "
             f"Wall time {result['wall_seconds']:.0f} s.", ""]
    for s in scales:
        lines += [f"## x{s}: held-out regions downsampled and restored (reference scores)", "",
                  "| method | PSNR (dB) | SSIM | SAM (rad) | ERGAS | s |", "|---|---|---|---|---|---|"]
        for m, v in reference[f"x{s}"].items():
            lines.append(f"| {m} | {v['psnr']:.2f} | {v['ssim']:.3f} | {v['sam_rad']:.4f} | {v['ergas']:.2f} | "
                         f"{v['seconds']:.1f} |")
        lines += ["", f"## x{s}: the augmented training part (no reference)", "",
                  "| method | sPr | sRec | NIQE distance to real (lower: closer) | MSCN shape (real: "
                  f"{augmented[f'x{s}']['bicubic']['real_mscn_shape']:.2f}) | s |", "|---|---|---|---|---|---|"]
        for m, v in augmented[f"x{s}"].items():
            lines.append(f"| {m} | {v['spr']:.3f} | {v['srec']:.3f} | {v['niqe_to_real']:.2f} | "
                         f"{v['mscn_shape']:.2f} | {v['seconds']:.1f} |")
        lines.append("")
    (out / "superres_quality.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
