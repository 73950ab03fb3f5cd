"""``specdm superres CONFIG``: HSIGene's super-resolution augmentation on the run skeleton.

The config's training part (never its test part) teaches a two-stage super-resolver, the run skeleton's stages
(:class:`~specdm.recipes.skeleton.Stage` hooks, the shared engine, checkpoints, ``--resume``):

1. **RGB stage** (:class:`RGBStage`): a pixel-space conditional diffusion model (the shared denoiser step) learns the
   residual between the scene's RGB bands and their bicubic upsampling after downsampling by each scale, and that of
   crops of any high-resolution RGB images the user gives (``superres.rgb_images``);
2. **guided stage** (:class:`GuidedStage`): a compact guided network learns every band from its bicubic upsampling
   with the true high-resolution RGB as guidance.

Then :func:`write_scenes` super-resolves every training region at every scale (the RGB by stage 1, then every band
guided by it) and writes them, their masks upsampled by nearest neighbour, as a data set marked as derived
(``RUN/scenes``: ``metadata.json`` with ``derived``, a card saying what it is and when not to trust it). A config
reads such sets with ``data.super_resolved``: every method's generator then trains on real + super-resolved windows.

The run folder::

    config.yaml   model/ (rgb_unet, scheduler, guided, specdm.json)   checkpoints/superres_rgb, superres_guided
    scenes/       the super-resolved training scenes (a data set, any size, with masks)
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from accelerate import PartialState
from diffusers import DDPMScheduler

from specdm import __version__
from specdm.config import RunConfig
from specdm.data.datamodule import PatchSet, PreparedData, prepare_data
from specdm.data.superres import DERIVED_KIND
from specdm.models.denoisers import build_denoiser
from specdm.models.info import ModelInfo
from specdm.models.superres import GuidedSuperResolver
from specdm.output.card import save_preview, source_licence
from specdm.output.dataset import MARKER, DatasetWriter, prepare_output
from specdm.pipelines.base import MODEL_INDEX, sample_seed
from specdm.pipelines.superres import METHOD, SuperResolutionPipeline
from specdm.recipes.estimate import dry_run_estimate
from specdm.recipes.run_dir import prepare_run_dir
from specdm.recipes.sampling import check_resumable
from specdm.recipes.skeleton import Run, Stage, claim, stage_functions, train_stage
from specdm.training.diffusion import LatentCondition, train_latent_denoiser
from specdm.training.superres import rgb_crops, rgb_pairs, train_guided

__all__ = ["STAGES", "GuidedStage", "RGBStage", "run_superres", "training_windows", "write_scenes"]

SCENES = "scenes"


def training_windows(run: Run) -> PatchSet:
    """Every window of the training part, whatever its labels (``superres.stride``, default a quarter patch)."""
    sr = run.cfg.superres
    return run.data.image_windows(stride=sr.stride or max(1, run.cfg.data.patch_size // 4))


def user_rgb(cfg: RunConfig) -> list[np.ndarray]:
    """The high-resolution RGB images of ``superres.rgb_images`` (every RGB file of the folder; none: [])."""
    folder = cfg.superres.rgb_images
    if folder is None:
        return []
    from specdm.recipes.hyperldm import read_rgb_files

    return [a for _, a in read_rgb_files(folder)]


class RGBStage(Stage):
    """Stage 1: the RGB bands' residual to bicubic, denoised by a small conditional U-Net (the shared step)."""

    def section(self, cfg):
        return cfg.superres.rgb

    def checkpoint(self, cfg) -> str:
        return "superres_rgb"

    def trained(self, run: Run) -> bool:
        return (run.model_dir / "rgb_unet").is_dir() and (run.model_dir / "specdm.json").is_file()

    def prepare(self, run: Run) -> dict:
        sr, p = run.cfg.superres, run.cfg.data.patch_size
        patches = training_windows(run)
        extra = rgb_crops(user_rgb(run.cfg), p, sr.rgb_crops_per_image, run.cfg.train.seed)
        latents, scale = rgb_pairs(patches, run.data.reference.rgb_bands, sr.scales, sr.augmentations, extra)
        return {"latents": latents, "scale": scale, "windows": len(patches), "crops": len(extra)}

    def build(self, run: Run, prepared: dict):
        r = run.cfg.superres.rgb
        return build_denoiser(3, run.cfg.data.patch_size, tuple(r.block_out_channels), r.layers_per_block,
                              r.norm_num_groups, condition_channels=3)

    def fit(self, run: Run, net, prepared: dict, loop, ckpt_dir: Path):
        return train_latent_denoiser(net, prepared["latents"], LatentCondition(3, 0.0), loop, ckpt_dir,
                                     run.cfg.superres.rgb.schedule(), run.resume, "RGB stage (super-resolution)")

    def save(self, run: Run, net, prepared: dict) -> None:
        cfg, data = run.cfg, run.data
        sr = cfg.superres
        net.save_pretrained(run.model_dir / "rgb_unet")
        DDPMScheduler(**sr.rgb.schedule()).save_pretrained(run.model_dir / "scheduler")
        source = {"scenes": [s.name for s in data.scenes], "split": cfg.data.split.model_dump(),
                  "windows": prepared["windows"], "scales": list(sr.scales), "rgb_images": sr.rgb_images,
                  "rgb_crops": prepared["crops"], "rgb_stage": sr.rgb.model_dump(mode="json"),
                  "guided_stage": sr.guided.model_dump(mode="json"),
                  "degradation": "antialiased bicubic downsampling by the scale, bicubic upsampling back"}
        info = ModelInfo.from_scene(data.reference, data.normalizer.to_dict(), cfg.data.patch_size, source, METHOD)
        info.latent_scale = [prepared["scale"]]
        info.save(run.model_dir)


