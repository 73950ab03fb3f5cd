"""Label fidelity by construction, measured: per synthetic set, what ``specdm evaluate`` reports on label fidelity,
relabelled shares, texture and spectral recall, without the feature encoders (FD/KID).

    python bench/fidelity_mechanisms.py CONFIG NAME=DIR [NAME=DIR ...] [--max-samples N] [--out DIR] [--set K=V]

Per set: the label-fidelity ratio of every class (agreement of a random forest of the real training pixels with
the synthetic labels / its recall on held-out real pixels) and the lowest ratio over the classes the issue's target
counts (ceiling at least 0.5 and at least 50 labelled training pixels), the share of each class relabelled by
pixel cleaning (the set's ``metadata.json``), the texture ratios (within-window std, edge density, spatial power
per frequency bin, per-class spread: synthetic / real) and sRec against the sRec of one real half against the
other. Results: ``DIR/<config>.json`` and ``.md`` (default ``bench/results/fidelity_mechanisms``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import REPO, command_line

from specdm.augment.synthetic import load_synthetic
from specdm.config import load_config
from specdm.data.datamodule import prepare_data
from specdm.evaluation.evaluate import _draw_pixels, label_fidelity, texture
from specdm.metrics import ClassSpectra, spectral_precision_recall

MIN_CEILING, MIN_PIXELS = 0.5, 50


def recall(real_x, synth_x, n, seed=0):
    rng = np.random.default_rng(seed)
    n = min(n, real_x[:, :, 0].size, synth_x[:, :, 0].size)
    return spectral_precision_recall(_draw_pixels(real_x, n, rng), _draw_pixels(synth_x, n, rng), 10, 10, seed=seed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("sets", nargs="+", metavar="NAME=DIR")
    p.add_argument("--max-samples", type=int, default=1000)
    p.add_argument("--max-spectra", type=int, default=10000)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fidelity_mechanisms")
    a = p.parse_args()
    t0 = time.time()
    cfg = load_config(a.config, a.overrides)
    data = prepare_data(cfg.data)
    ref = data.reference
    real_x, real_y = (t.numpy() for t in data.train.batch(range(len(data.train))))
    real_s = ClassSpectra.of_windows(real_x, real_y, ref.num_classes)
    train_px = np.bincount(real_y.ravel(), minlength=ref.num_classes)
    halves = np.array_split(np.random.default_rng(0).permutation(len(real_x)), 2)
    real_pr = recall(real_x[halves[0]], real_x[halves[1]], a.max_spectra)
    result = {"config": a.config, "overrides": a.overrides, "command": command_line(),
              "real_halves_recall": real_pr["recall"], "sets": {}}
    for item in a.sets:
        name, _, path = item.partition("=")
        t = time.time()
        s = load_synthetic(Path(path), data, a.max_samples, cfg.name)
        fid = label_fidelity(data, real_x, real_y, s.x, s.y, seed=0)
        clean = (s.dataset.meta.get("clean") or {}).get("per_class") or {}
        counted = [r for r in fid["classes"] if r["ceiling"] is not None and r["ceiling"] >= MIN_CEILING
                   and train_px[r["class"]] >= MIN_PIXELS]
        ratios = [r["ratio"] if r["ratio"] is not None else 0.0 for r in counted]
        tex = texture(real_x, s.x, real_s, ClassSpectra.of_windows(s.x, s.y, ref.num_classes), ref)
        pr = recall(real_x, s.x, a.max_spectra)
        result["sets"][name] = {
            "path": path, "samples": len(s.x), "wall_s": round(time.time() - t, 1),
            "min_ratio_counted": min(ratios) if ratios else None, "counted_classes": [r["name"] for r in counted],
            "fidelity": {r["name"]: {"ceiling": r["ceiling"], "agreement": r["agreement"], "ratio": r["ratio"],
                                     "relabelled_share": (clean.get(r["name"]) or {}).get("relabelled_share")}
                         for r in fid["classes"]},
            "texture": tex, "precision": pr["precision"], "recall": pr["recall"],
            "recall_vs_real_halves": pr["recall"] / real_pr["recall"] if real_pr["recall"] else None,
            "decode": s.dataset.meta.get("decode"), "clean": bool(s.dataset.meta.get("clean")),
            "hard_classes": bool(s.dataset.meta.get("hard_classes"))}
    result["wall_s"] = round(time.time() - t0, 1)
    a.out.mkdir(parents=True, exist_ok=True)
    stem = Path(a.config).stem
    (a.out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    (a.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))


def f(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def markdown(result: dict) -> str:
    sets = result["sets"]
    names = list(sets)
    first = sets[names[0]]
    lines = [f"`{result['command']}` ({result['wall_s']} s)", "",
             f"Label fidelity ratio per class (agreement / ceiling; relabelled % in brackets where cleaned); lowest "
             f"over classes with ceiling >= {MIN_CEILING} and >= {MIN_PIXELS} training pixels:", "",
             "| class | ceiling | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for cls, row in first["fidelity"].items():
        cells = []
        for n in names:
            r = sets[n]["fidelity"][cls]
            rel = r["relabelled_share"]
            cells.append(f(r["ratio"]) + ("" if rel is None else f" ({100 * rel:.0f} %)"))
        lines.append(f"| {cls} | {f(row['ceiling'])} | " + " | ".join(cells) + " |")
    lines.append("| **lowest counted** | | " + " | ".join(f"**{f(sets[n]['min_ratio_counted'])}**" for n in names) + " |")
    lines += ["", "Texture and spectra, synthetic / real (target: within 0.9-1.1; sRec / sRec of real halves >= 0.8):", "",
              "| statistic | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def tex(n, key):
        return sets[n]["texture"][key]["ratio"]

    lines.append("| within-window std | " + " | ".join(f(tex(n, "within_window_std")) for n in names) + " |")
    lines.append("| edge density | " + " | ".join(f(tex(n, "edge_density")) for n in names) + " |")
    for j, (lo, hi) in enumerate(first["texture"]["power"]["bins"]):
        lines.append(f"| power {lo:.3g}-{hi:.3g} cyc/px | "
                     + " | ".join(f(sets[n]["texture"]["power"]["rows"][j]["ratio"]) for n in names) + " |")
    spread = {n: {r["name"]: r["ratio"] for r in sets[n]["texture"].get("class_spread", [])} for n in names}
    for cls in dict.fromkeys(c for n in names for c in spread[n]):
        lines.append(f"| spread {cls} | " + " | ".join(f(spread[n].get(cls)) for n in names) + " |")
    lines.append("| sRec / real halves | " + " | ".join(f(sets[n]["recall_vs_real_halves"]) for n in names) + " |")
    lines.append("| sPr | " + " | ".join(f(sets[n]["precision"]) for n in names) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
