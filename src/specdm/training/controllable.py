"""Stage 2 of controllable synthesis: the ControlNet-steered denoiser with per-condition dropout.

Training rows are the stored posteriors of every (window, D4 transform) (:func:`encode_patches`),
each with its packed conditions (:func:`condition_table`: maps computed once per window and moved
by the same D4 transform, the content vector recomputed on the transformed window by the model's
content function, the text of the window's data set). Items are drawn scene-balanced (``rows``: every data set equally often).
Each item leaves out each condition independently with probability ``p_drop`` and all of them at
once with ``p_uncond`` (zeros, presence 0), so one network predicts the noise for any subset
(:class:`ConditionTables`, trained by the shared :func:`~specdm.training.diffusion.train_latent_denoiser`).
"""

from __future__ import annotations

import torch
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
from specdm.training.diffusion import Conditioning


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


class ConditionTables(Conditioning):
    """The conditions of controllable synthesis as stage 2's :class:`~specdm.training.diffusion.Conditioning`: the
    packed tables of every row (:func:`condition_table`), each condition left out of an item with ``p_drop`` and all
    of them with ``p_uncond`` (zeros, presence 0), drawn after the timestep; the network is a
    :class:`~specdm.models.denoisers.controlnet.ControlledDenoiser`. ``widths``: the global conditions' widths the
    tables were packed with."""

    def __init__(self, local: torch.Tensor | None, glob: torch.Tensor | None, names, p_drop: float = 0.3,
                 p_uncond: float = 0.1, widths: dict[str, int] = GLOBAL_WIDTHS):
        self.local, self.glob, self.names, self.widths = local, glob, list(names), widths
        self.local_at, self.global_at = presence_slices(names, widths)
        self.drop, self.drop_all = round(1000 * p_drop), round(1000 * p_uncond)

    def dropout(self, rnd, rows, condition):
        dev = rnd.device
        keep_all = rnd.integers(1000) >= self.drop_all
        loc = None if self.local is None else self.local[rows].to(dev).float()
        glb = None if self.glob is None else self.glob[rows].to(dev).float()
        for name in self.names:  # fixed order: the same draws on every process and on resume
            keep = ((rnd.integers(1000) >= self.drop) & keep_all).float()
            if name in self.widths:
                glb[:, self.global_at[name]] *= keep[:, None]
            else:
                loc[:, self.local_at[name]] *= keep[:, None, None, None]
        return loc, glb

    def predict(self, net, zt, t, condition):
        return net(zt, t, *condition).sample
