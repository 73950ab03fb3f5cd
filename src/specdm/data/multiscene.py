"""Several data sets, aligned to one wavelength grid, trained as one (controllable synthesis, HSIGene).

Each data set (a ``data`` section) is loaded, aligned (its ``align`` option), split and normalized
**on its own** (:func:`~specdm.data.datamodule.prepare_data`): sensors record different units
(AVIRIS counts, reflectance, digital numbers), so each is mapped to [0, 1] by its own training
split. Their training windows are then pooled into one :class:`PatchSet`; masks stay with the
windows but image-only models ignore them. :func:`balanced_items` makes scene-balanced sampling:
every data set is drawn equally often whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from specdm.data.datamodule import PatchSet, PreparedData, prepare_data
from specdm.data.normalize import Normalizer
from specdm.data.windows import Window
from specdm.errors import DataError

if TYPE_CHECKING:
    from specdm.config import DataConfig


@dataclass
class MultiSceneData:
    """Data sets prepared one by one (``sources``), named ``names``, and their pooled training windows."""

    sources: list[PreparedData]
    names: list[str]
    train: PatchSet
    source_of_window: np.ndarray  # (len(train),) index into sources

    @property
    def wavelengths(self) -> list[float]:
        return list(self.sources[0].reference.wavelengths)

    def identity_normalizer(self) -> Normalizer:
        """The pooled windows are already in [0, 1] per data set: the model's own units."""
        c = self.sources[0].reference.num_bands
        return Normalizer(np.zeros(c, np.float32), np.ones(c, np.float32))

    def held_out(self, k: int) -> PatchSet | None:
        """Held-out windows of data set ``k`` (its test split, normalized by its own training split)."""
        return self.sources[k].held_out()

    def summary(self) -> str:
        """One line on the training data (what ``specdm run`` prints first)."""
        counts = ", ".join(f"{n} ({int((self.source_of_window == k).sum())})" for k, n in enumerate(self.names))
        p = self.train.size
        return (f"{len(self.train)} training windows of {p}x{p} from {counts}, "
                f"{self.sources[0].reference.num_bands} aligned bands, drawn scene-balanced")

    def balanced(self) -> PatchSet:
        """The pooled windows listed scene-balanced (every data set equally often), for uniform draws."""
        t = self.train
        return PatchSet(t.images, t.masks, [t.windows[i] for i in balanced_items(self.source_of_window)], t.size)


def pool(sources: list[PreparedData], names: list[str]) -> MultiSceneData:
    """Pool the training windows of ``sources`` (all on one band grid) into one :class:`MultiSceneData`."""
    if not sources:
        raise DataError("no data set to train on")
    ref = sources[0].reference
    images, masks, windows, owner = [], [], [], []
    for k, p in enumerate(sources):
        s = p.reference
        if s.num_bands != ref.num_bands or (s.wavelengths is not None and ref.wavelengths is not None
                                            and not np.allclose(s.wavelengths, ref.wavelengths)):
            raise DataError(f"data set '{names[k]}' has {s.num_bands} bands, '{names[0]}' {ref.num_bands}: align both "
                            f"to one grid (data.align)", s.source)
        if p.train.size != sources[0].train.size:
            raise DataError(f"data set '{names[k]}' is cut into {p.train.size}-pixel windows, '{names[0]}' into "
                            f"{sources[0].train.size}", s.source)
        if not len(p.train):
            raise DataError(f"data set '{names[k]}' gives no training window of {p.train.size} pixels", s.source)
        offset = len(images)
        images += p.train.images
        masks += p.train.masks
        windows += [Window(w.scene + offset, w.r, w.c) for w in p.train.windows]
        owner += [k] * len(p.train)
    return MultiSceneData(sources, names, PatchSet(images, masks, windows, sources[0].train.size), np.asarray(owner))


def prepare_sources(configs: list[DataConfig]) -> MultiSceneData:
    """Load, align, split and normalize every ``data`` section on its own, then :func:`pool` them."""
    prepared = [prepare_data(d) for d in configs]
    names = [p.reference.name for p in prepared]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:  # two crops of one data set: number them
        seen: dict[str, int] = {}
        for i, n in enumerate(names):
            if n in dup:
                seen[n] = seen.get(n, 0) + 1
                names[i] = f"{n}_{seen[n]}"
    return pool(prepared, names)


def balanced_items(source_of_window: np.ndarray) -> np.ndarray:
    """Window indices in which every source appears equally often: each source's windows repeated (in order)
    up to the largest source's count, sources one after another. Drawing uniformly from the result draws
    each source with probability 1 / (number of sources)."""
    source_of_window = np.asarray(source_of_window)
    groups = [np.flatnonzero(source_of_window == k) for k in np.unique(source_of_window)]
    n = max(len(g) for g in groups)
    return np.concatenate([np.resize(g, n) for g in groups])
