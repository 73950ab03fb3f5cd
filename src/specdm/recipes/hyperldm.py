"""The HyperLDM recipe: RGB-conditioned synthesis of spectral images.

scene -> windows + their RGB (``conditions.rgb``, one scale fitted on the training split) -> conditional VQ
autoencoder with the spectral-library head (the scene's wavelengths; a direct head without them) ->
RGB-conditioned latent denoiser -> K spectral versions of every RGB image: the held-out regions' RGB in ``specdm
run``, the user's files in ``specdm sample MODEL --rgb DIR_OR_FILE -k K``. Data sets are written without masks;
the RGB source of every sample is in ``metadata.json``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from specdm.conditions.rgb import RGB_SUFFIXES, WindowRGB, fit_rgb, read_rgb, rgb_from_scene
from specdm.config import RunConfig
from specdm.data.datamodule import PreparedData
from specdm.data.spectra import library_for_scene
from specdm.datasets.paths import data_root
from specdm.errors import ConfigError, DataError
from specdm.models.autoencoders import HyperVQAutoencoder
from specdm.models.autoencoders.hyper_vq import library_calibration
from specdm.models.denoisers import build_denoiser
from specdm.models.discriminators import Discriminators
from specdm.models.info import ModelInfo
from specdm.pipelines import HyperLDMPipeline
from specdm.pipelines.base import sample_seed
from specdm.recipes.sampling import Inputs
from specdm.recipes.skeleton import Recipe, Run
from specdm.recipes.stages import AutoencoderStage, Denoising, DenoiserStage, held_out_sets
from specdm.training.diffusion import LatentCondition, Latents
from specdm.training.hyperldm import encode_pairs, train_vq_autoencoder, vq_reconstruction

__all__ = ["RECIPE", "RGBInputs", "build_vq", "fit_inputs", "read_rgb_files", "region_rgb", "scene_library"]

USGS_LIBRARY = "spectral_libraries/usgs_splib07_AV95/s07_AV95_envi.hdr"


def library_path(cfg: RunConfig, ref) -> Path | None:
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


def scene_library(cfg: RunConfig, data: PreparedData) -> tuple[np.ndarray | None, dict]:
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


def build_vq(cfg: RunConfig, num_bands: int, library: np.ndarray | None, normalizer, mean: np.ndarray
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


def fit_inputs(cfg: RunConfig, data: PreparedData) -> tuple[np.ndarray, dict]:
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


class VQAutoencoderStage(AutoencoderStage):
    """Stage 1: the RGB fitted to the training split, the library head, the conditional VQ autoencoder (with the
    spatial and spectral discriminators when asked); ``specdm.json`` records the RGB, the head and the training
    windows' pixel statistics."""

    model_class = HyperVQAutoencoder

    def prepare(self, run: Run) -> dict:
        cfg, data = run.cfg, run.data
        ref = data.reference
        train_pixels, settings = fit_inputs(cfg, data)
        library, about = scene_library(cfg, data)
        return {"pixels": train_pixels, "rgb_settings": settings, "library": library, "about": about,
                "rgb": WindowRGB(data.normalizer, ref.wavelengths, ref.band_names, settings)}

    def build(self, run: Run, prepared: dict):
        ref, data = run.data.reference, run.data
        model = build_vq(run.cfg, ref.num_bands, prepared["library"], data.normalizer, prepared["pixels"].mean(0))
        return model, Discriminators(ref.num_bands) if run.cfg.hyperldm.discriminators else None

    def fit(self, run: Run, net, prepared: dict, loop, ckpt_dir: Path) -> HyperVQAutoencoder:
        h = run.cfg.hyperldm
        model, critics = net
        return train_vq_autoencoder(run.data.train, model, prepared["rgb"], loop, ckpt_dir, h.l1_weight,
                                    h.cosine_weight, h.commitment_weight, run.resume, critics,
                                    h.discriminator_weight, h.discriminator_every)

    def save(self, run: Run, net, prepared: dict) -> None:
        cfg, data = run.cfg, run.data
        net.save_pretrained(run.model_dir / "autoencoder")
        source = {"scenes": [s.name for s in data.scenes], "split": cfg.data.split.model_dump(),
                  "windows": len(data.train), "rgb": prepared["rgb_settings"], "use_rgb": cfg.hyperldm.use_rgb,
                  **prepared["about"]}
        info = ModelInfo.from_scene(data.reference, data.normalizer.to_dict(), cfg.data.patch_size, source,
                                    cfg.method)
        info.real_stats = data.train.pixel_statistics().to_dict()
        info.save(run.model_dir)

    def quality(self, run: Run, net, prepared: dict) -> dict:
        return held_out_sets(run.data, lambda patches: vq_reconstruction(net, patches, prepared["rgb"]))


