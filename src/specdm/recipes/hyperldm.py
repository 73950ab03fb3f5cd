"""The HyperLDM recipe: RGB-conditioned synthesis of spectral images.

scene -> windows + their RGB (``conditions.rgb``, one scale fitted on the training split) ->
conditional VQ autoencoder with the spectral-library head (the scene's wavelengths; a direct
head without them) -> RGB-conditioned latent denoiser -> K spectral versions of every RGB
image: the held-out regions' RGB in ``specdm run``, the user's files in
``specdm sample MODEL --rgb DIR_OR_FILE -k K``. Data sets are written without masks; the
RGB source of every sample is in ``metadata.json``.
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
from diffusers import DDPMScheduler

from specdm.conditions.rgb import RGB_SUFFIXES, WindowRGB, fit_rgb, read_rgb, rgb_from_scene
from specdm.config import Config
from specdm.data.datamodule import PatchSet, PreparedData, prepare_data
from specdm.data.spectra import library_for_scene
from specdm.datasets.paths import data_root
from specdm.errors import ConfigError, DataError
from specdm.models.autoencoders import HyperVQAutoencoder
from specdm.models.autoencoders.hyper_vq import library_calibration
from specdm.models.denoisers import build_denoiser
from specdm.models.discriminators import Discriminators
from specdm.models.info import ModelInfo
from specdm.output.card import write_rgb_card
from specdm.output.dataset import DatasetWriter, prepare_output
from specdm.pipelines import HyperLDMPipeline, load_pipeline
from specdm.recipes.estimate import dry_run_estimate
from specdm.recipes.run_dir import loop_config, prepare_run_dir
from specdm.recipes.sampling import check_resumable, dataset_metadata
from specdm.recipes.specdm import save_stage2
from specdm.schedulers import DEFAULT_SAMPLER
from specdm.training.diffusion import train_conditional_denoiser
from specdm.training.hyperldm import encode_pairs, pair_batch, train_vq_autoencoder

__all__ = ["read_rgb_files", "run", "synthesize_rgb", "train_stage1", "train_stage2"]

USGS_LIBRARY = "spectral_libraries/usgs_splib07_AV95/s07_AV95_envi.hdr"


def library_path(cfg: Config, ref) -> Path | None:
    """The spectral library file of the config for scene ``ref`` (None for the direct head); a missing file is a
    :class:`DataError` naming it and the remedies (checked by :func:`fit_inputs`, before any folder exists)."""
    h = cfg.hyperldm
    if h.library is None or ref.wavelengths is None:
        return None
    root = data_root(cfg.data.root)
    path = root / USGS_LIBRARY if h.library == "usgs" else Path(h.library)
    if not path.is_file():
        where = (f"hyperldm.library 'usgs' is looked up under the data folder {root} (data.root, else "
                 "SPECDM_DATA_DIR, else ../shared/data)" if h.library == "usgs" else "hyperldm.library")
        raise DataError("spectral library file not found", path,
                        hint=f"{where}; point it at an ENVI spectral library (.hdr), or set hyperldm.library: null "
                             "for the direct output head")
    return path


def scene_library(cfg: Config, data: PreparedData) -> tuple[np.ndarray | None, dict]:
    """The spectral library fitted to the scene's bands (None for the direct head) and what the card says."""
    h, ref = cfg.hyperldm, data.reference
    if h.library is None:
        return None, {"head": "direct output (hyperldm.library is null)"}
    if ref.wavelengths is None:
        return None, {"head": "direct output: the scene has no wavelengths, so no spectral library can be resampled "
                              "to its bands"}
    path = library_path(cfg, ref)
    select = h.library_select if h.max_spectra is not None else "all"
    spectra, names = library_for_scene(path, ref.wavelengths, max_spectra=h.max_spectra, select=select,
                                       seed=cfg.train.seed)
    return spectra, {"head": f"library mixing: softmax abundances over {len(spectra)} spectra x per-band scale",
                     "library": {"file": str(path), "spectra": len(spectra), "select": select, "names": names}}


def window_rgb(info: ModelInfo) -> WindowRGB:
    """The RGB of normalized windows as the model was trained on it (``specdm.json``)."""
    from specdm.data.normalize import Normalizer

    return WindowRGB(Normalizer.from_dict(info.normalization), info.wavelengths, info.band_names, info.source["rgb"])


