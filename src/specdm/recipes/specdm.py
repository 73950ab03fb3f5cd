"""The SpecDM recipe: scene -> windows -> two-stream (or single-stream) KL-VAE -> latent DDPM -> data set + card.

A run folder holds::

    config.yaml          the resolved configuration
    model/               the self-describing model folder (see specdm.pipelines.base)
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

from specdm.augment.fidelity import LabelFidelity, save_pixels
from specdm.conditions.layouts import LAYOUTS_FILE
from specdm.output.card import EXAMPLES_FILE
from specdm.output.dataset import check_format
from specdm.config import Config
from specdm.data.datamodule import PreparedData, prepare_data
from specdm.errors import CheckpointError, ConfigError
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.denoisers import LatentControlledDenoiser, build_latent_controlnet, build_denoiser
from specdm.models.info import ModelInfo
from specdm.pipelines import SpecDMPipeline
from specdm.recipes.estimate import dry_run_estimate
from specdm.recipes.run_dir import loop_config, prepare_run_dir
from specdm.recipes.sampling import synthesize
from specdm.training.autoencoder import reconstruction_report, train_autoencoder
from specdm.training.diffusion import encode_patches, latent_scale, train_denoiser


def build_autoencoder(cfg: Config, ref) -> SpectralAutoencoder:
    """The configured stage-1 autoencoder for scenes like ``ref`` (untrained)."""
    a = cfg.autoencoder
    return SpectralAutoencoder(
        a.kind, ref.num_bands, ref.num_classes, len(ref.images), a.latent_channels, tuple(a.block_out_channels),
        a.layers_per_block, a.norm_num_groups, a.padding_mode, a.context_padding, a.symmetric_downsampling,
    )


def train_stage1(cfg: Config, run_dir: Path, resume: bool = False, data: PreparedData | None = None) -> SpectralAutoencoder:
    """Train the autoencoder(s) and write ``model/autoencoder`` and ``model/specdm.json``."""
    run_dir = Path(run_dir)
    model_dir = run_dir / "model"
    if resume and (model_dir / "autoencoder" / SpectralAutoencoder.config_name).is_file():
        return SpectralAutoencoder.from_pretrained(model_dir / "autoencoder")
    data = data or prepare_data(cfg.data)
    ref, a = data.reference, cfg.autoencoder
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    set_seed(cfg.train.seed)
    model = build_autoencoder(cfg, ref)
    loop = loop_config(cfg, a.steps, a.batch_size, a.lr)
    model = train_autoencoder(
        data.train, model, loop, run_dir / "checkpoints" / "autoencoder", a.sad_weight, a.kl_weight,
        ref.ignore_index if a.mask_ignore_unlabelled else None, a.balance_classes, resume,
    )
    if PartialState().is_main_process:
        model.save_pretrained(model_dir / "autoencoder")
        write_stage1_quality(model, data, model_dir)
        source = {"scenes": [s.name for s in data.scenes], "split": cfg.data.split.model_dump(), "windows": len(data.train)}
        info = ModelInfo.from_scene(ref, data.normalizer.to_dict(), cfg.data.patch_size, source)
        info.real_stats = data.train_statistics().to_dict()
        info.save(model_dir)
        save_real_references(data, model_dir, cfg.train.seed)
    PartialState().wait_for_everyone()
    return model


def save_real_references(data: PreparedData, model_dir: Path, seed: int) -> None:
    """What sampling needs from the real training windows, kept in the model folder (safetensors):
    labelled pixels for the label-fidelity filter, and the window masks as layouts."""
    from safetensors.torch import save_file

    x, y = (t.numpy() for t in data.train.batch(range(len(data.train))))
    ref = data.reference
    save_pixels(model_dir, *LabelFidelity(ref.num_classes, ref.ignore_index, seed=seed).training_pixels(x, y))
    save_file({"masks": torch.from_numpy(y.astype(np.int64))}, str(model_dir / LAYOUTS_FILE))
    pick = np.unique(np.linspace(0, len(x) - 1, min(8, len(x))).round().astype(int))
    save_file({"images": torch.from_numpy(np.ascontiguousarray(x[pick])), "masks": torch.from_numpy(y[pick])},
              str(model_dir / EXAMPLES_FILE))


def write_stage1_quality(model: SpectralAutoencoder, data: PreparedData, model_dir: Path) -> dict:
    """Reconstruction quality of stage 1 on training and held-out windows -> ``model/stage1_quality.json``."""
    held = data.held_out()
    report = {"train": reconstruction_report(model, data.train),
              "held_out": None if held is None else reconstruction_report(model, held)}
    (model_dir / "stage1_quality.json").write_text(json.dumps(report, indent=1))
    r = report["held_out"] or report["train"]
    PartialState().print(f"stage 1 reconstructs {'held-out' if held else 'training'} windows with PSNR {r['psnr']:.1f} dB, "
                         f"SAM {r['sam_rad']:.3f} rad, border ring {r['edges']['ring']:.2f}x the interior error, "
                         f"mask agreement {r['mask_agreement']:.3f}")
    return report


def train_stage2(cfg: Config, run_dir: Path, resume: bool = False, data: PreparedData | None = None) -> SpecDMPipeline:
    """Encode the training windows, train the denoiser, write ``model/unet`` and ``model/scheduler``."""
    model_dir = Path(run_dir) / "model"
    info = ModelInfo.load(model_dir)
    if resume and info.latent_scale is not None and (model_dir / "unet").is_dir():
        return SpecDMPipeline.from_pretrained(model_dir)
    ae = SpectralAutoencoder.from_pretrained(model_dir / "autoencoder")
    data = data or prepare_data(cfg.data)
    info.check_scene(data.reference, model_dir)
    if ae.config["num_bands"] != data.reference.num_bands:
        raise CheckpointError("the autoencoder's band count differs from the data's", model_dir / "autoencoder")
    dcfg = cfg.diffusion
    mean, std = encode_patches(ae, data.train, dcfg.latent_augmentations)
    scale = latent_scale(ae, mean, std)
    set_seed(cfg.train.seed)
    unet = build_denoiser(ae.latent_channels, cfg.data.patch_size // ae.downsampling, tuple(dcfg.block_out_channels),
                          dcfg.layers_per_block, dcfg.norm_num_groups)
    loop = loop_config(cfg, dcfg.steps, dcfg.batch_size, dcfg.lr, dcfg.ema_decay)
    unet = train_denoiser(unet, mean, std, scale, loop, Path(run_dir) / "checkpoints" / "diffusion", cfg.schedule(), resume)
    info.latent_scale = scale.tolist()
    info.method = "specdm"
    from diffusers import DDPMScheduler

    return save_stage2(SpecDMPipeline(ae, unet, info, DDPMScheduler(**cfg.schedule())), model_dir)


def run(cfg: Config, run_dir: Path, resume: bool = False, overwrite: bool = False, command: str = "") -> Path:
    """Train both stages and write the synthetic data set; returns the dataset card's path."""
    return run_stages(cfg, run_dir, resume, overwrite, command, train_stage2, "SpecDM learns image + mask pairs")


