"""RGB-conditioned synthesis (HyperLDM): several plausible spectral images for one RGB image.

The denoiser sees its RGB input (:func:`~specdm.models.autoencoders.hyper_vq.denoiser_condition`:
the RGB folded onto the latent grid, or stage 1's condition features ``C(rgb)``, as the model's
``specdm.json`` records under ``source.denoiser_rgb``) concatenated to the noisy latent and
predicts its noise; the denoised latent is scaled back, snapped to the nearest codes
(L1) and decoded with the RGB. Sample ``i`` of a run seeded ``s`` draws its noise from
``SeedSequence([s, i])``, so the K versions of an RGB image differ from each other and are
the same in any batch. :meth:`HyperLDMPipeline.sample_image` takes an RGB image of any size:
overlapping patch-size tiles (half a patch apart, the image reflected to cover whole tiles)
blended with tent weights, then cropped back.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from specdm.errors import CheckpointError, DataError
from specdm.models.autoencoders import HyperVQAutoencoder
from specdm.models.autoencoders.hyper_vq import RGB_CHANNELS, denoiser_condition, denoiser_condition_channels
from specdm.models.info import ModelInfo
from specdm.pipelines.base import LatentPipeline
from specdm.schedulers import DEFAULT_SAMPLER


class HyperLDMPipeline(LatentPipeline):
    """``pipe(rgb, indices, seed)`` -> ``{"images": (N, 1, C, P, P) in the data's units}`` for RGB windows
    ``(N, P, P, 3)`` in [0, 1]; :meth:`sample_image` for one RGB image of any size."""

    components = {"autoencoder": HyperVQAutoencoder, "unet": UNet2DConditionModel, "scheduler": DDPMScheduler}

    def __init__(self, autoencoder: HyperVQAutoencoder, unet: UNet2DConditionModel, info: ModelInfo,
                 scheduler: DDPMScheduler | None = None):
        super().__init__(autoencoder, unet, info, scheduler)
        n = autoencoder.config.latent_channels
        self.rgb_input = info.source.get("denoiser_rgb", "folded")  # models from before the option: folded
        if self.rgb_input == "features" and autoencoder.condition_encoder is None:
            raise CheckpointError("the denoiser takes the RGB features C(rgb), and the autoencoder has no condition "
                                  "encoder")
        cond = denoiser_condition_channels(autoencoder, self.rgb_input)
        if unet.config.in_channels != n + cond or unet.config.out_channels != n:
            raise CheckpointError(f"the denoiser maps {unet.config.in_channels} -> {unet.config.out_channels} channels; "
                                  f"RGB-conditioned synthesis with the {self.rgb_input} RGB input needs {n + cond} -> {n}")

    def check_rgb(self, rgb: np.ndarray, source=None) -> np.ndarray:
        rgb = np.asarray(rgb, dtype=np.float32)
        if rgb.ndim != 4 or rgb.shape[-1] != RGB_CHANNELS:
            raise DataError(f"RGB windows must be (N, H, W, 3), got shape {rgb.shape}", source)
        if not np.isfinite(rgb).all() or rgb.min() < 0 or rgb.max() > 1:
            raise DataError("RGB values must lie in [0, 1]", source)
        return rgb

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray, indices: list[int], seed: int = 0, sampler: str = DEFAULT_SAMPLER,
                 num_inference_steps: int | None = None, eta: float = 0.0, progress: bool = False) -> dict:
        """One spectral window per RGB window ``rgb (N, P, P, 3)``; sample ``indices[i]`` of the run seeded ``seed``."""
        rgb = self.check_rgb(rgb)
        p = self.info.patch_size
        if rgb.shape[1:3] != (p, p) or len(rgb) != len(indices):
            raise DataError(f"{len(indices)} sample indices for RGB windows of shape {rgb.shape}; the model makes "
                            f"{p}x{p} windows (use sample_image for other sizes)")
        c = torch.from_numpy(np.ascontiguousarray(np.moveaxis(rgb, -1, 1))).to(self.device)
        cond = denoiser_condition(self.autoencoder, c, self.rgb_input)
        n = self.autoencoder.config.latent_channels
        shape = (len(indices), n, *cond.shape[2:])
        predict = lambda z, t: self.unet(torch.cat([z, cond], 1), t, encoder_hidden_states=None).sample  # noqa: E731
        z = self.denoise(shape, indices, seed, predict, sampler, num_inference_steps, eta, progress)
        images = self.autoencoder.decode(z / self.info.latent_scale[0], c, quantize=True)
        return {"images": self.to_data_units(images[:, None])}

    def sample_image(self, rgb: np.ndarray, k: int, seed: int = 0, batch_size: int = 32, **kw) -> np.ndarray:
        """``k`` spectral versions ``(k, C, H, W)`` (data units) of one RGB image ``(H, W, 3)`` of any size: tile
        ``j`` of version ``v`` is sample ``v * tiles + j`` of the run seeded ``seed``."""
        rgb = self.check_rgb(np.asarray(rgb)[None])[0]
        p = self.info.patch_size
        padded, origins = tile_grid(rgb, p)
        tiles = np.stack([padded[r : r + p, c : c + p] for r, c in origins])
        jobs = [(v, j) for v in range(k) for j in range(len(origins))]
        out = np.zeros((k, self.info.num_bands, *padded.shape[:2]), np.float32)
        weight = np.zeros(padded.shape[:2], np.float32)
        w = tent(p)
        for r, c in origins:
            weight[r : r + p, c : c + p] += w
        for s in range(0, len(jobs), batch_size):
            chunk = jobs[s : s + batch_size]
            ims = self(tiles[[j for _, j in chunk]], [v * len(origins) + j for v, j in chunk], seed, **kw)["images"]
            for (v, j), im in zip(chunk, ims[:, 0]):
                r, c = origins[j]
                out[v, :, r : r + p, c : c + p] += im * w
        h, wd = rgb.shape[:2]
        return (out / weight)[:, :, :h, :wd]


def tile_grid(image: np.ndarray, p: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``image (H, W, ...)`` reflected at its bottom and right to be covered by ``p``-pixel tiles half a tile apart
    (at least one tile), and the tiles' top-left corners."""
    step = max(p // 2, 1)
    size = [max(p, p + -(-(n - p) // step) * step) for n in image.shape[:2]]
    pad = [(0, size[0] - image.shape[0]), (0, size[1] - image.shape[1])] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad, mode="reflect" if min(image.shape[:2]) > 1 else "edge")
    rows, cols = (range(0, n - p + 1, step) for n in size)
    return padded, [(r, c) for r in rows for c in cols]


def tent(p: int) -> np.ndarray:
    """Blending weights of a ``p``-pixel tile: highest in the centre, positive at the border."""
    ramp = np.minimum(np.arange(p) + 1, p - np.arange(p)).astype(np.float32)
    return np.outer(ramp, ramp)
