"""The layout recipe: SpecDM's stage 1, then a denoiser that paints images for given masks.

scene -> windows -> two-stream KL-VAE (SpecDM's stage) -> mask-conditioned latent denoiser -> images for layouts
(real masks under D4 and copy-paste, steered toward class targets, or the user's masks), optionally filtered by
label fidelity -> data set + card.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from specdm.config import LayoutConfig
from specdm.errors import CheckpointError, ConfigError
from specdm.models.denoisers import LatentControlledDenoiser, build_denoiser, build_latent_controlnet
from specdm.pipelines import LayoutPipeline
from specdm.recipes.sampling import Inputs
from specdm.recipes.skeleton import Recipe, Run
from specdm.recipes.specdm import needs_masks
from specdm.recipes.stages import Denoising, DenoiserStage, KLAutoencoderStage
from specdm.training.diffusion import LatentCondition

__all__ = ["RECIPE", "LayoutInputs"]


@dataclass
class LayoutInputs(Inputs):
    """Layouts per sample: the real training masks under D4 transforms (weighted toward class targets, with
    copy-paste), or the user's mask files; painted with classifier-free guidance. The options are the keys of the
    config's ``layout`` section (:class:`~specdm.config.LayoutConfig`)."""

    kind = "layouts"
    options = {"masks_dir": "--masks", "class_targets": "--classes", "balance": "--balance",
               "copy_paste": "--copy-paste", "guidance_scale": "--guidance", "redraw_layouts": "--redraw-layouts"}

    source: str = "real"
    masks_dir: str | None = None
    class_targets: dict = field(default_factory=dict)
    balance: bool = False
    copy_paste: float = 0.5
    guidance_scale: float = 1.0
    redraw_layouts: bool = False

    @classmethod
    def from_options(cls, options: dict) -> "LayoutInputs":
        from specdm.config import validate

        raw = {**options, "source": "dir" if options.get("masks_dir") else "real"}
        return cls.from_config(validate(LayoutConfig, raw, "specdm sample"))

    @classmethod
    def from_config(cls, section: LayoutConfig) -> "LayoutInputs":
        return cls(**{k: getattr(section, k) for k in ("source", "masks_dir", "class_targets", "balance",
                                                         "copy_paste", "guidance_scale", "redraw_layouts")})

    def bind(self, pipe, model_dir: Path, settings) -> None:
        from specdm.conditions.layouts import RealLayouts, class_targets, load_real_layouts, read_layouts

        self.check_settings(settings)
        info = pipe.info
        k = len(info.class_names)
        self.files, self.real = None, None
        if self.source == "dir":
            self.files, self.masks = read_layouts(self.masks_dir, info.patch_size, k)
        else:
            real = load_real_layouts(model_dir)
            shares = np.bincount(real.ravel(), minlength=k) / real.size
            targets = class_targets(self.class_targets, self.balance, info.class_names, info.ignore_index, shares)
            self.real = RealLayouts(real, k, targets, self.copy_paste, info.ignore_index, settings.seed)

    def check_settings(self, settings) -> None:
        if settings.hard_classes:
            given = [f for f, on in (("--masks", self.source == "dir"), ("--classes", bool(self.class_targets)),
                                     ("--balance", self.balance)) if on]
            if given:
                raise ConfigError(f"--hard-classes (sampling.hard_classes) sets the layouts' class targets; "
                                  f"{' and '.join(given)} set{'s' * (len(given) == 1)} them too: give one of them")

    def steer(self, targets, steered) -> bool:
        """Hard-class steering: the real layouts drawn toward ``targets``."""
        from specdm.conditions.layouts import RealLayouts

        r = self.real
        self.real = RealLayouts(r.masks, r.k, (targets, steered), self.copy_paste, r.ignore_index, r.seed)
        return True

    @property
    def retry(self) -> str:
        return "new noise and a new layout" if self.redraw_layouts else "new noise; the sample keeps its layout"

    def layouts(self, indices, attempt: int) -> np.ndarray:
        if self.real is None:
            return np.stack([self.masks[i % len(self.masks)] for i in indices])
        return self.real.layouts(indices, attempt)

    def metadata(self, out_dir: Path) -> dict:
        if self.real is None:
            digest = hashlib.sha256()
            for f in self.files:
                digest.update(Path(f).name.encode() + Path(f).read_bytes())
            layouts = {"source": "user masks", "files": [str(f) for f in self.files], "sha256": digest.hexdigest()}
        else:
            s = self.real
            layouts = {"source": "real training masks under D4 transforms", "copy_paste": s.copy_paste,
                       "class_targets": None if s.targets is None else [round(float(v), 4) for v in s.targets],
                       "real_shares": [round(float(v), 4) for v in s.real_shares]}
        return {"layouts": layouts, "guidance_scale": self.guidance_scale, "redraw_layouts": self.redraw_layouts}

    def draw(self, pipe, indices, seed, attempt, kw):
        # a filter retry keeps the sample's layout unless asked to redraw it too
        masks = self.layouts(indices, attempt if self.redraw_layouts else 0)
        return pipe(masks, indices, seed=seed, guidance_scale=self.guidance_scale, **kw)

    def card(self, meta: dict) -> list[str]:
        given = meta["inputs"]
        return ["## Layouts", "",
                "Each image was painted by a mask-conditioned denoiser for the mask stored with it "
                f"(classifier-free guidance scale {given.get('guidance_scale', 1.0)}).", "",
                *[f"- **{k}**: `{v}`" for k, v in given["layouts"].items() if k != "files"], ""]


class LayoutDenoiser(DenoiserStage):
    """The image latent's denoiser, the mask latent its condition (concatenated, or through a ControlNet)."""

    method = "layout"
    desc = "stage 2 (layout-conditioned)"

    def checkpoint(self, cfg) -> str:
        return "layout_controlnet" if cfg.layout.conditioning == "controlnet" else "layout"

    def prepare(self, run: Run) -> Denoising:
        ae, info = self.autoencoder(run)
        if ae.kind != "two_stream":
            raise CheckpointError("the layout method needs a two-stream autoencoder", run.model_dir / "autoencoder")
        latents = self.encoded(run, ae)
        target = ae.num_dates * ae.config["latent_channels"]
        return Denoising(ae, latents, LatentCondition(target, run.cfg.layout.p_uncond), info)

    def build(self, run: Run, prepared: Denoising):
        d, ae = run.cfg.diffusion, prepared.autoencoder
        c = ae.config["latent_channels"]
        controlnet = run.cfg.layout.conditioning == "controlnet"
        net = build_denoiser(prepared.conditioning.target_channels, self.latent_size(run, ae),
                             tuple(d.block_out_channels), d.layers_per_block, d.norm_num_groups,
                             condition_channels=0 if controlnet else c)
        return LatentControlledDenoiser(net, build_latent_controlnet(net, c)) if controlnet else net

    def source(self, cfg) -> dict:
        return {"p_uncond": cfg.layout.p_uncond, "conditioning": cfg.layout.conditioning}

    def pipeline(self, run, net, prepared, scheduler):
        unet, control = (net.unet, net.controlnet) if isinstance(net, LatentControlledDenoiser) else (net, None)
        return LayoutPipeline(prepared.autoencoder, unet, prepared.info, scheduler, controlnet=control)


RECIPE = Recipe(stages=(KLAutoencoderStage(), LayoutDenoiser()), inputs=LayoutInputs,
                run_inputs=lambda cfg, data: LayoutInputs.from_config(cfg.layout),
                check=needs_masks("layout-conditioned synthesis learns images for masks"))
