"""The controllable recipe (HSIGene): several data sets aligned to one wavelength grid -> one image-only
KL autoencoder -> one ControlNet-steered latent denoiser -> images for any subset of six conditions.

``data`` and ``more_data`` are each loaded, aligned (``align``), split and normalized on their own,
then pooled; both stages draw every data set equally often (scene-balanced). Stage 1 is SpecDM's
KL-VAE image stream (the autoencoder without a mask stream). Stage 2 trains the
:class:`~specdm.models.denoisers.controlnet.ControlledDenoiser` with per-condition dropout on the
conditions of every window (:mod:`specdm.conditions.controls`, the config's extractor parameters,
stored in ``specdm.json`` so sampling extracts them the same way). ``specdm run`` ends with an
unconditional data set; ``specdm sample MODEL --condition NAME=FILE`` steers one.

Units: every data set is normalized by its own training split, so the model and its samples live
in those normalized units (``specdm.json``'s normalization is the identity).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import yaml
from accelerate import PartialState
from accelerate.utils import set_seed
from diffusers import DDPMScheduler

from specdm import __version__
from specdm.conditions.controls import read_condition, save_conditions
from specdm.config import Config
from specdm.data.multiscene import MultiSceneData, balanced_items, prepare_sources
from specdm.errors import ConfigError
from specdm.metrics.spectral import ClassSpectra
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.denoisers import ControlledDenoiser
from specdm.models.encoders import ContentEncoder
from specdm.models.info import ModelInfo
from specdm.output.dataset import MARKER, DatasetWriter, image_dirs, prepare_output
from specdm.pipelines import ControllablePipeline, load_pipeline
from specdm.pipelines.controllable import content_settings
from specdm.recipes.estimate import dry_run_estimate
from specdm.recipes.run_dir import loop_config, prepare_run_dir
from specdm.recipes.sampling import check_resumable, finish_dataset
from specdm.recipes.specdm import save_stage2
from specdm.schedulers import DEFAULT_SAMPLER, default_steps
from specdm.training.autoencoder import reconstruction_report, train_autoencoder
from specdm.training.content import train_content_encoder
from specdm.training.controllable import condition_table, train_controlled_denoiser
from specdm.training.diffusion import encode_patches, latent_scale

__all__ = ["prepare", "run", "sample", "train_content", "train_stage1", "train_stage2"]


def prepare(cfg: Config) -> MultiSceneData:
    """The aligned, separately normalized, pooled data sets of ``data`` and ``more_data``."""
    return prepare_sources([cfg.data, *cfg.more_data])


def _balanced(data: MultiSceneData):
    """The pooled windows listed scene-balanced (every data set equally often), for stage 1's uniform draws."""
    from specdm.data.datamodule import PatchSet

    t = data.train
    return PatchSet(t.images, t.masks, [t.windows[i] for i in balanced_items(data.source_of_window)], t.size)


def _pixel_statistics(data: MultiSceneData) -> ClassSpectra:
    """Mean and spread of every pixel of the pooled training windows (model units) as one class: what the dataset
    card of an image-only set compares its samples with."""
    stats = ClassSpectra(1, data.sources[0].reference.num_bands)
    for i in range(len(data.train)):
        x = np.moveaxis(data.train.get(i)[0][0], 0, -1)
        stats.update(x, np.zeros(x.shape[:2], np.int64))
    return stats


