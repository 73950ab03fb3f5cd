"""The synthetic data set format: written sample by sample, resumable, readable back.

Layout of a data set folder::

    metadata.json          bands, wavelengths, classes, normalization, model hashes, seed, command
    README.md              dataset card (class distribution and mean spectra, real vs synthetic)
    card/                  the card's figures
    previews/              false-colour + mask previews of the first samples
    images/000000.tif      (C, H, W) float32 in the data's own units     [segmentation]
    images_t1/, images_t2/ the same for dates 1 and 2                    [change detection]
    masks/000000.png       (H, W) class values, 8-bit (16-bit if > 256 classes)   [sets with masks]

``image_format`` may be ``tif`` (GeoTIFF-compatible, bands first), ``npy`` or
``zarr`` (one ``samples.zarr`` store with ``images`` (N, T, C, H, W), ``masks``
(N, H, W) and ``done`` (N,)). A set may hold images without masks (unconditional or
RGB-conditioned synthesis: ``num_classes=None``), and with ``tif``/``npy`` samples
may differ in size (``size=None``). A sample is complete once its last file is
written (the mask, or the last date's image without masks; by atomic rename), so an
interrupted run resumes where it stopped.

:class:`SyntheticDataset` reads a set back as numpy arrays; :class:`SyntheticTorchDataset`
(also ``SyntheticDataset(path).torch()``) is a ``torch.utils.data.Dataset`` of
torchgeo-style samples ``{"image": (C, H, W) float32, "mask": (H, W) int64}`` with a
``plot`` method.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import tifffile
import torch
from matplotlib.figure import Figure
from PIL import Image

from specdm.data.plot import plot_sample
from specdm.errors import DataError, OutputError

MARKER = "specdm_dataset"
IMAGE_FORMATS = ("tif", "npy", "zarr")
MASK_FORMATS = ("png", "tif")


def image_dirs(num_dates: int) -> list[str]:
    return ["images"] if num_dates == 1 else [f"images_t{t + 1}" for t in range(num_dates)]


def claim_folder(folder: Path, ours: bool, resume: bool, overwrite: bool, what: str, create: bool = True) -> None:
    """Make ``folder`` ready for writing. A non-empty folder is only continued (``resume``) or
    replaced (``overwrite``) when ``ours`` (specdm wrote it); anything else is refused.
    ``create=False`` only checks (nothing is created or deleted), so a command can refuse
    early and create the folder once its inputs have passed their checks."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        if resume and ours:
            return
        if overwrite and ours:
            if create:
                shutil.rmtree(folder)
        elif overwrite:
            raise OutputError("exists and was not written by specdm; refusing to delete it", folder)
        elif resume:
            raise OutputError(f"exists but holds no specdm {what} to resume", folder)
        else:
            raise OutputError("exists and is not empty", folder, hint="pass --resume to continue it or --overwrite to replace it")
    if not create:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"is not writable ({e.strerror})", folder) from None


def check_format(image_format: str, mask_format: str, num_classes: int | None, size: int | None = 1) -> None:
    """Refuse, before any training, a format that cannot hold the data (``OutputError``)."""
    if image_format not in IMAGE_FORMATS:
        raise OutputError(f"unknown image format '{image_format}' (choose {', '.join(IMAGE_FORMATS)})")
    if mask_format not in MASK_FORMATS:
        raise OutputError(f"unknown mask format '{mask_format}' (choose {', '.join(MASK_FORMATS)})")
    if num_classes is not None and num_classes > 65536:
        raise OutputError(f"{num_classes} classes do not fit a 16-bit {mask_format} mask")
    if image_format == "zarr" and size is None:
        raise OutputError("zarr stores samples of one size; use image_format tif or npy")


def prepare_output(out_dir: Path, resume: bool, overwrite: bool) -> None:
    """Claim ``out_dir`` for a synthetic data set (see :func:`claim_folder`)."""
    meta = Path(out_dir) / "metadata.json"
    ours = meta.is_file() and MARKER in meta.read_text(errors="ignore")
    claim_folder(out_dir, ours, resume, overwrite, "data set")


def _io(path: Path, fn):
    """Run a write, turning OS errors (full disk, permissions) into one clear message."""
    try:
        return fn()
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise OutputError("the disk is full; completed samples are kept, free space and rerun with --resume", path) from None
        raise OutputError(f"cannot write ({e.strerror or e})", path) from None


