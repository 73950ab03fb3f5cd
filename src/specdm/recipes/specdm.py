"""The SpecDM recipe: scene -> windows -> two-stream (or single-stream) KL-VAE -> latent DDPM on the concatenated
latents ``(z_x[, z_x2], z_y)`` -> image/mask pairs sampled jointly -> data set + card."""

from __future__ import annotations

from pathlib import Path

from specdm.config import RunConfig
from specdm.errors import ConfigError
from specdm.models.denoisers import build_denoiser
from specdm.pipelines import SpecDMPipeline
from specdm.recipes.sampling import Inputs
from specdm.recipes.skeleton import Recipe, Run
from specdm.recipes.skeleton import run as run_skeleton
from specdm.recipes.stages import Denoising, DenoiserStage, KLAutoencoderStage
from specdm.training.diffusion import Unconditional

__all__ = ["RECIPE", "JointInputs", "needs_masks", "run"]


class JointInputs(Inputs):
    """SpecDM's samples are drawn for nothing: images and masks come out of the denoiser together."""

    kind = "joint"


class JointDenoiser(DenoiserStage):
    """The denoiser of the whole latent ``(z_x[, z_x2], z_y)``."""

    method = "specdm"
    desc = "stage 2 (diffusion)"

    def checkpoint(self, cfg) -> str:
        return "diffusion"

    def prepare(self, run: Run) -> Denoising:
        ae, info = self.autoencoder(run)
        return Denoising(ae, self.encoded(run, ae), Unconditional(), info)

    def build(self, run: Run, prepared: Denoising):
        d, ae = run.cfg.diffusion, prepared.autoencoder
        return build_denoiser(ae.latent_channels, self.latent_size(run, ae), tuple(d.block_out_channels),
                              d.layers_per_block, d.norm_num_groups)

    def pipeline(self, run, net, prepared, scheduler):
        return SpecDMPipeline(prepared.autoencoder, net, prepared.info, scheduler)


def needs_masks(why: str):
    """A recipe's check: the data must have a class map (``why`` says what the method learns)."""

    def check(cfg: RunConfig, data) -> None:
        if not data.reference.has_mask:
            raise ConfigError(f"{why}, but the data has no class map", data.reference.source,
                              hint="give data.mask, or choose a method that needs no mask")

    return check


RECIPE = Recipe(stages=(KLAutoencoderStage(), JointDenoiser()), inputs=JointInputs,
                run_inputs=lambda cfg, data: JointInputs(), check=needs_masks("SpecDM learns image + mask pairs"))


def run(cfg: RunConfig, run_dir: Path, resume: bool = False, overwrite: bool = False, command: str = "") -> Path:
    """Train a SpecDM model on ``cfg``'s data and write its synthetic set, whatever ``cfg``'s method (the
    benchmark's generator): the run skeleton with ``cfg`` as a SpecDM config. Returns the dataset card's path."""
    from specdm.config import as_method

    return run_skeleton(as_method(cfg, "specdm"), run_dir, resume, overwrite, command)
