"""The two-stage super-resolver as a pipeline (HSIGene's augmentation): RGB first, then every band guided by it.

A model folder written by ``specdm superres`` holds ``rgb_unet/`` (the RGB stage: a U-Net denoising the residual of
the RGB bands to their bicubic upsampling, conditioned on that upsampling), ``scheduler/`` (its schedule),
``guided/`` (:class:`~specdm.models.superres.GuidedSuperResolver`), ``model_index.json`` and ``specdm.json``
(method ``superres``: bands, wavelengths, normalization, the RGB residual's scale as ``latent_scale``, the scales it
was trained for in ``source``).

``pipe(image, scale, seed=...)`` super-resolves a whole image in the data's own units ``(H, W, C)`` to ``(scale H,
scale W, C)``; ``rgb_stage`` ``"diffusion"`` (both stages), ``"bicubic"`` (the guided stage alone, guided by the
bicubic RGB), or ``method="bicubic"`` (no network). Large images are processed in overlapping tiles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from specdm.data.normalize import Normalizer
from specdm.errors import CheckpointError, DataError
from specdm.models.info import ModelInfo
from specdm.models.superres import GuidedSuperResolver, structure_gate, upsample
from specdm.pipelines.base import SCHEDULE_KEYS, SpecdmPipeline, sample_generators
from specdm.schedulers import default_steps

METHOD = "superres"
RGB_STAGES = ("diffusion", "bicubic")


class SuperResolutionPipeline(SpecdmPipeline):
    components = {"guided": GuidedSuperResolver, "rgb_unet": UNet2DConditionModel, "scheduler": DDPMScheduler}
    modules = ("guided", "rgb_unet")
    autoencoder = None  # the writer's card asks every pipeline for one
    path: Path | None = None  # the model folder it was loaded from (named in refusals)

    def __init__(self, guided, rgb_unet, info: ModelInfo, scheduler=None):
        super().__init__(info, guided=guided, rgb_unet=rgb_unet, scheduler=scheduler or DDPMScheduler())
        self.schedule = {k: self.scheduler.config[k] for k in SCHEDULE_KEYS}
        self.normalizer = Normalizer.from_dict(info.normalization)
        self.rgb_scale = float(info.latent_scale[0])

    @classmethod
    def from_pretrained(cls, path: str | Path, device="cpu") -> "SuperResolutionPipeline":
        path = Path(path)
        info = ModelInfo.load(path)
        if info.method != METHOD:
            raise CheckpointError(f"was made by method {info.method}, not by specdm superres", path)
        if info.latent_scale is None or not (path / "guided").is_dir() or not (path / "rgb_unet").is_dir():
            raise CheckpointError("the super-resolver is not fully trained yet (rerun specdm superres with --resume)",
                                  path)
        pipe = cls(info=info, **cls.load_components(path)).to(device)
        pipe.path = path
        return pipe

    @property
    def scales(self) -> list[int]:
        return list(self.info.source.get("scales", []))

    def steps(self, sampler: str, num_inference_steps: int | None) -> int:
        return min(num_inference_steps or default_steps(sampler), self.schedule["num_train_timesteps"])

    def check_bands(self, num_bands: int, what: str) -> None:
        """A :class:`DataError` naming the model folder's band count when ``what`` has another."""
        if num_bands != self.info.num_bands:
            raise DataError(f"the super-resolver was trained on {self.info.num_bands} bands "
                            f"({self.info.band_names[0]} .. {self.info.band_names[-1]}); {what} has {num_bands}",
                            self.path)

    @torch.no_grad()
    def super_resolve_rgb(self, rgb: torch.Tensor, scale: int, generator: torch.Generator, sampler: str = "dpm++sde",
                          num_inference_steps: int | None = 20, eta: float = 0.0) -> torch.Tensor:
        """``(1, 3, h, w)`` RGB in [0, 1] -> ``(1, 3, scale h, scale w)``: the residual sampled by the RGB stage,
        gated by the bicubic RGB's local structure, added to it."""
        from specdm.schedulers import sampling_scheduler

        dev = self.device
        h, w = rgb.shape[-2:]
        cond = upsample(rgb.to(dev), (h * scale, w * scale)).clamp(0, 1)
        levels = len(self.rgb_unet.config.block_out_channels)
        m = 2 ** (levels - 1)
        ph, pw = (-cond.shape[-2]) % m, (-cond.shape[-1]) % m
        c = torch.nn.functional.pad(2 * cond - 1, (0, pw, 0, ph), mode="replicate")
        sched = sampling_scheduler(sampler, self.schedule, eta)
        sched.set_timesteps(self.steps(sampler, num_inference_steps), device=dev)
        z = torch.randn((1, 3, *c.shape[-2:]), generator=generator, device="cpu").to(dev) * sched.init_noise_sigma
        kw = {"eta": eta} if sampler == "ddim" else {}
        for t in sched.timesteps:
            zin = sched.scale_model_input(z, t)
            pred = self.rgb_unet(torch.cat([zin, c], 1), t, encoder_hidden_states=None).sample
            z = sched.step(pred, t, z, generator=generator, **kw).prev_sample
        residual = z[..., : cond.shape[-2], : cond.shape[-1]] / self.rgb_scale
        return (cond + structure_gate(cond) * residual).clamp(0, 1)

    @torch.no_grad()
    def __call__(self, image: np.ndarray, scale: int, seed: int = 0, rgb_stage: str = "diffusion",
                 sampler: str = "dpm++sde", num_inference_steps: int | None = 20, eta: float = 0.0,
                 method: str = "guided", tile: int = 256, overlap: int = 32) -> np.ndarray:
        """``image`` ``(H, W, C)`` in the data's own units -> ``(scale H, scale W, C)`` float32 in the same units,
        clipped to each band's range in ``image`` (so no method overshoots). ``method`` ``"guided"`` (the
        super-resolver; ``rgb_stage`` says where its guidance comes from) or ``"bicubic"``. Images larger than
        ``tile`` (high-resolution pixels) go through tiles ``overlap`` pixels apart, tent-weighted; each tile's RGB
        noise has its own generator (``SeedSequence([seed, tile])``)."""
        if rgb_stage not in RGB_STAGES:
            raise DataError(f"unknown rgb_stage '{rgb_stage}'; choose one of {', '.join(RGB_STAGES)}")
        image = np.asarray(image, np.float32)
        self.check_bands(image.shape[-1], "the image")
        x = torch.from_numpy(np.ascontiguousarray(self.normalizer(image).transpose(2, 0, 1)))[None].float()
        lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        h, w = x.shape[-2:]
        H, W = h * scale, w * scale
        if method == "bicubic":
            out = upsample(x, (H, W))
        elif method == "guided":
            out = self._tiled(x, scale, seed, rgb_stage, sampler, num_inference_steps, eta, tile, overlap)
        else:
            raise DataError(f"unknown method '{method}'; choose guided or bicubic")
        out = torch.minimum(torch.maximum(out.cpu(), lo), hi)[0].numpy().transpose(1, 2, 0)
        return self.normalizer.inverse(out).astype(np.float32)

    def _tiled(self, x, scale, seed, rgb_stage, sampler, steps, eta, tile, overlap) -> torch.Tensor:
        h, w = x.shape[-2:]
        lt, lo = max(1, tile // scale), max(0, overlap // scale)  # tiles in low-resolution pixels
        rows = _starts(h, lt, lt - lo)
        cols = _starts(w, lt, lt - lo)
        out = torch.zeros(1, x.shape[1], h * scale, w * scale)
        weight = torch.zeros(1, 1, h * scale, w * scale)
        gens = sample_generators(range(len(rows) * len(cols)), seed, "cpu")
        k = 0
        for r in rows:
            for c in cols:
                part = x[..., r : r + lt, c : c + lt]
                y = self._one(part, scale, gens[k], rgb_stage, sampler, steps, eta).cpu()
                tent = _tent(y.shape[-2:])
                out[..., r * scale : r * scale + y.shape[-2], c * scale : c * scale + y.shape[-1]] += y * tent
                weight[..., r * scale : r * scale + y.shape[-2], c * scale : c * scale + y.shape[-1]] += tent
                k += 1
        return out / weight

    def _one(self, x, scale, gen, rgb_stage, sampler, steps, eta) -> torch.Tensor:
        dev = self.device
        rgb = x[:, list(self.info.rgb_bands)].clamp(0, 1)
        size = (x.shape[-2] * scale, x.shape[-1] * scale)
        if rgb_stage == "diffusion":
            guide = self.super_resolve_rgb(rgb, scale, gen, sampler, steps, eta)
        else:
            guide = upsample(rgb, size).clamp(0, 1)
        return self.guided(upsample(x.to(dev), size), guide.to(dev))


def _starts(length: int, size: int, stride: int) -> list[int]:
    if length <= size:
        return [0]
    out = list(range(0, length - size, max(1, stride)))
    return out + [length - size]


def _tent(shape) -> torch.Tensor:
    """Weights that fall linearly towards a tile's edges (never 0), for blending overlapping tiles."""
    ramps = [torch.minimum(torch.arange(n) + 1.0, n - torch.arange(n) + 0.0) for n in shape]
    return (ramps[0][:, None] * ramps[1][None, :])[None, None]
