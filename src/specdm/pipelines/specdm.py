"""SpecDM's joint synthesis of images and masks (or date pairs and change masks).

A model folder holds::

    autoencoder/   two-stream (image_vae/, mask_vae/) or single-stream (joint_vae/) + autoencoder.json
    unet/          diffusers UNet2DConditionModel (config.json + safetensors)
    scheduler/     the training schedule (scheduler_config.json)
    specdm.json    bands, wavelengths, classes, normalization, latent scale, real statistics
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from specdm.errors import CheckpointError
from specdm.models.autoencoder import SpectralAutoencoder
from specdm.models.info import ModelInfo, folder_hash
from specdm.schedulers import PAPER_SCHEDULE, sampling_scheduler


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a run seeded ``seed`` (independent of batching and sharding)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class SpecDMPipeline:
    """Samples ``z = [z_x1, (z_x2,) z_y]`` jointly, then decodes each part with its own decoder."""

    def __init__(self, autoencoder: SpectralAutoencoder, unet: UNet2DConditionModel, info: ModelInfo, schedule=None):
        self.autoencoder = autoencoder.eval()
        self.unet = unet.eval()
        self.info = info
        self.schedule = dict(schedule or PAPER_SCHEDULE)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def to(self, device) -> "SpecDMPipeline":
        self.autoencoder.to(device)
        self.unet.to(device)
        return self

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        self.autoencoder.save_pretrained(path / "autoencoder")
        self.unet.save_pretrained(path / "unet")
        DDPMScheduler(**self.schedule).save_pretrained(path / "scheduler")
        self.info.save(path)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "SpecDMPipeline":
        path = Path(path)
        info = ModelInfo.load(path)
        if info.latent_scale is None or not (path / "unet").is_dir():
            raise CheckpointError("the diffusion model is not trained yet (run specdm train-diffusion)", path)
        ae = SpectralAutoencoder.from_pretrained(path / "autoencoder")
        try:
            unet = UNet2DConditionModel.from_pretrained(path / "unet")
            sched = DDPMScheduler.from_pretrained(path / "scheduler")
        except (OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"cannot load the denoiser: {str(e).splitlines()[0]}", path) from None
        keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")
        return cls(ae, unet, info, {k: sched.config[k] for k in keys}).to(device)

    def hashes(self, path: Path) -> dict:
        return {"autoencoder": folder_hash(path / "autoencoder"), "unet": folder_hash(path / "unet")}

    @torch.no_grad()
    def __call__(
        self,
        indices: list[int],
        seed: int = 0,
        sampler: str = "dpm++sde",
        num_inference_steps: int = 20,
        eta: float = 0.0,
        progress: bool = False,
    ) -> dict[str, np.ndarray]:
        """Samples number ``indices`` of the run seeded ``seed``.

        Returns ``images`` ``(N, T, C, H, W)`` in normalized units (clipped to the
        training range [0, 1]) and ``masks`` ``(N, H, W)`` (argmax of the mask decoder).
        Sample ``i`` is the same whatever batch it is drawn in.
        """
        dev = self.device
        gens = [torch.Generator(device=dev).manual_seed(sample_seed(seed, i)) for i in indices]
        f = self.autoencoder.downsampling
        p = self.info.patch_size // f
        shape = (len(indices), self.autoencoder.latent_channels, p, p)
        sched = sampling_scheduler(sampler, self.schedule, eta)
        sched.set_timesteps(num_inference_steps, device=dev)
        z = randn_tensor(shape, generator=gens, device=dev) * sched.init_noise_sigma
        kw = {"eta": eta} if sampler == "ddim" else {}
        for t in tqdm(sched.timesteps, desc="denoising", leave=False, disable=not progress):
            eps = self.unet(sched.scale_model_input(z, t), t, encoder_hidden_states=None).sample
            z = sched.step(eps, t, z, generator=gens, **kw).prev_sample
        scale = torch.tensor(self.info.latent_scale, device=dev).view(1, -1, 1, 1)
        images, logits = self.autoencoder.decode(z / scale)
        return {
            "images": images.clamp(0, 1).float().cpu().numpy(),
            "masks": logits.argmax(1).cpu().numpy().astype(np.int64),
        }
