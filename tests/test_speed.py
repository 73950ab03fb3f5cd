"""The speed features (specdm.speed): off reproduces the float32 path, on learns the same within a stated tolerance,
a fast run resumes exactly, and the channels-last GroupNorm computes what GroupNorm computes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from specdm.data.datamodule import PatchSet
from specdm.data.windows import Window
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.denoisers import build_denoiser
from specdm.speed import ChannelsLastGroupNorm, Speed, resolve_speed, to_channels_last
from specdm.training.autoencoder import train_autoencoder
from specdm.training.diffusion import Latents, Unconditional, train_latent_denoiser
from specdm.training.engine import LoopConfig, latest_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

# Relative difference allowed between the loss of a bf16 + channels-last run and of the float32 run after the same
# steps from the same initialization (bf16 keeps 8 bits of mantissa: per-step rounding of about 0.4 %, which
# Adam's updates carry into the weights). Measured on this project's hosts: under 2 %.
LOSS_TOLERANCE = 0.05


def _patches(rng: np.random.Generator, bands: int = 6, size: int = 16) -> PatchSet:
    """Two classes with distinct spectra on a 32 x 32 scene, windows of ``size``."""
    mask = np.zeros((32, 32), np.int64)
    mask[:, 16:] = 1
    spectra = np.stack([np.linspace(0.2, 0.4, bands), np.linspace(0.7, 0.3, bands)])
    image = spectra[mask].transpose(2, 0, 1) + 0.02 * rng.standard_normal((bands, 32, 32))
    windows = [Window(0, r, c) for r in range(0, 17, 8) for c in range(0, 17, 8)]
    return PatchSet([image[None].astype(np.float32)], [mask], windows, size)


def _ae(seed: int = 0) -> SpectralAutoencoder:
    torch.manual_seed(seed)
    return SpectralAutoencoder("two_stream", 6, 2, 1, 4, (8, 16), 1, 8, "zeros", 4, True)


def _losses(folder) -> list[float]:
    return [json.loads(line)["loss"] for line in (folder / "train_log.jsonl").read_text().splitlines()]


def _loop(steps: int, speed: str, **kw) -> LoopConfig:
    return LoopConfig(steps, 4, 2e-3, seed=0, checkpoint_every=kw.pop("checkpoint_every", 1000), log_every=1,
                      speed=speed, **kw)


def test_resolve_speed():
    assert resolve_speed("plain") == Speed() and Speed().plain
    assert resolve_speed("plain", "bf16") == Speed("bf16", False, False)  # an explicit precision holds
    assert resolve_speed("fast", "no") == Speed("no", False, True)  # fused optimizer, float32, contiguous
    assert resolve_speed("fast", "bf16") == Speed("bf16", True, True)
    with pytest.raises(ValueError):
        resolve_speed("quick")


def test_channels_last_group_norm_equals_group_norm_and_undo_restores_the_model():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.GroupNorm(4, 8), torch.nn.SiLU())
    x = torch.randn(2, 4, 9, 9)
    want = net(x)
    keys = {k: v.clone() for k, v in net.state_dict().items()}
    undo = to_channels_last(net)
    assert type(net[1]) is ChannelsLastGroupNorm and net[0].weight.is_contiguous(memory_format=torch.channels_last)
    got = net(x.contiguous(memory_format=torch.channels_last))
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    undo()
    assert type(net[1]) is torch.nn.GroupNorm and net[0].weight.is_contiguous()
    assert all(torch.equal(v, keys[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("stage", [1, 2])
def test_fast_training_learns_what_plain_training_learns(stage, tmp_path, rng):
    """bf16 autocast + channels-last + fused AdamW (forced, so that the test runs on any host) against float32 from
    the same initialization and the same batches: the losses of 15 steps agree within LOSS_TOLERANCE, and the
    returned model is plain again (contiguous, GroupNorm)."""
    patches = _patches(rng)
    gen = torch.Generator().manual_seed(0)
    mean, std = torch.randn(16, 8, 4, 4, generator=gen), torch.full((16, 8, 4, 4), 0.1)

    def train(speed: str, precision: str, folder):
        if stage == 1:
            return train_autoencoder(patches, _ae(), _loop(15, speed, mixed_precision=precision), folder)
        torch.manual_seed(0)
        unet = build_denoiser(8, 4, (16, 16), 1, 8)
        return train_latent_denoiser(unet, Latents(mean, std, torch.ones(8)), Unconditional(),
                                     _loop(15, speed, mixed_precision=precision, ema_decay=0.9), folder)

    train("plain", "auto", tmp_path / "plain")
    model = train("fast", "bf16", tmp_path / "fast")
    plain, fast = np.array(_losses(tmp_path / "plain")), np.array(_losses(tmp_path / "fast"))
    assert len(plain) == len(fast) == 15
    assert plain[-1] < plain[0]  # it learns
    rel = np.abs(fast - plain) / plain
    print(f"stage {stage}: max relative loss difference {rel.max():.4f}")
    assert rel.max() < LOSS_TOLERANCE, rel
    assert not np.array_equal(fast, plain)  # the features did act
    assert all(p.is_contiguous() for p in model.parameters())
    assert not any(isinstance(m, ChannelsLastGroupNorm) for m in model.modules())


def test_fast_run_resumes_exactly(tmp_path, rng):
    """A fast run stopped after a checkpoint and resumed ends with the weights of an uninterrupted fast run
    (channels-last moments restored from contiguous checkpoint tensors)."""
    patches = _patches(rng)
    whole = train_autoencoder(patches, _ae(), _loop(6, "fast", mixed_precision="bf16", checkpoint_every=3),
                              tmp_path / "whole")
    train_autoencoder(patches, _ae(), _loop(3, "fast", mixed_precision="bf16", checkpoint_every=3), tmp_path / "cut")
    assert latest_checkpoint(tmp_path / "cut").name == "step_0000003"
    resumed = train_autoencoder(patches, _ae(1), _loop(6, "fast", mixed_precision="bf16", checkpoint_every=3),
                                tmp_path / "cut", resume=True)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
