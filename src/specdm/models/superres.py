"""Super-resolution networks (HSIGene's augmentation, ``specdm superres``): resampling, the structure gate, the
guided network of the second stage and a plain CNN baseline.

Both networks work on the bicubic-upsampled image (``(N, C, H, W)`` at the high resolution, normalized units) and
add a residual to it, so one network serves every scale factor it was trained on and an untrained network (its last
convolution starts at zero) is bicubic interpolation. The residual is multiplied by :func:`structure_gate`, the
input's local range over ``g / (g + tau)``: exactly 0 where the input is flat, so a constant image stays constant,
and about 1 wherever the input has any structure.

:class:`GuidedSuperResolver` follows HSIGene's RGAN in a compact form: HSI features and RGB features; per block a
rectangle-window self-attention of the HSI features, a rectangle-window cross-attention from the HSI features to the
RGB features (half of the channels in horizontal windows, half in vertical ones: the split of the feature
channels), a spectral (channel) attention in local tiles and a feed-forward block, each with a pre-norm and a
residual connection. Windows and tiles have a fixed size, so the network runs on images of any size (padded by
replication to a multiple of the window, cropped back).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from specdm.layers import residual_body

__all__ = ["GuidedSuperResolver", "PlainSuperResolver", "downsample", "structure_gate", "upsample"]


def downsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, H // scale, W // scale)`` by antialiased bicubic resampling (the degradation every
    super-resolver here learns to undo, and the one the reference scores apply)."""
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic interpolation of ``(N, C, h, w)`` to ``size`` (the baseline, and every network's starting point)."""
    return F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=False)


def structure_gate(x: torch.Tensor, tau: float = 1e-3) -> torch.Tensor:
    """``(N, 1, H, W)``: ``g / (g + tau)`` with ``g`` the mean over bands of the 3x3 local range (max - min) of ``x``;
    exactly 0 on a flat neighbourhood (a range of equal values is 0 in floating point), close to 1 elsewhere."""
    p = F.pad(x.float(), (1, 1, 1, 1), mode="replicate")
    g = (F.max_pool2d(p, 3, 1) + F.max_pool2d(-p, 3, 1)).mean(1, keepdim=True)
    return (g / (g + tau)).to(x.dtype)


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return (F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x), (h, w)


