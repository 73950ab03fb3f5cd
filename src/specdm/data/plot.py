"""Pictures of samples: false colour with a fixed stretch, class colours, ``plot_sample``.

One colour stretch for real, reconstructed and synthetic images alike (fitted on the
real training split, ``PROTOCOL.md``): a per-image stretch would hide brightness errors.
Figures are matplotlib ``Figure`` objects (no pyplot), so the caller's backend is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure


def class_colors(num_classes: int) -> np.ndarray:
    """One RGB colour in [0, 1] per class, (K, 3): tab10 / tab20, else evenly spaced on turbo."""
    if num_classes <= 10:
        return np.asarray(colormaps["tab10"].colors[:num_classes])
    if num_classes <= 20:
        return np.asarray(colormaps["tab20"].colors[:num_classes])
    return colormaps["turbo"](np.linspace(0, 1, num_classes))[:, :3]


def rgb_stretch(images: np.ndarray, rgb_bands: Sequence[int], percentiles=(2.0, 98.0)) -> tuple[np.ndarray, np.ndarray]:
    """Low and high values of the three ``rgb_bands`` over ``images`` (..., C): the shared stretch."""
    rgb = np.asarray(images, dtype=np.float64)[..., list(rgb_bands)].reshape(-1, 3)
    lo, hi = np.percentile(rgb, list(percentiles), axis=0)
    return lo, hi


def false_colour(image: np.ndarray, rgb_bands: Sequence[int], stretch: tuple | None = None) -> np.ndarray:
    """``image`` (H, W, C) as an RGB array in [0, 1] (H, W, 3); ``stretch`` = (low, high) per channel,
    else the image's own 2nd..98th percentiles."""
    rgb = np.asarray(image, dtype=np.float64)[..., list(rgb_bands)]
    lo, hi = stretch if stretch is not None else rgb_stretch(rgb, (0, 1, 2))
    return np.clip((rgb - lo) / np.maximum(np.asarray(hi) - lo, 1e-12), 0, 1)


def plot_sample(sample: dict, rgb_bands: Sequence[int], class_names: Sequence[str] | None = None,
                stretch: tuple | None = None, title: str | None = None) -> Figure:
    """A figure of a dict sample: false colour of ``sample["image"]`` ((C, H, W) or (T, C, H, W), one panel
    per date) and, when present, ``sample["mask"]`` (H, W) in class colours (also ``"prediction"``)."""
    image = np.asarray(sample["image"])
    dates = image[None] if image.ndim == 3 else image
    panels = [("image" if len(dates) == 1 else f"date {t + 1}", false_colour(np.moveaxis(d, 0, -1), rgb_bands, stretch))
              for t, d in enumerate(dates)]
    k = len(class_names) if class_names else None
    for key in ("mask", "prediction"):
        if key in sample and sample[key] is not None:
            m = np.asarray(sample[key]).astype(np.int64)
            colours = class_colors(k or int(m.max()) + 1)
            panels.append((key, colours[m]))
    fig = Figure(figsize=(3 * len(panels), 3.2))
    for i, (name, arr) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(arr, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig
