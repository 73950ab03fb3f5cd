"""The whole flow: load scene -> normalize -> patches -> stage 1 -> stage 2 -> sample -> data set + card.

A run folder holds::

    config.yaml          the resolved configuration
    model/               the self-describing model folder (see specdm.pipelines.synthesis)
    checkpoints/         resumable training state of both stages
    synthetic/           the synthetic data set (see specdm.output.dataset)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from accelerate import PartialState
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from specdm import __version__
from specdm.config import Config
from specdm.data.datamodule import PreparedData
from specdm.data.datamodule import load_data as _load_data
from specdm.data.datamodule import prepare_data as _prepare_data
from specdm.data.normalize import Normalizer
from specdm.errors import CheckpointError, OutputError
from specdm.metrics.spectral import ClassSpectra
from specdm.models.autoencoder import SpectralAutoencoder
from specdm.models.denoiser import build_denoiser
from specdm.models.info import ModelInfo
from specdm.output.card import save_preview, write_card
from specdm.output.dataset import MARKER, DatasetWriter, SyntheticDataset, claim_folder, image_dirs, prepare_output
from specdm.pipelines.synthesis import SpecDMPipeline
from specdm.scene import Scene
from specdm.training.autoencoder import train_autoencoder
from specdm.training.diffusion import encode_patches, latent_scale, train_denoiser
from specdm.training.engine import LoopConfig

RUN_MARKER = ".specdm-run"


def load_data(cfg: Config) -> list[Scene]:
    return _load_data(cfg.data)


def prepare_data(cfg: Config, scenes: list[Scene] | None = None) -> PreparedData:
    return _prepare_data(cfg.data, scenes)


def real_statistics(data: PreparedData) -> ClassSpectra:
    """Class counts and spectra of the training regions (normalized units, every date)."""
    ref = data.reference
    stats = ClassSpectra(ref.num_classes, ref.num_bands)
    for g in data.split["train"]:
        s = data.scenes[g.scene]
        for im in s.images:
            stats.update(data.normalizer(im[g.r0 : g.r1, g.c0 : g.c1]), s.mask[g.r0 : g.r1, g.c0 : g.c1])
    return stats


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Create ``run_dir``; an existing one is only continued (``resume``) or replaced (``overwrite``,
    and only if specdm made it)."""
    claim_folder(run_dir, (Path(run_dir) / RUN_MARKER).is_file(), resume, overwrite, "run")
    (Path(run_dir) / RUN_MARKER).write_text(__version__)


def train_stage1(cfg: Config, run_dir: Path, resume: bool = False, data: PreparedData | None = None) -> SpectralAutoencoder:
    """Train the autoencoder(s) and write ``model/autoencoder`` and ``model/specdm.json``."""
    run_dir = Path(run_dir)
    model_dir = run_dir / "model"
    if resume and (model_dir / "autoencoder" / "autoencoder.json").is_file():
        return SpectralAutoencoder.from_pretrained(model_dir / "autoencoder")
    data = data or prepare_data(cfg)
    ref, a = data.reference, cfg.autoencoder
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    set_seed(cfg.train.seed)
    model = SpectralAutoencoder(
        a.kind, ref.num_bands, ref.num_classes, len(ref.images), a.latent_channels, tuple(a.block_out_channels),
        a.layers_per_block, a.norm_num_groups,
    )
    loop = LoopConfig(a.steps, a.batch_size, a.lr, cfg.train.seed, cfg.train.checkpoint_every, mixed_precision=cfg.train.mixed_precision)
    model = train_autoencoder(
        data.train, model, loop, run_dir / "checkpoints" / "autoencoder", a.sad_weight, a.kl_weight,
        ref.ignore_index if a.mask_ignore_unlabelled else None, a.balance_classes, resume,
    )
    if PartialState().is_main_process:
        model.save_pretrained(model_dir / "autoencoder")
        source = {"scenes": [s.name for s in data.scenes], "split": cfg.data.split.model_dump(), "windows": len(data.train)}
        info = ModelInfo.from_scene(ref, data.normalizer.to_dict(), cfg.data.patch_size, source)
        info.real_stats = real_statistics(data).to_dict()
        info.save(model_dir)
    PartialState().wait_for_everyone()
    return model


