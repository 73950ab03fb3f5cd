"""The controllable recipe (HSIGene): several data sets aligned to one wavelength grid -> one image-only
KL autoencoder -> the content encoder -> one ControlNet-steered latent denoiser -> images for any subset of six
conditions.

``data`` and ``more_data`` are each loaded, aligned (``align``), split and normalized on their own, then pooled;
every stage draws every data set equally often (scene-balanced). Stage 1 is SpecDM's KL-VAE image stream (the
autoencoder without a mask stream). The content encoder (``controllable.content: encoder`` with a content
condition) trains on the pooled windows before stage 2. Stage 2 trains the
:class:`~specdm.models.denoisers.controlnet.ControlledDenoiser` with per-condition dropout on the conditions of
every window (:mod:`specdm.conditions.controls`, the config's extractor parameters, stored in ``specdm.json`` so
sampling extracts them the same way). ``specdm run`` ends with an unconditional data set; ``specdm sample MODEL
--condition NAME=FILE`` steers one.

Units: every data set is normalized by its own training split, so the model and its samples live in those
normalized units (``specdm.json``'s normalization is the identity).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from specdm.conditions.controls import LOCAL_WIDTHS, read_condition, save_conditions
from specdm.config import RunConfig
from specdm.data.multiscene import MultiSceneData, balanced_items, prepare_sources
from specdm.errors import ConfigError
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.denoisers import ControlledDenoiser
from specdm.models.encoders import ContentEncoder
from specdm.models.info import ModelInfo
from specdm.pipelines import ControllablePipeline
from specdm.pipelines.controllable import content_settings
from specdm.recipes.sampling import Inputs
from specdm.recipes.skeleton import Recipe, Run, Stage
from specdm.recipes.stages import Denoising, DenoiserStage, KLAutoencoderStage, build_autoencoder
from specdm.training.autoencoder import kl_reconstruction, train_autoencoder
from specdm.training.content import train_content_encoder
from specdm.training.controllable import ConditionTables, condition_table

__all__ = ["RECIPE", "ConditionInputs", "extract_conditions", "prepare", "read_conditions"]


def prepare(cfg: RunConfig) -> MultiSceneData:
    """The aligned, separately normalized, pooled data sets of ``data`` and ``more_data``."""
    return prepare_sources([cfg.data, *cfg.more_data])


class ImageAutoencoderStage(KLAutoencoderStage):
    """Stage 1: the KL-VAE's image stream alone, on the pooled windows drawn scene-balanced; ``specdm.json`` holds
    every source's normalization, covered bands and text, and the pooled windows' pixel statistics."""

    def build(self, run: Run, prepared) -> SpectralAutoencoder:
        return build_autoencoder(run.cfg.autoencoder, run.data.sources[0].reference.num_bands, 0)

    def fit(self, run: Run, net, prepared, loop, ckpt_dir: Path):
        a = run.cfg.autoencoder
        return train_autoencoder(run.data.balanced(), net, loop, ckpt_dir, a.sad_weight, a.kl_weight, resume=run.resume)

    def save(self, run: Run, net, prepared) -> None:
        data, cfg = run.data, run.cfg
        net.save_pretrained(run.model_dir / "autoencoder")
        scenes = [p.reference for p in data.sources]
        source = {"scenes": data.names, "windows": {n: int((data.source_of_window == k).sum())
                                                    for k, n in enumerate(data.names)},
                  "normalization": {n: p.normalizer.to_dict() for n, p in zip(data.names, data.sources)},
                  "band_valid": {n: s.extra.get("band_valid") for n, s in zip(data.names, scenes)},
                  "texts": {n: s.text for n, s in zip(data.names, scenes)}}
        info = ModelInfo.from_scene(scenes[0], data.identity_normalizer().to_dict(), cfg.data.patch_size, source,
                                    cfg.method)
        info.task, info.class_names, info.ignore_index = "image", [], None
        info.real_stats = data.train.pixel_statistics().to_dict()
        info.save(run.model_dir)

    def quality(self, run: Run, net, prepared) -> dict:
        data = run.data
        sets = {"train": (kl_reconstruction(net, data.train), len(data.train))}
        for k, name in enumerate(data.names):
            held = data.held_out(k)
            sets[f"held_out/{name}"] = None if held is None else (kl_reconstruction(net, held), len(held))
        return sets


class ContentEncoderStage(Stage):
    """The content encoder (``controllable.content: encoder`` with a content condition): RGB view of a window ->
    unit vector, trained on the pooled windows (scene-balanced) before stage 2; ``model/content_encoder``."""

    def enabled(self, run: Run) -> bool:
        c = run.cfg.controllable
        return c.content == "encoder" and "content" in c.conditions

    def section(self, cfg):
        return cfg.controllable.content_encoder

    def checkpoint(self, cfg) -> str:
        return "content_encoder"

    def trained(self, run: Run) -> bool:
        return (run.model_dir / "content_encoder" / ContentEncoder.config_name).is_file()

    def prepare(self, run: Run) -> ModelInfo:
        return ModelInfo.load(run.model_dir)

    def build(self, run: Run, info: ModelInfo) -> ContentEncoder:
        return ContentEncoder(run.cfg.controllable.content_encoder.embedding_dim, 2 * info.num_bands)

    def fit(self, run: Run, net, info: ModelInfo, loop, ckpt_dir: Path):
        return train_content_encoder(run.data.balanced(), net, info.rgb_bands, loop, ckpt_dir, run.resume)

    def save(self, run: Run, net, info) -> None:
        net.save_pretrained(run.model_dir / "content_encoder")


class ControlledDenoiserStage(DenoiserStage):
    """Stage 2: the pooled windows' latents, their conditions (:func:`condition_table`) and the ControlNet-steered
    denoiser, trained with per-condition dropout."""

    method = "controllable"
    desc = "stage 2 (controllable)"

    def prepare(self, run: Run) -> Denoising:
        d, c, data = run.cfg.diffusion, run.cfg.controllable, run.data
        ae, info = self.autoencoder(run)
        path = run.model_dir / "content_encoder"
        encoder = ContentEncoder.from_pretrained(path) if ContentEncoderStage().enabled(run) else None
        latents = self.encoded(run, ae)
        content, widths = content_settings(encoder)
        texts = [p.reference.text for p in data.sources]
        local, glob = condition_table(data, info.rgb_bands, c.conditions, c.params, texts, d.latent_augmentations,
                                      content, widths)
        a = d.latent_augmentations
        latents.rows = (balanced_items(data.source_of_window)[:, None] * a + np.arange(a)).ravel()
        tables = ConditionTables(local, glob, c.conditions, c.p_drop, c.p_uncond, widths)
        return Denoising(ae, latents, tables, info, {"encoder": encoder, "widths": widths})

    def build(self, run: Run, prepared: Denoising) -> ControlledDenoiser:
        d, c, ae = run.cfg.diffusion, run.cfg.controllable, prepared.autoencoder
        widths = prepared.extra["widths"]
        return ControlledDenoiser(ae.latent_channels, self.latent_size(run, ae), ae.downsampling,
                                  tuple(LOCAL_WIDTHS[n] for n in c.conditions if n in LOCAL_WIDTHS),
                                  tuple(widths[n] for n in c.conditions if n in widths),
                                  tuple(d.block_out_channels), d.layers_per_block, d.norm_num_groups)

    def source(self, cfg) -> dict:
        return {"controllable": cfg.controllable.model_dump(mode="json")}

    def pipeline(self, run, net, prepared, scheduler):
        return ControllablePipeline(prepared.autoencoder, net, prepared.info, scheduler, prepared.extra["encoder"])


def read_conditions(pipe: ControllablePipeline, given: dict[str, str]) -> dict[str, np.ndarray]:
    """The conditions ``name -> file`` (text: the sentence) read and checked against ``pipe``'s model."""
    pipe.check_names(given)
    params = pipe.settings.get("params") or {}
    return {n: read_condition(n, v, pipe.info.patch_size, params.get(n), pipe.content, pipe.widths)
            for n, v in given.items()}