def build_vq(cfg: Config, num_bands: int, library: np.ndarray | None, normalizer, mean: np.ndarray
             ) -> HyperVQAutoencoder:
    """The configured conditional VQ autoencoder (untrained), its library calibrated to the training data's
    normalization and ``mean`` spectrum (data units)."""
    a, h = cfg.autoencoder, cfg.hyperldm
    lib = offset = None
    if library is not None:
        lib, offset = library_calibration(library, normalizer.low, normalizer.high, mean)
    return HyperVQAutoencoder(num_bands, a.latent_channels, h.num_codes, tuple(a.block_out_channels), a.layers_per_block,
                              a.norm_num_groups, h.condition_channels, h.head_channels, h.use_rgb,
                              0 if lib is None else len(lib), lib, offset)


def fit_inputs(cfg: Config, data: PreparedData) -> tuple[np.ndarray, dict]:
    """The training pixels and the RGB settings fitted to them; fails (naming the file) on a data set this method
    cannot take: several dates, no way to make RGB from its bands, or a spectral library file that is missing. Cheap, so ``run`` calls it before it
    creates the run folder."""
    ref = data.reference
    if len(ref.images) > 1:
        raise ConfigError(f"RGB-conditioned synthesis makes one image per RGB image; '{ref.name}' has "
                          f"{len(ref.images)} dates", ref.source, hint="use a single-date data set")
    train_pixels = np.concatenate([ref.images[0][g.r0 : g.r1, g.c0 : g.c1].reshape(-1, ref.num_bands)
                                   for g in data.split["train"]])
    h = cfg.hyperldm
    chosen = ref.rgb_bands if cfg.data.rgb_bands is not None else None  # the user's data.rgb_bands, resolved
    settings = fit_rgb(train_pixels, ref.wavelengths, ref.band_names, h.rgb_method, chosen, h.rgb_percentile, ref.source)
    library_path(cfg, ref)  # a missing library file stops the run here
    return train_pixels, settings


def train_stage1(cfg: Config, run_dir: Path, resume: bool = False, data: PreparedData | None = None
                 ) -> HyperVQAutoencoder:
    """Fit the RGB and the library to the training split, train the VQ autoencoder; write ``model/autoencoder``,
    ``model/specdm.json`` and ``model/stage1_quality.json``."""
    run_dir = Path(run_dir)
    model_dir = run_dir / "model"
    if resume and (model_dir / "autoencoder" / HyperVQAutoencoder.config_name).is_file():
        return HyperVQAutoencoder.from_pretrained(model_dir / "autoencoder")
    data = data or prepare_data(cfg.data)
    ref, a, h = data.reference, cfg.autoencoder, cfg.hyperldm
    train_pixels, settings = fit_inputs(cfg, data)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    rgb = WindowRGB(data.normalizer, ref.wavelengths, ref.band_names, settings)
    library, about = scene_library(cfg, data)
    set_seed(cfg.train.seed)
    model = build_vq(cfg, ref.num_bands, library, data.normalizer, train_pixels.mean(0))
    critics = Discriminators(ref.num_bands) if h.discriminators else None
    loop = loop_config(cfg, a.steps, a.batch_size, a.lr)
    model = train_vq_autoencoder(data.train, model, rgb, loop, run_dir / "checkpoints" / "autoencoder", h.l1_weight,
                                 h.cosine_weight, h.commitment_weight, resume, critics, h.discriminator_weight,
                                 h.discriminator_every)
    if PartialState().is_main_process:
        model.save_pretrained(model_dir / "autoencoder")
        source = {"scenes": [s.name for s in data.scenes], "split": cfg.data.split.model_dump(),
                  "windows": len(data.train), "rgb": settings, "use_rgb": h.use_rgb, **about}
        ModelInfo.from_scene(ref, data.normalizer.to_dict(), cfg.data.patch_size, source).save(model_dir)
        held = data.held_out()
        report = {"train": reconstruction_scores(model, data.train, rgb),
                  "held_out": None if held is None else reconstruction_scores(model, held, rgb)}
        (model_dir / "stage1_quality.json").write_text(json.dumps(report, indent=1))
        r = report["held_out"] or report["train"]
        print(f"stage 1 reconstructs {'held-out' if held else 'training'} windows with PSNR {r['psnr']:.1f} dB, "
              f"SAM {r['sam_rad']:.3f} rad", flush=True)
    PartialState().wait_for_everyone()
    return model