def train_stage1(cfg: Config, run_dir: Path, resume: bool = False, data: MultiSceneData | None = None):
    """Train the image-only KL autoencoder on the pooled windows; write ``model/autoencoder``, ``specdm.json``."""
    run_dir = Path(run_dir)
    model_dir = run_dir / "model"
    if resume and (model_dir / "autoencoder" / SpectralAutoencoder.config_name).is_file():
        return SpectralAutoencoder.from_pretrained(model_dir / "autoencoder")
    data = data or prepare(cfg)
    a = cfg.autoencoder
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    set_seed(cfg.train.seed)
    ref = data.sources[0].reference
    model = SpectralAutoencoder("two_stream", ref.num_bands, 0, 1, a.latent_channels, tuple(a.block_out_channels),
                                a.layers_per_block, a.norm_num_groups, a.padding_mode, a.context_padding,
                                a.symmetric_downsampling)
    loop = loop_config(cfg, a.steps, a.batch_size, a.lr)
    model = train_autoencoder(_balanced(data), model, loop, run_dir / "checkpoints" / "autoencoder", a.sad_weight,
                              a.kl_weight, resume=resume)
    if PartialState().is_main_process:
        model.save_pretrained(model_dir / "autoencoder")
        held = [data.held_out(k) for k in range(len(data.names))]
        quality = {name: {"held_out": None if h is None else reconstruction_report(model, h)}
                   for name, h in zip(data.names, held)}
        (model_dir / "stage1_quality.json").write_text(json.dumps(quality, indent=1))
        scenes = [p.reference for p in data.sources]
        source = {"scenes": data.names, "windows": {n: int((data.source_of_window == k).sum())
                                                    for k, n in enumerate(data.names)},
                  "normalization": {n: p.normalizer.to_dict() for n, p in zip(data.names, data.sources)},
                  "band_valid": {n: s.extra.get("band_valid") for n, s in zip(data.names, scenes)},
                  "texts": {n: s.text for n, s in zip(data.names, scenes)}}
        info = ModelInfo.from_scene(ref, data.identity_normalizer().to_dict(), cfg.data.patch_size, source)
        info.task, info.class_names, info.ignore_index = "image", [], None
        info.real_stats = _pixel_statistics(data).to_dict()
        info.save(model_dir)
    PartialState().wait_for_everyone()
    return model


def train_content(cfg: Config, run_dir: Path, resume: bool = False,
                  data: MultiSceneData | None = None) -> ContentEncoder | None:
    """The content encoder (``controllable.content: encoder`` with a content condition), trained on the pooled
    training windows (scene-balanced) and written to ``model/content_encoder``; None for the histogram."""
    c = cfg.controllable
    if c.content != "encoder" or "content" not in c.conditions:
        return None
    model_dir = Path(run_dir) / "model"
    path = model_dir / "content_encoder"
    if resume and (path / ContentEncoder.config_name).is_file():
        return ContentEncoder.from_pretrained(path)
    data = data or prepare(cfg)
    info, e = ModelInfo.load(model_dir), c.content_encoder
    set_seed(cfg.train.seed)
    model = ContentEncoder(e.embedding_dim, 2 * info.num_bands)
    loop = loop_config(cfg, e.steps, e.batch_size, e.lr)
    model = train_content_encoder(_balanced(data), model, info.rgb_bands, loop,
                                  Path(run_dir) / "checkpoints" / "content_encoder", resume)
    if PartialState().is_main_process:
        model.save_pretrained(path)
    PartialState().wait_for_everyone()
    return model


def train_stage2(cfg: Config, run_dir: Path, resume: bool = False,
                 data: MultiSceneData | None = None) -> ControllablePipeline:
    """Train the content encoder (:func:`train_content`), encode the pooled windows, extract their conditions,
    train the controlled denoiser; write ``model/unet``."""
    model_dir = Path(run_dir) / "model"
    info = ModelInfo.load(model_dir)
    if resume and info.method == "controllable" and info.latent_scale is not None and (model_dir / "unet").is_dir():
        return ControllablePipeline.from_pretrained(model_dir)
    ae = SpectralAutoencoder.from_pretrained(model_dir / "autoencoder")
    data = data or prepare(cfg)
    d, c = cfg.diffusion, cfg.controllable
    encoder = train_content(cfg, run_dir, resume, data)
    mean, std = encode_patches(ae, data.train, d.latent_augmentations)
    scale = latent_scale(ae, mean, std)
    texts = [p.reference.text for p in data.sources]
    content, widths = content_settings(encoder)
    local, glob = condition_table(data, info.rgb_bands, c.conditions, c.params, texts, d.latent_augmentations,
                                  content, widths)
    a = d.latent_augmentations
    rows = (balanced_items(data.source_of_window)[:, None] * a + np.arange(a)).ravel()
    from specdm.conditions.controls import LOCAL_WIDTHS

    set_seed(cfg.train.seed)
    net = ControlledDenoiser(ae.latent_channels, cfg.data.patch_size // ae.downsampling, ae.downsampling,
                             tuple(LOCAL_WIDTHS[n] for n in c.conditions if n in LOCAL_WIDTHS),
                             tuple(widths[n] for n in c.conditions if n in widths),
                             tuple(d.block_out_channels), d.layers_per_block, d.norm_num_groups)
    loop = loop_config(cfg, d.steps, d.batch_size, d.lr, d.ema_decay)
    net = train_controlled_denoiser(net, mean, std, scale, local, glob, rows, c.conditions, loop,
                                    Path(run_dir) / "checkpoints" / "controllable", c.p_drop, c.p_uncond,
                                    cfg.schedule(), resume, widths)
    info.latent_scale = scale.tolist()
    info.method = "controllable"
    info.source = {**info.source, "controllable": c.model_dump(mode="json")}
    pipe = save_stage2(ControllablePipeline(ae, net, info, DDPMScheduler(**cfg.schedule()), encoder), model_dir)
    pipe.model_dir = model_dir
    return pipe


