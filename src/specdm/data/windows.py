"""Square windows inside split regions, their cleaning, and the D4 augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdm.data.splits import Region
from specdm.errors import DataError
from specdm.scene import Scene


@dataclass(frozen=True)
class Window:
    """A ``size`` x ``size`` patch of scene ``scene`` whose top-left pixel is ``(r, c)``."""

    scene: int
    r: int
    c: int


def positions(length: int, size: int, stride: int) -> list[int]:
    """Start offsets every ``stride`` pixels, plus one flush with the end so the edge is covered."""
    if size > length:
        return []
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def make_windows(
    scenes: list[Scene],
    regions: list[Region],
    size: int,
    stride: int,
    min_labelled: float = 0.0,
    max_blank: float = 1.0,
) -> list[Window]:
    """Windows lying wholly inside ``regions``, after cleaning.

    A window is dropped when fewer than ``min_labelled`` of its pixels carry a
    label other than the scene's ``ignore_index``, or when more than
    ``max_blank`` of its pixels are blank (all bands of every date equal to 0).
    Raises :class:`DataError` when the patch is larger than every region or when
    no window is left.
    """
    if size < 1 or stride < 1:
        raise DataError(f"patch size and stride must be positive, got {size} and {stride}")
    fitting = [g for g in regions if g.height >= size and g.width >= size]
    if regions and not fitting:
        largest = max(regions, key=lambda g: g.height * g.width)
        raise DataError(
            f"patch size {size} is larger than every split region (largest: {largest.height}x{largest.width} "
            f"pixels of scene '{scenes[largest.scene].name}')",
            scenes[largest.scene].source,
            hint="lower data.patch_size",
        )
    out: list[Window] = []
    for g in fitting:
        s = scenes[g.scene]
        labelled = np.ones(s.shape, bool) if s.mask is None or s.ignore_index is None else s.mask != s.ignore_index
        blank = np.ones(s.shape, bool)
        for im in s.images:
            blank &= ~np.any(im != 0, axis=-1)
        for r in positions(g.height, size, stride):
            for c in positions(g.width, size, stride):
                rr, cc = g.r0 + r, g.c0 + c
                win = (slice(rr, rr + size), slice(cc, cc + size))
                if labelled[win].mean() < min_labelled or blank[win].mean() > max_blank:
                    continue
                out.append(Window(g.scene, rr, cc))
    if not out:
        names = sorted({scenes[g.scene].name for g in regions})
        raise DataError(
            f"no patch is left after cleaning (patch {size}, stride {stride}, min_labelled {min_labelled}, "
            f"max_blank {max_blank}) in scenes {names}",
            scenes[regions[0].scene].source if regions else None,
            hint="lower data.min_labelled or data.patch_size, or raise data.max_blank",
        )
    return out


def d4(x: np.ndarray, code: int) -> np.ndarray:
    """Apply dihedral transform ``code`` (0..7: ``code % 4`` quarter turns, flipped if ``code >= 4``)
    to the last two axes."""
    y = np.rot90(x, code % 4, axes=(-2, -1))
    if code >= 4:
        y = y[..., ::-1]
    return y
