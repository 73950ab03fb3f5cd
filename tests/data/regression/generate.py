"""Regenerate the regression references: the synthetic sets tiny fixed-seed runs write, one case per method.

``reference.json`` holds the AVX-512/AVX2 host family's arrays (the CI and usual development hosts),
``reference_amx.json`` those of hosts whose oneDNN runs AMX kernels (float32 convolutions round differently
there, see :func:`host_family`). ``tests/test_regression.py`` checks that today's code writes the same images and
masks bit for bit with the speed features off (``train.speed: plain``); a case without a reference for this
host's family is skipped, with the reason.

- ``two_stream_segmentation``, ``single_stream_change`` (SpecDM): made by the code *before* the "one home per
  method" layout change (commit 81970f4), in both families.
- ``layout``, ``controllable``, ``hyperldm``: made by the code *before* the "one run skeleton, one writer, one
  denoiser step" change (main at 1970318), on an AMX host only (``reference_amx.json``): each trains the method
  through ``specdm run`` and then samples the model once more through ``specdm sample`` with the method's other
  input kind (layout: the run's masks as ``--masks``; controllable: ``--condition`` files from ``specdm
  conditions``, with guidance; hyperldm: ``--rgb`` of an odd-sized image).

Rerun this script only when a change is meant to alter outputs, and say so in the commit; ``--cases a,b`` writes
only those cases and keeps the others of the file as they are.

    .venv/bin/python tests/data/regression/generate.py [--cases layout,controllable,hyperldm]
"""

from __future__ import annotations

import argparse
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
WAVELENGTHS = [450.0, 520.0, 600.0, 660.0, 780.0, 860.0]  # 6 bands: RGB bands and an aligned grid exist
CASES = {
    "two_stream_segmentation": dict(change=False, autoencoder={"kind": "two_stream", **BEFORE_FIX}),
    "single_stream_change": dict(change=True, autoencoder={"kind": "single_stream", **BEFORE_FIX}),
    "layout": dict(method="layout", classes=3),
    "controllable": dict(method="controllable", bands=6),
    "hyperldm": dict(method="hyperldm", bands=6),
}


def host_family() -> str:
    """Which reference this host reproduces: float32 convolutions round differently where oneDNN runs its AMX
    kernels (Intel Sapphire Rapids and later) than on AVX-512/AVX2 hosts (the AMD EPYC CI and development hosts),
    so each family has its own reference."""
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


def _config(folder: Path, change=False, autoencoder=None, method="specdm", bands=3, classes=3) -> dict:
    from conftest import tiny_config, write_fake_files

    data = write_fake_files(folder / "data", np.random.default_rng(7), change=change, size=32, bands=bands,
                            classes=classes)
    cfg = tiny_config(data, autoencoder=autoencoder or {}, sampling={"num_samples": 3, "previews": 0})
    cfg["data"]["split"] = {"kind": "rows", "train": [0, 24], "test": [24, 32]}
    cfg["train"]["speed"] = "plain"  # the float32 path the references were written with (specdm.speed)
    if method != "specdm":
        cfg["method"] = method
    if method in ("controllable", "hyperldm"):
        cfg["data"]["wavelengths"] = WAVELENGTHS[:bands]
    if method == "layout":
        cfg["layout"] = {"copy_paste": 0.5}
    if method == "controllable":
        cfg["data"]["align"] = {"start": WAVELENGTHS[0], "stop": WAVELENGTHS[bands - 1], "bands": bands}
        cfg["autoencoder"]["latent_channels"] = 2
        cfg["controllable"] = {"conditions": ["edges", "sketch", "content"], "params": {"edges": {"sigmas": [1.0]}},
                               "content_encoder": {"embedding_dim": 8, "steps": 4, "batch_size": 4}}
    if method == "hyperldm":
        cfg["autoencoder"]["latent_channels"] = 4
        cfg["hyperldm"] = {"library": None, "num_codes": 16, "num_versions": 2, "condition_channels": 4,
                           "head_channels": 8, "discriminators": True}
    return cfg


def _arrays(folder: Path, prefix: str = "") -> dict:
    from specdm.output.dataset import SyntheticDataset

    ds = SyntheticDataset(folder)
    out = {f"{prefix}images": np.stack([ds[k]["images"] for k in range(len(ds))])}
    if ds.has_masks:
        out[f"{prefix}masks"] = np.stack([ds[k]["mask"] for k in range(len(ds))])
    return out


def _sample_again(folder: Path, method: str) -> list[str] | None:
    """The arguments of one more ``specdm sample`` of the run's model, with the method's other input kind."""
    from specdm.cli import main

    model, out = folder / "run" / "model", folder / "again"
    common = ["-n", "2", "--steps", "3", "--sampler", "ddim", "--batch-size", "2"]
    if method == "layout":
        masks = folder / "run" / "synthetic" / "masks"
        return ["sample", str(model), "--out", str(out), *common, "--masks", str(masks), "--guidance", "2"]
    if method == "controllable":
        window = np.load(folder / "data" / "image.npy")[:16, 8:24, [3, 1, 0]]
        rgb = (window - window.min()) / (window.max() - window.min())
        np.save(folder / "rgb.npy", rgb.astype(np.float32))
        assert main(["conditions", str(folder / "rgb.npy"), "--out", str(folder / "cond"), "--model", str(model)]) == 0
        edges = folder / "cond" / "edges.npy"
        return ["sample", str(model), "--out", str(out), *common, "--condition", f"edges={edges}",
                "--condition", f"content={folder / 'rgb.npy'}", "--condition-guidance", "edges=2"]
    if method == "hyperldm":
        rgb = np.random.default_rng(11).random((13, 21, 3)).astype(np.float32)
        np.save(folder / "rgb.npy", rgb)
        return ["sample", str(model), "--out", str(out), "--rgb", str(folder / "rgb.npy"), "-k", "2", "--steps", "3",
                "--sampler", "ddim", "--batch-size", "4"]
    return None


def run_case(folder: Path, **case) -> dict:
    """Train and sample a tiny model through the CLI on one thread (then, for the newer methods, sample it once
    more with the other input kind); returns the written arrays."""
    from conftest import write_config

    from specdm.cli import main

    cfg = _config(folder, **case)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["run", str(write_config(folder / "cfg.yaml", cfg)), "--run-dir", str(folder / "run")])
        assert code == 0, "the tiny run failed"
        arrays = _arrays(folder / "run" / "synthetic")
        again = _sample_again(folder, case.get("method", "specdm"))
        if again is not None:
            assert main(again) == 0, "the second sampling failed"
            arrays.update(_arrays(folder / "again", "again_"))
    finally:
        torch.set_num_threads(before)
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names (default all)")
    names = parser.parse_args().cases.split(",")
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    path = reference_file()
    out = json.loads(path.read_text()) if path.is_file() else {"cases": {}}
    out["note"] = "written by tests/data/regression/generate.py; see its docstring"
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            arrays = run_case(Path(tmp), **CASES[name])
        out["cases"][name] = {k: encode(v) for k, v in arrays.items()}
        print(f"{name}: {', '.join(f'{k} {v.shape}' for k, v in arrays.items())}", flush=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
