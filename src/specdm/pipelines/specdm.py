"""SpecDM: joint synthesis of images and masks (or date pairs and change masks).

The denoiser samples ``z = [z_x1, (z_x2,) z_y]`` jointly; each part is decoded by its
own decoder, masks by argmax. A model folder holds ``autoencoder/``, ``unet/``,
``scheduler/`` (the training schedule), ``model_index.json`` and ``specdm.json``.
"""

from __future__ import annotations

import numpy as np
import torch

from specdm.pipelines.base import LatentPipeline
from specdm.schedulers import DEFAULT_SAMPLER


class SpecDMPipeline(LatentPipeline):
    """``pipe(indices, seed)`` -> ``{"images": (N, T, C, H, W) in the data's own units, "masks": (N, H, W)}``."""

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
        p = self.latent_size
        shape = (len(indices), self.autoencoder.latent_channels, p, p)

        def predict(z, t):
            return self.unet(z, t, encoder_hidden_states=None).sample

        z = self.denoise(shape, indices, seed, predict, sampler, num_inference_steps, eta, progress)
        scale = torch.tensor(self.info.latent_scale, device=self.device).view(1, -1, 1, 1)
        images, logits = self.autoencoder.decode(z / scale)
        return {"images": self.to_data_units(images), "masks": logits.argmax(1).cpu().numpy().astype(np.int64)}