def _windows(x: torch.Tensor, wh: int, ww: int) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N * windows, wh * ww, C)``."""
    n, c, h, w = x.shape
    x = x.view(n, c, h // wh, wh, w // ww, ww).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(-1, wh * ww, c)


def _merge(t: torch.Tensor, n: int, h: int, w: int, wh: int, ww: int) -> torch.Tensor:
    """Inverse of :func:`_windows`."""
    c = t.shape[-1]
    t = t.view(n, h // wh, w // ww, wh, ww, c).permute(0, 5, 1, 3, 2, 4)
    return t.reshape(n, c, h, w)


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of every pixel of ``(N, C, H, W)`` (independent of the image size)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class RectangleAttention(nn.Module):
    """Multi-head attention in rectangle windows: the first half of the channels in ``window`` (rows x cols), the
    second half in its transpose; queries from ``x``, keys and values from ``context`` (``x`` itself: self-attention;
    the RGB features: cross-attention)."""

    def __init__(self, dim: int, heads: int, window: tuple[int, int]):
        super().__init__()
        self.dim, self.heads, self.window = dim, heads, tuple(window)
        self.q = nn.Conv2d(dim, dim, 1)
        self.kv = nn.Conv2d(dim, 2 * dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        n, _, h, w = x.shape
        q = self.q(x)
        k, v = self.kv(x if context is None else context).chunk(2, 1)
        half, hh = self.dim // 2, self.heads // 2
        out = []
        for part, (wh, ww) in ((slice(0, half), self.window), (slice(half, self.dim), self.window[::-1])):
            qs, ks, vs = (_windows(t[:, part], wh, ww) for t in (q, k, v))
            b, length, _ = qs.shape
            qs, ks, vs = (t.view(b, length, hh, -1).transpose(1, 2) for t in (qs, ks, vs))
            o = F.scaled_dot_product_attention(qs, ks, vs).transpose(1, 2).reshape(b, length, half)
            out.append(_merge(o, n, h, w, wh, ww))
        return self.proj(torch.cat(out, 1))


class SpectralAttention(nn.Module):
    """Attention across channels (Restormer's transposed attention) inside ``tile`` x ``tile`` tiles: each head's
    channel-by-channel attention map from L2-normalized queries and keys, with a learned temperature."""

    def __init__(self, dim: int, heads: int, tile: int):
        super().__init__()
        self.heads, self.tile = heads, tile
        self.qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        t = self.tile
        q, k, v = (_windows(z, t, t).transpose(1, 2) for z in self.qkv(x).chunk(3, 1))  # (B, C, L)
        b = q.shape[0]
        q, k, v = (z.reshape(b, self.heads, c // self.heads, -1) for z in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = torch.softmax(q @ k.transpose(-2, -1) * self.temperature, dim=-1)
        o = (attn @ v).reshape(b, c, -1).transpose(1, 2)
        return self.proj(_merge(o, n, h, w, t, t))


class FeedForward(nn.Module):
    def __init__(self, dim: int, expansion: int = 2):
        super().__init__()
        hidden = dim * expansion
        self.net = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
                                 nn.GELU(), nn.Conv2d(hidden, dim, 1))

    def forward(self, x):
        return self.net(x)


class GuidedBlock(nn.Module):
    """Self-attention, cross-attention to the RGB features, spectral attention, feed-forward (pre-norm, residual)."""

    def __init__(self, dim: int, heads: int, window: tuple[int, int]):
        super().__init__()
        self.norms = nn.ModuleList(ChannelNorm(dim) for _ in range(5))
        self.self_attn = RectangleAttention(dim, heads, window)
        self.cross_attn = RectangleAttention(dim, heads, window)
        self.spectral = SpectralAttention(dim, heads, max(window))
        self.ffn = FeedForward(dim)

    def forward(self, f, r):
        f = f + self.self_attn(self.norms[0](f))
        f = f + self.cross_attn(self.norms[1](f), self.norms[2](r))
        f = f + self.spectral(self.norms[3](f))
        return f + self.ffn(self.norms[4](f))


class GuidedSuperResolver(ModelMixin, ConfigMixin):
    """The guided stage: ``forward(x_up, rgb)`` with ``x_up`` the bicubic-upsampled spectral image ``(N, C, H, W)``
    and ``rgb`` its high-resolution RGB ``(N, 3, H, W)`` (normalized units) returns the super-resolved image."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, num_bands: int, width: int = 32, blocks: int = 2, heads: int = 2,
                 window: tuple[int, int] = (4, 16), tau: float = 1e-3):
        super().__init__()
        window = tuple(int(v) for v in window)
        self.multiple = math.lcm(*window)
        self.conv_in = nn.Conv2d(num_bands, width, 3, padding=1)
        self.rgb_in = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.GELU(), nn.Conv2d(width, width, 3, padding=1))
        self.layers = nn.ModuleList(GuidedBlock(width, heads, window) for _ in range(blocks))
        self.conv_out = nn.Conv2d(width, num_bands, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x_up: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        x, (h, w) = _pad_to(x_up, self.multiple)
        g, _ = _pad_to(rgb, self.multiple)
        f, r = self.conv_in(x), self.rgb_in(g)
        for block in self.layers:
            f = block(f, r)
        residual = self.conv_out(f)[..., :h, :w]
        return x_up + structure_gate(x_up, self.config.tau) * residual


class PlainSuperResolver(ModelMixin, ConfigMixin):
    """The plain CNN baseline (no guidance): residual blocks on the bicubic-upsampled image, ``forward(x_up)``."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, num_bands: int, width: int = 48, blocks: int = 4, tau: float = 1e-3):
        super().__init__()
        self.conv_in = nn.Conv2d(num_bands, width, 3, padding=1)
        self.body = residual_body(width, blocks)
        self.conv_out = nn.Conv2d(width, num_bands, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x_up: torch.Tensor, rgb: torch.Tensor | None = None) -> torch.Tensor:
        f = self.conv_in(x_up)
        for block in self.body:
            f = f + block(f)
        return x_up + structure_gate(x_up, self.config.tau) * self.conv_out(f)
