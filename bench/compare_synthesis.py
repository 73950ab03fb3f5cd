"""Side-by-side class proportions and per-class SAD of synthetic data sets vs their real training data.

    python bench/compare_synthesis.py two_stream=runs/indian_pines/synthetic \
        single_stream=runs/indian_pines_single/synthetic --out bench/results/indian_pines_synthesis.md

Each NAME=DIR names a synthetic data set; its ``metadata.json`` holds the synthetic
statistics and the path of its model, whose ``specdm.json`` holds the real training ones. SAD is between class-mean
spectra in normalized units, radians (PROTOCOL.md's mSAD convention).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from specdm.metrics.spectral import ClassSpectra, msad, per_class_sad


def load(synthetic: Path):
    meta = json.loads((synthetic / "metadata.json").read_text())
    info = json.loads((Path(meta["model"]["path"]) / "specdm.json").read_text())
    return info, ClassSpectra.from_dict(info["real_stats"]), ClassSpectra.from_dict(meta["synthetic_stats"]), meta


def table(runs: dict[str, Path]) -> str:
    loaded = {name: load(path) for name, path in runs.items()}
    info, real, _, _ = next(iter(loaded.values()))
    names, ignore = info["class_names"], info["ignore_index"]
    lines = ["| class | real (%) | " + " | ".join(f"{n} (%)" for n in loaded) + " | "
             + " | ".join(f"{n} SAD (rad)" for n in loaded) + " |",
             "|---|---:|" + "---:|" * (2 * len(loaded))]
    sads = {n: per_class_sad(real, s) for n, (_, _, s, _) in loaded.items()}
    for k, cname in enumerate(names):
        label = f"{k} {cname}" + (" (ignored)" if k == ignore else "")
        props = [f"{100 * s.proportions()[k]:.2f}" for (_, _, s, _) in loaded.values()]
        sad = ["n/a" if math.isnan(sads[n].get(k, math.nan)) else f"{sads[n][k]:.4f}" for n in loaded]
        lines.append(f"| {label} | {100 * real.proportions()[k]:.2f} | " + " | ".join(props) + " | " + " | ".join(sad) + " |")
    classes = [k for k in range(len(names)) if k != ignore]
    ms = {n: msad(real, s, classes) for n, (_, _, s, _) in loaded.items()}
    tv = {n: 0.5 * np.abs(real.proportions() - s.proportions()).sum() for n, (_, _, s, _) in loaded.items()}
    lines.append("| **mSAD** (classes present in both, ignore class excluded) | | " + " | " * len(loaded)
                 + " | ".join(f"**{ms[n]:.4f}**" for n in loaded) + " |")
    lines.append("| **total variation of class proportions** | | " + " | ".join(f"**{tv[n]:.4f}**" for n in loaded)
                 + " | " + " | " * (len(loaded) - 1) + " |")
    head = [f"- {n}: `{m['command']}` ({m['num_samples']} samples, {m['sampler']['name']} {m['sampler']['num_inference_steps']} steps)"
            for n, (_, _, _, m) in loaded.items()]
    return "\n".join(head) + "\n\n" + "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="NAME=SYNTHETIC_DIR")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    md = table({r.split("=", 1)[0]: Path(r.split("=", 1)[1]) for r in a.runs})
    print(md)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(md)


if __name__ == "__main__":
    main()
