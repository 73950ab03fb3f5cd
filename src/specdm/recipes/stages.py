"""Stages more than one method uses: SpecDM's KL autoencoder (stage 1 of SpecDM and layout-conditioned synthesis)
and the base of every stage 2 (the one denoiser step on stored latents, saved as the method's pipeline)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler

from specdm.augment.fidelity import LabelFidelity, save_pixels
from specdm.conditions.layouts import LAYOUTS_FILE
from specdm.data.datamodule import PreparedData
from specdm.errors import CheckpointError
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.info import ModelInfo
from specdm.output.card import EXAMPLES_FILE
from specdm.recipes.skeleton import Run, Stage
from specdm.training.autoencoder import kl_reconstruction, train_autoencoder
from specdm.training.diffusion import Conditioning, Latents, encode_patches, latent_scale, train_latent_denoiser


def build_autoencoder(a, num_bands: int, num_classes: int, num_dates: int = 1) -> SpectralAutoencoder:
    """The stage-1 KL autoencoder of the config section ``a`` (untrained); ``num_classes`` 0: images only."""
    return SpectralAutoencoder(
        a.kind, num_bands, num_classes, num_dates, a.latent_channels, tuple(a.block_out_channels),
        a.layers_per_block, a.norm_num_groups, a.padding_mode, a.context_padding, a.symmetric_downsampling,
    )


def held_out_sets(data: PreparedData, reconstruction) -> dict:
    """The stage-1 report's window sets of one prepared data set: its training and held-out windows."""
    held = data.held_out()
    return {"train": (reconstruction(data.train), len(data.train)),
            "held_out": None if held is None else (reconstruction(held), len(held))}


class AutoencoderStage(Stage):
    """Stage 1 of every method: an autoencoder (of class :attr:`model_class`) from the ``autoencoder`` section,
    written to ``model/autoencoder``; its reconstruction report goes to ``model/stage1_quality.json``."""

    model_class: type = SpectralAutoencoder

    def section(self, cfg):
        return cfg.autoencoder

    def checkpoint(self, cfg) -> str:
        return "autoencoder"

    def trained(self, run: Run) -> bool:
        return (run.model_dir / "autoencoder" / self.model_class.config_name).is_file()


class KLAutoencoderStage(AutoencoderStage):
    """SpecDM's stage 1: the two-stream (or single-stream) KL-VAE of images and masks on the training windows;
    writes ``model/autoencoder``, ``specdm.json`` (with the real training statistics) and what sampling needs from
    the real windows (filter pixels, layouts, card examples)."""

    def build(self, run: Run, prepared) -> SpectralAutoencoder:
        ref = run.data.reference
        return build_autoencoder(run.cfg.autoencoder, ref.num_bands, ref.num_classes, len(ref.images))

    def fit(self, run: Run, net, prepared, loop, ckpt_dir: Path):
        a, ref = run.cfg.autoencoder, run.data.reference
        return train_autoencoder(run.data.train, net, loop, ckpt_dir, a.sad_weight, a.kl_weight,
                                 ref.ignore_index if a.mask_ignore_unlabelled else None, a.balance_classes, run.resume)

    def save(self, run: Run, net, prepared) -> None:
        data, cfg = run.data, run.cfg
        net.save_pretrained(run.model_dir / "autoencoder")
        source = {"scenes": [s.name for s in data.scenes], "split": cfg.data.split.model_dump(),
                  "windows": len(data.train)}
        info = ModelInfo.from_scene(data.reference, data.normalizer.to_dict(), cfg.data.patch_size, source,
                                    cfg.method)
        info.real_stats = data.train_statistics().to_dict()
        info.save(run.model_dir)
        reconstruct = kl_reconstruction(net, data.train)
        save_real_references(data, run.model_dir, cfg.train.seed, lambda idx: reconstruct(idx)[1])

    def quality(self, run: Run, net, prepared) -> dict:
        return held_out_sets(run.data, lambda patches: kl_reconstruction(net, patches))


