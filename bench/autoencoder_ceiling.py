"""Class-mean SAD and class proportions of stage-1 reconstructions of the real training windows.

    python bench/autoencoder_ceiling.py CONFIG RUN_DIR [RUN_DIR ...] [--out FILE.md]

The reconstruction (posterior mean -> decoders) is what a perfect stage 2 could at best
produce; comparing its mSAD with the synthetic data's separates stage-1 from stage-2 error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from specdm.config import load_config
from specdm.metrics.spectral import ClassSpectra, msad
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.data.datamodule import prepare_data


@torch.no_grad()
def ceiling(data, run: Path) -> dict:
    ae = SpectralAutoencoder.from_pretrained(run / "model" / "autoencoder")
    info = json.loads((run / "model" / "specdm.json").read_text())
    real = ClassSpectra.from_dict(info["real_stats"])
    k, c = len(info["class_names"]), len(info["band_names"])
    rec_stats = ClassSpectra(k, c)
    l1, agree, n = 0.0, 0.0, 0
    for s in range(0, len(data.train), 32):
        x, y = data.train.batch(list(range(s, min(s + 32, len(data.train)))))
        mean, _ = ae.encode(x, y)
        rec, logits = ae.decode(mean)
        rec = rec.clamp(0, 1)
        m = logits.argmax(1)
        l1 += (rec - x).abs().mean().item() * len(x)
        agree += (m == y).float().mean().item() * len(x)
        n += len(x)
        for i in range(len(x)):
            for t in range(rec.shape[1]):
                rec_stats.update(rec[i, t].permute(1, 2, 0).numpy(), m[i].numpy())
    classes = [j for j in range(k) if j != info["ignore_index"]]
    return {"l1": l1 / n, "mask_agreement": agree / n, "msad": msad(real, rec_stats, classes),
            "tv": 0.5 * float(np.abs(real.proportions() - rec_stats.proportions()).sum())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    data = prepare_data(load_config(a.config).data)
    lines = ["| run | recon L1 | mask agreement | recon mSAD (rad) | recon TV |", "|---|---:|---:|---:|---:|"]
    for run in a.runs:
        r = ceiling(data, run)
        lines.append(f"| {run} | {r['l1']:.4f} | {r['mask_agreement']:.4f} | {r['msad']:.4f} | {r['tv']:.4f} |")
    md = "\n".join(lines) + "\n"
    print(md)
    if a.out:
        a.out.write_text(md)


if __name__ == "__main__":
    main()
