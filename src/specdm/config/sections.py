"""The sections every method's config shares, and :class:`RunConfig`, their base: YAML in, checked once, plain
values inward.

Every field has a documented default. Each method's own sections and its run config class live in
``config/<method>.py`` (:mod:`specdm.config`), which validates them on its own.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from specdm.errors import ConfigError
from specdm.schedulers import DEFAULT_SAMPLER, PAPER_SCHEDULE, SAMPLERS, default_steps


def _check_wavelengths(v: list[float]) -> list[float]:
    if not v:
        raise ValueError("is empty; give one wavelength (nm) per band, or leave it out")
    if not all(math.isfinite(w) and w > 0 for w in v):
        raise ValueError("wavelengths must be positive numbers (nm)")
    if max(v) < 30:
        raise ValueError(f"{min(v):g}..{max(v):g} look like micrometres; give nanometres (multiply by 1000)")
    return v


def _check_band_names(v: list[str]) -> list[str]:
    if not v or any(not str(n).strip() for n in v):
        raise ValueError("band names must be non-empty")
    dup = sorted({n for n in v if v.count(n) > 1})
    if dup:
        raise ValueError(f"band names must differ; repeated: {', '.join(dup)}")
    return v


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitConfig(Strict):
    """Spatially disjoint split: ``rows``/``cols`` ranges ``[start, stop)``, scene names, or one fold of a spatial
    fold design (``kind: folds``, docs/folds.md)."""

    kind: Literal["rows", "cols", "scenes", "folds", "none"] = "none"
    train: list = Field(default_factory=list)
    test: list | None = None
    # kind folds: a design file (.json), a packaged design (indian_pines, oscd, indian_pines_rows, oscd_protocol), or
    # null: one computed from the label map with k, block, guard and seed below (`specdm folds` writes one to a file)
    design: str | None = None
    fold: int | None = Field(None, ge=0)  # kind folds: the fold whose test part is held out (0..k-1)
    k: int | None = Field(None, ge=2)  # design null: folds (default 4; scenes: at most one per scene)
    block: int | None = Field(None, ge=1)  # design null: block size in pixels (default a quarter of data.patch_size)
    guard: int | None = Field(None, ge=0)  # design null: pixels kept free between training and test part (default 2)
    seed: int | None = None  # design null: the search's seed (default 0)

    @model_validator(mode="after")
    def _folds(self):
        settings = [f for f in ("k", "block", "guard", "seed") if getattr(self, f) is not None]
        if self.kind != "folds":
            given = [f for f in ("design", "fold", *settings) if getattr(self, f) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} apply to kind folds, not to kind {self.kind}")
            return self
        if self.fold is None:
            raise ValueError("kind folds needs fold: the index (from 0) of the fold whose test part is held out")
        if self.train or self.test:
            raise ValueError("kind folds takes its training and test parts from the design; leave out train and test")
        if self.design is not None and settings:
            raise ValueError(f"{', '.join(settings)} make a design from the label map (design: null); the design "
                             f"'{self.design}' fixes them already")
        return self


LAYOUT = Literal["rows_cols_bands", "bands_rows_cols", "bands_pixels", "pixels_bands"]  # specdm.io.layout.LAYOUTS
PIXEL_LAYOUTS = ("bands_pixels", "pixels_bands")
ARRAY_FILES = (".mat", ".npy", ".npz")
NAMED_ARRAY_FILES = (".mat", ".npz")
# own-file settings: data.<name> -> the keyword of specdm.datasets.load_files
OWN_FILE_OPTIONS = (
    "image_variable", "image2_variable", "mask_variable", "layout", "rows", "cols", "order", "labels",
    "mask_layout", "min_fraction", "label_remap", "band_names", "wavelengths", "rgb_bands",
)


class AlignConfig(Strict):
    """Resample every image onto one wavelength grid (:func:`specdm.data.align.align_scene`); HSIGene: 400-1000 nm,
    48 bands, linear interpolation."""

    start: float = Field(400.0, gt=0)  # nm, first grid band centre
    stop: float = Field(1000.0, gt=0)  # nm, last grid band centre
    bands: int = Field(48, ge=1)
    method: Literal["auto", "linear", "gaussian"] = "linear"  # auto: Gaussian bands when the scene's FWHM is known
    # grid bands the scene does not cover: error (list them), drop them, or mask (0, extra["band_valid"])
    outside: Literal["error", "drop", "mask"] = "error"
    max_gap: float | None = Field(None, gt=0)  # nm: grid bands inside a wider gap between two scene bands are uncovered

    @model_validator(mode="after")
    def _range(self):
        if self.bands > 1 and not self.stop > self.start:
            raise ValueError(f"stop {self.stop:g} nm must exceed start {self.start:g} nm")
        return self


class DataConfig(Strict):
    dataset: str | None = None  # a registered name (indian_pines, oscd, ...) or None for own files
    options: dict = Field(default_factory=dict)  # passed to the dataset loader (e.g. cities, size)
    root: str | None = None  # data folder; default $SPECDM_DATA_DIR or ../shared/data
    image: str | None = None  # own files: image cube (date 1)
    image2: str | None = None  # own files: date 2 (change detection)
    mask: str | None = None  # own files: class map, or a label cube (see labels)
    # --- own files: how to read them (README "Your own data") ---
    image_variable: str | None = None  # .mat/.npz: the variable holding the image (needed when it holds several arrays)
    image2_variable: str | None = None  # .mat/.npz: date 2's variable (default: image_variable)
    mask_variable: str | None = None  # .mat/.npz: the variable holding the labels
    layout: LAYOUT = "rows_cols_bands"  # axes of the image array in a .mat/.npy/.npz file
    rows: int | str | None = None  # pixel layouts: image rows, a number or the name of a scalar variable (nRow)
    cols: int | str | None = None  # pixel layouts: image columns, likewise
    order: Literal["F", "C"] = "F"  # pixel layouts: F = column after column (MATLAB), C = row after row
    labels: Literal["class_map", "abundances", "one_hot"] = "class_map"  # what the mask holds
    mask_layout: LAYOUT | None = None  # axes of the mask array (default: layout)
    min_fraction: float | None = Field(None, gt=0, le=1)  # label cubes: a lower top fraction -> ignore_index
    label_remap: dict[int, int] = Field(default_factory=dict)  # label value -> class value, before validation
    band_names: Annotated[list[str], AfterValidator(_check_band_names)] | None = None  # override/fill the file's
    wavelengths: Annotated[list[float], AfterValidator(_check_wavelengths)] | None = None  # band centres in nm
    rgb_bands: list[int | str] | None = None  # preview bands: 3 indices (from 0) or 3 wavelengths ("650nm")
    # --- every source ---
    # nominal band centres evenly spaced over [first, last] nm, for a data set that records none (e.g. moffett)
    wavelength_range: tuple[float, float] | None = None
    align: AlignConfig | None = None  # resample to a common wavelength grid (controllable synthesis: required)
    text: str | None = None  # what the scene shows ("farmland"): the text condition of controllable synthesis
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
    # label-scarce settings: keep about this share of the training part's labelled pixels, as whole square cells of
    # labels_cell pixels drawn at random (labels_seed); the rest of the training labels become ignore_index
    labels_keep: float = Field(1.0, gt=0, le=1)
    labels_cell: int = Field(8, ge=1)
    labels_seed: int = 0
    # super-resolution augmentation: data sets of super-resolved training scenes written by `specdm superres` (or
    # `specdm apply super-resolve`); their windows join the training windows (normalized like the real ones, cut
    # with the same cleaning at super_resolved_stride, default stride x the scene's scale). Every method's stages
    # train on both.
    super_resolved: list[str] = Field(default_factory=list)
    super_resolved_stride: int | None = Field(None, ge=1)

    @field_validator("rows", "cols", mode="before")
    @classmethod
    def _size(cls, v):
        if v is None:
            return v
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError(f"{v!r} is not a number of pixels; give a whole number or the name of a scalar variable")
        if isinstance(v, float):
            v = int(v)
        if isinstance(v, str):
            text = v.strip()
            if text.lstrip("+").isdigit():
                v = int(text)
            elif not text.isidentifier():
                raise ValueError(f"'{v}' is neither a number nor a variable name (such as nRow)")
        if isinstance(v, int) and v < 1:
            raise ValueError(f"{v} is not a positive number of pixels")
        return v

    @field_validator("rgb_bands", mode="before")
    @classmethod
    def _rgb(cls, v):
        if v is None:
            return v
        usage = ("give three bands (red, green, blue): indices from 0 such as [29, 19, 9], "
                 "or wavelengths such as [650nm, 550nm, 470nm]")
        if not isinstance(v, (list, tuple)) or len(v) != 3:
            raise ValueError(f"got {v!r}; {usage}")
        out = []
        for x in v:
            if isinstance(x, bool):
                raise ValueError(f"{x!r} is not a band; {usage}")
            if isinstance(x, int):
                if x < 0:
                    raise ValueError(f"band index {x} is negative; indices start at 0")
                out.append(x)
                continue
            if isinstance(x, float):
                raise ValueError(f"{x!r} is ambiguous: write a band index as a whole number (29) "
                                 f"or a wavelength with its unit ({x:g}nm)")
            m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*nm\s*", str(x))
            if not m:
                raise ValueError(f"'{x}' is neither a band index nor a wavelength in nm; {usage}")
            out.append(f"{float(m.group(1)):g}nm")
        return out

    @field_validator("label_remap", mode="before")
    @classmethod
    def _remap_pairs(cls, v):
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ValueError(f"got {v!r}; give label value -> class value pairs, such as {{-1: 0, 255: 0}}")
        out = {}
        for k, c in v.items():
            pair = []
            for x in (k, c):
                if isinstance(x, str) and x.strip().lstrip("+-").isdigit():
                    x = int(x)
                if isinstance(x, float) and x.is_integer():
                    x = int(x)
                if isinstance(x, bool) or not isinstance(x, int):
                    raise ValueError(f"{k!r}: {c!r} is not a pair of whole numbers (label value: class value)")
                pair.append(x)
            out[pair[0]] = pair[1]
        return out

    @field_validator("label_remap")
    @classmethod
    def _remap(cls, v):
        bad = {k: c for k, c in v.items() if c < 0}
        if bad:
            raise ValueError(f"maps to negative values {bad}; class values start at 0 "
                             f"(map unlabelled pixels to a class and name it in ignore_index)")
        return v

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

    @model_validator(mode="after")
    def _own_files(self):
        """Own-file settings: only with own files, and consistent with the files' kinds."""
        if self.ignore_index is not None and self.ignore_index < 0:
            raise ValueError(f"data.ignore_index {self.ignore_index} is not a class value (0 or more); to leave out "
                             f"pixels labelled {self.ignore_index}, map them with data.label_remap "
                             f"(e.g. {{{self.ignore_index}: 0}}) and set data.ignore_index to that class")
        fields = type(self).model_fields
        set_here = [k for k in OWN_FILE_OPTIONS if getattr(self, k) != fields[k].get_default(call_default_factory=True)]
        if self.dataset is not None:
            if set_here:
                verb = "apply" if len(set_here) > 1 else "applies"
                raise ValueError(f"{', '.join('data.' + k for k in set_here)} {verb} to own files "
                                 f"(data.image, data.mask), not to data set '{self.dataset}'")
            return self
        suffix = {k: Path(getattr(self, k)).suffix.lower() for k in ("image", "image2", "mask") if getattr(self, k)}
        pixel = self.layout in PIXEL_LAYOUTS
        if pixel and (self.rows is None or self.cols is None):
            missing = " and ".join(f"data.{k}" for k in ("rows", "cols") if getattr(self, k) is None)
            raise ValueError(f"data.layout {self.layout} needs {missing}: numbers, or names of scalar variables "
                             f"in the image file (e.g. rows: nRow)")
        if not pixel and (self.rows is not None or self.cols is not None):
            raise ValueError(f"data.rows and data.cols apply to layouts bands_pixels and pixels_bands; "
                             f"data.layout is {self.layout}")
        if self.order != "F" and not pixel and (self.mask_layout or self.layout) not in PIXEL_LAYOUTS:
            raise ValueError("data.order applies to layouts bands_pixels and pixels_bands only")
        for key in ("image", "image2"):
            if key in suffix and self.layout != "rows_cols_bands" and suffix[key] not in ARRAY_FILES:
                raise ValueError(f"data.layout {self.layout} applies to arrays in .mat/.npy/.npz files; "
                                 f"data.{key} is a {suffix[key] or 'suffix-less'} file, read as (rows, cols, bands)")
        if self.mask_layout not in (None, "rows_cols_bands") and suffix["mask"] not in ARRAY_FILES:
            raise ValueError(f"data.mask_layout {self.mask_layout} applies to arrays in .mat/.npy/.npz files; "
                             f"data.mask is a {suffix['mask'] or 'suffix-less'} file")
        for name in ("rows", "cols"):
            if isinstance(getattr(self, name), str) and suffix["image"] not in NAMED_ARRAY_FILES:
                raise ValueError(f"data.{name} names a variable '{getattr(self, name)}', but data.image is a "
                                 f"{suffix['image'] or 'suffix-less'} file; give a number")
        for var, key in (("image_variable", "image"), ("image2_variable", "image2"), ("mask_variable", "mask")):
            if getattr(self, var) is None:
                continue
            if key not in suffix:
                raise ValueError(f"data.{var} is set but data.{key} is not")
            if suffix[key] not in NAMED_ARRAY_FILES:
                raise ValueError(f"data.{var} picks a variable of a .mat or .npz file; data.{key} is a "
                                 f"{suffix[key] or 'suffix-less'} file")
        if self.min_fraction is not None:
            if self.labels == "class_map":
                raise ValueError("data.min_fraction applies to data.labels abundances or one_hot")
            if self.ignore_index is None:
                raise ValueError(f"data.min_fraction needs data.ignore_index: the class value that pixels whose "
                                 f"largest fraction is below {self.min_fraction:g} take")
        if self.band_names and self.wavelengths and len(self.band_names) != len(self.wavelengths):
            raise ValueError(f"data.band_names has {len(self.band_names)} names but data.wavelengths has "
                             f"{len(self.wavelengths)} values")
        return self

    def file_options(self) -> dict:
        """The keyword arguments of :func:`specdm.datasets.load_files` for these own files."""
        keys = ("image", "mask", "image2", "class_names", "ignore_index", *OWN_FILE_OPTIONS)
        return {k: getattr(self, k) for k in keys}


