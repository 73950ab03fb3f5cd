"""Layout-conditioned synthesis: an image (or a date pair) painted for a given class (or change) mask.

The mask is encoded by the two-stream autoencoder's mask encoder (posterior mean, scaled);
the denoiser sees it concatenated to the noisy image latent (``layout.conditioning:
concat``) or through a ControlNet's residuals (``controlnet``, a ``controlnet/`` component
in the model folder) and predicts the image latent's noise. Classifier-free guidance mixes
the conditional and the unconditional prediction (condition replaced by zeros, or no
residuals): ``eps = eps_u + g * (eps_c - eps_u)``; ``g = 1`` is the plain conditional
model, ``g = 0`` ignores the mask. The mask written with each image is the layout it was
painted for.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import ControlNetModel, DDPMScheduler, UNet2DConditionModel

from specdm.errors import CheckpointError, DataError
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.denoisers import LatentControlledDenoiser
from specdm.models.info import ModelInfo
from specdm.pipelines.base import LatentPipeline
from specdm.schedulers import DEFAULT_SAMPLER


class LayoutPipeline(LatentPipeline):
    """``pipe(masks, indices, seed)`` -> ``{"images": (N, T, C, H, W) in the data's units, "masks": masks}``.

    Same components and folder as :class:`~specdm.pipelines.specdm.SpecDMPipeline`; the denoiser takes the
    mask latent as extra input channels, or, with a ``controlnet``, through the ControlNet's residuals.
    """

    optional_components = {"controlnet": ControlNetModel}

    def __init__(self, autoencoder: SpectralAutoencoder, unet: UNet2DConditionModel, info: ModelInfo,
                 scheduler: DDPMScheduler | None = None, controlnet: ControlNetModel | None = None):
        super().__init__(autoencoder, unet, info, scheduler, controlnet=controlnet)
        if autoencoder.kind != "two_stream":
            raise CheckpointError("layout-conditioned synthesis needs the two-stream autoencoder (its mask encoder)")
        c = autoencoder.config["latent_channels"]
        self.target_channels = autoencoder.num_dates * c
        extra = 0 if controlnet is not None else c
        if unet.config.in_channels != self.target_channels + extra or unet.config.out_channels != self.target_channels:
            raise CheckpointError(f"the denoiser maps {unet.config.in_channels} -> {unet.config.out_channels} channels; "
                                  f"layout synthesis needs {self.target_channels + extra} -> {self.target_channels}")
        if controlnet is not None and controlnet.config.conditioning_channels != c:
            raise CheckpointError(f"the ControlNet reads {controlnet.config.conditioning_channels} condition channels; "
                                  f"the mask latent has {c}")
        self.controlled = LatentControlledDenoiser(unet, controlnet) if controlnet is not None else None

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
        def eps(cond, keep=1.0):
            if self.controlled is not None:  # unconditional: the U-Net without residuals
                return self.controlled(z, t, cond, keep)
            return self.unet(torch.cat([z, cond if keep else torch.zeros_like(cond)], 1), t,
                             encoder_hidden_states=None).sample

        if guidance_scale == 1.0:
            return eps(condition)
        uncond = eps(condition, 0.0)
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
        masks = np.asarray(masks, dtype=np.int64)
        if len(masks) != len(indices):
            raise DataError(f"{len(masks)} layouts for {len(indices)} sample indices")
        cond = self.encode_layouts(masks)
        shape = (len(indices), self.target_channels, *cond.shape[2:])
        z = self.denoise(shape, indices, seed, lambda z, t: self.predict_noise(z, t, cond, guidance_scale),
                         sampler, num_inference_steps, eta, progress)
        scale = torch.tensor(self.info.latent_scale[: self.target_channels], device=self.device).view(1, -1, 1, 1)
        return {"images": self.to_data_units(self.autoencoder.decode_images(z / scale)), "masks": masks}
