"""Sampling a trained model folder into a data set + card: shared by every method's recipe.

``synthesize`` writes samples in batches, sharded over processes by sample index,
resumable; then reads the set back (so resumed and sharded runs count every sample)
to write previews, statistics and the dataset card.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from accelerate import PartialState
from tqdm.auto import tqdm

from specdm import __version__
from specdm.data.normalize import Normalizer
from specdm.errors import OutputError
from specdm.metrics.spectral import ClassSpectra
from specdm.models.info import ModelInfo
from specdm.output.card import save_preview, source_licence, write_card
from specdm.output.dataset import MARKER, DatasetWriter, SyntheticDataset, image_dirs, prepare_output
from specdm.pipelines import load_pipeline
from specdm.schedulers import DEFAULT_SAMPLER, default_steps


def synthesize(
    model_dir: Path,
    out_dir: Path,
    num_samples: int,
    sampler: str = DEFAULT_SAMPLER,
    num_inference_steps: int | None = None,
    eta: float = 0.0,
    batch_size: int = 50,
    seed: int = 0,
    image_format: str = "tif",
    mask_format: str = "png",
    previews: int = 8,
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
    device: str | None = None,
) -> Path:
    """Write ``num_samples`` samples of the model in ``model_dir`` to ``out_dir``; returns the card's path."""
    state = PartialState()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    steps = num_inference_steps or default_steps(sampler)
    pipe = load_pipeline(model_dir, device or state.device)
    info = pipe.info
    shape = (num_samples, info.num_dates, info.num_bands, info.patch_size, len(info.class_names), image_format, mask_format)
    if state.is_main_process:
        prepare_output(out_dir, resume, overwrite)
        meta = dataset_metadata(pipe, model_dir, num_samples, sampler, steps, eta, seed, image_format, mask_format, command)
        meta_file = out_dir / "metadata.json"
        if resume and meta_file.is_file():
            old = json.loads(meta_file.read_text())
            keys = ("num_samples", "sampler", "seed", "model", "format")
            if any(old.get(k) != meta.get(k) for k in keys):
                raise OutputError("holds a data set made with other settings or another model; use --overwrite", out_dir)
        meta_file.write_text(json.dumps(meta, indent=1))
        DatasetWriter(out_dir, *shape)
    state.wait_for_everyone()
    writer = DatasetWriter(out_dir, *shape)
    todo = writer.pending()[state.process_index :: state.num_processes]
    bar = tqdm(total=len(todo), desc=f"sampling ({sampler}, {steps} steps)", unit="sample",
               disable=not state.is_main_process)
    for s in range(0, len(todo), batch_size):
        chunk = todo[s : s + batch_size]
        out = pipe(chunk, seed=seed, sampler=sampler, num_inference_steps=steps, eta=eta)
        for i, images, mask in zip(chunk, out["images"], out["masks"]):
            writer.write(i, images, mask)
        bar.update(len(chunk))
    bar.close()
    state.wait_for_everyone()
    card = out_dir / "README.md"
    if state.is_main_process:
        card = finish_dataset(out_dir, info, previews)
    state.wait_for_everyone()
    return card


def dataset_metadata(pipe, model_dir, n, sampler, steps, eta, seed, image_format, mask_format, command) -> dict:
    info = pipe.info
    return {
        MARKER: __version__,
        "task": info.task,
        "method": info.method,
        "num_samples": n,
        "images": image_dirs(info.num_dates),
        "masks": True,
        "image_format": image_format,
        "mask_format": mask_format,
        "format": {"image": image_format, "mask": mask_format,
                   "image_layout": "(bands, rows, cols) float32, the data's own units",
                   "mask_layout": "(rows, cols) class values"},
        "band_names": info.band_names,
        "wavelengths": info.wavelengths,
        "rgb_bands": info.rgb_bands,
        "class_names": info.class_names,
        "ignore_index": info.ignore_index,
        "patch_size": info.patch_size,
        "normalization": info.normalization,
        "value_range": "normalized values clipped to [0, 1] before the inverse normalization",
        "sampler": {"name": sampler, "num_inference_steps": steps, "eta": eta},
        "seed": seed,
        "seed_rule": "sample i uses numpy SeedSequence([seed, i])",
        "model": {"path": str(model_dir), **pipe.hashes(model_dir)},
        "source": info.source,
        "licence": source_licence(info.source),
        "command": command,
    }


def finish_dataset(out_dir: Path, info: ModelInfo, previews: int) -> Path:
    """Read the finished data set back, write previews, statistics and the card."""
    norm = Normalizer.from_dict(info.normalization)
    ds = SyntheticDataset(out_dir)
    synth = ClassSpectra(len(info.class_names), info.num_bands)
    preview_paths = []
    (out_dir / "previews").mkdir(exist_ok=True)
    for k in range(len(ds)):
        item = ds[k]
        imgs = [norm(im.transpose(1, 2, 0)) for im in item["images"]]
        for im in imgs:
            synth.update(im, item["mask"])
        if k < previews:
            p = out_dir / "previews" / f"{ds.indices[k]:06d}.png"
            preview_paths.append(save_preview(np.concatenate(imgs, 1) if len(imgs) > 1 else imgs[0],
                                              np.tile(item["mask"], (1, len(imgs))), info.rgb_bands, p, len(info.class_names)))
    real = ClassSpectra.from_dict(info.real_stats)
    meta = json.loads((out_dir / "metadata.json").read_text())
    meta["complete"] = len(ds) == meta["num_samples"]
    meta["synthetic_stats"] = synth.to_dict()
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=1))
    return write_card(out_dir, real, synth, meta, preview_paths)
