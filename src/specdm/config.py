"""Typed, validated configuration: YAML in, checked once here, plain values inward.

Every field has a documented default; ``specdm run indian_pines`` loads the
packaged ``configs/indian_pines.yaml``, a path loads the user's own file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from specdm.errors import ConfigError

SAMPLERS = ("ddpm", "ddim", "dpm++", "dpm++sde")  # implemented in specdm.schedulers


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitConfig(Strict):
    """Spatially disjoint split: ``rows``/``cols`` ranges ``[start, stop)``, or scene names."""

    kind: Literal["rows", "cols", "scenes", "none"] = "none"
    train: list = Field(default_factory=list)
    val: list | None = None
    test: list | None = None


class DataConfig(Strict):
    dataset: str | None = None  # a registered name (indian_pines, oscd, ...) or None for own files
    options: dict = Field(default_factory=dict)  # passed to the dataset loader (e.g. cities, size)
    root: str | None = None  # data folder; default $SPECDM_DATA_DIR or ../shared/data
    image: str | None = None  # own files: image cube (date 1)
    image2: str | None = None  # own files: date 2 (change detection)
    mask: str | None = None  # own files: class map
    class_names: list[str] | None = None
    ignore_index: int | None = None
    bands: list[int] | None = None  # band indices to keep (default all)
    split: SplitConfig = Field(default_factory=SplitConfig)
    percentiles: tuple[float, float] = (0.0, 100.0)  # normalization: these percentiles -> 0..1
    clip: bool = False
    patch_size: int = Field(32, ge=8)
    stride: int = Field(8, ge=1)
    min_labelled: float = Field(0.0, ge=0, le=1)  # drop windows with fewer labelled pixels
    max_blank: float = Field(0.5, ge=0, le=1)  # drop windows with more all-zero pixels

    @model_validator(mode="after")
    def _source(self):
        if self.dataset is None and (self.image is None or self.mask is None):
            raise ValueError("give either data.dataset (a registered name) or data.image and data.mask")
        return self


class AutoencoderConfig(Strict):
    kind: Literal["two_stream", "single_stream"] = "two_stream"
    latent_channels: int = Field(4, ge=1)  # per part: z has (dates + 1) * latent_channels channels
    block_out_channels: list[int] = Field(default_factory=lambda: [16, 32, 64])  # f = 2**(len-1)
    layers_per_block: int = 1
    norm_num_groups: int = 16
    sad_weight: float = 0.1  # lambda of L1 + lambda * SAD
    kl_weight: float = 1e-6
    mask_ignore_unlabelled: bool = False  # leave ignore_index pixels out of the mask loss
    balance_classes: bool = False  # inverse-sqrt-frequency class weights in the mask loss
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = 5e-4


class DiffusionConfig(Strict):
    block_out_channels: list[int] = Field(default_factory=lambda: [64, 128])
    layers_per_block: int = 2
    norm_num_groups: int = 32
    num_train_timesteps: int = 1000
    beta_start: float = 0.0015
    beta_end: float = 0.0155
    beta_schedule: str = "linear"
    latent_augmentations: int = Field(8, ge=1, le=8)  # D4 transforms encoded per window
    steps: int = Field(2500, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = 2e-4
    ema_decay: float | None = 0.999


class SamplingConfig(Strict):
    num_samples: int = Field(500, ge=1)
    # default from bench/samplers.py: within the noise of DDPM-1000's FD and mSAD at 50x the speed
    sampler: Literal[SAMPLERS] = "dpm++sde"
    num_inference_steps: int = Field(20, ge=1)
    eta: float = 0.0
    batch_size: int = Field(50, ge=1)
    seed: int = 0
    image_format: Literal["tif", "npy", "zarr"] = "tif"
    mask_format: Literal["png", "tif"] = "png"
    previews: int = Field(8, ge=0)


class TrainConfig(Strict):
    seed: int = 0
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    checkpoint_every: int = Field(500, ge=1)


class Config(Strict):
    name: str = "specdm"
    data: DataConfig
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    def schedule(self) -> dict:
        d = self.diffusion
        return dict(
            num_train_timesteps=d.num_train_timesteps, beta_start=d.beta_start, beta_end=d.beta_end, beta_schedule=d.beta_schedule
        )


def packaged_configs() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("specdm.configs").iterdir() if p.name.endswith(".yaml"))


def load_config(name_or_path: str, overrides: list[str] | None = None) -> Config:
    """Load a packaged config by name or a YAML file by path, apply ``key.sub=value`` overrides, validate."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError("config file not found", path)
        text = path.read_text()
    elif name_or_path in packaged_configs():
        text = resources.files("specdm.configs").joinpath(f"{name_or_path}.yaml").read_text()
    else:
        raise ConfigError(f"'{name_or_path}' is neither a YAML file nor a packaged config ({', '.join(packaged_configs())})")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"is not valid YAML: {e}", name_or_path) from None
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override '{item}' must look like section.key=value")
        node = raw
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        lines = [f"  {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines), name_or_path) from None