class RGBDenoiserStage(DenoiserStage):
    """Stage 2: the quantized latents with the RGB input concatenated (a condition channel block of scale 1 and no
    noise), the denoiser of the latent; the paper's SSIM term and schedule come from the ``diffusion`` section."""

    method = "hyperldm"
    desc = "stage 2 (RGB-conditioned)"

    def prepare(self, run: Run) -> Denoising:
        ae, info = self.autoencoder(run, HyperVQAutoencoder)
        kind = run.cfg.hyperldm.denoiser_rgb
        z, cond = encode_pairs(ae, run.data.train, window_rgb(info), run.cfg.diffusion.latent_augmentations,
                               condition=kind)
        n = z.shape[1]
        s = 1.0 / z.std().clamp_min(1e-6).item()
        latents = torch.cat([z, cond], 1)
        scale = torch.tensor([s] * n + [1.0] * cond.shape[1])
        return Denoising(ae, Latents(latents, torch.zeros_like(latents), scale),
                         LatentCondition(n, run.cfg.hyperldm.p_uncond), info, {"condition_channels": cond.shape[1]})

    def build(self, run: Run, prepared: Denoising):
        d, ae = run.cfg.diffusion, prepared.autoencoder
        return build_denoiser(prepared.conditioning.target_channels, self.latent_size(run, ae),
                              tuple(d.block_out_channels), d.layers_per_block, d.norm_num_groups,
                              condition_channels=prepared.extra["condition_channels"])

    def scale(self, prepared: Denoising) -> list[float]:
        return prepared.latents.scale[: prepared.conditioning.target_channels].tolist()

    def source(self, cfg) -> dict:
        return {"p_uncond": cfg.hyperldm.p_uncond, "ssim_weight": cfg.diffusion.ssim_weight,
                "denoiser_rgb": cfg.hyperldm.denoiser_rgb}

    def pipeline(self, run, net, prepared, scheduler):
        return HyperLDMPipeline(prepared.autoencoder, net, prepared.info, scheduler)


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


@dataclass
class RGBInputs(Inputs):
    """``k`` spectral versions of every RGB image (``(name, (H, W, 3))``, any size; ``regions``: the held-out
    regions of a run's data, as the trained model makes RGB): sample ``i * k + v`` is version ``v`` of source
    ``i``, drawn by the run seeded ``sample_seed(seed, i)`` (its tiles: :meth:`HyperLDMPipeline.sample_image`)."""

    kind = "rgb"
    options = {"rgb": "--rgb", "versions": "--versions"}
    has_masks = False
    any_size = True
    seed_rule = ("version v of RGB source i is sample i*k+v; tile j of it uses SeedSequence([s_i, v*tiles+j]) with "
                 "s_i = SeedSequence([seed, i])")

    sources: list | None = None
    versions: int = 10
    regions: PreparedData | None = None

    @classmethod
    def from_options(cls, options: dict) -> "RGBInputs":
        if options.get("rgb") is None:
            raise ConfigError("RGB-conditioned (hyperldm) models make spectral versions of RGB images; give them with "
                              "--rgb DIR_OR_FILE")
        versions = options.get("versions") or 10
        if versions < 1:
            raise ConfigError(f"-k must be at least 1, got {versions}")
        return cls(read_rgb_files(options["rgb"]), versions)

    def bind(self, pipe, model_dir: Path, settings) -> None:
        self.batch_size = settings.batch_size  # tiles per network batch
        if self.regions is not None:
            self.sources = region_rgb(self.regions, pipe.info)

    def count(self, settings) -> int:
        return len(self.sources) * self.versions

    def scaled(self, n: int, settings):
        return RGBInputs(self.sources, n, self.regions), settings

    def estimate_units(self, settings) -> tuple[int, int]:
        return self.versions, 1  # one version of every source in the dry run, scaled to the versions

    def metadata(self, out_dir: Path) -> dict:
        files = [{"samples": [i * self.versions, i * self.versions + self.versions - 1], "rgb": name,
                  "shape": list(a.shape[:2]), "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}
                 for i, (name, a) in enumerate(self.sources)]
        return {"versions_per_image": self.versions, "sources": files,
                "tiling": "overlapping patch-size tiles half a patch apart, tent-weighted, image reflected at its "
                          "bottom/right edges and cropped back"}

    def units(self, pending: list[int], batch_size: int) -> list[list[int]]:
        """One unit per RGB source with pending versions (its tiles are batched inside the unit)."""
        by_source = {}
        for i in pending:
            by_source.setdefault(i // self.versions, []).append(i)
        return list(by_source.values())

    def draw(self, pipe, indices, seed, attempt, kw):
        source = indices[0] // self.versions
        rgb = self.sources[source][1]
        versions = pipe.sample_image(rgb, self.versions, sample_seed(seed, source), self.batch_size, **kw)
        return {"images": versions[[i - source * self.versions for i in indices], None], "masks": None}

    def card(self, meta: dict) -> list[str]:
        given = meta["inputs"]
        return ["## RGB sources", "", f"{given['versions_per_image']} spectral versions per RGB image; tiling: "
                f"{given['tiling']}.", "", "| samples | RGB | rows x cols |", "|---|---|---|",
                *[f"| {s['samples'][0]}-{s['samples'][1]} | `{s['rgb']}` | {s['shape'][0]} x {s['shape'][1]} |"
                  for s in given["sources"]], ""]


def check(cfg: RunConfig, data: PreparedData) -> None:
    """Refuse what this method cannot take (:func:`fit_inputs`) before the run folder exists."""
    fit_inputs(cfg, data)


RECIPE = Recipe(stages=(VQAutoencoderStage(), RGBDenoiserStage()), inputs=RGBInputs,
                run_inputs=lambda cfg, data: RGBInputs(None, cfg.hyperldm.num_versions, data), check=check)