@dataclass
class ConditionInputs(Inputs):
    """Every sample of the set drawn for the same ``conditions`` (name -> file, or the sentence for text; none:
    unconditional) with per-condition ``guidance``; the conditions as used are written beside the samples
    (``conditions/<name>.npy``, ``.png`` for maps)."""

    kind = "conditions"
    options = {"conditions": "--condition", "guidance": "--condition-guidance"}
    has_masks = False

    conditions: dict = field(default_factory=dict)
    guidance: dict | None = None

    @classmethod
    def from_options(cls, options: dict) -> "ConditionInputs":
        return cls(options.get("conditions") or {}, options.get("guidance") or None)

    def bind(self, pipe, model_dir: Path, settings) -> None:
        self.arrays = read_conditions(pipe, self.conditions)
        if self.guidance:
            pipe.check_names(self.guidance)
            unused = sorted(set(self.guidance) - set(self.conditions))
            if unused:
                raise ConfigError(f"guidance for {', '.join(unused)}, which no --condition gives")
        self.model_guidance = pipe.settings.get("guidance") or {}
        self.order = pipe.conditions

    def metadata(self, out_dir: Path) -> dict:
        used = {}
        for n, v in self.conditions.items():
            used[n] = {"text": v} if n == "text" else {"file": str(Path(v).resolve()),
                                                       "sha256": hashlib.sha256(Path(v).read_bytes()).hexdigest()}
            used[n]["guidance"] = float({**self.model_guidance, **(self.guidance or {})}.get(n, 1.0))
            used[n]["as_used"] = str(Path(out_dir) / "conditions" / f"{n}.npy")
        return {"conditions": used,
                "rule": "every sample of the set is drawn for the same conditions; the rest are left out",
                "guidance_rule": "eps = eps_0 + sum_k g_k (eps_k - eps_{k-1}), conditions in the model's order "
                                 f"{self.order}"}

    def save(self, out_dir: Path) -> None:
        save_conditions(self.arrays, Path(out_dir) / "conditions")

    def draw(self, pipe, indices, seed, attempt, kw):
        return pipe(self.arrays, indices, seed, self.guidance, kw["sampler"], kw["num_inference_steps"], kw["eta"])

    def card(self, meta: dict) -> list[str]:
        given = meta["inputs"]
        lines = [f"- **{n}**: " + (f"\"{c['text']}\"" if "text" in c else f"`{c['file']}`") +
                 f", guidance {c['guidance']}" for n, c in given["conditions"].items()]
        return ["## Conditions", "", f"{given['rule'][0].upper()}{given['rule'][1:]}; {given['guidance_rule']}.", "",
                *(lines or ["- none: unconditional samples"]), ""]


RECIPE = Recipe(stages=(ImageAutoencoderStage(), ContentEncoderStage(), ControlledDenoiserStage()),
                inputs=ConditionInputs, run_inputs=lambda cfg, data: ConditionInputs(), prepare=prepare)


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