def train_stage2(cfg: Config, run_dir: Path, resume: bool = False, data: PreparedData | None = None) -> SpecDMPipeline:
    """Encode the training windows, train the denoiser, write ``model/unet`` and ``model/scheduler``."""
    model_dir = Path(run_dir) / "model"
    info = ModelInfo.load(model_dir)
    if resume and info.latent_scale is not None and (model_dir / "unet").is_dir():
        return SpecDMPipeline.from_pretrained(model_dir)
    ae = SpectralAutoencoder.from_pretrained(model_dir / "autoencoder")
    data = data or prepare_data(cfg)
    info.check_scene(data.reference, model_dir)
    if ae.config["num_bands"] != data.reference.num_bands:
        raise CheckpointError("the autoencoder's band count differs from the data's", model_dir / "autoencoder")
    dcfg = cfg.diffusion
    mean, std = encode_patches(ae, data.train, dcfg.latent_augmentations)
    scale = latent_scale(ae, mean, std)
    set_seed(cfg.train.seed)
    unet = build_denoiser(ae.latent_channels, cfg.data.patch_size // ae.downsampling, tuple(dcfg.block_out_channels),
                          dcfg.layers_per_block, dcfg.norm_num_groups)
    loop = LoopConfig(dcfg.steps, dcfg.batch_size, dcfg.lr, cfg.train.seed, cfg.train.checkpoint_every,
                      ema_decay=dcfg.ema_decay, mixed_precision=cfg.train.mixed_precision)
    unet = train_denoiser(unet, mean, std, scale, loop, Path(run_dir) / "checkpoints" / "diffusion", cfg.schedule(), resume)
    info.latent_scale = scale.tolist()
    pipe = SpecDMPipeline(ae, unet, info, cfg.schedule())
    if PartialState().is_main_process:
        pipe.save_pretrained(model_dir)
    PartialState().wait_for_everyone()
    return pipe


def synthesize(
    model_dir: Path,
    out_dir: Path,
    num_samples: int,
    sampler: str = "dpm++sde",
    num_inference_steps: int = 20,
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
    """Write ``num_samples`` samples to ``out_dir`` in batches, sharded over processes, resumable,
    then the dataset card. Returns the card's path."""
    state = PartialState()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    pipe = SpecDMPipeline.from_pretrained(model_dir, device or state.device)
    info = pipe.info
    norm = Normalizer.from_dict(info.normalization)
    shape = (num_samples, info.num_dates, info.num_bands, info.patch_size, len(info.class_names), image_format, mask_format)
    if state.is_main_process:
        prepare_output(out_dir, resume, overwrite)
        meta = dataset_metadata(pipe, model_dir, num_samples, sampler, num_inference_steps, eta, seed, image_format, mask_format, command)
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
    bar = tqdm(total=len(todo), desc=f"sampling ({sampler}, {num_inference_steps} steps)", unit="sample",
               disable=not state.is_main_process)
    for s in range(0, len(todo), batch_size):
        chunk = todo[s : s + batch_size]
        out = pipe(chunk, seed=seed, sampler=sampler, num_inference_steps=num_inference_steps, eta=eta)
        for i, images, mask in zip(chunk, out["images"], out["masks"]):
            phys = norm.inverse(images.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
            writer.write(i, phys, mask)
        bar.update(len(chunk))
    bar.close()
    state.wait_for_everyone()
    card = out_dir / "README.md"
    if state.is_main_process:
        card = finish_dataset(out_dir, info, norm, previews)
    state.wait_for_everyone()
    return card


def dataset_metadata(pipe, model_dir, n, sampler, steps, eta, seed, image_format, mask_format, command) -> dict:
    info = pipe.info
    return {
        MARKER: __version__,
        "task": info.task,
        "num_samples": n,
        "images": image_dirs(info.num_dates),
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
        "command": command,
    }


def finish_dataset(out_dir: Path, info: ModelInfo, norm: Normalizer, previews: int) -> Path:
    """Read the finished data set back (so resumed and sharded runs count every sample), write previews and card."""
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


def run(cfg: Config, run_dir: Path, resume: bool = False, overwrite: bool = False, command: str = "") -> Path:
    """Train both stages and write the synthetic data set; returns the dataset card's path."""
    run_dir = Path(run_dir)
    if PartialState().is_main_process:
        prepare_run_dir(run_dir, resume, overwrite)
    PartialState().wait_for_everyone()
    t0 = time.time()
    data = prepare_data(cfg)
    PartialState().print(f"{len(data.train)} training windows of {cfg.data.patch_size}x{cfg.data.patch_size} "
                         f"from {len(data.scenes)} scene(s), {data.reference.num_bands} bands, {data.reference.num_classes} classes")
    train_stage1(cfg, run_dir, resume, data)
    train_stage2(cfg, run_dir, resume, data)
    s = cfg.sampling
    card = synthesize(run_dir / "model", run_dir / "synthetic", s.num_samples, s.sampler, s.num_inference_steps, s.eta,
                      s.batch_size, s.seed, s.image_format, s.mask_format, s.previews, resume=resume, command=command)
    PartialState().print(f"done in {time.time() - t0:.0f} s")
    return card
