"""The in-memory contract every loader returns and every later stage consumes.

A :class:`Scene` holds one spectral scene: one image (segmentation, or an
unlabelled image) or two co-registered images of two dates (change detection),
an optional class map, optional extra inputs a method may be conditioned on (an
RGB image, condition maps, a text) and the sensor metadata that came with the data.
The task is declared by the loader, not guessed from the number of images.
Arrays are channel-last, ``(H, W, C)``, in the data's own units (no normalization yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from specdm.errors import DataError

# task -> number of images; "image" is an unlabelled scene (no mask), e.g. for RGB-conditioned synthesis
TASK_DATES = {"segmentation": 1, "change": 2, "image": 1}


@dataclass
class Scene:
    """One scene.

    Attributes:
        images: one ``(H, W, C)`` array (segmentation, image) or two (change detection,
            dates 1 and 2), float32, same shape.
        mask: ``(H, W)`` int64 class map with values in ``0..num_classes-1``; None for
            task ``"image"``.
        class_names: name of each class value (index = value); empty without a mask.
        task: ``"segmentation"``, ``"change"`` or ``"image"`` (declared by the loader).
        rgb: optional ``(H, W, 3)`` RGB image of the same scene (RGB-conditioned methods).
        conditions: optional condition maps by name, each ``(H, W)`` or ``(H, W, k)``.
        text: optional description of the scene (text-conditioned methods).
        ignore_index: class value meaning "unlabelled" (e.g. 0 for Indian Pines),
            or None when every pixel is labelled.
        band_names: one name per band.
        wavelengths: band centres in nanometres, or None when unknown.
        rgb_bands: indices of the bands shown as red, green, blue in previews.
        name: short name of the scene (used in file names and cards).
        source: file the scene was read from (named in error messages).
    """

    images: list[np.ndarray]
    mask: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    task: str = "segmentation"
    ignore_index: int | None = None
    band_names: list[str] | None = None
    wavelengths: list[float] | None = None
    rgb_bands: tuple[int, int, int] | None = None
    name: str = "scene"
    source: str | None = None
    rgb: np.ndarray | None = None
    conditions: dict[str, np.ndarray] = field(default_factory=dict)
    text: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.images = [np.asarray(im) for im in self.images]
        self.mask = None if self.mask is None else np.asarray(self.mask)
        if self.band_names is None:
            self.band_names = [f"band_{i + 1}" for i in range(self.num_bands)]
        if self.rgb_bands is None:
            self.rgb_bands = default_rgb_bands(self.num_bands, self.wavelengths)
        self.validate()

    @property
    def has_mask(self) -> bool:
        return self.mask is not None

    @property
    def num_bands(self) -> int:
        return int(self.images[0].shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.images[0].shape[:2])  # type: ignore[return-value]

    def validate(self) -> None:
        """Raise :class:`DataError` naming ``source`` if anything is inconsistent."""
        src = self.source or self.name
        if self.task not in TASK_DATES:
            raise DataError(f"unknown task '{self.task}'; choose one of {', '.join(TASK_DATES)}", src)
        if len(self.images) != TASK_DATES[self.task]:
            raise DataError(f"a {self.task} scene has {TASK_DATES[self.task]} image(s), got {len(self.images)}", src)
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
        self._validate_extras(src)
        if (self.mask is None) != (self.task == "image"):
            need = "has no mask" if self.task == "image" else "needs a mask"
            raise DataError(f"a {self.task} scene {need}", src)
        self.images = [im.astype(np.float32, copy=False) for im in self.images]
        if self.mask is None:
            self._validate_bands(src)
            return
        mask_src = self.extra.get("mask_file", src)
        if self.mask.ndim != 2:
            raise DataError(f"mask must be 2-D (rows, cols), got shape {self.mask.shape}", mask_src)
        if self.mask.shape != self.images[0].shape[:2]:
            raise DataError(
                f"mask shape {self.mask.shape} differs from image shape {self.images[0].shape[:2]}", mask_src
            )
        if not np.issubdtype(self.mask.dtype, np.integer):
            if not np.all(np.mod(self.mask, 1) == 0):
                raise DataError("mask holds non-integer values", mask_src)
        self.mask = self.mask.astype(np.int64)
        lo, hi = int(self.mask.min()), int(self.mask.max())
        if lo < 0 or hi >= self.num_classes:
            bad_vals = sorted(set(np.unique(self.mask).tolist()) - set(range(self.num_classes)))
            raise DataError(
                f"label values {bad_vals[:10]} are outside the {self.num_classes} declared classes "
                f"0..{self.num_classes - 1}",
                mask_src,
            )
        if self.ignore_index is not None and not 0 <= self.ignore_index < self.num_classes:
            raise DataError(f"ignore_index {self.ignore_index} is not a declared class", src)
        self._validate_bands(src)

    def _validate_bands(self, src) -> None:
        if len(self.band_names) != self.num_bands:
            raise DataError(f"{len(self.band_names)} band names for {self.num_bands} bands", src)
        if self.wavelengths is not None and len(self.wavelengths) != self.num_bands:
            raise DataError(f"{len(self.wavelengths)} wavelengths for {self.num_bands} bands", src)

    def _validate_extras(self, src) -> None:
        hw = self.images[0].shape[:2]
        if self.rgb is not None:
            self.rgb = np.asarray(self.rgb, dtype=np.float32)
            if self.rgb.shape != (*hw, 3):
                raise DataError(f"the RGB image is {self.rgb.shape}, the scene needs {(*hw, 3)}", src)
        for name, c in list(self.conditions.items()):
            c = np.asarray(c)
            if c.shape[:2] != hw or c.ndim not in (2, 3):
                raise DataError(f"condition '{name}' is {c.shape}, the scene needs {hw} or {hw} + (k,)", src)
            self.conditions[name] = c

    def select_bands(self, bands: list[int]) -> "Scene":
        """Return a new scene holding only ``bands`` (indices, in that order)."""
        idx = list(bands)
        if any(not 0 <= b < self.num_bands for b in idx):
            raise DataError(f"band indices {idx} out of range for {self.num_bands} bands", self.source)
        wl = None if self.wavelengths is None else [self.wavelengths[b] for b in idx]
        # keep the preview bands when they survive the selection, else pick new ones
        rgb = tuple(idx.index(b) for b in self.rgb_bands) if all(b in idx for b in self.rgb_bands) else None
        return replace(self, images=[im[..., idx] for im in self.images], band_names=[self.band_names[b] for b in idx],
                       wavelengths=wl, rgb_bands=rgb, conditions=dict(self.conditions), extra=dict(self.extra))


def default_rgb_bands(num_bands: int, wavelengths: list[float] | None) -> tuple[int, int, int]:
    """Bands nearest 650/550/470 nm when wavelengths are known, else spread evenly."""
    if wavelengths is not None:
        wl = np.asarray(wavelengths, dtype=float)
        return tuple(int(np.argmin(np.abs(wl - t))) for t in (650.0, 550.0, 470.0))  # type: ignore[return-value]
    if num_bands < 3:
        return (0, 0, 0) if num_bands == 1 else (1, 0, 0)
    return (int(num_bands * 0.75), num_bands // 2, num_bands // 4)