class GuidedStage(Stage):
    """Stage 2: every band from its bicubic upsampling, guided by the true high-resolution RGB (L1, cosine lr)."""

    def section(self, cfg):
        return cfg.superres.guided

    def checkpoint(self, cfg) -> str:
        return "superres_guided"

    def trained(self, run: Run) -> bool:
        return (run.model_dir / "guided").is_dir() and (run.model_dir / MODEL_INDEX).is_file()

    def prepare(self, run: Run) -> PatchSet:
        return training_windows(run)

    def build(self, run: Run, prepared):
        g = run.cfg.superres.guided
        return GuidedSuperResolver(run.data.reference.num_bands, g.width, g.blocks, g.heads, tuple(g.window))

    def fit(self, run: Run, net, prepared: PatchSet, loop, ckpt_dir: Path):
        loop = dataclasses.replace(loop, lr_min=run.cfg.superres.guided.lr_min)
        return train_guided(prepared, net, run.data.reference.rgb_bands, run.cfg.superres.scales, loop, ckpt_dir,
                            run.resume)

    def save(self, run: Run, net, prepared) -> None:
        net.save_pretrained(run.model_dir / "guided")
        index = {name: cls.__name__ for name, cls in SuperResolutionPipeline.components.items()}
        (run.model_dir / MODEL_INDEX).write_text(json.dumps(index, indent=1))


STAGES = (RGBStage(), GuidedStage())


def run_superres(cfg: RunConfig, run_dir: Path, resume: bool = False, overwrite: bool = False,
                 command: str = "") -> Path:
    """Train both stages on ``cfg``'s training part and write its super-resolved scenes; returns their card."""
    t0 = time.time()
    state = PartialState()
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, resume, overwrite, create=False)
    data = prepare_data(cfg.data.model_copy(update={"super_resolved": []}))  # learn from real data only
    user_rgb(cfg)  # a bad RGB file stops here, before the folder exists
    claim(cfg, run_dir, resume, overwrite)
    state.print(data.summary() + f"; super-resolution x{', x'.join(map(str, cfg.superres.scales))}")
    if not resume:
        dry_run_estimate(cfg, data, stage_functions(STAGES), None, 0, 1, started=t0)
    for stage in STAGES:
        train_stage(stage, cfg, run_dir, resume, data)
    card = run_dir / SCENES / "README.md"
    if state.is_main_process:
        r = cfg.superres.rgb
        card = write_scenes(run_dir / "model", run_dir / SCENES, data, cfg.superres.scales, seed=cfg.sampling.seed,
                            sampler=r.sampler, num_inference_steps=r.num_inference_steps, resume=resume,
                            command=command)
    state.wait_for_everyone()
    state.print(f"done in {time.time() - t0:.0f} s")
    return card