def run_stages(cfg: Config, run_dir: Path, resume: bool, overwrite: bool, command: str, stage2, needs: str,
               layout: dict | None = None) -> Path:
    """The flow every latent-diffusion recipe shares: check the inputs, claim the run folder, print the
    estimate (:func:`~specdm.recipes.estimate.dry_run_estimate`), train stage 1 (the KL autoencoder) and
    ``stage2``, sample the data set and its card. ``needs`` says why a class map is required; ``layout`` goes to
    :func:`~specdm.recipes.sampling.synthesize`."""
    run_dir = Path(run_dir)
    t0 = time.time()
    prepare_run_dir(run_dir, resume, overwrite, create=False)  # refuse early ...
    data = prepare_data(cfg.data)
    if not data.reference.has_mask:
        raise ConfigError(f"{needs}, but the data has no class map", data.reference.source,
                          hint="give data.mask, or choose a method that needs no mask")
    check_format(cfg.sampling.image_format, cfg.sampling.mask_format, data.reference.num_classes)
    if PartialState().is_main_process:  # ... and create the folder once the inputs passed their checks
        prepare_run_dir(run_dir, resume, overwrite)
    PartialState().wait_for_everyone()
    PartialState().print(f"{len(data.train)} training windows of {cfg.data.patch_size}x{cfg.data.patch_size} "
                         f"from {len(data.scenes)} scene(s), {data.reference.num_bands} bands, {data.reference.num_classes} classes")
    s = cfg.sampling

    def sample(model_dir: Path, out_dir: Path, n: int, resume: bool = False) -> Path:
        return synthesize(model_dir, out_dir, n, s.sampler, s.num_inference_steps, s.eta, s.batch_size, s.seed,
                          s.image_format, s.mask_format, s.previews, resume=resume, command=command, layout=layout,
                          filter_threshold=s.filter_threshold, max_attempts=s.max_attempts)

    if not resume:
        dry_run_estimate(cfg, data, [train_stage1, stage2], sample, s.num_samples, s.batch_size, started=t0)
    train_stage1(cfg, run_dir, resume, data)
    stage2(cfg, run_dir, resume, data)
    card = sample(run_dir / "model", run_dir / "synthetic", s.num_samples, resume)
    PartialState().print(f"done in {time.time() - t0:.0f} s")
    return card


def save_stage2(pipe, model_dir: Path):
    """Write a trained pipeline's folder (main process) and wait for every process."""
    if PartialState().is_main_process:
        pipe.save_pretrained(model_dir)
    PartialState().wait_for_everyone()
    return pipe