@torch.no_grad()
def reconstruction_scores(model: HyperVQAutoencoder, patches: PatchSet, rgb, max_windows: int = 64) -> dict:
    """Reference scores (:func:`~specdm.metrics.reference.reference_scores`, normalized units clipped to [0, 1])
    of the VQ reconstructions of up to ``max_windows`` evenly spaced windows."""
    from specdm.metrics.reference import reference_scores

    model.eval()
    chosen = np.unique(np.linspace(0, len(patches) - 1, min(max_windows, len(patches))).round().astype(int)).tolist()
    x, c = pair_batch(patches, rgb, chosen)
    rec = torch.cat([model(x[s : s + 16], c[s : s + 16]).image for s in range(0, len(x), 16)]).clamp(0, 1)
    scores = reference_scores(rec.movedim(1, -1).numpy(), x.movedim(1, -1).numpy())
    return {"windows": len(chosen), **scores}


def train_stage2(cfg: Config, run_dir: Path, resume: bool = False, data: PreparedData | None = None
                 ) -> HyperLDMPipeline:
    """Quantized latents + RGB conditions of the training windows -> the RGB-conditioned denoiser; writes
    ``model/unet`` and ``model/scheduler``."""
    model_dir = Path(run_dir) / "model"
    info = ModelInfo.load(model_dir)
    if resume and info.method == "hyperldm" and info.latent_scale is not None and (model_dir / "unet").is_dir():
        return HyperLDMPipeline.from_pretrained(model_dir)
    ae = HyperVQAutoencoder.from_pretrained(model_dir / "autoencoder")
    data = data or prepare_data(cfg.data)
    info.check_scene(data.reference, model_dir)
    dcfg = cfg.diffusion
    kind = cfg.hyperldm.denoiser_rgb
    z, cond = encode_pairs(ae, data.train, window_rgb(info), dcfg.latent_augmentations, condition=kind)
    n, f = z.shape[1], ae.downsampling
    s = 1.0 / z.std().clamp_min(1e-6).item()
    scale = torch.tensor([s] * n + [1.0] * cond.shape[1])
    set_seed(cfg.train.seed)
    unet = build_denoiser(n, cfg.data.patch_size // f, tuple(dcfg.block_out_channels), dcfg.layers_per_block,
                          dcfg.norm_num_groups, condition_channels=cond.shape[1])
    loop = loop_config(cfg, dcfg.steps, dcfg.batch_size, dcfg.lr, dcfg.ema_decay)
    latents = torch.cat([z, cond], 1)
    unet = train_conditional_denoiser(unet, latents, torch.zeros_like(latents), scale, n, loop,
                                      Path(run_dir) / "checkpoints" / "hyperldm", cfg.hyperldm.p_uncond,
                                      cfg.schedule(), resume, desc="stage 2 (RGB-conditioned)",
                                      ssim_weight=cfg.hyperldm.ssim_weight)
    info.latent_scale = [s] * n
    info.method = "hyperldm"
    info.source = {**info.source, "p_uncond": cfg.hyperldm.p_uncond, "ssim_weight": cfg.hyperldm.ssim_weight,
                   "denoiser_rgb": kind}
    return save_stage2(HyperLDMPipeline(ae, unet, info, DDPMScheduler(**cfg.schedule())), model_dir)


