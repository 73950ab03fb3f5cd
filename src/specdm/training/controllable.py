"""Stage 2 of controllable synthesis: the ControlNet-steered denoiser with per-condition dropout.

Training rows are the stored posteriors of every (window, D4 transform) (:func:`encode_patches`),
each with its packed conditions (:func:`condition_table`: maps computed once per window and moved
by the same D4 transform, the content vector recomputed on the transformed window by the model's
content function, the text of the window's data set). Items are drawn scene-balanced (``rows``: every data set equally often).
Each item leaves out each condition independently with probability ``p_drop`` and all of them at
once with ``p_uncond`` (zeros, presence 0), so one network predicts the noise for any subset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from specdm.conditions.controls import (
    GLOBAL_WIDTHS,
    compute,
    pack,
    presence_slices,
    text_embedding,
    transform,
    window_conditions,
    window_rgb,
)
from specdm.data.multiscene import MultiSceneData
from specdm.data.windows import d4
from specdm.schedulers import training_scheduler
from specdm.training.engine import LoopConfig, StepRandom, train_loop


def condition_table(data: MultiSceneData, rgb_bands, names, params: dict, texts: list[str | None],
                    augmentations: int, content=None,
                    widths: dict[str, int] = GLOBAL_WIDTHS) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Packed conditions (:func:`~specdm.conditions.controls.pack`) of every training row, in the order of
    :func:`~specdm.training.diffusion.encode_patches` (window ``i``, transform ``k`` -> row ``i * augmentations + k``):
    local maps as float16, global vectors as float32. ``texts``: the text of each data set (None: none);
    ``content``, ``widths``: the model's content function and global widths (default: the histogram's)."""
    embedded = [None if t is None else text_embedding(t) for t in texts]
    locs, globs = [], []
    for i in tqdm(range(len(data.train)), desc="extracting conditions", leave=False):
        x = data.train.get(i, 0)[0][0]  # (C, P, P), date 1
        base = window_conditions(x, rgb_bands, [n for n in names if n != "content"], params)
        items = []
        for k in range(augmentations):
            c = transform(base, k)
            if "content" in names:
                c["content"] = compute("content", window_rgb(d4(x, k), rgb_bands), params.get("content"), content)
            if "text" in names and embedded[data.source_of_window[i]] is not None:
                c["text"] = embedded[data.source_of_window[i]]
            items.append(c)
        L, G = pack(items, names, data.train.size, widths)
        locs.append(None if L is None else torch.from_numpy(L).half())
        globs.append(None if G is None else torch.from_numpy(G))
    return (None if locs[0] is None else torch.cat(locs)), (None if globs[0] is None else torch.cat(globs))


def train_controlled_denoiser(
    net: torch.nn.Module,
    mean: torch.Tensor,
    std: torch.Tensor,
    scale: torch.Tensor,
    local: torch.Tensor | None,
    glob: torch.Tensor | None,
    rows: np.ndarray,
    names,
    loop: LoopConfig,
    ckpt_dir: Path,
    p_drop: float = 0.3,
    p_uncond: float = 0.1,
    schedule: dict | None = None,
    resume: bool = False,
    widths: dict[str, int] = GLOBAL_WIDTHS,
) -> torch.nn.Module:
    """Epsilon-prediction training of a :class:`~specdm.models.denoisers.controlnet.ControlledDenoiser` on the
    scaled latents ``mean + std * noise``; items index ``rows`` (scene-balanced rows of the tables); ``widths``:
    the global conditions' widths the tables were packed with."""
    sched = training_scheduler(**(schedule or {}))
    T = sched.config.num_train_timesteps
    shape = tuple(mean.shape[1:])
    scale4 = scale.view(1, -1, 1, 1)
    rows_t = torch.as_tensor(np.asarray(rows), dtype=torch.long)
    local_at, global_at = presence_slices(names, widths)
    drop, drop_all = round(1000 * p_drop), round(1000 * p_uncond)

    def step(model, items: torch.Tensor, rnd: StepRandom):
        idx = rows_t[items.cpu()]
        dev = rnd.device
        z = (mean[idx].to(dev) + std[idx].to(dev) * rnd.normal(*shape)) * scale4.to(dev)
        noise = rnd.normal(*shape)
        t = rnd.integers(T)
        zt = sched.add_noise(z, noise, t.cpu()).to(dev)
        keep_all = rnd.integers(1000) >= drop_all
        loc = None if local is None else local[idx].to(dev).float()
        glb = None if glob is None else glob[idx].to(dev).float()
        for name in names:  # fixed order: the same draws on every process and on resume
            keep = ((rnd.integers(1000) >= drop) & keep_all).float()
            if name in widths:
                glb[:, global_at[name]] *= keep[:, None]
            else:
                loc[:, local_at[name]] *= keep[:, None, None, None]
        pred = model(zt, t, loc, glb).sample
        return F.mse_loss(pred.float(), noise), {}

    return train_loop(net, step, len(rows_t), loop, ckpt_dir, resume, desc="stage 2 (controllable)")
