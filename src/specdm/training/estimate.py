"""How long will this run take here? A few timed steps of each stage, before the real ones.

Hosts of one kind differ several-fold in speed, so a time written in a README cannot
promise much; this measures the host at hand. Each stage's step (forward, backward,
optimizer) is timed on fresh networks of the configured sizes and batches after one
warm-up step; sampling is timed as denoiser evaluations plus one decode. The estimate
is printed before training starts and costs a few seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from specdm.data.datamodule import PatchSet


@dataclass
class Estimate:
    stage1_step_s: float
    stage2_step_s: float
    sample_s: float  # per sample
    stage1_steps: int
    stage2_steps: int
    num_samples: int

    @property
    def stages(self) -> dict[str, float]:
        return {"stage 1": self.stage1_step_s * self.stage1_steps, "stage 2": self.stage2_step_s * self.stage2_steps,
                "sampling": self.sample_s * self.num_samples}

    @property
    def total_s(self) -> float:
        return sum(self.stages.values())

    def message(self) -> str:
        parts = ", ".join(f"{k} {_fmt(v)}" for k, v in self.stages.items())
        return (f"estimated time on this host: about {_fmt(self.total_s)} ({parts}; measured "
                f"{1 / self.stage1_step_s:.1f} stage-1 and {1 / self.stage2_step_s:.1f} stage-2 steps/s)")


def _fmt(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _timed(fn, repeats: int = 3) -> float:
    fn()  # warm-up (allocations, kernel selection)
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def estimate_run(autoencoder: torch.nn.Module, unet: torch.nn.Module, patches: PatchSet, ae_batch: int,
                 unet_batch: int, stage1_steps: int, stage2_steps: int, num_samples: int, sampling_steps: int,
                 sampling_batch: int, condition_channels: int = 0) -> Estimate:
    """Time one training step of ``autoencoder`` and of ``unet`` and one sample; the networks are fresh copies
    that are thrown away (the random state of torch is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        idx = [i % len(patches) for i in range(ae_batch)]
        x, y = patches.batch(idx)
        ae_opt = torch.optim.AdamW(autoencoder.parameters(), lr=1e-9)

        def ae_step():
            rec, logits, mean, logvar = autoencoder(x, y)
            loss = F.l1_loss(rec, x) + F.cross_entropy(logits, y) + 1e-6 * mean.square().mean()
            ae_opt.zero_grad()
            loss.backward()
            ae_opt.step()

        s1 = _timed(ae_step)
        from specdm.models.denoisers import LatentControlledDenoiser

        controlled = isinstance(unet, LatentControlledDenoiser)  # the condition goes through its ControlNet
        config = unet.unet.config if controlled else unet.config
        c_out = config.out_channels
        size = config.sample_size

        def forward(z, t):
            if controlled:
                return unet(z[:, :c_out], t, z[:, c_out:])
            return unet(z, t, encoder_hidden_states=None).sample

        z = torch.randn(unet_batch, c_out + condition_channels, size, size)
        t = torch.randint(0, 1000, (unet_batch,))
        u_opt = torch.optim.AdamW(unet.parameters(), lr=1e-9)

        def unet_step():
            loss = forward(z, t).square().mean()
            u_opt.zero_grad()
            loss.backward()
            u_opt.step()

        s2 = _timed(unet_step)
        b = min(sampling_batch, max(num_samples, 1))
        zs = torch.randn(b, c_out + condition_channels, size, size)
        ts = torch.full((b,), 500)

        @torch.no_grad()
        def sample_batch():
            forward(zs, ts)

        per_eval = _timed(sample_batch, repeats=2)
        with torch.no_grad():
            latent = torch.randn(b, autoencoder.latent_channels, size, size)
            decode = _timed(lambda: autoencoder.decode(latent), repeats=1)
        sample = (per_eval * sampling_steps + decode) / b
    return Estimate(s1, s2, sample, stage1_steps, stage2_steps, num_samples)
