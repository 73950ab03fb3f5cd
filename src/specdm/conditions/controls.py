"""The conditions of controllable synthesis (HSIGene), as the model sees them, at training and sampling.

Every condition is computed by :mod:`specdm.conditions.extractors` from an RGB view of a window in
the model's units (:func:`window_rgb`: the grid bands nearest 650/550/470 nm, normalized to [0, 1],
clipped), with the parameters of the model's config, so a map extracted from a real window, from
a user's image (``specdm conditions``) or from a generated image is made the same way:

========  ============  ======================================================================
kind      condition     as the model takes it
========  ============  ======================================================================
local     edges         (H, W, 1) in [0, 1]
local     lines         (H, W, 1), 0 or 1
local     sketch        (H, W, 1) in [0, 1]
local     segmentation  (H, W, 3) in [0, 1]: each segment painted in its mean colour, so the
                        map does not depend on how segments are numbered
global    content       (D,) unit vector: the model's trained content encoder (D: its
                        ``embedding_dim``), or the 64-d histogram descriptor
global    text          (384,) unit vector (all-MiniLM-L6-v2 of the data set's ``text``)
========  ============  ======================================================================

:func:`pack` stacks a batch's conditions in the model's order: local maps followed each by a
presence channel, global vectors followed each by a presence flag; a condition left out is zeros
with presence 0 (what training's dropout shows the model). :func:`read_condition` reads and checks
a condition given at sampling time (a file, or the text itself).

Content from a trained encoder: this stage cannot import networks, so callers that have one pass
``content`` (a function RGB ``(H, W, 3)`` -> ``(D,)`` unit vector, e.g. ``ContentEncoder.embed``) and
``widths`` (:func:`global_widths` of its D); without them content is the histogram descriptor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specdm.conditions.extractors import CONTENT_DIM, TEXT_DIM, check_rgb, extract
from specdm.config import CONDITIONS
from specdm.data.windows import d4
from specdm.errors import ConfigError, DataError

LOCAL_WIDTHS = {"edges": 1, "lines": 1, "sketch": 1, "segmentation": 3}


def global_widths(content_dim: int = CONTENT_DIM) -> dict[str, int]:
    """The widths of the global conditions when content vectors have ``content_dim`` values."""
    return {"content": int(content_dim), "text": TEXT_DIM}


GLOBAL_WIDTHS = global_widths()  # content by the histogram descriptor
MAP_SUFFIXES = (".npy", ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def window_rgb(image: np.ndarray, rgb_bands) -> np.ndarray:
    """The RGB view of a window ``(C, H, W)`` (or ``(T, C, H, W)``: the first date) in normalized units:
    ``(H, W, 3)`` float32, bands ``rgb_bands`` clipped to [0, 1]."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 4:
        x = x[0]
    return np.clip(np.moveaxis(x[list(rgb_bands)], 0, -1), 0.0, 1.0)


