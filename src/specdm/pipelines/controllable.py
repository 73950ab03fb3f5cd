"""Controllable synthesis (HSIGene): spectral images for any subset of the model's conditions.

Conditions are given as a dict ``name -> batch`` (local maps ``(N, H, W, k)``, content ``(N, D)`` with D
the content encoder's width (64 for models without one: the histogram descriptor), text ``(N, 384)``
embeddings, see :mod:`specdm.conditions.controls`); the names left out are left
out of the prediction exactly as training's dropout left them out. Guidance per condition: with
the given conditions ``c_1 .. c_m`` in the model's order and ``eps_k`` the prediction given
``c_1 .. c_k`` (``eps_0``: none),

    eps = eps_0 + sum_k g_k (eps_k - eps_{k-1})

so all ``g_k = 1`` is the plain joint prediction (one network evaluation), ``g_k = 0`` leaves out
condition k's increment over those before it (a single condition at 0 is the unconditioned
prediction), ``g_k > 1`` follows it harder. Otherwise the m + 1 predictions run as one batch.
"""

from __future__ import annotations

import numpy as np
import torch

from diffusers import DDPMScheduler

from specdm.conditions.controls import global_widths, pack
from specdm.errors import CheckpointError, ConfigError, DataError
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.denoisers import ControlledDenoiser
from specdm.models.encoders import ContentEncoder
from specdm.models.info import ModelInfo
from specdm.pipelines.base import LatentPipeline
from specdm.schedulers import DEFAULT_SAMPLER


def content_settings(encoder) -> tuple:
    """``(content function, global widths)`` that a :class:`~specdm.models.encoders.ContentEncoder` gives (its
    ``embed`` and width), or, for None, the histogram descriptor's (None, 64): what the conditions stage takes."""
    if encoder is None:
        return None, global_widths()
    return encoder.embed, global_widths(encoder.config["embedding_dim"])