def read_rgb_files(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """``(file, (H, W, 3) in [0, 1])`` for an RGB file, or every RGB file of a folder (sorted by name; other files
    are left alone). Every file is read before anything is sampled, so a bad one stops the run at once with a
    :class:`DataError` naming it."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in RGB_SUFFIXES)
        if not files:
            raise DataError(f"holds no RGB image ({', '.join(RGB_SUFFIXES)})", path)
    elif path.exists():
        files = [path]
    else:
        raise DataError("file not found", path)
    return [(str(f), read_rgb(f)) for f in files]


def synthesize_rgb(
    model_dir: Path,
    sources: list[tuple[str, np.ndarray]],
    out_dir: Path,
    k: int = 10,
    sampler: str = DEFAULT_SAMPLER,
    num_inference_steps: int | None = None,
    eta: float = 0.0,
    batch_size: int = 32,
    seed: int = 0,
    image_format: str = "tif",
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
    device: str | None = None,
) -> Path:
    """``k`` spectral versions of every RGB image in ``sources`` (``(name, (H, W, 3))``, any size): sample
    ``i * k + v`` is version ``v`` of source ``i``, drawn by the run seeded ``sample_seed(seed, i)``. Written
    without masks; ``metadata.json`` lists each sample's RGB source and version, ``README.md`` (the card) says
    which head made them. Returns the card's path."""
    from specdm.pipelines.base import sample_seed

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    pipe = load_pipeline(model_dir, device or "cpu")
    if not isinstance(pipe, HyperLDMPipeline):
        raise DataError(f"--rgb conditions RGB-conditioned (hyperldm) models; this one was made by "
                        f"'{pipe.info.method}'", model_dir)
    steps = pipe.steps(sampler, num_inference_steps)
    meta = dataset_metadata(pipe, model_dir, len(sources) * k, sampler, steps, eta, seed, image_format, "png", command)
    meta.update(masks=False, mask_format=None, patch_size=None, class_names=None,
                format={"image": image_format, "mask": None, "image_layout": "(bands, rows, cols) float32, the data's "
                        "own units, each the size of its RGB image"},
                seed_rule="version v of RGB source i is sample i*k+v; tile j of it uses SeedSequence([s_i, v*tiles+j]) "
                          "with s_i = SeedSequence([seed, i])",
                rgb={"versions_per_image": k, "tiling": "overlapping patch-size tiles half a patch apart, tent-"
                     "weighted, image reflected at its bottom/right edges and cropped back",
                     "sources": [{"samples": [i * k, i * k + k - 1], "rgb": name, "shape": list(a.shape[:2])}
                                 for i, (name, a) in enumerate(sources)]})
    meta_file = out_dir / "metadata.json"
    prepare_output(out_dir, resume, overwrite)
    check_resumable(meta_file, meta, resume, ("num_samples", "sampler", "seed", "model", "rgb"))
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_file.write_text(json.dumps(meta, indent=1))
    writer = DatasetWriter(out_dir, len(sources) * k, 1, pipe.info.num_bands, None, None, image_format)
    pending = set(writer.pending())
    for i, (name, rgb) in enumerate(sources):
        if not pending & set(range(i * k, i * k + k)):
            continue
        t0 = time.time()
        versions = pipe.sample_image(rgb, k, sample_seed(seed, i), batch_size, sampler=sampler,
                                     num_inference_steps=steps, eta=eta)
        for v, image in enumerate(versions):
            writer.write(i * k + v, image[None])
        print(f"{name}: {k} versions of {rgb.shape[0]}x{rgb.shape[1]} in {time.time() - t0:.1f} s", flush=True)
    meta["complete"] = not writer.pending()
    meta_file.write_text(json.dumps(meta, indent=1))
    return write_rgb_card(out_dir, meta)


def region_rgb(data: PreparedData, info: ModelInfo) -> list[tuple[str, np.ndarray]]:
    """The RGB image of every held-out region (the training regions when there is none), as the model sees RGB."""
    regions = data.split.get("test") or data.split["train"]
    out = []
    for g in regions:
        s = data.scenes[g.scene]
        crop = s.images[0][g.r0 : g.r1, g.c0 : g.c1]
        out.append((f"{s.name} rows {g.r0}-{g.r1} cols {g.c0}-{g.c1}",
                    rgb_from_scene(crop, s.wavelengths, s.band_names, **info.source["rgb"])))
    return out


def run(cfg: Config, run_dir: Path, resume: bool = False, overwrite: bool = False, command: str = "") -> Path:
    """Train both stages, then write ``hyperldm.num_versions`` spectral versions of each held-out region's RGB;
    returns the data set's card."""
    run_dir = Path(run_dir)
    t0 = time.time()
    prepare_run_dir(run_dir, resume, overwrite, create=False)
    data = prepare_data(cfg.data)
    fit_inputs(cfg, data)  # refuse what this method cannot take before the run folder exists
    if PartialState().is_main_process:
        prepare_run_dir(run_dir, resume, overwrite)
    print(f"{len(data.train)} training windows of {cfg.data.patch_size}x{cfg.data.patch_size}, "
          f"{data.reference.num_bands} bands", flush=True)
    s = cfg.sampling

    def sample(model_dir: Path, out_dir: Path, versions: int, resume: bool = False) -> Path:
        return synthesize_rgb(model_dir, region_rgb(data, ModelInfo.load(model_dir)), out_dir, versions, s.sampler,
                              s.num_inference_steps, s.eta, s.batch_size, s.seed, s.image_format, resume=resume,
                              command=command)

    if not resume:  # one version of every region in the dry run, scaled to num_versions
        dry_run_estimate(cfg, data, [train_stage1, train_stage2], sample, cfg.hyperldm.num_versions, 1,
                         started=t0)
    train_stage1(cfg, run_dir, resume, data)
    train_stage2(cfg, run_dir, resume, data)
    out = sample(run_dir / "model", run_dir / "synthetic", cfg.hyperldm.num_versions, resume)
    print(f"done in {time.time() - t0:.0f} s", flush=True)
    return out
