"""The in-memory contract every loader returns and every later stage consumes.

A :class:`Scene` holds one labelled spectral scene: one image (semantic
segmentation) or two co-registered images of two dates (change detection),
a class map and the sensor metadata that came with the data. Arrays are
channel-last, ``(H, W, C)``, in the data's own units (no normalization yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specdm.errors import DataError

TASKS = ("segmentation", "change")


@dataclass
class Scene:
    """One labelled scene.

    Attributes:
        images: one ``(H, W, C)`` array (segmentation) or two (change detection,
            dates 1 and 2), float32, same shape.
        mask: ``(H, W)`` int64 class map with values in ``0..num_classes-1``.
        class_names: name of each class value (index = value).
        ignore_index: class value meaning "unlabelled" (e.g. 0 for Indian Pines),
            or None when every pixel is labelled.
        band_names: one name per band.
        wavelengths: band centres in nanometres, or None when unknown.
        rgb_bands: indices of the bands shown as red, green, blue in previews.
        name: short name of the scene (used in file names and cards).
        source: file the scene was read from (named in error messages).
    """

    images: list[np.ndarray]
    mask: np.ndarray
    class_names: list[str]
    ignore_index: int | None = None
    band_names: list[str] | None = None
    wavelengths: list[float] | None = None
    rgb_bands: tuple[int, int, int] | None = None
    name: str = "scene"
    source: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.images = [np.asarray(im) for im in self.images]
        self.mask = np.asarray(self.mask)
        if self.band_names is None:
            self.band_names = [f"band_{i + 1}" for i in range(self.num_bands)]
        if self.rgb_bands is None:
            self.rgb_bands = default_rgb_bands(self.num_bands, self.wavelengths)
        self.validate()

    @property
    def task(self) -> str:
        return "segmentation" if len(self.images) == 1 else "change"

    @property
    def num_bands(self) -> int:
        return int(self.images[0].shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)  # type: ignore[return-value]

    def validate(self) -> None:
        """Raise :class:`DataError` naming ``source`` if anything is inconsistent."""
        src = self.source or self.name
        if len(self.images) not in (1, 2):
            raise DataError(f"a scene has 1 image (segmentation) or 2 (change), got {len(self.images)}", src)
        for k, im in enumerate(self.images):
            if im.ndim != 3:
                raise DataError(f"image {k + 1} must be (rows, cols, bands), got shape {im.shape}", src)
            if im.shape != self.images[0].shape:
                raise DataError(
                    f"the two dates differ in shape: {self.images[0].shape} vs {im.shape}", src
                )
            bad = ~np.isfinite(im)
            if bad.any():
                r, c, b = np.argwhere(bad)[0]
                raise DataError(
                    f"image {k + 1} holds {int(bad.sum())} NaN/Inf values "
                    f"(first at row {r}, col {c}, band {b})",
                    src,
                    hint="mask or interpolate invalid pixels before loading",
                )
        if self.mask.ndim != 2:
            raise DataError(f"mask must be 2-D (rows, cols), got shape {self.mask.shape}", src)
        if self.mask.shape != self.images[0].shape[:2]:
            raise DataError(
                f"mask shape {self.mask.shape} differs from image shape {self.images[0].shape[:2]}", src
            )
        if not np.issubdtype(self.mask.dtype, np.integer):
            if not np.all(np.mod(self.mask, 1) == 0):
                raise DataError("mask holds non-integer values", src)
        self.mask = self.mask.astype(np.int64)
        lo, hi = int(self.mask.min()), int(self.mask.max())
        if lo < 0 or hi >= self.num_classes:
            bad_vals = sorted(set(np.unique(self.mask).tolist()) - set(range(self.num_classes)))
            raise DataError(
                f"label values {bad_vals[:10]} are outside the {self.num_classes} declared classes "
                f"0..{self.num_classes - 1}",
                src,
            )
        if self.ignore_index is not None and not 0 <= self.ignore_index < self.num_classes:
            raise DataError(f"ignore_index {self.ignore_index} is not a declared class", src)
        if len(self.band_names) != self.num_bands:
            raise DataError(f"{len(self.band_names)} band names for {self.num_bands} bands", src)
        if self.wavelengths is not None and len(self.wavelengths) != self.num_bands:
            raise DataError(f"{len(self.wavelengths)} wavelengths for {self.num_bands} bands", src)
        self.images = [im.astype(np.float32, copy=False) for im in self.images]

    def select_bands(self, bands: list[int]) -> "Scene":
        """Return a new scene holding only ``bands`` (indices, in that order)."""
        idx = list(bands)
        if any(not 0 <= b < self.num_bands for b in idx):
            raise DataError(f"band indices {idx} out of range for {self.num_bands} bands", self.source)
        wl = None if self.wavelengths is None else [self.wavelengths[b] for b in idx]
        return Scene(
            images=[im[..., idx] for im in self.images],
            mask=self.mask,
            class_names=self.class_names,
            ignore_index=self.ignore_index,
            band_names=[self.band_names[b] for b in idx],
            wavelengths=wl,
            rgb_bands=None,
            name=self.name,
            source=self.source,
            extra=dict(self.extra),
        )

    def crop(self, rows: slice, cols: slice) -> "Scene":
        """Return a new scene cut to ``rows`` x ``cols``."""
        return Scene(
            images=[im[rows, cols] for im in self.images],
            mask=self.mask[rows, cols],
            class_names=self.class_names,
            ignore_index=self.ignore_index,
            band_names=self.band_names,
            wavelengths=self.wavelengths,
            rgb_bands=self.rgb_bands,
            name=self.name,
            source=self.source,
            extra=dict(self.extra),
        )


def default_rgb_bands(num_bands: int, wavelengths: list[float] | None) -> tuple[int, int, int]:
    """Bands nearest 650/550/470 nm when wavelengths are known, else spread evenly."""
    if wavelengths is not None:
        wl = np.asarray(wavelengths, dtype=float)
        return tuple(int(np.argmin(np.abs(wl - t))) for t in (650.0, 550.0, 470.0))  # type: ignore[return-value]
    if num_bands < 3:
        return (0, 0, 0) if num_bands == 1 else (1, 0, 0)
    return (int(num_bands * 0.75), num_bands // 2, num_bands // 4)

