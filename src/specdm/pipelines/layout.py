"""Layout-conditioned synthesis: an image (or a date pair) painted for a given class (or change) mask.

The mask is encoded by the two-stream autoencoder's mask encoder (posterior mean, scaled);
the denoiser sees it concatenated to the noisy image latent and predicts the image
latent's noise. Classifier-free guidance mixes the conditional and the unconditional
prediction (condition replaced by zeros): ``eps = eps_u + g * (eps_c - eps_u)``; ``g = 1``
is the plain conditional model, ``g = 0`` ignores the mask. The mask written with each
image is the layout it was painted for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from specdm.data.normalize import Normalizer
from specdm.errors import CheckpointError, DataError
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.info import ModelInfo
from specdm.pipelines.base import SpecdmPipeline, sample_generators
from specdm.pipelines.specdm import SCHEDULE_KEYS
from specdm.schedulers import DEFAULT_SAMPLER, PAPER_SCHEDULE, default_steps, sampling_scheduler


class LayoutPipeline(SpecdmPipeline):
    """``pipe(masks, indices, seed)`` -> ``{"images": (N, T, C, H, W) in the data's units, "masks": masks}``."""

    components = {"autoencoder": "SpectralAutoencoder", "unet": "UNet2DConditionModel", "scheduler": "DDPMScheduler"}
    modules = ("unet", "autoencoder")

    def __init__(self, autoencoder: SpectralAutoencoder, unet: UNet2DConditionModel, info: ModelInfo,
                 scheduler: DDPMScheduler | None = None):
        super().__init__(info, autoencoder=autoencoder, unet=unet, scheduler=scheduler or DDPMScheduler(**PAPER_SCHEDULE))
        if autoencoder.kind != "two_stream":
            raise CheckpointError("layout-conditioned synthesis needs the two-stream autoencoder (its mask encoder)")
        self.schedule = {k: self.scheduler.config[k] for k in SCHEDULE_KEYS}
        self.normalizer = Normalizer.from_dict(info.normalization)
        c = autoencoder.config["latent_channels"]
        self.target_channels = autoencoder.num_dates * c
        if unet.config.in_channels != self.target_channels + c or unet.config.out_channels != self.target_channels:
            raise CheckpointError(f"the denoiser maps {unet.config.in_channels} -> {unet.config.out_channels} channels; "
                                  f"layout synthesis needs {self.target_channels + c} -> {self.target_channels}")

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "LayoutPipeline":
        path = Path(path)
        info = ModelInfo.load(path)
        if info.latent_scale is None or not (path / "unet").is_dir():
            raise CheckpointError("the layout denoiser is not trained yet", path)
        return cls(info=info, **cls.load_components(path)).to(device)

    @torch.no_grad()
    def encode_layouts(self, masks: np.ndarray) -> torch.Tensor:
        """The condition of each mask (N, H, W): the mask encoder's posterior mean, scaled like in training."""
        m = torch.as_tensor(np.asarray(masks, dtype=np.int64), device=self.device)
        k = self.autoencoder.config["num_classes"]
        if m.ndim != 3 or int(m.min()) < 0 or int(m.max()) >= k:
            raise DataError(f"layouts must be (N, H, W) class values 0..{k - 1}, got shape {tuple(m.shape)} "
                            f"and values {int(m.min())}..{int(m.max())}")
        mean = self.autoencoder.encode_masks(m)[0]
        scale = torch.tensor(self.info.latent_scale[self.target_channels :], device=self.device).view(1, -1, 1, 1)
        return mean * scale

    def predict_noise(self, z: torch.Tensor, t, condition: torch.Tensor, guidance_scale: float) -> torch.Tensor:
        """Classifier-free guided noise prediction for latents ``z`` given ``condition``."""
        def eps(cond):
            return self.unet(torch.cat([z, cond], 1), t, encoder_hidden_states=None).sample

        if guidance_scale == 1.0:
            return eps(condition)
        uncond = eps(torch.zeros_like(condition))
        if guidance_scale == 0.0:
            return uncond
        return uncond + guidance_scale * (eps(condition) - uncond)

    @torch.no_grad()
    def __call__(
        self,
        masks: np.ndarray,
        indices: list[int],
        seed: int = 0,
        sampler: str = DEFAULT_SAMPLER,
        num_inference_steps: int | None = None,
        eta: float = 0.0,
        guidance_scale: float = 1.0,
        progress: bool = False,
    ) -> dict[str, np.ndarray]:
        """Images for ``masks`` (N, H, W); sample ``indices[i]`` of the run seeded ``seed`` draws its noise from
        its own generator, so it is the same in any batch."""
        steps = num_inference_steps or default_steps(sampler)
        masks = np.asarray(masks, dtype=np.int64)
        if len(masks) != len(indices):
            raise DataError(f"{len(masks)} layouts for {len(indices)} sample indices")
        dev = self.device
        cond = self.encode_layouts(masks)
        gens = sample_generators(indices, seed, dev)
        shape = (len(indices), self.target_channels, *cond.shape[2:])
        sched = sampling_scheduler(sampler, self.schedule, eta)
        sched.set_timesteps(steps, device=dev)
        z = randn_tensor(shape, generator=gens, device=dev) * sched.init_noise_sigma
        kw = {"eta": eta} if sampler == "ddim" else {}
        for t in tqdm(sched.timesteps, desc="denoising", leave=False, disable=not progress):
            eps = self.predict_noise(sched.scale_model_input(z, t), t, cond, guidance_scale)
            z = sched.step(eps, t, z, generator=gens, **kw).prev_sample
        scale = torch.tensor(self.info.latent_scale[: self.target_channels], device=dev).view(1, -1, 1, 1)
        images = self.autoencoder.decode_images(z / scale)
        normalized = images.clamp(0, 1).float().cpu().numpy()
        return {"images": np.moveaxis(self.normalizer.inverse(np.moveaxis(normalized, 2, -1)), -1, 2), "masks": masks}