class ControllablePipeline(LatentPipeline):
    """``pipe(conditions, indices, seed, guidance)`` -> ``{"images": (N, 1, C, H, W) in the model's units,
    "masks": None}``. Components: an image-only :class:`SpectralAutoencoder`, a
    :class:`~specdm.models.denoisers.controlnet.ControlledDenoiser` (as ``unet``), the schedule and, optionally,
    the :class:`~specdm.models.encoders.ContentEncoder` that makes the content condition (models without one use
    the histogram descriptor)."""

    components = {"autoencoder": SpectralAutoencoder, "unet": ControlledDenoiser, "scheduler": DDPMScheduler}
    optional_components = {"content_encoder": ContentEncoder}

    def __init__(self, autoencoder, unet, info: ModelInfo, scheduler=None, content_encoder=None):
        super().__init__(autoencoder, unet, info, scheduler, content_encoder=content_encoder)
        if autoencoder.has_masks:
            raise CheckpointError("controllable synthesis uses an image-only autoencoder (no mask stream)")
        if "controllable" not in info.source:
            raise CheckpointError("specdm.json lacks the controllable section (conditions, extractor parameters)")
        self.model_dir = None  # named in errors about conditions; set by from_pretrained

    @classmethod
    def from_pretrained(cls, path, device="cpu"):
        pipe = super().from_pretrained(path, device)
        pipe.model_dir = path
        return pipe

    @property
    def settings(self) -> dict:
        """Conditions, extractor parameters, data sets' texts and default guidance, from ``specdm.json``."""
        return self.info.source["controllable"]

    @property
    def content(self):
        """The content function (RGB ``(H, W, 3)`` -> unit vector): the content encoder's, None for the histogram."""
        return content_settings(self.content_encoder)[0]

    @property
    def widths(self) -> dict[str, int]:
        """The global conditions' widths: content as wide as the content encoder's embedding."""
        return content_settings(self.content_encoder)[1]

    @property
    def conditions(self) -> list[str]:
        return list(self.settings["conditions"])

    def check_names(self, names, where=None) -> None:
        """A :class:`ConfigError` (naming ``where``, the model folder by default) for a condition name that is unknown
        or that this model was not trained with; text without a text branch says so."""
        from specdm.config import CONDITIONS

        for n in names:
            if n not in CONDITIONS:
                raise ConfigError(f"unknown condition '{n}'; known: {', '.join(CONDITIONS)}", where or self.model_dir)
            if n not in self.conditions:
                what = ("was trained without a text encoder (no text condition)" if n == "text"
                        else f"was not trained with the {n} condition")
                raise ConfigError(f"the model {what}; it takes {', '.join(self.conditions) or 'no condition'}",
                                  where or self.model_dir)

    def _pack(self, conditions: dict[str, np.ndarray], subset, n: int):
        items = [{c: conditions[c][i] for c in subset} for i in range(n)]
        L, G = pack(items, self.conditions, self.info.patch_size, self.widths)
        as_t = lambda a: None if a is None else torch.from_numpy(a).to(self.device)  # noqa: E731
        return as_t(L), as_t(G)

    def predict_noise(self, z: torch.Tensor, t, stacks: list, guidance: list[float]) -> torch.Tensor:
        """Guided noise prediction; ``stacks[k]`` is the packed (local, global) batch given the first k conditions."""
        m, n = len(stacks), z.shape[0]
        cat = lambda parts: None if parts[0] is None else torch.cat(parts)  # noqa: E731
        loc, glb = cat([s[0] for s in stacks]), cat([s[1] for s in stacks])
        if torch.is_tensor(t) and t.ndim:
            t = t.repeat(m)
        eps = self.unet(z.repeat(m, 1, 1, 1), t, loc, glb).sample.split(n)
        if m == 1:
            return eps[0]
        out = eps[0]
        for k, g in enumerate(guidance, start=1):
            out = out + g * (eps[k] - eps[k - 1])
        return out

    @torch.no_grad()
    def __call__(
        self,
        conditions: dict[str, np.ndarray],
        indices: list[int],
        seed: int = 0,
        guidance: dict[str, float] | float | None = None,
        sampler: str = DEFAULT_SAMPLER,
        num_inference_steps: int | None = None,
        eta: float = 0.0,
        progress: bool = False,
    ) -> dict[str, np.ndarray | None]:
        """Images for ``conditions`` (name -> one array per sample, or one array for all); sample ``indices[i]``
        of the run seeded ``seed`` draws its noise from its own generator. ``guidance``: one scale for every
        condition or a scale per name (default: the model's config, else 1)."""
        self.check_names(conditions)
        n = len(indices)
        given = {}
        for name, v in conditions.items():
            a = np.asarray(v, dtype=np.float32)
            single = a.ndim == (1 if name in self.widths else 3)
            a = np.broadcast_to(a, (n, *a.shape)) if single else a
            if len(a) != n:
                raise DataError(f"{len(a)} {name} conditions for {n} samples")
            given[name] = a
        order = [c for c in self.conditions if c in given]
        scales = dict(self.settings.get("guidance") or {})
        if isinstance(guidance, (int, float)):
            scales = dict.fromkeys(order, float(guidance))
        elif guidance:
            self.check_names(guidance)
            scales.update(guidance)
        g = [float(scales.get(c, 1.0)) for c in order]
        subsets = [order] if all(v == 1.0 for v in g) else [order[:k] for k in range(len(order) + 1)]
        stacks = [self._pack(given, s, n) for s in subsets]
        c, p = self.autoencoder.config["latent_channels"], self.latent_size
        shape = (n, c, p, p)
        z = self.denoise(shape, indices, seed, lambda z, t: self.predict_noise(z, t, stacks, g),
                         sampler, num_inference_steps, eta, progress)
        scale = torch.tensor(self.info.latent_scale, device=self.device).view(1, -1, 1, 1)
        return {"images": self.to_data_units(self.autoencoder.decode_images(z / scale)), "masks": None}
