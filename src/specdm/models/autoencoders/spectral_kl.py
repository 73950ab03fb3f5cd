"""Stage 1: SpecDM's two-stream KL-VAE and the single-stream baseline.

Both are built from diffusers' :class:`~diffusers.AutoencoderKL`:

- ``two_stream``: one VAE for the spectral image (shared by both dates in change
  detection) and a separate one for the one-hot mask.
- ``single_stream``: one VAE over the channel-concatenated images and one-hot
  mask (the paper's LDM baseline), with the same total latent size.

Latents are always laid out as ``[z_x1, (z_x2,) z_y]`` along channels, each
part ``latent_channels`` wide, so the denoiser is identical for both kinds.

The model is a diffusers ``ModelMixin``/``ConfigMixin``: ``save_pretrained(dir)``
writes ``config.json`` and one safetensors file, ``from_pretrained(dir)`` rebuilds
it offline. Folders written before (``autoencoder.json`` + one diffusers folder per
stream) still load.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from specdm.errors import CheckpointError

KINDS = ("two_stream", "single_stream")
LEGACY_CONFIG_NAME = "autoencoder.json"


PADDING_MODES = ("zeros", "reflect")


def _vae(channels: int, latent: int, blocks: tuple[int, ...], layers: int, groups: int, padding_mode: str,
         symmetric: bool) -> AutoencoderKL:
    vae = AutoencoderKL(
        in_channels=channels,
        out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * len(blocks),
        up_block_types=("UpDecoderBlock2D",) * len(blocks),
        block_out_channels=tuple(blocks),
        layers_per_block=layers,
        latent_channels=latent,
        norm_num_groups=groups,
        mid_block_add_attention=False,
    )
    if padding_mode != "zeros" or symmetric:
        set_padding(vae, padding_mode, symmetric)
    return vae


def set_padding(vae: AutoencoderKL, mode: str = "zeros", symmetric: bool = True) -> None:
    """Pad every convolution with ``mode``; ``symmetric``: make the encoder's downsampling symmetric.

    diffusers' encoder halves the resolution with a stride-2 convolution after padding one
    row and column of zeros on the bottom and right only (``Downsample2D`` with ``padding=0``),
    which puts a block of error into one corner of every reconstruction (docs/results.md,
    stage-1 artefacts). Only attributes change, so weights stay compatible.
    """
    from diffusers.models.downsampling import Downsample2D
    from torch.nn.modules.utils import _reverse_repeat_tuple

    for m in vae.modules():
        if symmetric and isinstance(m, Downsample2D) and m.use_conv and m.padding == 0:
            m.padding = 1
            m.conv.padding = (1, 1)
        if isinstance(m, torch.nn.Conv2d) and m.padding != (0, 0):
            m.padding_mode = mode
            m._reversed_padding_repeated_twice = _reverse_repeat_tuple(m.padding, 2)


class SpectralAutoencoder(ModelMixin, ConfigMixin):
    """Encodes ``(images (N, T, C, H, W), mask (N, H, W))`` to one latent ``(N, (T+1)c, H/f, W/f)``."""

    @register_to_config
    def __init__(
        self,
        kind: str,
        num_bands: int,
        num_classes: int,
        num_dates: int = 1,
        latent_channels: int = 4,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        norm_num_groups: int = 16,
        padding_mode: str = "zeros",
        context_padding: int = 0,
        symmetric_downsampling: bool = False,
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        f = 2 ** (len(block_out_channels) - 1)
        if context_padding % f or context_padding < 0:
            raise ValueError(f"context_padding must be a non-negative multiple of the downsampling {f}, "
                             f"got {context_padding}")
        args = (tuple(block_out_channels), layers_per_block, norm_num_groups, padding_mode, symmetric_downsampling)
        if kind == "two_stream":
            self.image_vae = _vae(num_bands, latent_channels, *args)
            if num_classes:  # image-only data (num_classes 0): no mask stream, z = [z_x1, (z_x2)]
                self.mask_vae = _vae(num_classes, latent_channels, *args)
        else:
            if not num_classes:
                raise ValueError("the single-stream autoencoder encodes a mask; image-only data needs two_stream")
            joint = num_dates * num_bands + num_classes
            self.joint_vae = _vae(joint, (num_dates + 1) * latent_channels, *args)

    @property
    def kind(self) -> str:
        return self.config["kind"]

    @property
    def num_dates(self) -> int:
        return self.config["num_dates"]

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.config["block_out_channels"]) - 1)

    @property
    def has_masks(self) -> bool:
        return bool(self.config["num_classes"])

    @property
    def latent_channels(self) -> int:
        """Channels of the whole latent ``z``."""
        return (self.num_dates + self.has_masks) * self.config["latent_channels"]

    def one_hot(self, mask: torch.Tensor) -> torch.Tensor:
        return F.one_hot(mask, self.config["num_classes"]).permute(0, 3, 1, 2).float()

    def _encode(self, vae: AutoencoderKL, x: torch.Tensor):
        """Posterior (mean, logvar) of ``x``; with ``context_padding`` p, ``x`` is reflected by p pixels on every
        side first and the latent cropped back, so that the window's border is not the network's border."""
        p = self.config.get("context_padding", 0)
        if not p:
            d = vae.encode(x).latent_dist
            return d.mean, d.logvar
        d = vae.encode(F.pad(x, (p, p, p, p), mode="reflect")).latent_dist
        q = p // self.downsampling
        return d.mean[..., q:-q, q:-q], d.logvar[..., q:-q, q:-q]

    def _decode(self, vae: AutoencoderKL, z: torch.Tensor) -> torch.Tensor:
        """Decoder output of ``z``; with ``context_padding``, decoded from the latent extended by replication and
        cropped back (the border pixels get context instead of zero padding)."""
        p = self.config.get("context_padding", 0)
        if not p:
            return vae.decode(z).sample
        q = p // self.downsampling
        return vae.decode(F.pad(z, (q, q, q, q), mode="replicate")).sample[..., p:-p, p:-p]

    def encode(self, images: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of ``z`` (``mask`` is ignored by an image-only autoencoder)."""
        n, t = images.shape[:2]
        if self.kind == "two_stream":
            px_mean, px_logvar = self._encode(self.image_vae, images.flatten(0, 1))

            def dates(v):
                return v.unflatten(0, (n, t)).flatten(1, 2)

            if not self.has_masks:
                return dates(px_mean), dates(px_logvar)
            py_mean, py_logvar = self.encode_masks(mask)

            mean = torch.cat([dates(px_mean), py_mean], 1)
            logvar = torch.cat([dates(px_logvar), py_logvar], 1)
            return mean, logvar
        return self._encode(self.joint_vae, torch.cat([images.flatten(1, 2), self.one_hot(mask)], 1))

    def encode_masks(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of the mask part ``z_y`` (two-stream only)."""
        return self._encode(self.mask_vae, self.one_hot(mask))

    def decode_images(self, zx: torch.Tensor) -> torch.Tensor:
        """Images ``(N, T, C, H, W)`` from the image part ``(N, T*c, h, w)`` of ``z`` (two-stream only)."""
        n, t, c = zx.shape[0], self.num_dates, self.config["latent_channels"]
        return self._decode(self.image_vae, zx.unflatten(1, (t, c)).flatten(0, 1)).unflatten(0, (n, t))

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images ``(N, T, C, H, W)`` and mask logits ``(N, K, H, W)`` (None when image-only) from ``z``."""
        t, c = self.num_dates, self.config["latent_channels"]
        if not self.has_masks:
            return self.decode_images(z), None
        if self.kind == "two_stream":
            return self.decode_images(z[:, : t * c]), self._decode(self.mask_vae, z[:, t * c :])
        out = self._decode(self.joint_vae, z)
        b = self.config["num_bands"]
        return out[:, : t * b].unflatten(1, (t, b)), out[:, t * b :]

    def forward(self, images: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor | None = None):
        """Reconstruct through a posterior sample (``noise`` fixes the sample); returns
        ``(images, mask_logits, mean, logvar)``."""
        mean, logvar = self.encode(images, mask)
        eps = torch.randn_like(mean) if noise is None else noise
        z = mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * eps
        rec, logits = self.decode(z)
        return rec, logits, mean, logvar

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> "SpectralAutoencoder":
        """Load a saved autoencoder (this format or the earlier per-stream one) in eval mode."""
        path = Path(path)
        try:
            if (path / cls.config_name).is_file():
                return super().from_pretrained(path, **kwargs).eval()
            if (path / LEGACY_CONFIG_NAME).is_file():
                return cls._from_legacy(path)
        except (OSError, ValueError, TypeError, RuntimeError, KeyError) as e:
            raise CheckpointError(f"cannot load the autoencoder: {str(e).splitlines()[0]}", path) from None
        raise CheckpointError(f"no trained autoencoder here ({cls.config_name} missing)", path)

    @classmethod
    def _from_legacy(cls, path: Path) -> "SpectralAutoencoder":
        model = cls(**json.loads((path / LEGACY_CONFIG_NAME).read_text()))
        for name in ("image_vae", "mask_vae", "joint_vae"):
            if hasattr(model, name):
                getattr(model, name).load_state_dict(AutoencoderKL.from_pretrained(path / name).state_dict())
        return model.eval()