class StageOneConfig(Strict):
    """What every stage-1 autoencoder section has: the encoder/decoder sizes (f = 2 ** (len(block_out_channels) - 1))
    and the training loop's steps, batch size and learning rate."""

    block_out_channels: list[int] = Field(default_factory=lambda: [16, 32, 64])  # f = 2**(len-1)
    layers_per_block: int = 1
    norm_num_groups: int = 16
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = 5e-4

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


class KLAutoencoderConfig(StageOneConfig):
    """SpecDM's KL-VAE (diffusers' ``AutoencoderKL`` streams), stage 1 of the methods built on it."""

    latent_channels: int = Field(4, ge=1)  # per part: z has (dates + 1) * latent_channels channels
    padding_mode: Literal["zeros", "reflect"] = "zeros"  # padding of every convolution (docs/results.md)
    # pixels of reflected context around each window (a multiple of f; default 2 f): no border frame
    context_padding: int | None = Field(None, ge=0)
    symmetric_downsampling: bool = True  # pad both sides before each stride-2 convolution (no corner artefact)
    sad_weight: float = 0.1  # lambda of L1 + lambda * SAD
    kl_weight: float = 1e-6

    @model_validator(mode="after")
    def _context(self):
        f = self.downsampling
        if self.context_padding is None:
            self.context_padding = 2 * f
        if self.context_padding % f:
            raise ValueError(f"autoencoder.context_padding {self.context_padding} is not a multiple of the "
                             f"autoencoder's downsampling {f}")
        return self