class DatasetWriter:
    """Writes samples ``0..num_samples-1`` of one data set; several processes may write disjoint indices."""

    def __init__(
        self,
        out_dir: Path,
        num_samples: int,
        num_dates: int,
        num_bands: int,
        size: int | None,
        num_classes: int | None,
        image_format: str = "tif",
        mask_format: str = "png",
    ):
        check_format(image_format, mask_format, num_classes, size)
        self.dir = Path(out_dir)
        self.n, self.t, self.c, self.size = num_samples, num_dates, num_bands, size
        self.image_format, self.mask_format = image_format, mask_format
        self.has_masks = num_classes is not None
        self.mask_dtype = np.uint8 if not self.has_masks or num_classes <= 256 else np.uint16
        if image_format == "zarr":
            import zarr

            store = self.dir / "samples.zarr"
            self.store = _io(store, lambda: zarr.open_group(str(store), mode="a"))
            if "images" not in self.store:
                self.store.create_array("images", shape=(self.n, self.t, self.c, size, size), chunks=(1, self.t, self.c, size, size), dtype="float32")
                if self.has_masks:
                    self.store.create_array("masks", shape=(self.n, size, size), chunks=(1, size, size), dtype=self.mask_dtype)
                self.store.create_array("done", shape=(self.n,), chunks=(1,), dtype="bool", fill_value=False)
        else:
            for d in image_dirs(self.t) + (["masks"] if self.has_masks else []):
                _io(self.dir / d, lambda d=d: (self.dir / d).mkdir(parents=True, exist_ok=True))

    def mask_path(self, i: int) -> Path:
        return self.dir / "masks" / f"{i:06d}.{self.mask_format}"

    def image_paths(self, i: int) -> list[Path]:
        return [self.dir / d / f"{i:06d}.{self.image_format}" for d in image_dirs(self.t)]

    def is_done(self, i: int) -> bool:
        if self.image_format == "zarr":
            return bool(self.store["done"][i])
        return (self.mask_path(i) if self.has_masks else self.image_paths(i)[-1]).is_file()

    def pending(self) -> list[int]:
        if self.image_format == "zarr":
            return np.flatnonzero(~self.store["done"][:]).tolist()
        return [i for i in range(self.n) if not self.is_done(i)]

    def write(self, i: int, images: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Store sample ``i``: ``images`` ``(T, C, H, W)`` float32, ``mask`` ``(H, W)`` (sets with masks)."""
        images = np.asarray(images, np.float32)
        if images.shape[:2] != (self.t, self.c) or (self.size is not None and images.shape[2:] != (self.size, self.size)):
            want = f"({self.t}, {self.c}, {self.size or 'H'}, {self.size or 'W'})"
            raise OutputError(f"sample {i} has shape {images.shape}, the data set holds {want}", self.dir)
        if (mask is None) == self.has_masks:
            raise OutputError(f"sample {i}: this data set {'needs' if self.has_masks else 'holds no'} masks", self.dir)
        if mask is not None:
            mask = np.asarray(mask).astype(self.mask_dtype)
        if self.image_format == "zarr":
            _io(self.dir, lambda: self._write_zarr(i, images, mask))
            return
        for path, im in zip(self.image_paths(i), images):
            _atomic(path, lambda tmp, im=im: _save_image(tmp, im, self.image_format))
        if mask is not None:
            _atomic(self.mask_path(i), lambda tmp: _save_mask(tmp, mask, self.mask_format))

    def _write_zarr(self, i, images, mask):
        self.store["images"][i] = images
        if mask is not None:
            self.store["masks"][i] = mask
        self.store["done"][i] = True


def _atomic(path: Path, save) -> None:
    tmp = path.with_name(f".{path.name}.tmp")

    def go():
        save(tmp)
        os.replace(tmp, path)

    try:
        _io(path, go)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_image(path: Path, im: np.ndarray, fmt: str) -> None:
    if fmt == "npy":
        with open(path, "wb") as f:
            np.save(f, im)
    else:  # one band is written as a plain 2-D page (tifffile refuses planar config on one sample)
        tifffile.imwrite(path, im if len(im) > 1 else im[0], photometric="minisblack",
                         planarconfig="separate" if len(im) > 1 else None)


def _save_mask(path: Path, mask: np.ndarray, fmt: str) -> None:
    if fmt == "png":
        Image.fromarray(mask).save(path, format="PNG")
    else:
        tifffile.imwrite(path, mask)


class SyntheticDataset:
    """Reads a data set written by :class:`DatasetWriter` (complete samples only)."""

    def __init__(self, path: str | Path):
        self.dir = Path(path)
        meta = self.dir / "metadata.json"
        if not meta.is_file():
            raise DataError("not a specdm synthetic data set (metadata.json missing)", self.dir)
        self.meta = json.loads(meta.read_text())
        f = self.meta["format"]
        self.image_format, self.mask_format = f["image"], f.get("mask")  # sets without masks may name none
        self.t = len(self.meta["images"])
        self.has_masks = self.meta.get("masks", True)
        if self.image_format == "zarr":
            import zarr

            self.store = zarr.open_group(str(self.dir / "samples.zarr"), mode="r")
            self.indices = np.flatnonzero(self.store["done"][:]).tolist()
        else:
            last = self.dir / "masks" if self.has_masks else self.dir / self.meta["images"][-1]
            fmt = self.mask_format if self.has_masks else self.image_format
            self.indices = sorted(int(p.stem) for p in last.glob(f"*.{fmt}"))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict[str, np.ndarray]:
        """``{"images": (T, C, H, W) float32, "mask": (H, W) int64}`` of the k-th complete sample
        (no ``"mask"`` in a set without masks)."""
        i = self.indices[k]
        if self.image_format == "zarr":
            item = {"images": self.store["images"][i]}
            if self.has_masks:
                item["mask"] = self.store["masks"][i].astype(np.int64)
            return item
        ims = []
        for d in image_dirs(self.t):
            p = self.dir / d / f"{i:06d}.{self.image_format}"
            im = np.load(p) if self.image_format == "npy" else tifffile.imread(p)
            ims.append(im[None] if im.ndim == 2 else im)  # a one-band tif reads back as (H, W)
        item = {"images": np.stack(ims).astype(np.float32)}
        if self.has_masks:
            m = self.dir / "masks" / f"{i:06d}.{self.mask_format}"
            mask = np.array(Image.open(m)) if self.mask_format == "png" else tifffile.imread(m)
            item["mask"] = mask.astype(np.int64)
        return item

    def torch(self, normalize: bool = False, transforms=None) -> "SyntheticTorchDataset":
        """This data set as a ``torch.utils.data.Dataset`` (see :class:`SyntheticTorchDataset`)."""
        return SyntheticTorchDataset(self.dir, normalize, transforms)

    def arrays(self, n: int | None = None, normalizer=None) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` (default all) complete samples as ``(n, T, C, H, W)`` float32 and ``(n, H, W)`` int64,
        filled in place (no second copy); images mapped through ``normalizer`` (band axis last) when given."""
        if not len(self):
            raise DataError("holds no complete sample", self.dir)
        if not self.has_masks:
            raise DataError("holds images without masks; it cannot serve as labelled training data", self.dir)
        n = len(self) if n is None else min(n, len(self))
        first = self[0]
        x = np.empty((n, *first["images"].shape), dtype=np.float32)
        y = np.empty((n, *first["mask"].shape), dtype=np.int64)
        for k in range(n):
            item = first if k == 0 else self[k]
            ims = item["images"]
            if ims.shape != x.shape[1:]:
                raise DataError(f"sample {self.indices[k]} is {ims.shape}, sample {self.indices[0]} {x.shape[1:]}: "
                                "samples of different sizes do not stack", self.dir)
            x[k] = ims if normalizer is None else np.moveaxis(normalizer(np.moveaxis(ims, 1, -1)), -1, 1)
            y[k] = item["mask"]
        return x, y


class SyntheticTorchDataset(torch.utils.data.Dataset):
    """A written data set as torchgeo-style samples, for ``torch.utils.data.DataLoader``.

    Sample ``k`` (the k-th complete one) is ``{"image": float32 tensor, "mask": int64 tensor (H, W)}``:
    the image is ``(C, H, W)``, or ``(T, C, H, W)`` for change detection (one per date); sets without
    masks give no ``"mask"``. Images are in the data's own units as stored, or with ``normalize``
    mapped through the data set's normalization (metadata ``normalization``: the model's units,
    [0, 1] on the real training split). ``transforms`` (optional) is applied to each sample dict.
    """

    def __init__(self, path: str | Path, normalize: bool = False, transforms=None):
        self.data = SyntheticDataset(path)
        self.meta = self.data.meta
        self.normalizer = None
        if normalize:
            from specdm.data.normalize import Normalizer

            norm = self.meta.get("normalization")
            if not norm:
                raise DataError("holds no normalization to apply; read it with normalize=False", self.data.dir / "metadata.json")
            self.normalizer = Normalizer.from_dict(norm)
        self.transforms = transforms
        self.class_names = list(self.meta.get("class_names") or []) or None
        rgb = self.meta.get("rgb_bands")
        if not rgb:  # bands 3, 2, 1 (or the first band repeated), as in a true-colour guess
            c = len(self.meta.get("band_names") or []) or 3
            rgb = [min(2, c - 1), min(1, c - 1), 0]
        self.rgb_bands = [int(b) for b in rgb]

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= k < len(self):
            raise IndexError(f"sample {k} of a data set of {len(self)}")
        item = self.data[k]
        images = item["images"]
        if self.normalizer is not None:
            images = np.moveaxis(self.normalizer(np.moveaxis(images, 1, -1)), -1, 1)
        image = images[0] if self.data.t == 1 else images
        sample = {"image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))}
        if "mask" in item:
            sample["mask"] = torch.from_numpy(np.ascontiguousarray(item["mask"], dtype=np.int64))
        return self.transforms(sample) if self.transforms is not None else sample

    def plot(self, sample: dict, stretch: tuple | None = None, suptitle: str | None = None) -> Figure:
        """A figure of ``sample`` (as returned here; a ``"prediction"`` (H, W) is drawn too):
        false colour of the metadata's ``rgb_bands`` (one panel per date), stretched by ``stretch``
        (low, high per channel) or else each image's 2nd..98th percentiles, and the mask in the
        class colours of :func:`specdm.data.plot.class_colors`. See :func:`specdm.data.plot.plot_sample`."""
        arrays = {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for k, v in sample.items()}
        return plot_sample(arrays, self.rgb_bands, self.class_names, stretch, suptitle)
