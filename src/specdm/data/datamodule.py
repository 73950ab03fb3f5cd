"""From scenes to normalized training patches: the one path every stage uses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from specdm.data.normalize import Normalizer
from specdm.data.scarce import thin_labels
from specdm.data.splits import Region, SplitParts, split_parts
from specdm.data.windows import Window, d4, make_windows, make_windows_in
from specdm.errors import ConfigError, DataError
from specdm.metrics.spectral import ClassSpectra
from specdm.scene import Scene

if TYPE_CHECKING:
    from specdm.config import DataConfig


@dataclass
class PatchSet:
    """Normalized scenes plus the windows cut from them.

    ``images[s]`` is a ``(T, C, H, W)`` float32 array (T dates) of scene ``s``;
    ``masks[s]`` is ``(H, W)`` int64.
    """

    images: list[np.ndarray]
    masks: list[np.ndarray]
    windows: list[Window]
    size: int

    def __len__(self) -> int:
        return len(self.windows)

    def get(self, i: int, code: int = 0) -> tuple[np.ndarray, np.ndarray]:
        w = self.windows[i]
        sl = (slice(w.r, w.r + self.size), slice(w.c, w.c + self.size))
        img = self.images[w.scene][(..., *sl)]
        msk = self.masks[w.scene][sl]
        return d4(img, code), d4(msk, code)

    def batch(self, indices, codes=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, T, C, P, P)`` images and ``(N, P, P)`` masks for window ``indices``."""
        codes = [0] * len(indices) if codes is None else codes
        pairs = [self.get(int(i), int(k)) for i, k in zip(indices, codes)]
        x = torch.from_numpy(np.stack([np.ascontiguousarray(p[0]) for p in pairs]))
        y = torch.from_numpy(np.stack([np.ascontiguousarray(p[1]) for p in pairs]))
        return x, y

    def pixel_statistics(self) -> ClassSpectra:
        """Mean and spread of every pixel of the windows' first date as one class (normalized units): what the
        dataset card of a set without masks compares its samples with."""
        stats = ClassSpectra(1, self.images[0].shape[1])
        for i in range(len(self)):
            x = np.moveaxis(self.get(i)[0][0], 0, -1)
            stats.update(x, np.zeros(x.shape[:2], np.int64))
        return stats


