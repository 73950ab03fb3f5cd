"""SpecDM: joint synthesis of images and masks (or date pairs and change masks).

The denoiser samples ``z = [z_x1, (z_x2,) z_y]`` jointly; each part is decoded by its
own decoder, masks by argmax. A model folder holds ``autoencoder/``, ``unet/``,
``scheduler/`` (the training schedule), ``model_index.json`` and ``specdm.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from specdm.data.normalize import Normalizer
from specdm.errors import CheckpointError
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.info import ModelInfo
from specdm.pipelines.base import SpecdmPipeline, sample_generators
from specdm.schedulers import DEFAULT_SAMPLER, PAPER_SCHEDULE, default_steps, sampling_scheduler

SCHEDULE_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")


class SpecDMPipeline(SpecdmPipeline):
    """``pipe(indices, seed)`` -> ``{"images": (N, T, C, H, W) in the data's own units, "masks": (N, H, W)}``."""

    components = {"autoencoder": "SpectralAutoencoder", "unet": "UNet2DConditionModel", "scheduler": "DDPMScheduler"}
    modules = ("unet", "autoencoder")

    def __init__(self, autoencoder: SpectralAutoencoder, unet: UNet2DConditionModel, info: ModelInfo,
                 scheduler: DDPMScheduler | None = None):
        super().__init__(info, autoencoder=autoencoder, unet=unet, scheduler=scheduler or DDPMScheduler(**PAPER_SCHEDULE))
        self.schedule = {k: self.scheduler.config[k] for k in SCHEDULE_KEYS}
        self.normalizer = Normalizer.from_dict(info.normalization)
        f = autoencoder.downsampling
        if unet.config.sample_size * f != info.patch_size:
            raise CheckpointError(f"the denoiser works on {unet.config.sample_size}x{unet.config.sample_size} latents, "
                                  f"which decode to {unet.config.sample_size * f}-pixel patches, but specdm.json says "
                                  f"{info.patch_size}")

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "SpecDMPipeline":
        path = Path(path)
        info = ModelInfo.load(path)
        if info.latent_scale is None or not (path / "unet").is_dir():
            raise CheckpointError("the diffusion model is not trained yet (run specdm train-diffusion)", path)
        return cls(info=info, **cls.load_components(path)).to(device)

    @torch.no_grad()
    def __call__(
        self,
        indices: list[int],
        seed: int = 0,
        sampler: str = DEFAULT_SAMPLER,
        num_inference_steps: int | None = None,
        eta: float = 0.0,
        progress: bool = False,
    ) -> dict[str, np.ndarray]:
        """Samples number ``indices`` of the run seeded ``seed``.

        Returns ``images`` ``(N, T, C, H, W)`` float32 in the data's own units (the
        normalized values clipped to the training range [0, 1], then mapped back) and
        ``masks`` ``(N, H, W)`` int64 (argmax of the mask decoder). Sample ``i`` is the
        same whatever batch it is drawn in. ``num_inference_steps`` defaults to the
        sampler's (:func:`specdm.schedulers.default_steps`).
        """
        steps = num_inference_steps or default_steps(sampler)
        dev = self.device
        gens = sample_generators(indices, seed, dev)
        p = self.unet.config.sample_size
        shape = (len(indices), self.autoencoder.latent_channels, p, p)
        sched = sampling_scheduler(sampler, self.schedule, eta)
        sched.set_timesteps(steps, device=dev)
        z = randn_tensor(shape, generator=gens, device=dev) * sched.init_noise_sigma
        kw = {"eta": eta} if sampler == "ddim" else {}
        for t in tqdm(sched.timesteps, desc="denoising", leave=False, disable=not progress):
            eps = self.unet(sched.scale_model_input(z, t), t, encoder_hidden_states=None).sample
            z = sched.step(eps, t, z, generator=gens, **kw).prev_sample
        scale = torch.tensor(self.info.latent_scale, device=dev).view(1, -1, 1, 1)
        images, logits = self.autoencoder.decode(z / scale)
        normalized = images.clamp(0, 1).float().cpu().numpy()
        return {
            "images": np.moveaxis(self.normalizer.inverse(np.moveaxis(normalized, 2, -1)), -1, 2),
            "masks": logits.argmax(1).cpu().numpy().astype(np.int64),
        }
