"""The layout recipe: SpecDM's stage 1, then a denoiser that paints images for given masks.

scene -> windows -> two-stream KL-VAE (shared with SpecDM) -> mask-conditioned latent denoiser
-> images for layouts (real masks under D4 and copy-paste, steered toward class targets, or
the user's masks), optionally filtered by label fidelity -> data set + card.
"""

from __future__ import annotations

from pathlib import Path

from accelerate.utils import set_seed
from diffusers import DDPMScheduler

from specdm.config import Config
from specdm.data.datamodule import PreparedData, prepare_data
from specdm.errors import CheckpointError
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.denoisers import LatentControlledDenoiser, build_latent_controlnet, build_denoiser
from specdm.models.info import ModelInfo
from specdm.pipelines import LayoutPipeline
from specdm.recipes.sampling import layout_options
from specdm.recipes.run_dir import loop_config
from specdm.recipes.specdm import run_stages, save_stage2, train_stage1
from specdm.training.diffusion import encode_patches, latent_scale, train_conditional_denoiser

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
    controlnet = cfg.layout.conditioning == "controlnet"
    net = build_denoiser(target, cfg.data.patch_size // ae.downsampling, tuple(dcfg.block_out_channels),
                         dcfg.layers_per_block, dcfg.norm_num_groups, condition_channels=0 if controlnet else c)
    if controlnet:
        net = LatentControlledDenoiser(net, build_latent_controlnet(net, c))
    loop = loop_config(cfg, dcfg.steps, dcfg.batch_size, dcfg.lr, dcfg.ema_decay)
    net = train_conditional_denoiser(net, mean, std, scale, target, loop,
                                     Path(run_dir) / "checkpoints" / ("layout_controlnet" if controlnet else "layout"),
                                     cfg.layout.p_uncond, cfg.schedule(), resume)
    info.latent_scale = scale.tolist()
    info.method = "layout"
    info.source = {**info.source, "p_uncond": cfg.layout.p_uncond, "conditioning": cfg.layout.conditioning}
    unet, control = (net.unet, net.controlnet) if controlnet else (net, None)
    return save_stage2(LayoutPipeline(ae, unet, info, DDPMScheduler(**cfg.schedule()), controlnet=control), model_dir)


def run(cfg: Config, run_dir: Path, resume: bool = False, overwrite: bool = False, command: str = "") -> Path:
    """Train stage 1 and the layout denoiser, then paint the data set; returns the dataset card's path."""
    return run_stages(cfg, run_dir, resume, overwrite, command, train_stage2,
                      "layout-conditioned synthesis learns images for masks",
                      layout=layout_options(cfg.layout))
