"""A torch ``Dataset`` of training windows with dict samples and ``plot``, as torchgeo's data sets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from matplotlib.figure import Figure

from specdm.data.datamodule import PatchSet
from specdm.data.plot import plot_sample


class WindowDataset(torch.utils.data.Dataset):
    """Windows of a :class:`PatchSet` as ``{"image": float32 (C, H, W) or (T, C, H, W), "mask": int64 (H, W)}``.

    ``transforms`` (optional) maps a sample dict to a sample dict. Values are in
    normalized units ([0, 1] per band on the training split).
    """

    def __init__(self, patches: PatchSet, rgb_bands: Sequence[int], class_names: Sequence[str] | None = None,
                 transforms: Callable[[dict], dict] | None = None):
        self.patches, self.rgb_bands, self.class_names, self.transforms = patches, tuple(rgb_bands), class_names, transforms

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, y = self.patches.batch([i])
        image = x[0, 0] if x.shape[1] == 1 else x[0]
        sample = {"image": image, "mask": y[0]}
        return self.transforms(sample) if self.transforms else sample

    def plot(self, sample: dict, stretch: tuple | None = None, title: str | None = None) -> Figure:
        """False colour (``rgb_bands``) beside the mask (and ``sample["prediction"]`` if present)."""
        return plot_sample({k: v.numpy() if torch.is_tensor(v) else v for k, v in sample.items()},
                           self.rgb_bands, self.class_names, stretch, title)