def write_scenes(model_dir: Path, out_dir: Path, data: PreparedData, scales: list[int] | None = None,
                 seed: int = 0, rgb_stage: str = "diffusion", sampler: str = "dpm++sde",
                 num_inference_steps: int = 20, resume: bool = False, overwrite: bool = False, command: str = "",
                 regions: str = "train", previews: int = 4) -> Path:
    """Super-resolve every ``regions`` ("train": the training part; "all": whole scenes) of ``data`` at every scale
    with the model in ``model_dir`` and write the derived data set to ``out_dir``: sample ``i`` is region ``i %
    regions`` at scale ``scales[i // regions]``, its images super-resolved (seed ``SeedSequence([seed, i])``, every
    date alike) and its mask upsampled by nearest neighbour. Resumable; returns the card's path."""
    pipe = SuperResolutionPipeline.from_pretrained(model_dir)
    ref = data.reference
    pipe.check_bands(ref.num_bands, f"scene '{ref.name}'")
    scales = list(scales or pipe.scales)
    if regions == "train":
        parts = data.split["train"]
    else:
        from specdm.data.splits import Region

        parts = [Region(i, 0, s.shape[0], 0, s.shape[1]) for i, s in enumerate(data.scenes)]
    items = [(g, s) for s in scales for g in parts]
    out_dir = Path(out_dir)
    has_masks = ref.mask is not None
    samples = [{"index": i, "scene": data.scenes[g.scene].name, "rows": [g.r0, g.r1], "cols": [g.c0, g.c1],
                "scale": s, "shape": [g.height * s, g.width * s]} for i, (g, s) in enumerate(items)]
    info = pipe.info
    meta = {
        MARKER: __version__,
        "task": ref.task if has_masks else "image",
        "method": METHOD,
        "num_samples": len(items),
        "images": ["images"] if len(ref.images) == 1 else [f"images_t{t + 1}" for t in range(len(ref.images))],
        "masks": has_masks,
        "image_format": "tif",
        "mask_format": "png" if has_masks else None,
        "format": {"image": "tif", "mask": "png" if has_masks else None,
                   "image_layout": "(bands, rows, cols) float32, the data's own units, each the size of its region "
                                   "times its scale",
                   "mask_layout": "(rows, cols) class values" if has_masks else None},
        "band_names": list(ref.band_names),
        "wavelengths": ref.wavelengths,
        "rgb_bands": [int(b) for b in ref.rgb_bands],
        "class_names": list(ref.class_names),
        "ignore_index": ref.ignore_index,
        "patch_size": None,
        "normalization": info.normalization,
        "derived": {
            "kind": DERIVED_KIND,
            "what": "real scenes super-resolved by a model trained on their own training part: derived data, "
                    "not new observations",
            "stages": "RGB bands by the diffusion RGB stage, then every band by the guided stage"
                      if rgb_stage == "diffusion" else "every band by the guided stage, guided by bicubic RGB",
            "rgb_stage": rgb_stage,
            "masks": "upsampled by nearest neighbour (each label repeated scale x scale times)",
            "regions": regions,
            "value_range": "each band clipped to its range in the source region",
        },
        "samples": samples,
        "sampler": {"name": sampler, "num_inference_steps": num_inference_steps},
        "seed": seed,
        "seed_rule": "sample i uses numpy SeedSequence([seed, i]) for the RGB stage's noise (tile j: its j-th "
                     "generator)",
        "model": {"path": str(model_dir), **pipe.hashes(model_dir)},
        "source": {"scenes": [s.name for s in data.scenes], "model_source": info.source},
        "licence": source_licence({"scenes": [s.name for s in data.scenes]}),
        "command": command,
    }
    prepare_output(out_dir, resume, overwrite)
    meta_file = out_dir / "metadata.json"
    check_resumable(meta_file, meta, resume, ("samples", "model", "derived", "sampler", "seed"))
    meta_file.write_text(json.dumps(meta, indent=1))
    writer = DatasetWriter(out_dir, len(items), len(ref.images), ref.num_bands, None,
                           ref.num_classes if has_masks else None)
    from tqdm.auto import tqdm

    for i in tqdm(writer.pending(), desc="super-resolving scenes", unit="scene"):
        g, s = items[i]
        scene = data.scenes[g.scene]
        sl = (slice(g.r0, g.r1), slice(g.c0, g.c1))
        ims = [pipe(im[sl], s, seed=sample_seed(seed, i), rgb_stage=rgb_stage, sampler=sampler,
                    num_inference_steps=num_inference_steps).transpose(2, 0, 1) for im in scene.images]
        mask = upsample_mask(scene.mask[sl], s) if has_masks else None
        writer.write(i, np.stack(ims), mask)
    return _card(out_dir, meta, pipe, data, items, previews)


