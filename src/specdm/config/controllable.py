"""Controllable synthesis (``method: controllable``, HSIGene): one model for several sensors aligned to one wavelength
grid, steered by any subset of six conditions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from specdm.config.method import Method
from specdm.config.sections import DataConfig, DiffusionConfig, KLAutoencoderConfig, RunConfig, Strict

CONDITIONS = ("edges", "lines", "sketch", "segmentation", "content", "text")  # specdm.conditions.controls


class ContentEncoderConfig(Strict):
    """The content encoder of controllable synthesis (``controllable.content: encoder``), trained before stage 2."""

    embedding_dim: int = Field(64, ge=2)  # the content vector's width
    steps: int = Field(400, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)


class ControllableConfig(Strict):
    """Controllable synthesis (``method: controllable``, HSIGene): one model for the aligned scenes of ``data`` and
    ``more_data``, steered by any subset of its conditions."""

    conditions: list[Literal[CONDITIONS]] = Field(default_factory=lambda: list(CONDITIONS))
    params: dict[str, dict] = Field(default_factory=dict)  # condition -> its extractor's keyword arguments
    p_drop: float = Field(0.3, ge=0.0, lt=1.0)  # each condition left out independently in this share of items
    p_uncond: float = Field(0.1, ge=0.0, lt=1.0)  # every condition left out together in this share of items
    guidance: dict[str, float] = Field(default_factory=dict)  # condition -> guidance scale at sampling (default 1)
    # the content condition: a CNN specdm trains on the real training windows (predicting each window's mean and
    # spectral spread from its RGB), or the fixed 64-d colour + gradient-orientation histogram
    content: Literal["encoder", "histogram"] = "encoder"
    content_encoder: ContentEncoderConfig = Field(default_factory=ContentEncoderConfig)

    @model_validator(mode="after")
    def _names(self):
        if len(set(self.conditions)) != len(self.conditions):
            raise ValueError("controllable.conditions names a condition twice")
        for what, keys in (("params", self.params), ("guidance", self.guidance)):
            unknown = sorted(set(keys) - set(self.conditions))
            if unknown:
                raise ValueError(f"controllable.{what} names {', '.join(unknown)}, which controllable.conditions "
                                 f"({', '.join(self.conditions)}) does not hold")
        return self


class ImageAutoencoderConfig(KLAutoencoderConfig):
    """The KL-VAE's image stream alone (no mask stream: the data sets' class sets differ)."""

    kind: Literal["two_stream"] = "two_stream"  # the two-stream family's image encoder; single_stream needs masks


class ControllableRunConfig(RunConfig):
    method: Literal["controllable"] = "controllable"
    autoencoder: ImageAutoencoderConfig = Field(default_factory=ImageAutoencoderConfig)
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig)
    controllable: ControllableConfig = Field(default_factory=ControllableConfig)
    # more data sets trained together with `data`: each split and normalized on its own, all on data.align's grid (an
    # entry without `align` takes data's) and cut into data.patch_size windows
    more_data: list[DataConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sources(self):
        if self.data.align is None:
            raise ValueError("method 'controllable' trains on scenes aligned to one wavelength grid; set data.align "
                             "(e.g. {outside: mask} for HSIGene's 400-1000 nm, 48 bands)")
        for k, d in enumerate(self.more_data):
            if "patch_size" not in d.model_fields_set:
                d.patch_size = self.data.patch_size
            if d.patch_size != self.data.patch_size:
                raise ValueError(f"more_data.{k}.patch_size {d.patch_size} differs from data.patch_size "
                                 f"{self.data.patch_size}: one model makes one window size")
            if d.align is None:
                d.align = self.data.align.model_copy()
            g, h = d.align, self.data.align
            if (g.start, g.stop, g.bands) != (h.start, h.stop, h.bands) or g.outside == "drop" or h.outside == "drop":
                raise ValueError(f"more_data.{k}.align must give data.align's grid and keep every band "
                                 f"(outside error or mask)")
        return self


def card_section(meta: dict) -> list[str]:
    settings = (meta.get("source") or {}).get("controllable") or {}
    names = ", ".join(settings.get("conditions") or []) or "none"
    return ["## Model", "", f"- conditions it was trained with: {names}",
            f"- content condition: {settings.get('content', 'histogram')}",
            f"- dropout: each condition {settings.get('p_drop', '?')}, all together {settings.get('p_uncond', '?')}",
            ""]


METHOD = Method("controllable", ControllableRunConfig, "images steered by any subset of six conditions (controllable "
                "synthesis, HSIGene)", "specdm.recipes.controllable",
                "specdm.pipelines.controllable:ControllablePipeline", card_section)
