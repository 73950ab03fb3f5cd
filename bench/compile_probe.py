"""Would torch.compile pay? Both stages' networks, plain vs fast vs fast + torch.compile, one process.

A hand-written training step (the stage's loss, AdamW, clipping) on one fixed batch of the config's windows,
so that the only difference between the variants is how the network runs: ``plain`` (float32),
``fast`` (bf16 autocast, channels-last with specdm.speed's GroupNorm, fused AdamW) and ``fast+compile``
(the same, with the VAEs' encoders and decoders, or the U-Net, compiled by inductor). Reports the time of the
first two steps (compilation) and the steps/s after warm-up, variants alternating.

    .venv/bin/python bench/compile_probe.py sentinel2_demo --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, command_line, finish, header_md, machine_info, other_load  # noqa: E402

VARIANTS = ("plain", "fast", "fast+compile")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "compile_probe")
    a = p.parse_args()
    t0 = time.time()
    import torch
    import torch.nn.functional as F

    from specdm.config import load_config
    from specdm.data.datamodule import prepare_data
    from specdm.models.denoisers import build_denoiser
    from specdm.models.losses import image_loss, kl_divergence, mask_loss
    from specdm.recipes.stages import build_autoencoder
    from specdm.speed import to_channels_last

    torch.set_num_threads(a.threads)
    cfg = load_config(a.config)
    data = prepare_data(cfg.data)
    x, y = data.train.batch(list(range(cfg.autoencoder.batch_size)))
    ref = data.reference
    ae0 = build_autoencoder(cfg.autoencoder, ref.num_bands, ref.num_classes, len(ref.images))
    zc, zs = ae0.latent_channels, cfg.data.patch_size // ae0.downsampling
    z = torch.randn(cfg.diffusion.batch_size, zc, zs, zs)
    t = torch.randint(0, 1000, (cfg.diffusion.batch_size,))

    def make(stage: int, v: str):
        torch.manual_seed(0)
        fast = v != "plain"
        if stage == 1:
            m = build_autoencoder(cfg.autoencoder, ref.num_bands, ref.num_classes, len(ref.images))
        else:
            d = cfg.diffusion
            m = build_denoiser(zc, zs, tuple(d.block_out_channels), d.layers_per_block, d.norm_num_groups)
        if fast:
            to_channels_last(m)
        fm = m
        if "compile" in v:
            if stage == 1:  # the padding around the VAEs stays eager (inductor failed on its backward)
                for vae in (m.image_vae, getattr(m, "mask_vae", None)):
                    if vae is not None:
                        vae.encoder, vae.decoder = torch.compile(vae.encoder), torch.compile(vae.decoder)
            else:
                fm = torch.compile(m)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True) if fast else torch.optim.AdamW(m.parameters(), lr=1e-4)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
                if stage == 1:
                    rec, logits, mean, logvar = fm(x, y)
                    loss = (image_loss(rec.float().flatten(0, 1), x.flatten(0, 1), 0.1)[0]
                            + mask_loss(logits.float(), y, None, None)[0] + 1e-6 * kl_divergence(mean.float(), logvar.float()))
                else:
                    loss = F.mse_loss(fm(z, t, encoder_hidden_states=None).sample.float(), z)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0, foreach=fast)
            opt.step()

        return step

    result = {"command": command_line(), "machine": machine_info(), "background": other_load(), "rows": []}
    for stage in (1, 2):
        steps, first = {}, {}
        for v in VARIANTS:
            s = time.perf_counter()
            steps[v] = make(stage, v)
            steps[v]()
            steps[v]()
            first[v] = time.perf_counter() - s
        times = {v: [] for v in VARIANTS}
        for _ in range(a.rounds):
            for v in VARIANTS:
                for _ in range(a.steps):
                    s = time.perf_counter()
                    steps[v]()
                    times[v].append(time.perf_counter() - s)
        base = statistics.median(times["plain"])
        for v in VARIANTS:
            med = statistics.median(times[v])
            row = {"stage": stage, "variant": v, "first_two_steps_s": round(first[v], 2), "steps_per_s": 1 / med,
                   "ratio": base / med}
            result["rows"].append(row)
            print(row, flush=True)
    return finish(a.out, "compile_probe", result, t0, markdown)


def markdown(r: dict) -> str:
    lines = header_md("torch.compile on top of the fast path", r)
    lines += ["| stage | variant | first two steps (s) | steps/s | ratio to plain |", "|---:|---|---:|---:|---:|"]
    lines += [f"| {x['stage']} | {x['variant']} | {x['first_two_steps_s']} | {x['steps_per_s']:.2f} | {x['ratio']:.2f}x |"
              for x in r["rows"]]
    return "\n".join(lines + [""])


if __name__ == "__main__":
    sys.exit(main())
