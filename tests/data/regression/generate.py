"""Regenerate ``reference.json`` (``reference_amx.json`` on an AMX host, see :func:`host_family`): the synthetic
sets a tiny fixed-seed SpecDM run writes.

The reference was produced by the code *before* the "one home per method" layout change
(commit 81970f4); ``tests/test_regression.py`` checks that today's code writes the same
images and masks bit for bit with the speed features off (``train.speed: plain``). Rerun this script only when a change is meant to alter
SpecDM's outputs, and say so in the commit.

    .venv/bin/python tests/data/regression/generate.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/ for conftest helpers

# the autoencoder as it was before the stage-1 artefact fix (docs/results.md), pinned so that the
# reference keeps guarding the code paths
BEFORE_FIX = {"symmetric_downsampling": False, "context_padding": 0}
CASES = {
    "two_stream_segmentation": dict(change=False, autoencoder={"kind": "two_stream", **BEFORE_FIX}),
    "single_stream_change": dict(change=True, autoencoder={"kind": "single_stream", **BEFORE_FIX}),
}


def host_family() -> str:
    """Which reference this host reproduces: float32 convolutions round differently where oneDNN runs its AMX
    kernels (Intel Sapphire Rapids and later) than on AVX-512/AVX2 hosts (the AMD EPYC CI and development hosts),
    so each family has its own reference, both written by the code before the speed features."""
    try:
        flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return "amx" if "amx_bf16" in flags.split() else "default"


def reference_file(family: str | None = None) -> Path:
    family = family or host_family()
    return HERE / ("reference.json" if family == "default" else f"reference_{family}.json")


def encode(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    return {"dtype": str(a.dtype), "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
            "data": base64.b64encode(a.tobytes()).decode()}


def decode(d: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["data"]), dtype=d["dtype"]).reshape(d["shape"])


def run_case(folder: Path, change: bool, autoencoder: dict) -> dict:
    """Train and sample a tiny model through the CLI on one thread; returns the written arrays."""
    from conftest import tiny_config, write_config, write_fake_files

    from specdm.cli import main
    from specdm.output.dataset import SyntheticDataset

    data = write_fake_files(folder / "data", np.random.default_rng(7), change=change, size=32, bands=3, classes=3)
    cfg = tiny_config(data, autoencoder=autoencoder, sampling={"num_samples": 3, "previews": 0})
    cfg["data"]["split"] = {"kind": "rows", "train": [0, 24], "test": [24, 32]}
    cfg["train"]["speed"] = "plain"  # the float32 path the reference was written with (specdm.speed)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["run", str(write_config(folder / "cfg.yaml", cfg)), "--run-dir", str(folder / "run")])
    finally:
        torch.set_num_threads(before)
    assert code == 0, "the tiny run failed"
    ds = SyntheticDataset(folder / "run" / "synthetic")
    return {"images": np.stack([ds[k]["images"] for k in range(len(ds))]),
            "masks": np.stack([ds[k]["mask"] for k in range(len(ds))])}


def main() -> None:
    out = {"note": "written by tests/data/regression/generate.py; see its docstring", "cases": {}}
    for name, kw in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            arrays = run_case(Path(tmp), **kw)
        out["cases"][name] = {k: encode(v) for k, v in arrays.items()}
    reference_file().write_text(json.dumps(out, indent=1))
    print(f"wrote {reference_file()}")


if __name__ == "__main__":
    main()