@dataclass
class PreparedData:
    """Everything later stages need from the data: scenes, split, normalization, patches.

    ``scenes`` hold the labels every stage may read: with ``data.labels_keep`` below 1 the training part's
    labels are already thinned (``labels`` records what was kept). ``parts`` holds the split as per-scene
    masks (:class:`~specdm.data.splits.SplitParts`): a fold split's training and test parts are unions of
    blocks, which ``split`` gives as exact covers by rectangles.
    """

    scenes: list[Scene]
    split: dict[str, list[Region]]
    normalizer: Normalizer
    train: PatchSet
    parts: SplitParts | None = None
    labels: dict | None = None  # the label setting: kept share, kept pixels per class (scarce.thin_labels)
    cleaning: dict = field(default_factory=dict)  # stride, min_labelled, max_blank the training windows were cut with
    super_resolved: dict | None = None  # windows of super-resolved scenes among the training windows (data.superres)

    @property
    def reference(self) -> Scene:
        return self.scenes[0]

    @property
    def train_masks(self) -> list[np.ndarray]:
        """Per scene, the pixels of the training part (a training window lies wholly inside it)."""
        return self._parts().train

    @property
    def test_masks(self) -> list[np.ndarray]:
        """Per scene, the pixels of the test part: predict the whole scene, score where this is True."""
        return self._parts().test

    def _parts(self) -> SplitParts:
        if self.parts is None:
            from specdm.data.splits import regions_mask

            self.parts = SplitParts(self.split, regions_mask(self.scenes, self.split.get("train", [])),
                                    regions_mask(self.scenes, self.split.get("test", [])))
        return self.parts

    def split_record(self) -> dict:
        """What a result should store about the split and the label setting (fold design, file hash, fold,
        its class table; kept label share and classes)."""
        return {"split": dict(self._parts().record), "labels": self.labels}

    def scene_image(self, i: int) -> np.ndarray:
        """Scene ``i`` whole, normalized, ``(T, C, H, W)``: the input of a prediction scored on ``test_masks[i]``."""
        return np.stack([self.normalizer(im).transpose(2, 0, 1) for im in self.scenes[i].images])

    def held_out(self, stride: int | None = None) -> PatchSet | None:
        """Normalized windows of the test regions (no cleaning; ``stride`` defaults to the patch size),
        or None when the split has no test region or no window fits in it. A fold split's windows lie
        wholly inside its test part (there may be none: its test blocks are smaller than a window)."""
        size = self.train.size
        if self.parts is not None and self.parts.masked:
            try:
                windows = make_windows_in(self.scenes, self.parts.test, size, stride or size, 0.0, 1.0)
            except DataError:
                return None
        else:
            regions = [g for g in self.split.get("test", []) if g.height >= size and g.width >= size]
            if not regions:
                return None
            windows = make_windows(self.scenes, regions, size, stride or size, 0.0, 1.0)
        return self._patches(windows, size)

    def image_windows(self, stride: int | None = None) -> PatchSet:
        """Every training window whatever its labels (``data.max_blank`` cleaning only; ``stride`` defaults to
        the training windows'): the unlabelled training image for stage 1 or a self-training control. Their
        masks hold the kept labels only."""
        size, c = self.train.size, self.cleaning
        stride = stride or c.get("stride", size)
        max_blank = c.get("max_blank", 1.0)
        if self._parts().masked:
            windows = make_windows_in(self.scenes, self.parts.train, size, stride, 0.0, max_blank)
        else:
            windows = make_windows(self.scenes, self.split["train"], size, stride, 0.0, max_blank)
        return self._patches(windows, size)

    def _patches(self, windows: list[Window], size: int) -> PatchSet:
        used = {w.scene for w in windows}
        images = [self.scene_image(i) if i in used else np.zeros((len(s.images), s.num_bands, 0, 0), np.float32)
                  for i, s in enumerate(self.scenes)]
        masks = [s.mask if s.mask is not None else np.zeros(s.shape, np.int64) for s in self.scenes]
        return PatchSet(images, masks, windows, size)

    def test_pixels(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Every pixel of the test regions, normalized, as one row of "windows" for pixel-wise models:
        images ``(1, T, C, 1, P)`` and labels ``(1, 1, P)``; None without a test region or masks."""
        regions = self.split.get("test", [])
        if not regions or self.reference.mask is None:
            return None
        xs, ys = [], []
        for g in regions:
            s = self.scenes[g.scene]
            xs.append(np.stack([self.normalizer(im[g.r0 : g.r1, g.c0 : g.c1]).reshape(-1, s.num_bands).T
                                for im in s.images]))  # (T, C, p)
            ys.append(s.mask[g.r0 : g.r1, g.c0 : g.c1].reshape(-1))
        return np.concatenate(xs, -1)[None, :, :, None], np.concatenate(ys)[None, None]

    def summary(self) -> str:
        """One line on the training data (what ``specdm run`` prints first)."""
        ref, p = self.reference, self.train.size
        sr = self.super_resolved
        extra = "" if sr is None else (f" ({sr['real_windows']} real, {sr['windows']} of super-resolved scenes: "
                                       + ", ".join(f["path"] for f in sr["folders"]) + ")")
        return (f"{len(self.train)} training windows of {p}x{p}{extra} from {len(self.scenes)} scene(s), "
                f"{ref.num_bands} bands, {ref.num_classes} classes")

    def train_statistics(self) -> ClassSpectra:
        """Class counts and spectra of the training regions (normalized units, every date)."""
        ref = self.reference
        stats = ClassSpectra(ref.num_classes, ref.num_bands)
        for g in self.split["train"]:
            s = self.scenes[g.scene]
            for im in s.images:
                stats.update(self.normalizer(im[g.r0 : g.r1, g.c0 : g.c1]), s.mask[g.r0 : g.r1, g.c0 : g.c1])
        return stats


def prepare(
    scenes: list[Scene],
    split_spec: dict,
    patch_size: int,
    stride: int,
    min_labelled: float = 0.0,
    max_blank: float = 0.5,
    percentiles=(0.0, 100.0),
    clip: bool = False,
    labels_keep: float = 1.0,
    labels_cell: int = 8,
    labels_seed: int = 0,
) -> PreparedData:
    """Split, thin the training labels (``labels_keep`` < 1, :func:`~specdm.data.scarce.thin_labels`), fit
    normalization on training pixels only, cut training windows.

    A fold split's windows are those whose footprint lies wholly in the fold's training part. With thinned
    labels a training window needs ``min_labelled * labels_keep`` of its pixels, and at least one, to carry a
    kept label (:meth:`PreparedData.image_windows` gives every training window).
    """
    check_compatible(scenes)
    parts = split_parts(scenes, split_spec, patch_size)
    split = parts.regions
    labels = None
    if all(s.mask is not None for s in scenes):
        scenes, labels = thin_labels(scenes, parts.train, parts.test, labels_keep, labels_cell, labels_seed)
    elif labels_keep < 1:
        raise ConfigError(f"data.labels_keep {labels_keep:g} thins labels, but scene "
                          f"'{next(s.name for s in scenes if s.mask is None)}' has none", scenes[0].source)
    train_pixels = np.concatenate(
        [im[g.r0 : g.r1, g.c0 : g.c1].reshape(-1, im.shape[-1]) for g in split["train"] for im in scenes[g.scene].images]
    )
    norm = Normalizer.fit(train_pixels, percentiles, clip, band_names=scenes[0].band_names, source=scenes[0].source)
    if labels_keep < 1:  # a window that qualified with every label qualifies with its share of them
        min_labelled = max(min_labelled * labels_keep, 1 / patch_size**2)
    if parts.masked:
        windows = make_windows_in(scenes, parts.train, patch_size, stride, min_labelled, max_blank)
    else:
        windows = make_windows(scenes, split["train"], patch_size, stride, min_labelled, max_blank)
    used = sorted({w.scene for w in windows})
    images, masks = [], []
    for i, s in enumerate(scenes):
        if i in used:  # keep memory to the scenes that feed training
            images.append(np.stack([norm(im).transpose(2, 0, 1) for im in s.images]))
            masks.append(s.mask if s.mask is not None else np.zeros(s.shape, np.int64))
        else:
            images.append(np.zeros((len(s.images), s.num_bands, 0, 0), np.float32))
            masks.append(np.zeros((0, 0), np.int64))
    cleaning = {"stride": stride, "min_labelled": min_labelled, "max_blank": max_blank}
    return PreparedData(scenes, split, norm, PatchSet(images, masks, windows, patch_size), parts, labels, cleaning)


def check_compatible(scenes: list[Scene]) -> None:
    """All scenes must share task, bands and classes."""
    if not scenes:
        raise DataError("no scene was loaded")
    a = scenes[0]
    for s in scenes[1:]:
        if s.task != a.task or s.num_bands != a.num_bands or s.class_names != a.class_names:
            raise DataError(
                f"scene '{s.name}' ({s.task}, {s.num_bands} bands, {s.num_classes} classes) does not match "
                f"scene '{a.name}' ({a.task}, {a.num_bands} bands, {a.num_classes} classes)",
                s.source,
            )


def load_data(d: "DataConfig") -> list[Scene]:
    """Scenes named or pointed at by the ``data`` section of a config, with its band selection applied."""
    from specdm.datasets import load_files, load_scenes

    if d.dataset:
        scenes = load_scenes(d.dataset, root=d.root, **d.options)
    else:
        scenes = load_files(**d.file_options())
    if d.wavelength_range is not None:
        scenes = [_nominal_wavelengths(s, d.wavelength_range) for s in scenes]
    if d.bands:
        if d.rgb_bands is not None and any(b not in d.bands for b in scenes[0].rgb_bands):
            raise ConfigError(f"data.rgb_bands picks bands {list(scenes[0].rgb_bands)} of the file, but data.bands keeps "
                              f"only {list(d.bands)}; pick preview bands among the kept ones", d.image)
        scenes = [s.select_bands(d.bands) for s in scenes]
    if d.align is not None:
        from specdm.data.align import align_scene, wavelength_grid

        a = d.align
        grid = wavelength_grid(a.start, a.stop, a.bands)
        scenes = [align_scene(s, grid, method=a.method, outside=a.outside, max_gap=a.max_gap) for s in scenes]
    if d.text is not None:
        scenes = [replace(s, text=d.text, conditions=dict(s.conditions), extra=dict(s.extra)) for s in scenes]
    return scenes


def _nominal_wavelengths(scene: Scene, wavelength_range) -> Scene:
    """``scene`` with band centres evenly spaced over ``wavelength_range`` (nm); refuses to replace recorded ones."""
    if scene.wavelengths is not None:
        raise ConfigError(f"data.wavelength_range gives nominal band centres, but scene '{scene.name}' records its own",
                          scene.source)
    lo, hi = wavelength_range
    if not 0 < lo < hi:
        raise ConfigError(f"data.wavelength_range [{lo:g}, {hi:g}] must rise from a positive wavelength (nm)", scene.source)
    wl = np.linspace(lo, hi, scene.num_bands).round(3).tolist()
    return replace(scene, wavelengths=wl, rgb_bands=None, conditions=dict(scene.conditions),
                   extra=dict(scene.extra, nominal_wavelengths=True))


def prepare_data(d: "DataConfig", scenes: list[Scene] | None = None) -> PreparedData:
    """:func:`prepare` with the settings of the ``data`` section of a config (scenes loaded when not given); with
    ``data.super_resolved``, the windows of those super-resolved scenes join the training windows
    (:func:`specdm.data.superres.add_super_resolved`)."""
    data = prepare(
        scenes if scenes is not None else load_data(d),
        d.split.model_dump(),
        d.patch_size,
        d.stride,
        d.min_labelled,
        d.max_blank,
        d.percentiles,
        d.clip,
        d.labels_keep,
        d.labels_cell,
        d.labels_seed,
    )
    if d.super_resolved:
        from specdm.data.superres import add_super_resolved

        data = add_super_resolved(data, d.super_resolved, d.super_resolved_stride)
    return data
