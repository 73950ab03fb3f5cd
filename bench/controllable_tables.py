"""HSIGene's Tables 3 and 4 for specdm's controllable model, at a small CPU budget.

Trains (or, with --resume, reuses) the multi-sensor model of the packaged ``controllable`` config
(Indian Pines, Samson, Moffett, the Sentinel-2 demo scene, aligned to 400-1000 nm / 48 bands), then on
the held-out windows of every data set that has some:

- Table 4: for each single condition, for the growing combination lines -> +edges -> +sketch ->
  +segmentation -> +content -> +text (all six), one sample per held-out window, given that window's
  conditions (extracted with the model's parameters; text: its data set's sentence): SSIM to the real
  window, structure adherence (each image condition re-extracted from the sample vs the window's own:
  SSIM, edge/line F1 with 1-pixel tolerance, content cosine; for conditions not given it is the baseline), sPr/sRec of the samples' spectra against the
  held-out windows' spectra, and FD of patch features against the held-out windows (pooled over data sets).
- Table 3: unconditional samples against each data set's held-out windows (sPr/sRec, FD).

FD features come from a PatchEncoder trained on the pooled REAL TRAINING windows to tell the data sets
apart (``specdm.evaluation.features``); every FD here uses that one encoder. Writes
``controllable.json`` and ``controllable.md`` (``--out``), with the commands, budgets and wall times.

    SPECDM_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/controllable_tables.py \\
        --ae-steps 1500 --steps 3000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, command_line, machine_info  # noqa: E402

SINGLES = ["edges", "lines", "sketch", "segmentation", "content", "text"]
GROWING = ["lines", "edges", "sketch", "segmentation", "content", "text"]  # Table 4's order: MLSD, +HED, +sketch, +seg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="controllable")
    ap.add_argument("--ae-steps", type=int, default=1500)
    ap.add_argument("--steps", type=int, default=3000, help="stage-2 steps")
    ap.add_argument("--sampler", default="ddim")
    ap.add_argument("--sampling-steps", type=int, default=50)
    ap.add_argument("--unconditional", type=int, default=96, help="unconditional samples")
    ap.add_argument("--encoder-steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/specdm-bench/controllable"))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "controllable")
    ap.add_argument("--resume", action="store_true", help="reuse a finished or interrupted run in --work")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from specdm.config import load_config
    from specdm.pipelines import load_pipeline
    from specdm.recipes import controllable as recipe
    from specdm.recipes import train
    from specdm.recipes.run_dir import prepare_run_dir

    t0 = time.time()
    cfg = load_config(args.config, [f"autoencoder.steps={args.ae_steps}", f"diffusion.steps={args.steps}"])
    run = args.work / "run"
    prepare_run_dir(run, args.resume, overwrite=not args.resume)
    data = recipe.prepare(cfg)
    t_data = time.time() - t0
    train(cfg, run, "stage1", args.resume, data=data)
    t_stage1 = time.time() - t0 - t_data
    train(cfg, run, "stage2", args.resume, data=data)
    pipe = load_pipeline(run / "model")
    t_stage2 = time.time() - t0 - t_data - t_stage1
    result = {"command": command_line(), "machine": machine_info(), "config": cfg.model_dump(mode="json"),
              "budget": {"autoencoder_steps": args.ae_steps, "autoencoder_batch": cfg.autoencoder.batch_size,
                         "diffusion_steps": args.steps, "diffusion_batch": cfg.diffusion.batch_size,
                         "sampler": args.sampler, "sampling_steps": args.sampling_steps},
              "windows": {n: {"train": int((data.source_of_window == k).sum()),
                              "held_out": 0 if data.held_out(k) is None else len(data.held_out(k))}
                          for k, n in enumerate(data.names)},
              "wall_s": {"data": round(t_data), "stage1": round(t_stage1), "stage2": round(t_stage2)}}
    old = args.out / "controllable.json"
    if args.resume and old.is_file():  # the model was trained by an earlier invocation: keep its training times
        before = json.loads(old.read_text())
        if before["budget"] == result["budget"]:
            result["wall_s"].update({k: before["wall_s"][k] for k in ("stage1", "stage2")}, training_reused=True)
    t1 = time.time()
    result.update(evaluate(pipe, data, args))
    result["wall_s"]["evaluation"] = round(time.time() - t1)
    result["wall_s"]["total"] = round(time.time() - t0)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "controllable.json").write_text(json.dumps(result, indent=1))
    (args.out / "controllable.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def evaluate(pipe, data, args) -> dict:
    """Both tables on the held-out windows of every data set that has some."""
    import torch

    from specdm.conditions.controls import text_embedding, window_conditions
    from specdm.evaluation.controllable import adherence, reference_ssim
    from specdm.evaluation.features import extract_features, train_encoder
    from specdm.metrics.distribution import frechet_distance
    from specdm.metrics.spectral import spectral_precision_recall

    info, settings = pipe.info, pipe.settings
    params = settings.get("params") or {}
    train_x = np.stack([data.train.get(i)[0][0] for i in range(len(data.train))])
    encoder = train_encoder(train_x, data.source_of_window, steps=args.encoder_steps, seed=0, feature_dim=16)
    held = {}
    for k, name in enumerate(data.names):
        h = data.held_out(k)
        if h is None:
            continue
        x = np.stack([h.get(i)[0][0] for i in range(len(h))])
        conds = [window_conditions(w, info.rgb_bands, pipe.conditions, params, pipe.content) for w in x]
        text = data.sources[k].reference.text
        for c in conds:
            if text is not None and "text" in pipe.conditions:
                c["text"] = text_embedding(text)
        held[name] = (x, conds)
    real_all = np.concatenate([x for x, _ in held.values()])
    real_feats = extract_features(encoder, real_all)

    def spectra(a):
        return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])

    def draw(subset, seed):
        out = {}
        for name, (x, conds) in held.items():
            given = {c: np.stack([d[c] for d in conds]) for c in subset}
            with torch.no_grad():
                out[name] = pipe(given, list(range(len(x))), seed, None, args.sampler, args.sampling_steps)["images"][:, 0]
        return out

    def score(subset, images):
        row = {"conditions": subset, "per_source": {}}
        for name, (x, conds) in held.items():
            # adherence to every image condition of the window, given or not: the not-given ones are the baseline
            every = {c: np.stack([d[c] for d in conds]) for c in pipe.conditions if c != "text"}
            pr = spectral_precision_recall(spectra(x), spectra(images[name]), k=10, groups=5, seed=0)
            row["per_source"][name] = {"windows": len(x), "ssim_to_reference": reference_ssim(images[name], x),
                                       "spr": pr["precision"], "srec": pr["recall"],
                                       "adherence": adherence(images[name], every, info.rgb_bands, params,
                                                              pipe.content)}
        gen = np.concatenate(list(images.values()))
        row["fd_pooled"] = frechet_distance(extract_features(encoder, gen), real_feats)
        n = {k: v["windows"] for k, v in row["per_source"].items()}
        avg = lambda key: float(sum(v[key] * n[k] for k, v in row["per_source"].items()) / sum(n.values()))  # noqa: E731
        row["ssim_to_reference"], row["spr"], row["srec"] = avg("ssim_to_reference"), avg("spr"), avg("srec")
        adh: dict = {}
        for k, v in row["per_source"].items():
            for c, scores in v["adherence"].items():
                for m, val in scores.items():
                    adh.setdefault(c, {}).setdefault(m, []).append((val, n[k]))
        row["adherence"] = {c: {m: float(sum(a * w for a, w in vals) / sum(w for _, w in vals)) for m, vals in ms.items()}
                            for c, ms in adh.items()}
        return row

    table4 = []
    t = time.time()
    sets = [[c] for c in SINGLES] + [GROWING[:k] for k in range(2, len(GROWING) + 1)] + [[]]
    for subset in sets:
        ts = time.time()
        row = score(subset, draw(subset, seed=1))
        row["wall_s"] = round(time.time() - ts, 1)
        table4.append(row)
        print(f"{'+'.join(subset) or 'none'}: SSIM {row['ssim_to_reference']:.3f} sPr {row['spr']:.3f} "
              f"sRec {row['srec']:.3f} FD {row['fd_pooled']:.2f}", flush=True)
    t4_wall = time.time() - t
    t = time.time()
    with torch.no_grad():
        uncond = np.concatenate([pipe({}, list(range(s, min(s + 48, args.unconditional))), 2, None, args.sampler,
                                      args.sampling_steps)["images"][:, 0]
                                 for s in range(0, args.unconditional, 48)])
    table3 = {"samples": len(uncond), "per_source": {}}
    feats = extract_features(encoder, uncond)
    for name, (x, _) in held.items():
        pr = spectral_precision_recall(spectra(x), spectra(uncond), k=10, groups=5, seed=0)
        table3["per_source"][name] = {"windows": len(x), "spr": pr["precision"], "srec": pr["recall"],
                                      "fd": frechet_distance(feats, extract_features(encoder, x))}
    pr = spectral_precision_recall(spectra(real_all), spectra(uncond), k=10, groups=5, seed=0)
    table3["pooled"] = {"spr": pr["precision"], "srec": pr["recall"], "fd": frechet_distance(feats, real_feats)}
    table3["wall_s"] = round(time.time() - t)
    return {"table4": table4, "table4_wall_s": round(t4_wall), "table3": table3,
            "encoder": dict(encoder.train_info)}


def markdown(r: dict) -> str:
    b, w = r["budget"], r["wall_s"]
    lines = ["# Controllable synthesis (HSIGene): Tables 3 and 4 at a CPU budget", "",
             f"Command: `{r['command']}`", "",
             f"Budget: stage 1 {b['autoencoder_steps']} steps x batch {b['autoencoder_batch']}, stage 2 "
             f"{b['diffusion_steps']} steps x batch {b['diffusion_batch']}, {b['sampler']} {b['sampling_steps']} steps; "
             f"one CPU thread ({r['machine'].get('cpu_model', '?')}). Wall time: data {w['data']} s, stage 1 "
             f"{w['stage1']} s, stage 2 {w['stage2']} s, evaluation {w.get('evaluation', '?')} s, total "
             f"{w.get('total', '?')} s" + (" (this invocation reused the model trained by an earlier one, with these "
                                           "training times)" if w.get("training_reused") else "") + ".", "",
             "Windows (32x32, 48 bands) per data set: " + ", ".join(
                 f"{n} {v['train']} train / {v['held_out']} held-out" for n, v in r["windows"].items()) + ".", "",
             "## Table 4 layout: conditions -> fidelity (held-out windows, one sample per window)", "",
             "SSIM: sample vs the real window its conditions came from (per band, [0, 1]). sPr/sRec: sample "
             "spectra vs held-out spectra (k = 10, 5 groups), averaged over data sets weighted by windows. FD: "
             "patch features (encoder trained on real training windows), pooled over data sets. Adherence: "
             "the condition re-extracted from the sample vs the window's own condition; in parentheses where that "
             "condition was not given (the baseline: how much of the structure comes without it).", "",
             "| conditions | SSIM | sPr | sRec | FD | edges F1 | lines F1 | sketch SSIM | seg SSIM | content cos |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def get(row, c, m):
        v = row["adherence"].get(c, {}).get(m)
        return "-" if v is None else f"{v:.3f}" if c in row["conditions"] else f"({v:.3f})"

    for row in r["table4"]:
        name = " + ".join(row["conditions"]) or "none (unconditional)"
        lines.append(f"| {name} | {row['ssim_to_reference']:.3f} | {row['spr']:.3f} | {row['srec']:.3f} | "
                     f"{row['fd_pooled']:.2f} | {get(row, 'edges', 'f1')} | {get(row, 'lines', 'f1')} | "
                     f"{get(row, 'sketch', 'ssim')} | {get(row, 'segmentation', 'ssim')} | {get(row, 'content', 'cosine')} |")
    t3 = r["table3"]
    lines += ["", f"## Table 3 layout: unconditional ({t3['samples']} samples) vs each data set's held-out windows", "",
              "| data set | held-out windows | sPr | sRec | FD |", "|---|---:|---:|---:|---:|"]
    for n, v in t3["per_source"].items():
        lines.append(f"| {n} | {v['windows']} | {v['spr']:.3f} | {v['srec']:.3f} | {v['fd']:.2f} |")
    p = t3["pooled"]
    lines.append(f"| pooled | {sum(v['windows'] for v in t3['per_source'].values())} | {p['spr']:.3f} | "
                 f"{p['srec']:.3f} | {p['fd']:.2f} |")
    lines += ["", f"Table 4 sampling + scoring: {r['table4_wall_s']} s; Table 3: {t3['wall_s']} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
