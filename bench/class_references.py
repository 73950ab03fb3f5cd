"""A copy of a SpecDM or layout model folder with what class-aware decoding needs, for a model whose stage 1 was
trained before ``class_references.safetensors`` existed (the benchmark protocol's generators, for example).

    python bench/class_references.py CONFIG MODEL_DIR OUT_DIR [--set KEY=VALUE ...]

The references are what stage 1 stores at the end of its training (``recipes/stages.py``,
``save_real_references``): drawn from the real training windows of ``CONFIG`` (with the same ``--set`` the model
was trained with: its fold and label setting) and the model's own autoencoder, seeded by ``train.seed``. The
model folder is left as it is: ``OUT_DIR`` is a copy with the references added. The model's normalization must
equal the config's (checked), or the references would be drawn from other data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from specdm.config import load_config
from specdm.data.datamodule import prepare_data
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.recipes.stages import save_real_references
from specdm.training.autoencoder import kl_reconstruction


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("model", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    t0 = time.time()
    if a.out.exists():
        sys.exit(f"{a.out}: exists; give a new folder")
    cfg = load_config(a.config, a.overrides)
    data = prepare_data(cfg.data)
    stored = json.loads((a.model / "specdm.json").read_text()).get("normalization")
    if stored != data.normalizer.to_dict():
        sys.exit(f"{a.model}: its normalization differs from the config's data (give the --set it was trained with)")
    net = SpectralAutoencoder.from_pretrained(a.model / "autoencoder").eval()
    shutil.copytree(a.model, a.out)  # copies, not links: the references step rewrites some of its files
    reconstruct = kl_reconstruction(net, data.train)
    with torch.no_grad():
        save_real_references(data, a.out, cfg.train.seed, lambda idx: reconstruct(idx)[1])
    print(f"{a.out}: class references added ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
