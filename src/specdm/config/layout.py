"""Layout-conditioned synthesis (``method: layout``): SpecDM's stage 1, then a denoiser that paints images for
given class masks (real training masks under D4 and copy-paste, or the user's)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from specdm.config.method import Method
from specdm.config.sections import AutoencoderConfig, DiffusionConfig, RunConfig, Strict


class LayoutConfig(Strict):
    """The layout section: how the denoiser sees the mask, and where the layouts of ``specdm run`` come from (the
    same keys are the options of ``specdm sample`` for a layout model)."""

    p_uncond: float = Field(0.1, ge=0.0, lt=1.0)  # share of training steps without the condition (for guidance)
    # how the denoiser sees the mask latent: concatenated input channels, or ControlNet residuals (docs/results.md)
    conditioning: Literal["concat", "controlnet"] = "concat"
    guidance_scale: float = Field(1.0, ge=0.0)  # 1: conditional model; >1: follow the mask harder; 0: ignore it
    source: Literal["real", "dir"] = "real"  # real training masks (D4, copy-paste) or the user's mask folder
    masks_dir: str | None = None  # source "dir": a folder of masks of the patch size
    class_targets: dict[str, float] = Field(default_factory=dict)  # class name or value -> share of pixels
    balance: bool = False  # raise every labelled class toward an equal share
    copy_paste: float = Field(0.5, ge=0.0, le=1.0)  # chance of pasting one rarer-class region into a layout
    # filter retries draw new noise for the same layout (class shares stay as drawn); True: a new layout too
    redraw_layouts: bool = False

    @model_validator(mode="after")
    def _source(self):
        if self.source == "dir" and not self.masks_dir:
            raise ValueError("layout.source 'dir' needs layout.masks_dir")
        return self


class LayoutRunConfig(RunConfig):
    method: Literal["layout"] = "layout"
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig)
    layout: LayoutConfig = Field(default_factory=LayoutConfig)

    @model_validator(mode="after")
    def _two_stream(self):
        if self.autoencoder.kind != "two_stream":
            raise ValueError("method 'layout' conditions on the two-stream autoencoder's mask latent; "
                             "set autoencoder.kind: two_stream")
        return self


def card_section(meta: dict) -> list[str]:
    src = meta.get("source") or {}
    return ["## Model", "", f"- the mask reaches the denoiser as: {src.get('conditioning', 'concat')} "
            f"(condition dropped in {src.get('p_uncond', '?')} of the training steps, for guidance)", ""]


METHOD = Method("layout", LayoutRunConfig, "images painted for given class masks (layout-conditioned synthesis)",
                "specdm.recipes.layout", "specdm.pipelines.layout:LayoutPipeline", card_section)

__all__ = ["METHOD", "LayoutConfig", "LayoutRunConfig"]
