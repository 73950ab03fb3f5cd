"""A user's own files: one image (segmentation) or two (change detection) and a class map."""

from __future__ import annotations

from pathlib import Path

from specdm.io import read_cube, read_mask
from specdm.scene import Scene


def load_files(
    image: str | Path,
    mask: str | Path,
    image2: str | Path | None = None,
    class_names: list[str] | None = None,
    ignore_index: int | None = None,
    image_key: str | None = None,
    mask_key: str | None = None,
) -> list[Scene]:
    """Build one scene from files that :func:`read_cube` and :func:`read_mask` read.

    ``image_key`` and ``mask_key`` pick the variable of ``.mat``/``.npz`` files
    (``image_key`` serves both dates). Class names default to ``class_0`` ..
    ``class_<max label>``. Band names and wavelengths come from the first image's
    metadata when it has them. The scene checks that shapes agree and labels
    fit the classes, naming ``image`` when they do not.
    """
    first, meta = read_cube(image, image_key)
    images = [first]
    if image2 is not None:
        images.append(read_cube(image2, image_key)[0])
    labels = read_mask(mask, mask_key)
    if class_names is None:
        count = int(labels.max()) + 1 if labels.size else 1
        class_names = [f"class_{i}" for i in range(max(count, 1))]
    return [
        Scene(
            images=images,
            mask=labels,
            class_names=list(class_names),
            task="segmentation" if image2 is None else "change",
            ignore_index=ignore_index,
            band_names=meta.get("band_names"),
            wavelengths=meta.get("wavelengths"),
            name=Path(image).stem,
            source=str(image),
            extra={"mask_file": str(mask), **({"image2_file": str(image2)} if image2 is not None else {})},
        )
    ]
