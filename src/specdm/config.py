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
from specdm.schedulers import DEFAULT_SAMPLER, PAPER_SCHEDULE, SAMPLERS, default_steps

METHODS = ("specdm",)  # one recipe each in specdm.recipes


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitConfig(Strict):
    """Spatially disjoint split: ``rows``/``cols`` ranges ``[start, stop)``, or scene names."""

    kind: Literal["rows", "cols", "scenes", "none"] = "none"
    train: list = Field(default_factory=list)
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
        if self.dataset is not None:
            from specdm.datasets import check_options

            try:
                check_options(self.dataset, self.options)
            except ConfigError as e:
                raise ValueError(e.problem + (f" ({e.hint})" if e.hint else "")) from None
        return self


class AutoencoderConfig(Strict):
    kind: Literal["two_stream", "single_stream"] = "two_stream"
    latent_channels: int = Field(4, ge=1)  # per part: z has (dates + 1) * latent_channels channels
    block_out_channels: list[int] = Field(default_factory=lambda: [16, 32, 64])  # f = 2**(len-1)
    layers_per_block: int = 1
    norm_num_groups: int = 16
    padding_mode: Literal["zeros", "reflect"] = "zeros"  # "reflect": no border frame (docs/results.md)
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
    num_train_timesteps: int = PAPER_SCHEDULE["num_train_timesteps"]
    beta_start: float = PAPER_SCHEDULE["beta_start"]
    beta_end: float = PAPER_SCHEDULE["beta_end"]
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = PAPER_SCHEDULE["beta_schedule"]
    latent_augmentations: int = Field(8, ge=1, le=8)  # D4 transforms encoded per window
    steps: int = Field(2500, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = 2e-4
    ema_decay: float | None = 0.999


class SamplingConfig(Strict):
    """How ``specdm run`` samples, and every option of ``specdm sample``."""

    num_samples: int = Field(500, ge=1)
    sampler: Literal[SAMPLERS] = DEFAULT_SAMPLER
    num_inference_steps: int | None = Field(None, ge=1)  # None: the sampler's default (schedulers.default_steps)
    eta: float = Field(0.0, ge=0.0, le=1.0)
    batch_size: int = Field(50, ge=1)
    seed: int = 0
    image_format: Literal["tif", "npy", "zarr"] = "tif"
    mask_format: Literal["png", "tif"] = "png"
    previews: int = Field(8, ge=0)

    @model_validator(mode="after")
    def _steps(self):
        if self.num_inference_steps is None:
            self.num_inference_steps = default_steps(self.sampler)
        return self


class EvaluateOptions(Strict):
    """Every option of ``specdm evaluate``."""

    encoder_steps: int = Field(400, ge=1)
    seed: int = 0
    max_spectra: int = Field(20000, ge=10)
    max_samples: int = Field(2000, ge=2)


class BenchmarkOptions(Strict):
    """Every option of ``specdm benchmark``."""

    seeds: int = Field(3, ge=1)
    steps: int = Field(2000, ge=1)
    batch_size: int = Field(16, ge=2)
    lr: float = Field(1e-3, gt=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    models: list[Literal["unet", "segformer", "pixel", "siamdiff"]] | None = None
    amounts: list[int | float] = Field(default_factory=lambda: [1, 3, 5])
    limited: float = Field(0.25, ge=0.0, lt=1.0)
    arms: list[str] | None = None

    @model_validator(mode="after")
    def _amounts(self):
        if not self.amounts or any(not (a > 0) for a in self.amounts):
            raise ValueError("amounts must be positive multiples of the real window count, e.g. 1,3,5")
        return self


class TrainConfig(Strict):
    seed: int = 0
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    checkpoint_every: int = Field(500, ge=1)


class Config(Strict):
    name: str = "specdm"
    method: Literal[METHODS] = "specdm"  # the recipe `specdm run` follows (specdm.recipes)
    data: DataConfig
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _geometry(self):
        """The patch size must survive the autoencoder's downsampling and the U-Net's."""
        f = 2 ** (len(self.autoencoder.block_out_channels) - 1)
        g = 2 ** (len(self.diffusion.block_out_channels) - 1)
        p = self.data.patch_size
        if p % f:
            raise ValueError(f"data.patch_size {p} is not a multiple of the autoencoder's downsampling {f} "
                             f"(2 ** (len(autoencoder.block_out_channels) - 1))")
        if (p // f) % g:
            raise ValueError(f"data.patch_size {p} gives {p // f}x{p // f} latents, which the denoiser's "
                             f"{len(self.diffusion.block_out_channels)} levels cannot halve {len(self.diffusion.block_out_channels) - 1} "
                             f"times; use a multiple of {f * g}")
        return self

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
    return validate(Config, raw, name_or_path)


def validate(model: type[BaseModel], raw: dict, source=None):
    """``model.model_validate(raw)``, or one :class:`ConfigError` listing every bad field."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            where = ".".join(map(str, err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {where}: {msg}" if where else f"  {msg}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines), source) from None
