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
        labelled, blank = _labelled_and_blank(s)
        for r in positions(g.height, size, stride):
            for c in positions(g.width, size, stride):
                rr, cc = g.r0 + r, g.c0 + c
                win = (slice(rr, rr + size), slice(cc, cc + size))
                if labelled[win].mean() < min_labelled or blank[win].mean() > max_blank:
                    continue
                out.append(Window(g.scene, rr, cc))
    if not out:
        _none_left([scenes[g.scene] for g in regions], size, stride, min_labelled, max_blank)
    return out


def _labelled_and_blank(s: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Labelled pixels (all of them without a mask or ignore_index) and blank ones (all bands of every date 0)."""
    labelled = np.ones(s.shape, bool) if s.mask is None or s.ignore_index is None else s.mask != s.ignore_index
    blank = np.ones(s.shape, bool)
    for im in s.images:
        blank &= ~np.any(im != 0, axis=-1)
    return labelled, blank


def _none_left(scenes: list[Scene], size: int, stride: int, min_labelled: float, max_blank: float):
    names = sorted({s.name for s in scenes})
    raise DataError(
        f"no patch is left after cleaning (patch {size}, stride {stride}, min_labelled {min_labelled}, "
        f"max_blank {max_blank}) in scenes {names}",
        scenes[0].source if scenes else None,
        hint="lower data.min_labelled or data.patch_size, or raise data.max_blank",
    )


def make_windows_in(
    scenes: list[Scene],
    allowed: list[np.ndarray],
    size: int,
    stride: int,
    min_labelled: float = 0.0,
    max_blank: float = 1.0,
) -> list[Window]:
    """Windows whose whole footprint lies where ``allowed[scene]`` (a boolean ``(H, W)`` mask) is True, cleaned
    as :func:`make_windows` does.

    The part a fold design leaves for training is a union of blocks, not a rectangle; a window qualifies when
    every pixel under it is allowed (an integral image counts them). Along each axis the fitting top-left
    positions form runs; a window is cut every ``stride`` pixels from the start of its run and flush with the
    run's end, as :func:`positions` does in a region: a rectangular mask gives exactly the windows, in the
    same order, that :func:`make_windows` cuts in that rectangle. Raises :class:`DataError` when no window
    fits in any scene's mask or none is left after cleaning.
    """
    if size < 1 or stride < 1:
        raise DataError(f"patch size and stride must be positive, got {size} and {stride}")
    out: list[Window] = []
    fitted = 0
    used = [i for i, m in enumerate(allowed) if m is not None and m.any()]
    for i in used:
        s = scenes[i]
        h, w = s.shape
        if size > h or size > w:
            continue
        fit = _sums(allowed[i], size) == size * size
        place = fit & _on_run_grid(fit, stride, 0) & _on_run_grid(fit, stride, 1)
        fitted += int(place.sum())
        labelled, blank = _labelled_and_blank(s)
        n_lab = _sums(labelled, size) / (size * size)
        n_blank = _sums(blank, size) / (size * size)
        keep = place & ~(n_lab < min_labelled) & ~(n_blank > max_blank)
        out += [Window(i, int(r), int(c)) for r, c in zip(*np.nonzero(keep))]
    if not fitted:
        names = [scenes[i].name for i in used]
        raise DataError(
            f"no {size}x{size} patch fits in the training part of scenes {names} (a union of blocks: a patch must "
            f"lie wholly inside it)",
            scenes[used[0]].source if used else scenes[0].source,
            hint="lower data.patch_size, or use a fold design with larger blocks or fewer folds",
        )
    if not out:
        _none_left([scenes[i] for i in used], size, stride, min_labelled, max_blank)
    return out


def _on_run_grid(fit: np.ndarray, stride: int, axis: int) -> np.ndarray:
    """Where ``fit`` is True: positions ``stride`` apart from the start of their run of True along ``axis``,
    and each run's last position."""
    f = np.moveaxis(fit, axis, 0)
    n = f.shape[0]
    idx = np.broadcast_to(np.arange(n)[:, None], f.shape)
    before = np.vstack([np.zeros((1, f.shape[1]), bool), f[:-1]])
    after = np.vstack([f[1:], np.zeros((1, f.shape[1]), bool)])
    start = np.maximum.accumulate(np.where(f & ~before, idx, -1), axis=0)
    on = f & (((idx - start) % stride == 0) | ~after)
    return np.moveaxis(on, 0, axis)


def _sums(a: np.ndarray, size: int) -> np.ndarray:
    """Sums of ``a`` over every ``size`` x ``size`` window, indexed by the window's top-left pixel."""
    s = np.zeros((a.shape[0] + 1, a.shape[1] + 1), np.int64)
    s[1:, 1:] = a.astype(np.int64).cumsum(0).cumsum(1)
    return s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]


def d4(x: np.ndarray, code: int) -> np.ndarray:
    """Apply dihedral transform ``code`` (0..7: ``code % 4`` quarter turns, flipped if ``code >= 4``)
    to the last two axes."""
    y = np.rot90(x, code % 4, axes=(-2, -1))
    if code >= 4:
        y = y[..., ::-1]
    return y