def segment_colours(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(H, W, 3)``: every pixel of ``rgb`` replaced by the mean colour of its segment in ``labels``."""
    flat = labels.reshape(-1)
    counts = np.bincount(flat)
    means = np.stack([np.bincount(flat, rgb[..., c].reshape(-1), minlength=len(counts)) for c in range(3)], -1)
    means /= np.maximum(counts, 1)[:, None]
    return means[flat].reshape(rgb.shape).astype(np.float32)


def compute(name: str, rgb: np.ndarray, params: dict | None = None, content=None) -> np.ndarray:
    """Condition ``name`` (not text) of an RGB image in [0, 1], in the model's form (table above); ``content``:
    the model's content function (None: the histogram descriptor with ``params``)."""
    params = dict(params or {})
    if name == "text":
        raise ConfigError("the text condition is a sentence, not something extracted from an image")
    if name not in CONDITIONS:
        raise ConfigError(f"unknown condition '{name}'; known: {', '.join(CONDITIONS)}")
    if name == "content" and content is not None:
        return np.asarray(content(check_rgb(rgb)), dtype=np.float32)
    if name == "segmentation":
        params.pop("one_hot", None)
        return segment_colours(check_rgb(rgb), extract(name, rgb, **params))
    out = np.asarray(extract(name, rgb, **params), dtype=np.float32)
    return out if name == "content" else out[..., None]


def window_conditions(image: np.ndarray, rgb_bands, names, params: dict | None = None,
                      content=None) -> dict[str, np.ndarray]:
    """Every image-derived condition of ``names`` for one window ``(C, H, W)`` (text is the data set's, not the
    window's: leave it to the caller); ``content`` as in :func:`compute`."""
    rgb = window_rgb(image, rgb_bands)
    return {n: compute(n, rgb, (params or {}).get(n), content) for n in names if n != "text"}


def text_embedding(text: str) -> np.ndarray:
    """The text condition of one sentence: (384,) unit vector."""
    return extract("text", text)[0]


def transform(conditions: dict[str, np.ndarray], code: int) -> dict[str, np.ndarray]:
    """Local maps under D4 transform ``code`` (as :func:`specdm.data.windows.d4` moves the window); global vectors
    are kept (the content descriptor is recomputed by callers that need it exact)."""
    return {n: (np.ascontiguousarray(np.moveaxis(d4(np.moveaxis(v, -1, 0), code), 0, -1)) if n in LOCAL_WIDTHS else v)
            for n, v in conditions.items()}


def pack(items: list[dict[str, np.ndarray]], names, size: int,
         widths: dict[str, int] = GLOBAL_WIDTHS) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Stack the conditions of a batch (one dict per item; a missing name is a left-out condition) in the
    order of ``names``: local ``(N, sum(w) + n_local, size, size)`` and global ``(N, sum(d) + n_global)``
    float32, each condition followed by its presence; None for a kind the model does not have.
    ``widths``: the global conditions' widths (:func:`global_widths`)."""
    local = [n for n in names if n in LOCAL_WIDTHS]
    glob = [n for n in names if n in widths]
    n = len(items)
    L = np.zeros((n, sum(LOCAL_WIDTHS[c] + 1 for c in local), size, size), np.float32) if local else None
    G = np.zeros((n, sum(widths[c] + 1 for c in glob)), np.float32) if glob else None
    for i, item in enumerate(items):
        at = 0
        for c in local:
            w = LOCAL_WIDTHS[c]
            if item.get(c) is not None:
                L[i, at : at + w] = np.moveaxis(item[c], -1, 0)
                L[i, at + w] = 1.0
            at += w + 1
        at = 0
        for c in glob:
            w = widths[c]
            if item.get(c) is not None:
                G[i, at : at + w] = item[c]
                G[i, at + w] = 1.0
            at += w + 1
    return L, G


def presence_slices(names, widths: dict[str, int] = GLOBAL_WIDTHS) -> tuple[dict[str, slice], dict[str, slice]]:
    """Where each condition (map or vector, and its presence) lies in :func:`pack`'s local and global arrays."""
    out: tuple[dict, dict] = ({}, {})
    at = [0, 0]
    for n in names:
        k, w = (0, LOCAL_WIDTHS[n]) if n in LOCAL_WIDTHS else (1, widths[n])
        out[k][n] = slice(at[k], at[k] + w + 1)
        at[k] += w + 1
    return out


def read_map(path: Path) -> np.ndarray:
    """A map file as float32: ``.npy`` as stored; an image (PNG, JPEG, BMP, TIFF) divided by its integer type's
    maximum, ``(H, W)`` or ``(H, W, k)``."""
    suffix = path.suffix.lower()
    if suffix not in MAP_SUFFIXES:
        raise DataError(f"unsupported condition file '{path.suffix}'; give {', '.join(MAP_SUFFIXES)}", path)
    if not path.is_file():
        raise DataError("file not found", path)
    try:
        if suffix == ".npy":
            a = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            a = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                a = np.array(im.convert("RGB") if im.mode == "P" else im)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the condition ({e})", path) from None
    if np.issubdtype(a.dtype, np.integer) and suffix != ".npy":
        a = a / float(np.iinfo(a.dtype).max)
    if not np.issubdtype(np.asarray(a).dtype, np.number):
        raise DataError(f"holds {a.dtype} values, not numbers", path)
    return np.asarray(a, dtype=np.float32)


def read_condition(name: str, value: str, size: int, params: dict | None = None, content=None,
                   widths: dict[str, int] = GLOBAL_WIDTHS) -> np.ndarray:
    """Condition ``name`` given at sampling time, checked: ``value`` is the sentence for ``text``, else a file.

    Local maps: ``(size, size)`` or ``(size, size, k)`` with the condition's k channels (a 1-channel
    condition also takes an RGB image file with equal channels, e.g. a greyscale PNG saved as RGB), values in [0, 1].
    ``content``: a ``(D,)`` ``.npy`` unit vector (D: ``widths["content"]``), or any RGB image file to take the
    content of (by the ``content`` function, as :func:`compute`). A :class:`DataError` names the file and the problem.
    """
    if name not in CONDITIONS:
        raise ConfigError(f"unknown condition '{name}'; known: {', '.join(CONDITIONS)}")
    if name == "text":
        if not value.strip():
            raise ConfigError("the text condition is empty; give a sentence such as --condition text=\"farmland\"")
        return text_embedding(value)
    path = Path(value)
    a = read_map(path)
    if not np.isfinite(a).all():
        raise DataError(f"the {name} condition holds NaN or infinite values", path)
    if name == "content":
        dim = widths["content"]
        if a.ndim == 1:
            if a.shape != (dim,):
                raise DataError(f"this model's content vectors have {dim} values, this one {a.shape[0]}", path)
            norm = float(np.linalg.norm(a))
            if not 0.99 < norm < 1.01:
                raise DataError(f"a content vector has unit length, this one {norm:.3g}", path)
            return a
        if a.ndim != 3 or a.shape[-1] != 3:
            raise DataError(f"content comes from an RGB image (H, W, 3) or a ({dim},) .npy vector; got shape "
                            f"{a.shape}", path)
        if a.min() < 0 or a.max() > 1:
            raise DataError(f"an RGB image for content must lie in [0, 1]; got {a.min():g}..{a.max():g}", path)
        return compute("content", a, params, content)
    width = LOCAL_WIDTHS[name]
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise DataError(f"a {name} map is (H, W) or (H, W, {width}); got shape {a.shape}", path)
    if a.shape[:2] != (size, size):
        raise DataError(f"the {name} map is {a.shape[0]}x{a.shape[1]} pixels; the model makes {size}x{size} images",
                        path)
    if a.shape[-1] != width:
        if width == 1 and a.shape[-1] in (3, 4) and np.all(a[..., :3] == a[..., :1]):
            a = a[..., :1]  # a grey map stored as RGB(A)
        else:
            raise DataError(f"a {name} map has {width} channel{'s' * (width > 1)}; this one has {a.shape[-1]}", path)
    if a.min() < 0 or a.max() > 1:
        raise DataError(f"a {name} map holds values in [0, 1]; this one {a.min():g}..{a.max():g}", path)
    return a


def save_conditions(conditions: dict[str, np.ndarray], out_dir: Path) -> dict[str, str]:
    """Write each condition as ``<name>.npy`` (what ``--condition name=FILE`` reads back) and local maps also as
    ``<name>.png`` for viewing; returns name -> ``.npy`` path."""
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, v in conditions.items():
        p = out_dir / f"{name}.npy"
        np.save(p, np.asarray(v, np.float32))
        files[name] = str(p)
        if name in LOCAL_WIDTHS:
            img = np.clip(np.rint(np.asarray(v) * 255), 0, 255).astype(np.uint8)
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(out_dir / f"{name}.png")
    return files
