"""Do synthetic labels sit on the right spectra? Per class: pixel share, and the real classes nearest in mean spectrum.

    python bench/label_spectra.py CONFIG NAME=SYNTHETIC_DIR [NAME=DIR ...] [--n 1000] [--out FILE.md]

For every class of the first ``--n`` samples of each synthetic set: its share of the
synthetic pixels (real share beside it), the SAD between its mean spectrum and the real
class-mean spectrum of the same class, and the three real classes whose mean spectra are
nearest. A synthetic class whose spectra match another real class better than its own is a
label painted on the wrong material. Real reference: the config's training windows (first
date); all spectra in the normalized units of the real training split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from specdm.config import load_config
from specdm.data.normalize import Normalizer
from specdm.metrics.spectral import ClassSpectra, sad
from specdm.output.dataset import SyntheticDataset
from specdm.data.datamodule import prepare_data


def table(real: ClassSpectra, synth: ClassSpectra, names: list[str]) -> list[str]:
    rm, sm = real.means(), synth.means()
    rp, sp = real.proportions(), synth.proportions()
    lines = ["| class | real share | synthetic share | SAD to own real class | nearest real classes (SAD) |",
             "|---|---:|---:|---:|---|"]
    for c, name in enumerate(names):
        if synth.counts[c] == 0:
            continue
        d = sad(sm[c][None], rm)  # NaN where the real class is absent
        order = [k for k in np.argsort(np.where(np.isnan(d), np.inf, d)) if np.isfinite(d[k])][:3]
        near = ", ".join(f"{k} {names[k]} ({d[k]:.3f})" for k in order)
        lines.append(f"| {c} {name} | {100 * rp[c]:.2f} % | {100 * sp[c]:.2f} % | {d[c]:.3f} | {near} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("sets", nargs="+", help="NAME=SYNTHETIC_DIR")
    p.add_argument("--n", type=int, default=1000, help="synthetic samples read from each set")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    data = prepare_data(load_config(a.config).data)
    x, y = (t.numpy() for t in data.train.batch(range(len(data.train))))
    names = data.reference.class_names
    real = ClassSpectra.of_windows(x[:, :1], y, len(names))
    md = [f"# Synthetic labels vs spectra (config `{a.config}`, first {a.n} samples per set)", ""]
    for item in a.sets:
        name, _, path = item.partition("=")
        ds = SyntheticDataset(path)
        sx, sy = ds.arrays(a.n, Normalizer.from_dict(ds.meta["normalization"]))
        md += [f"## {name} (`{path}`)", "", *table(real, ClassSpectra.of_windows(sx[:, :1], sy, len(names)), names), ""]
    text = "\n".join(md)
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