def upsample_mask(mask: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upsampling of a class map by a whole factor: every label repeated ``scale`` x ``scale``
    times (class values and class shares are kept exactly)."""
    return np.repeat(np.repeat(np.asarray(mask), scale, axis=0), scale, axis=1)


def _card(out_dir: Path, meta: dict, pipe, data: PreparedData, items, previews: int) -> Path:
    """``README.md`` of a super-resolved set: what it is, how it was made, a preview per scale (bicubic beside the
    super-resolved image and the mask), the samples, and when not to trust it."""
    from specdm.output.dataset import SyntheticDataset

    ds = SyntheticDataset(out_dir)
    norm = pipe.normalizer
    ref = data.reference
    shown, lines_prev = set(), []
    (out_dir / "previews").mkdir(exist_ok=True)
    for k in range(len(ds)):
        i = ds.indices[k]
        g, s = items[i]
        if s in shown or len(shown) >= previews:
            continue
        shown.add(s)
        sr = norm(ds[k]["images"][0].transpose(1, 2, 0))
        crop = data.scenes[g.scene].images[0][g.r0 : g.r1, g.c0 : g.c1]
        bic = norm(pipe(crop, s, method="bicubic"))
        h, w = min(sr.shape[0], 128), min(sr.shape[1], 128)
        mask = ds[k].get("mask")
        panel = np.concatenate([bic[:h, :w], sr[:h, :w]], 1)
        m = None if mask is None else np.concatenate([mask[:h, :w]] * 2, 1)
        p = save_preview(panel, m, ref.rgb_bands, out_dir / "previews" / f"x{s}_{i:06d}.png",
                         max(1, ref.num_classes))
        lines_prev.append(f"![x{s}: bicubic (left) and super-resolved (right), mask](previews/{p.name})")
    meta["complete"] = len(ds) == meta["num_samples"]
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=1))
    d = meta["derived"]
    scales = ", x".join(sorted({str(x["scale"]) for x in meta["samples"]}, key=int))
    weights = ", ".join(f"{k} {v}" for k, v in meta["model"].items() if k != "path")
    rows = [f"| {x['index']} | {x['scene']} | {x['rows'][0]}-{x['rows'][1]} | {x['cols'][0]}-{x['cols'][1]} | "
            f"x{x['scale']} | {x['shape'][0]} x {x['shape'][1]} |" for x in meta["samples"]]
    text = "\n".join([
        f"# {out_dir.name}: super-resolved training scenes (derived data)", "",
        f"{len(ds)} of {meta['num_samples']} scenes written: the training part of "
        f"{', '.join(meta['source']['scenes'])} super-resolved x{scales} "
        "by specdm's two-stage super-resolver (HSIGene's augmentation): " + d["what"] + ".", "",
        f"- stages: {d['stages']}", f"- masks: {d['masks']}", f"- values: {d['value_range']}",
        f"- model: `{meta['model']['path']}` (weights {weights})",
        f"- licence of the source data: {meta.get('licence') or 'see the source data'}", "",
        "## How it was made", "", "```", str(meta.get("command", "")), "```", "",
        "Use it as training data beside the real windows: `data.super_resolved: [" + str(out_dir) + "]` in a config.",
        "", "## When not to trust it", "",
        "- Detail finer than the source pixels is *invented*: the networks learned from the scene's own pixels "
        "downsampled, so they add what that pattern suggests, not what is on the ground. Never score a model on "
        "these scenes or use them as reference data.",
        "- Labels are the source labels repeated: class boundaries stay blocky and no new class or object appears.",
        "- The model assumes the scene looks the same at the finer scale (scale invariance); textures that only "
        "exist at finer scales (rows of a field, roofs) are not recovered.",
        "- A super-resolver trained on one sensor's scene may do worse on another's; check the reference scores "
        "of `bench/superres_quality.py` on a held-out part first.", "",
        "## Preview", "", *lines_prev, "",
        "## Samples", "", "| sample | scene | rows | cols | scale | size |", "|---|---|---|---|---|---|", *rows, ""])
    card = out_dir / "README.md"
    card.write_text(text, encoding="utf-8")
    return card