def read_conditions(pipe: ControllablePipeline, given: dict[str, str]) -> dict[str, np.ndarray]:
    """The conditions ``name -> file`` (text: the sentence) read and checked against ``pipe``'s model."""
    pipe.check_names(given)
    params = pipe.settings.get("params") or {}
    return {n: read_condition(n, v, pipe.info.patch_size, params.get(n), pipe.content, pipe.widths)
            for n, v in given.items()}


def sample(model_dir: Path, out_dir: Path, num_samples: int, conditions: dict[str, str] | None = None,
           guidance: dict[str, float] | None = None, sampler: str = DEFAULT_SAMPLER,
           num_inference_steps: int | None = None, eta: float = 0.0, batch_size: int = 50, seed: int = 0,
           image_format: str = "tif", resume: bool = False, overwrite: bool = False, command: str = "",
           device: str | None = None, previews: int = 8) -> Path:
    """Write ``num_samples`` images of a controllable model for the given ``conditions`` (name -> file, or the
    sentence for text; none: unconditional); the conditions used are written beside the samples
    (``conditions/<name>.npy``, ``.png`` for maps) and described in ``metadata.json``, whose path is returned.
    A complete set gets its dataset card (``README.md``, ``previews`` false-colour previews)."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    pipe = load_pipeline(model_dir, device or PartialState().device)
    if not isinstance(pipe, ControllablePipeline):
        raise ConfigError(f"--condition steers controllable models; this model ({pipe.info.method}) takes none",
                          model_dir)
    given = conditions or {}
    arrays = read_conditions(pipe, given)
    if guidance:
        pipe.check_names(guidance)
        unused = sorted(set(guidance) - set(given))
        if unused:
            raise ConfigError(f"guidance for {', '.join(unused)}, which no --condition gives")
    steps = num_inference_steps or default_steps(sampler)
    info = pipe.info
    prepare_output(out_dir, resume, overwrite)
    used = {}
    for n, v in given.items():
        used[n] = {"text": v} if n == "text" else {"file": str(Path(v).resolve()),
                                                   "sha256": hashlib.sha256(Path(v).read_bytes()).hexdigest()}
        used[n]["guidance"] = float({**(pipe.settings.get("guidance") or {}), **(guidance or {})}.get(n, 1.0))
    files = save_conditions(arrays, out_dir / "conditions")
    meta = {MARKER: __version__, "task": "image", "method": "controllable", "num_samples": num_samples,
            "images": image_dirs(1), "masks": False, "image_format": image_format,
            "format": {"image": image_format, "image_layout": "(bands, rows, cols) float32, normalized units"},
            "band_names": info.band_names, "wavelengths": info.wavelengths, "rgb_bands": info.rgb_bands,
            "class_names": [], "patch_size": info.patch_size, "normalization": info.normalization,
            "value_range": "each source data set normalized to [0, 1] by its training split; samples clipped to [0, 1]",
            "conditions": {n: {**used[n], "as_used": files.get(n)} for n in given},
            "condition_rule": "every sample of the set is drawn for the same conditions; the rest are left out",
            "guidance_rule": "eps = eps_0 + sum_k g_k (eps_k - eps_{k-1}), conditions in the model's order "
                             f"{pipe.conditions}",
            "sampler": {"name": sampler, "num_inference_steps": steps, "eta": eta}, "seed": seed,
            "seed_rule": "sample i uses numpy SeedSequence([seed, i])",
            "model": {"path": str(model_dir), **pipe.hashes(model_dir)}, "source": info.source, "command": command}
    meta_file = out_dir / "metadata.json"
    check_resumable(meta_file, meta, resume, ("num_samples", "seed", "model", "conditions", "sampler"))
    meta_file.write_text(json.dumps(meta, indent=1))
    writer = DatasetWriter(out_dir, num_samples, 1, info.num_bands, info.patch_size, None, image_format)
    todo = writer.pending()
    for s in range(0, len(todo), batch_size):
        idx = todo[s : s + batch_size]
        out = pipe(arrays, idx, seed, guidance, sampler, steps, eta)
        for i, images in zip(idx, out["images"]):
            writer.write(i, images)
    meta["complete"] = not writer.pending()
    meta_file.write_text(json.dumps(meta, indent=1))
    if meta["complete"] and PartialState().is_main_process:
        finish_dataset(out_dir, info, previews)
    return meta_file


def run(cfg: Config, run_dir: Path, resume: bool = False, overwrite: bool = False, command: str = "") -> Path:
    """Train both stages on the aligned data sets, then write an unconditional data set; returns its card's path
    (like every recipe's ``run``)."""
    run_dir = Path(run_dir)
    t0 = time.time()
    prepare_run_dir(run_dir, resume, overwrite, create=False)
    data = prepare(cfg)
    prepare_run_dir(run_dir, resume, overwrite)
    PartialState().print(f"{len(data.train)} training windows of {cfg.data.patch_size}x{cfg.data.patch_size} from "
                         f"{', '.join(f'{n} ({int((data.source_of_window == k).sum())})' for k, n in enumerate(data.names))}"
                         f", {data.sources[0].reference.num_bands} aligned bands, drawn scene-balanced")
    s = cfg.sampling

    def unconditional(model_dir: Path, out_dir: Path, n: int, resume: bool = False) -> Path:
        return sample(model_dir, out_dir, n, None, None, s.sampler, s.num_inference_steps, s.eta, s.batch_size,
                      s.seed, s.image_format, resume=resume, command=command)

    if not resume:
        dry_run_estimate(cfg, data, [train_stage1, train_stage2], unconditional, s.num_samples, s.batch_size,
                         started=t0)
    train_stage1(cfg, run_dir, resume, data)
    train_stage2(cfg, run_dir, resume, data)
    meta = unconditional(run_dir / "model", run_dir / "synthetic", s.num_samples, resume)
    PartialState().print(f"done in {time.time() - t0:.0f} s")
    return meta.parent / "README.md"


def extract_conditions(image: Path, out_dir: Path, model_dir: Path | None = None,
                       names=None) -> dict[str, str]:
    """``specdm conditions``: the image conditions of ``image`` written to ``out_dir`` (``<name>.npy``, and ``.png``
    for maps, to inspect or edit and give back with ``--condition name=FILE``); returns name -> file.

    ``image``: an RGB image file (PNG, JPEG, BMP, TIFF, or an ``(H, W, 3)`` ``.npy`` in [0, 1]); with ``model_dir``
    also a spectral window ``.npy`` of the model's bands (``(C, H, W)``, normalized units), whose RGB view is taken
    as in training. With ``model_dir`` the model's conditions, extractor parameters and content encoder are used.
    """
    from specdm.conditions.controls import CONDITIONS, compute, read_map, window_rgb

    image = Path(image)
    params: dict = {}
    content = None
    names = list(names or [n for n in CONDITIONS if n != "text"])
    a = read_map(image)
    if model_dir is not None:
        info = ModelInfo.load(Path(model_dir))
        settings = info.source.get("controllable")
        if settings is None:
            raise ConfigError(f"the model was made by method '{info.method}', which takes no conditions", model_dir)
        params = settings.get("params") or {}
        names = [n for n in settings["conditions"] if n != "text"]
        encoder_dir = Path(model_dir) / "content_encoder"
        content = ContentEncoder.from_pretrained(encoder_dir).embed if encoder_dir.is_dir() else None
        if a.ndim == 3 and a.shape[0] == info.num_bands and a.shape[-1] != 3:
            a = window_rgb(a, info.rgb_bands)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ConfigError(f"conditions are extracted from an RGB image (H, W, 3)"
                          f"{' or a spectral window (C, H, W) of the model' if model_dir else ''}; got shape {a.shape}",
                          image)
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise ConfigError(f"the RGB image must lie in [0, 1]; got {np.nanmin(a):g}..{np.nanmax(a):g}", image)
    return save_conditions({n: compute(n, a, params.get(n), content) for n in names}, out_dir)
