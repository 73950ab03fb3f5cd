"""A user's own files: one image (segmentation) or two (change detection) and a class map.

Every setting here is a field of the ``data`` section of a config (README,
"Your own data"); :meth:`specdm.config.DataConfig.file_options` gives them as
keyword arguments of :func:`load_files`. Messages name the settings as
``data.<name>`` and the file they concern.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specdm.errors import DataError
from specdm.io import PIXEL_LAYOUTS, labels_from_cube, read_cube, read_label_array, to_rows_cols_bands
from specdm.io.masks import is_nodata, reduce_channels, to_class_map
from specdm.scene import Scene

NATIVE_MASKS = ("image", "tiff")  # mask formats read as (rows, cols[, channels]) whatever the layout


def load_files(
    image: str | Path,
    mask: str | Path,
    image2: str | Path | None = None,
    class_names: list[str] | None = None,
    ignore_index: int | None = None,
    *,
    image_variable: str | None = None,
    image2_variable: str | None = None,
    mask_variable: str | None = None,
    layout: str = "rows_cols_bands",
    rows: int | str | None = None,
    cols: int | str | None = None,
    order: str = "F",
    labels: str = "class_map",
    mask_layout: str | None = None,
    min_fraction: float | None = None,
    label_remap: dict[int, int] | None = None,
    band_names: list[str] | None = None,
    wavelengths: list[float] | None = None,
    rgb_bands: list[int | str] | None = None,
) -> list[Scene]:
    """Build one scene from files that :func:`read_cube` and :func:`read_label_array` read.

    - ``image_variable`` / ``image2_variable`` (default ``image_variable``) /
      ``mask_variable`` pick the variable of a ``.mat``/``.npz`` file; without
      one, a file with several arrays is refused with the list of its arrays.
    - ``layout`` is the axes of the image array (:mod:`specdm.io.layout`);
      ``bands_pixels``/``pixels_bands`` need ``rows`` and ``cols`` (numbers or
      names of scalar variables of the image file) and the pixel ``order``.
    - ``labels``: ``class_map`` (values are classes), or ``abundances`` /
      ``one_hot`` (a ``(rows, cols, K)`` cube, in ``mask_layout``, default
      ``layout``): the class is the argmax channel; pixels whose largest
      fraction is below ``min_fraction`` (abundances), without any class
      (one-hot) or with NaN become ``ignore_index``.
    - ``label_remap`` maps label values (channel indices for cubes) to class
      values; GeoTIFF nodata pixels become ``ignore_index`` unless the remap
      names the nodata value.
    - ``band_names``, ``wavelengths`` (nm) override those of the file;
      ``rgb_bands`` are three band indices or wavelengths (``"650nm"``, nearest band).

    Class names default to ``class_0`` .. ``class_<max label>`` (for cubes, one per
    channel); an ``ignore_index`` past every class (given for nodata pixels, say) is
    named ``unlabelled``.
    The scene checks that shapes agree and labels fit the classes, naming the
    mask file when they do not.
    """
    first, meta = read_cube(image, image_variable, layout, rows, cols, order, option="data.image_variable")
    height, width = first.shape[:2]
    images = [first]
    if image2 is not None:
        second, _ = read_cube(image2, image2_variable or image_variable, layout,
                              height if layout in PIXEL_LAYOUTS else None, width if layout in PIXEL_LAYOUTS else None,
                              order, option="data.image2_variable" if image2_variable else "data.image_variable")
        images.append(second)
    for path, im in zip((image, image2), images):
        _check_not_constant(im, path)

    mask_array, channels, extra = _read_labels(
        mask, (height, width), labels, mask_variable, mask_layout or layout, order, min_fraction, ignore_index,
        label_remap or {},
    )
    if class_names is None:
        count = int(mask_array.max()) + 1 if mask_array.size else 1
        count = max(count, channels or 0, (ignore_index + 1) if ignore_index is not None else 0, 1)
        present = np.unique(mask_array)
        if count > 8 and len(present) < count / 2:
            raise DataError(
                f"label values {present.tolist()[:12]} would make {count} classes (0..{count - 1}), most of them "
                f"without a pixel",
                mask,
                hint=f"map stray values with data.label_remap (e.g. {{{int(present[-1])}: 0}}), give "
                     f"data.class_names, or choose an ignore_index just past the classes",
            )
        class_names = [f"class_{i}" for i in range(count)]
        if ignore_index is not None:
            labelled = mask_array[mask_array != ignore_index]
            if ignore_index >= max(int(labelled.max()) + 1 if labelled.size else 0, channels or 0):
                class_names[ignore_index] = "unlabelled"  # a value past every class: added for nodata etc.
    elif channels and len(class_names) < channels:
        raise DataError(f"data.class_names has {len(class_names)} names but the label cube has {channels} "
                        f"channels (one per class)", mask)

    num_bands = first.shape[-1]
    names = _per_band(band_names, "data.band_names", "names", num_bands, image) or meta.get("band_names")
    wl = _per_band(wavelengths, "data.wavelengths", "values", num_bands, image) or meta.get("wavelengths")
    if names is not None and len(names) != num_bands:  # from the file's metadata
        names = None
    return [
        Scene(
            images=images,
            mask=mask_array,
            class_names=list(class_names),
            task="segmentation" if image2 is None else "change",
            ignore_index=ignore_index,
            band_names=None if names is None else list(names),
            wavelengths=None if wl is None else [float(w) for w in wl],
            rgb_bands=_rgb_bands(rgb_bands, num_bands, wl, image),
            name=Path(image).stem,
            source=str(image),
            extra={"mask_file": str(mask), **({"image2_file": str(image2)} if image2 is not None else {}), **extra},
        )
    ]


def _read_labels(mask, shape, labels, variable, layout, order, min_fraction, ignore_index, remap):
    """``(class map, label cube channels or None, extra)`` of the mask file."""
    raw, meta = read_label_array(mask, variable, "data.mask_variable")
    what = "the mask" if meta["variable"] is None else f"variable '{meta['variable']}'"
    if meta["format"] in NATIVE_MASKS:
        layout = "rows_cols_bands"
    height, width = shape
    pixel = layout in PIXEL_LAYOUTS
    nodata = meta["nodata"]
    if labels == "class_map":
        if layout != "rows_cols_bands" and not (pixel and raw.shape == shape):
            raw = to_rows_cols_bands(raw, layout, height if pixel else None, width if pixel else None, order, mask,
                                     what)
        values = reduce_channels(raw, mask)
        unlabelled = is_nodata(values, nodata)
        values = _remap(values, remap)
        if unlabelled is not None and nodata in remap:
            unlabelled = None  # the remap says what the nodata pixels become
        if unlabelled is not None and unlabelled.any():
            values = np.where(unlabelled, _need_ignore(ignore_index, mask, _nodata_problem(unlabelled, nodata)), values)
        classes = to_class_map(values, mask)
        channels, extra = None, {}
    else:
        cube = to_rows_cols_bands(raw, layout, height if pixel else None, width if pixel else None, order, mask, what)
        nod = is_nodata(cube, nodata)
        if nod is not None and nod.any():  # a pixel with nodata in any channel has no class
            cube = np.where(nod.any(-1, keepdims=True), np.nan, cube.astype(np.float64))
        classes, unlabelled = labels_from_cube(cube, labels, min_fraction, mask)
        classes = _remap(classes, remap)
        if unlabelled.any():
            why = (f"{int(unlabelled.sum())} pixels of the label cube have no class "
                   + ("(no channel set, or NaN)" if labels == "one_hot" else
                      f"(largest fraction below data.min_fraction {min_fraction:g}, or NaN)" if min_fraction
                      else "(NaN)"))
            classes = np.where(unlabelled, _need_ignore(ignore_index, mask, why, cube.shape[-1]), classes)
        channels = cube.shape[-1]
        extra = {"abundances": cube.astype(np.float32)} if labels == "abundances" else {}
    negative = classes < 0
    if negative.any():
        values = sorted(np.unique(classes[negative]).tolist())
        raise DataError(
            f"holds negative label values {values[:10]} ({int(negative.sum())} pixels); class values start at 0",
            mask,
            hint=f"map them with data.label_remap (e.g. {{{values[0]}: 0}}) and, if they mark unlabelled pixels, "
                 f"set data.ignore_index to the class they become",
        )
    return classes, channels, extra


def _remap(values: np.ndarray, remap: dict[int, int]) -> np.ndarray:
    if not remap:
        return values
    out = values.astype(np.result_type(values.dtype, np.int64), copy=True)
    for old, new in remap.items():
        out[values == old] = new
    return out


def _nodata_problem(unlabelled: np.ndarray, nodata) -> str:
    return f"holds {int(unlabelled.sum())} nodata pixels (value {nodata} in its GeoTIFF metadata)"


def _need_ignore(ignore_index: int | None, mask, problem: str, channels: int | None = None) -> int:
    """``ignore_index``, or a :class:`DataError` saying that ``problem`` needs one."""
    if ignore_index is not None:
        return ignore_index
    example = channels if channels is not None else 0
    raise DataError(
        f"{problem}; set data.ignore_index to the class value they should take",
        mask,
        hint=f"e.g. ignore_index: {example}" + (f" (a class after the {channels} channels)" if channels else
                                               " if 0 marks unlabelled pixels, or map the value with data.label_remap"),
    )


def _check_not_constant(image: np.ndarray, path) -> None:
    flat = image.reshape(-1, image.shape[-1])
    if flat.shape[0] and np.all(flat.max(0) == flat.min(0)):
        value = np.unique(flat[0]).tolist()
        held = value[0] if len(value) == 1 else "the same spectrum"
        raise DataError(
            f"all {image.shape[-1]} bands are constant (every pixel holds {held}); there is nothing to learn",
            path,
            hint="check data.image_variable and data.layout",
        )


def _per_band(values, option: str, noun: str, num_bands: int, path) -> list | None:
    if values is None:
        return None
    if len(values) != num_bands:
        raise DataError(f"{option} has {len(values)} {noun} but the image has {num_bands} bands", path)
    return list(values)


def _rgb_bands(rgb, num_bands: int, wavelengths, path) -> tuple[int, int, int] | None:
    """Three band indices from indices or ``"650nm"`` wavelengths (nearest band); None: the scene's default."""
    if rgb is None:
        return None
    if len(rgb) != 3:
        raise DataError(f"data.rgb_bands needs three bands (red, green, blue), got {list(rgb)}", path)
    out = []
    for x in rgb:
        if isinstance(x, str):
            if wavelengths is None:
                raise DataError(f"data.rgb_bands picks bands by wavelength ({x}), but the image has no wavelengths",
                                path, hint="give data.wavelengths (nm), or band indices such as [29, 19, 9]")
            target = float(x.strip().removesuffix("nm"))
            out.append(int(np.argmin(np.abs(np.asarray(wavelengths, dtype=float) - target))))
        else:
            if not 0 <= int(x) < num_bands:
                raise DataError(f"data.rgb_bands names band {x}, but the image has {num_bands} bands "
                                f"(0..{num_bands - 1})", path)
            out.append(int(x))
    return tuple(out)  # type: ignore[return-value]