class AutoencoderConfig(KLAutoencoderConfig):
    """The KL-VAE of images and masks: two streams (SpecDM's) or one (the paper's baseline)."""

    kind: Literal["two_stream", "single_stream"] = "two_stream"
    mask_ignore_unlabelled: bool = False  # leave ignore_index pixels out of the mask loss
    balance_classes: bool = False  # inverse-sqrt-frequency class weights in the mask loss


class DiffusionConfig(Strict):
    """Stage 2, the latent denoiser: its size, training schedule, prediction target and loss, for every method
    (:func:`specdm.training.diffusion.train_latent_denoiser`)."""

    block_out_channels: list[int] = Field(default_factory=lambda: [64, 128])
    layers_per_block: int = 2
    norm_num_groups: int = 32
    num_train_timesteps: int = PAPER_SCHEDULE["num_train_timesteps"]
    beta_start: float = PAPER_SCHEDULE["beta_start"]
    beta_end: float = PAPER_SCHEDULE["beta_end"]
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = PAPER_SCHEDULE["beta_schedule"]
    # betas rescaled so that alpha_bar_T = 0 (diffusers' rescale_betas_zero_snr): sampling from pure noise then
    # matches training; it needs v prediction (an epsilon prediction cannot give x0 at alpha_bar_T = 0)
    zero_terminal_snr: bool = False
    # what the denoiser predicts: the noise, or v = sqrt(a) eps - sqrt(1 - a) x0; default v with zero terminal SNR
    prediction_type: Literal["epsilon", "v_prediction"] | None = None
    ssim_weight: float = Field(0.0, ge=0.0)  # loss: MSE + ssim_weight * (1 - SSIM(x0_hat, x0)) on the latents
    latent_augmentations: int = Field(8, ge=1, le=8)  # D4 transforms encoded per window
    steps: int = Field(2500, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = 2e-4
    ema_decay: float | None = 0.999

    @model_validator(mode="after")
    def _prediction(self):
        if self.prediction_type is None:
            self.prediction_type = "v_prediction" if self.zero_terminal_snr else "epsilon"
        if self.zero_terminal_snr and self.prediction_type == "epsilon":
            raise ValueError("diffusion.zero_terminal_snr needs prediction_type v_prediction: at alpha_bar_T = 0 an "
                             "epsilon prediction cannot give x0")
        return self

    def schedule(self) -> dict:
        """The noise schedule (scheduler keyword arguments): the betas, and the rescaling and the prediction type
        where they differ from diffusers' defaults."""
        out = dict(num_train_timesteps=self.num_train_timesteps, beta_start=self.beta_start, beta_end=self.beta_end,
                   beta_schedule=self.beta_schedule)
        if self.zero_terminal_snr:
            out["rescale_betas_zero_snr"] = True
        if self.prediction_type != "epsilon":
            out["prediction_type"] = self.prediction_type
        return out


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
    filter_threshold: float | None = Field(None, ge=0.0, le=1.0)  # drop pairs whose label fidelity is below
    max_attempts: int = Field(4, ge=1)  # tries per sample before a filtered sample is dropped
    # class-aware decoding of samples with masks (specdm.augment.painting): each class region repainted from real
    # training data of that class: none | residual (residual patches) | snap (nearest real spectra) | snap+residual
    decode: Literal["none", "residual", "snap", "snap+residual"] = "none"
    snap_alpha: float = Field(1.0, ge=0.0, le=1.0)  # snap: weight of the real spectrum (1 = replaced)
    snap_k: int = Field(5, ge=1)  # snap: the real spectrum is drawn among this many nearest of the class
    # snap: draw from every reference spectrum of the class, or only those the cleaning rule accepts for it
    snap_pool: Literal["all", "accepted"] = "all"
    # pixel-level label cleaning (specdm.augment.cleaning): pixels the real-trained scorer rejects -> ignore_index
    clean: Literal["none", "loss_ratio"] = "none"
    clean_ratio: float = Field(1.25, gt=0.0)  # loss_ratio: reject above this times the class's mean real loss
    clean_min_kept: float = Field(0.5, ge=0.0, le=1.0)  # a pair keeping fewer of its labelled pixels is redrawn
    # real pixels the per-class rule (and hard-class steering) is calibrated on: blocks = stored training pixels of
    # scene blocks a forest did not see (spatially held out); oob = the forest's out-of-bag pixels (optimistic)
    clean_calibration: Literal["blocks", "oob"] = "blocks"
    # hard-class steering: spend samples on the classes the real-trained scorer finds hardest (its per-class loss)
    hard_classes: bool = False
    hard_strength: float = Field(1.0, gt=0.0)  # target share ~ real share x (loss / mean loss) ** strength

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
    classical: str = "classical"  # recipe of the classical arms (specdm.augment.classical.RECIPES) or "auto"
    primary: str | None = None  # "ARM vs REFERENCE" or "MODEL/SETTING/ARM vs REFERENCE"; default: see plan.py
    self_training_threshold: float = Field(0.9, gt=0.0, le=1.0)
    speed: Literal["fast", "plain"] = "fast"  # the task models' training step (specdm.speed; bf16 where it helps)

    @model_validator(mode="after")
    def _amounts(self):
        if not self.amounts or any(not (a > 0) for a in self.amounts):
            raise ValueError("amounts must be positive multiples of the real window count, e.g. 1,3,5")
        return self


class SuperResRGBConfig(Strict):
    """The first stage of ``specdm superres``: a pixel-space conditional diffusion model that super-resolves the RGB
    bands (DSRNet-like: the bicubic-upsampled low-resolution RGB is concatenated to the noisy residual; the residual
    to the bicubic image is denoised)."""

    block_out_channels: list[int] = Field(default_factory=lambda: [32, 64])
    layers_per_block: int = Field(1, ge=1)
    norm_num_groups: int = Field(16, ge=1)
    num_train_timesteps: int = Field(1000, ge=2)
    beta_start: float = Field(1e-4, gt=0)
    beta_end: float = Field(0.02, gt=0)
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    steps: int = Field(2000, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(5e-4, gt=0)
    ema_decay: float | None = 0.999
    sampler: Literal[SAMPLERS] = DEFAULT_SAMPLER  # how the RGB residual is sampled when scenes are super-resolved
    num_inference_steps: int = Field(20, ge=1)

    def schedule(self) -> dict:
        return dict(num_train_timesteps=self.num_train_timesteps, beta_start=self.beta_start, beta_end=self.beta_end,
                    beta_schedule=self.beta_schedule)


class SuperResGuidedConfig(Strict):
    """The second stage: a compact guided network (RGAN-like) that super-resolves every band with the
    high-resolution RGB as guidance; L1 loss, AdamW from ``lr`` to ``lr_min`` on a cosine."""

    width: int = Field(32, ge=4)  # feature channels (even: half attend in horizontal, half in vertical windows)
    blocks: int = Field(2, ge=1)
    heads: int = Field(2, ge=2)
    window: tuple[int, int] = (4, 16)  # rows x cols of a horizontal window; vertical windows are cols x rows
    steps: int = Field(3000, ge=1)
    batch_size: int = Field(8, ge=1)
    # measured on Indian Pines, 300 steps: 2e-3 -> 2e-4 gained 0.15 dB over bicubic at x4, 5e-4 -> 5e-5 0.03 dB
    lr: float = Field(2e-3, gt=0)
    lr_min: float = Field(2e-4, ge=0)
    ema_decay: float | None = None

    @model_validator(mode="after")
    def _shape(self):
        if self.width % self.heads or (self.width // 2) % (self.heads // 2):
            raise ValueError(f"superres.guided.width {self.width} must split into {self.heads} heads, half of them "
                             "in horizontal and half in vertical windows")
        return self


class SuperResConfig(Strict):
    """``specdm superres``: the two-stage super-resolver of HSIGene (RGB first, then every band guided by it), trained
    on the config's own training part, and the super-resolved scenes it writes (``data.super_resolved`` reads them)."""

    scales: list[int] = Field(default_factory=lambda: [2, 4])  # trained together; each written as its own scenes
    rgb_images: str | None = None  # a folder of high-resolution RGB images (PNG, JPEG, TIFF) the RGB stage also learns
    rgb_crops_per_image: int = Field(64, ge=1)
    stride: int | None = Field(None, ge=1)  # training windows of the HSI (default patch_size // 4)
    augmentations: int = Field(8, ge=1, le=8)  # D4 transforms of the RGB stage's stored pairs
    rgb: SuperResRGBConfig = Field(default_factory=SuperResRGBConfig)
    guided: SuperResGuidedConfig = Field(default_factory=SuperResGuidedConfig)

    @field_validator("scales")
    @classmethod
    def _scales(cls, v):
        if not v or any(s < 2 for s in v) or len(set(v)) != len(v):
            raise ValueError(f"got {v}; give distinct whole factors of at least 2, e.g. [2, 4]")
        return sorted(v)


class TrainConfig(Strict):
    seed: int = 0
    # fast: bf16 autocast + channels-last where the hardware runs bf16 natively, fused AdamW, foreach clipping and
    # EMA (specdm.speed, docs/performance.md); plain: the float32 path of specdm 0.1, bit for bit
    speed: Literal["fast", "plain"] = "fast"
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"  # auto: bf16 in fast mode where native
    checkpoint_every: int = Field(500, ge=1)


class RunConfig(Strict):
    """What every method's config holds. Each method's class (``config/<method>.py``) adds its stage sections
    (``autoencoder``, ``diffusion``: their types are the method's) and its own section, and validates them."""

    name: str = "specdm"
    method: str
    data: DataConfig
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    superres: SuperResConfig = Field(default_factory=SuperResConfig)  # `specdm superres` on this config's data

    @model_validator(mode="after")
    def _geometry(self):
        """The patch size must survive the autoencoder's downsampling and the denoiser's."""
        f = self.autoencoder.downsampling
        levels = len(self.diffusion.block_out_channels)
        g = 2 ** (levels - 1)
        p = self.data.patch_size
        if p % f:
            raise ValueError(f"data.patch_size {p} is not a multiple of the autoencoder's downsampling {f} "
                             f"(2 ** (len(autoencoder.block_out_channels) - 1))")
        if (p // f) % g:
            raise ValueError(f"data.patch_size {p} gives {p // f}x{p // f} latents, which the denoiser's {levels} "
                             f"levels cannot halve {levels - 1} times; use a multiple of {f * g}")
        return self

    def schedule(self) -> dict:
        """The noise schedule of stage 2 (scheduler keyword arguments)."""
        return self.diffusion.schedule()


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
