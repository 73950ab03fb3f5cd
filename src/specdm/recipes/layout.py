"""The layout recipe: SpecDM's stage 1, then a denoiser that paints images for given masks.

scene -> windows -> two-stream KL-VAE (shared with SpecDM) -> mask-conditioned latent denoiser
-> images for layouts (real masks under D4 and copy-paste, steered toward class targets, or
the user's masks), optionally filtered by label fidelity -> data set + card.
"""

from __future__ import annotations

import time
from pathlib import Path

from accelerate import PartialState
from accelerate.utils import set_seed
from diffusers import DDPMScheduler

from specdm.config import Config
from specdm.data.datamodule import PreparedData, prepare_data
from specdm.errors import CheckpointError, ConfigError
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.denoisers import build_denoiser
from specdm.models.info import ModelInfo
from specdm.pipelines import LayoutPipeline
from specdm.recipes.run_dir import prepare_run_dir
from specdm.recipes.sampling import layout_options, synthesize
from specdm.recipes.specdm import print_estimate, train_stage1
from specdm.training.diffusion import encode_patches, latent_scale, train_conditional_denoiser
from specdm.training.engine import LoopConfig

__all__ = ["run", "train_stage1", "train_stage2"]


def train_stage2(cfg: Config, run_dir: Path, resume: bool = False, data: PreparedData | None = None) -> LayoutPipeline:
    """Train the mask-conditioned denoiser on the stored latents; write ``model/unet``, ``model/scheduler``."""
    model_dir = Path(run_dir) / "model"
    info = ModelInfo.load(model_dir)
    if resume and info.method == "layout" and info.latent_scale is not None and (model_dir / "unet").is_dir():
        return LayoutPipeline.from_pretrained(model_dir)
    ae = SpectralAutoencoder.from_pretrained(model_dir / "autoencoder")
    if ae.kind != "two_stream":
        raise CheckpointError("the layout method needs a two-stream autoencoder", model_dir / "autoencoder")
    data = data or prepare_data(cfg.data)
    info.check_scene(data.reference, model_dir)
    dcfg = cfg.diffusion
    mean, std = encode_patches(ae, data.train, dcfg.latent_augmentations)
    scale = latent_scale(ae, mean, std)
    c = ae.config["latent_channels"]
    target = ae.num_dates * c
    set_seed(cfg.train.seed)
    unet = build_denoiser(target, cfg.data.patch_size // ae.downsampling, tuple(dcfg.block_out_channels),
                          dcfg.layers_per_block, dcfg.norm_num_groups, condition_channels=c)
    loop = LoopConfig(dcfg.steps, dcfg.batch_size, dcfg.lr, cfg.train.seed, cfg.train.checkpoint_every,
                      ema_decay=dcfg.ema_decay, mixed_precision=cfg.train.mixed_precision)
    unet = train_conditional_denoiser(unet, mean, std, scale, target, loop, Path(run_dir) / "checkpoints" / "layout",
                                      cfg.layout.p_uncond, cfg.schedule(), resume)
    info.latent_scale = scale.tolist()
    info.method = "layout"
    info.source = {**info.source, "p_uncond": cfg.layout.p_uncond}
    pipe = LayoutPipeline(ae, unet, info, DDPMScheduler(**cfg.schedule()))
    if PartialState().is_main_process:
        pipe.save_pretrained(model_dir)
    PartialState().wait_for_everyone()
    return pipe


def run(cfg: Config, run_dir: Path, resume: bool = False, overwrite: bool = False, command: str = "") -> Path:
    """Train stage 1 and the layout denoiser, then paint the data set; returns the dataset card's path."""
    run_dir = Path(run_dir)
    t0 = time.time()
    prepare_run_dir(run_dir, resume, overwrite, create=False)
    data = prepare_data(cfg.data)
    if not data.reference.has_mask:
        raise ConfigError("layout-conditioned synthesis learns images for masks, but the data has no class map",
                          data.reference.source)
    if PartialState().is_main_process:
        prepare_run_dir(run_dir, resume, overwrite)
    PartialState().wait_for_everyone()
    PartialState().print(f"{len(data.train)} training windows of {cfg.data.patch_size}x{cfg.data.patch_size} "
                         f"from {len(data.scenes)} scene(s), {data.reference.num_bands} bands, {data.reference.num_classes} classes")
    if not resume:
        c = cfg.autoencoder.latent_channels
        print_estimate(cfg, data, target_channels=len(data.reference.images) * c, condition_channels=c)
    train_stage1(cfg, run_dir, resume, data)
    train_stage2(cfg, run_dir, resume, data)
    s = cfg.sampling
    card = synthesize(run_dir / "model", run_dir / "synthetic", s.num_samples, s.sampler, s.num_inference_steps, s.eta,
                      s.batch_size, s.seed, s.image_format, s.mask_format, s.previews, resume=resume, command=command,
                      layout=layout_options(cfg.layout), filter_threshold=s.filter_threshold, max_attempts=s.max_attempts)
    PartialState().print(f"done in {time.time() - t0:.0f} s")
    return card