def save_real_references(data: PreparedData, model_dir: Path, seed: int, reconstruct=None) -> None:
    """What sampling needs from the real training windows, kept in the model folder (safetensors):
    labelled pixels for the label-fidelity filter and cleaning, the window masks as layouts, a few windows for the
    card, the real windows' texture statistics and, with stage 1's ``reconstruct(indices)`` (reconstructed
    windows), the class references of class-aware decoding (:mod:`specdm.augment.painting`)."""
    from safetensors.torch import save_file

    from specdm.augment.painting import build_class_references, save_real_texture

    x, y = (t.numpy() for t in data.train.batch(range(len(data.train))))
    ref = data.reference
    pixels, labels, index = LabelFidelity(ref.num_classes, ref.ignore_index, seed=seed).training_pixels(x, y, True)
    size = x.shape[-1]
    win = index // (size * size)
    r, c = np.divmod(index % (size * size), size)
    origin = np.array([(w.scene, w.r, w.c) for w in data.train.windows], np.int64)[win]
    save_pixels(model_dir, pixels, labels, np.stack([origin[:, 0], origin[:, 1] + r, origin[:, 2] + c], 1))
    save_real_texture(model_dir, x)
    if reconstruct is not None:
        with torch.no_grad():
            build_class_references(x, y, reconstruct, ref.num_classes, seed=seed).save(model_dir)
    save_file({"masks": torch.from_numpy(y.astype(np.int64))}, str(model_dir / LAYOUTS_FILE))
    pick = np.unique(np.linspace(0, len(x) - 1, min(8, len(x))).round().astype(int))
    save_file({"images": torch.from_numpy(np.ascontiguousarray(x[pick])), "masks": torch.from_numpy(y[pick])},
              str(model_dir / EXAMPLES_FILE))


@dataclass
class Denoising:
    """What a stage 2 trains on: the trained stage 1, the latents and how the denoiser sees its condition."""

    autoencoder: torch.nn.Module
    latents: Latents
    conditioning: Conditioning
    info: ModelInfo
    extra: dict | None = None  # what the method's save needs besides (its content encoder, its RGB input ...)


class DenoiserStage(Stage):
    """Stage 2 of a latent method: the one denoiser step (:func:`~specdm.training.diffusion.train_latent_denoiser`,
    the config's ``diffusion`` section: schedule, prediction type, SSIM term) on what :meth:`prepare` gives; saves
    the method's pipeline (``model/unet``, ``model/scheduler``, ``specdm.json``'s latent scale and method)."""

    method: str = ""  # recorded in specdm.json: the pipeline that samples the folder
    desc: str = "stage 2 (diffusion)"  # the progress bar's

    def section(self, cfg):
        return cfg.diffusion

    def checkpoint(self, cfg) -> str:
        return self.method

    def trained(self, run: Run) -> bool:
        info = ModelInfo.load(run.model_dir)
        return info.method == self.method and info.latent_scale is not None and (run.model_dir / "unet").is_dir()

    def autoencoder(self, run: Run, kind=SpectralAutoencoder):
        """Stage 1 from the model folder, checked against the data."""
        ae = kind.from_pretrained(run.model_dir / "autoencoder")
        info = ModelInfo.load(run.model_dir)
        ref = getattr(run.data, "reference", None)
        if ref is not None:
            info.check_scene(ref, run.model_dir)
            if ae.config["num_bands"] != ref.num_bands:
                raise CheckpointError("the autoencoder's band count differs from the data's",
                                      run.model_dir / "autoencoder")
        return ae, info

    def encoded(self, run: Run, ae) -> Latents:
        """The posteriors of every training window under the first ``latent_augmentations`` D4 transforms, scaled
        per part to unit variance."""
        mean, std = encode_patches(ae, run.data.train, run.cfg.diffusion.latent_augmentations)
        return Latents(mean, std, latent_scale(ae, mean, std))

    @staticmethod
    def latent_size(run: Run, ae) -> int:
        """The side of the denoiser's latent grid: the patch size over stage 1's downsampling."""
        return run.cfg.data.patch_size // ae.downsampling

    def fit(self, run: Run, net, prepared: Denoising, loop, ckpt_dir: Path):
        cfg = run.cfg
        return train_latent_denoiser(net, prepared.latents, prepared.conditioning, loop, ckpt_dir, cfg.schedule(),
                                     run.resume, self.desc, cfg.diffusion.ssim_weight)

    def save(self, run: Run, net, prepared: Denoising) -> None:
        info = prepared.info
        info.latent_scale = self.scale(prepared)
        info.method = self.method
        info.source = {**info.source, **self.source(run.cfg)}
        self.pipeline(run, net, prepared, DDPMScheduler(**run.cfg.schedule())).save_pretrained(run.model_dir)

    def scale(self, prepared: Denoising) -> list[float]:
        return prepared.latents.scale.tolist()

    def source(self, cfg) -> dict:
        """What ``specdm.json``'s ``source`` records of this stage's settings."""
        return {}

    def pipeline(self, run: Run, net, prepared: Denoising, scheduler):
        raise NotImplementedError
