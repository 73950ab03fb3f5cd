"""Scores of controllable synthesis (HSIGene's Tables 3 and 4), from arrays: no model is needed here.

- **structure adherence**: each local condition re-extracted from the generated image's RGB view
  (the same extractor and parameters as training, :mod:`specdm.conditions.controls`) against the
  condition it was given: SSIM of the two maps (each channel on [0, 1]) and, for edge and line maps,
  F1 with a one-pixel tolerance (a pixel of one map counts as found when the other map marks a pixel
  within one pixel of it); content: cosine similarity of the content vectors (by the model's content
  function, passed in: this stage does not load networks). Text has no extractor
  from an image and is not scored this way.
- **fidelity to the reference**: SSIM of the generated image to the real window its conditions came
  from, per band on [0, 1] (Table 4's "SSIM").
- **distribution**: sPr/sRec on per-pixel spectra (:func:`~specdm.metrics.spectral.spectral_precision_recall`)
  and the Frechet distance of patch features (:mod:`specdm.evaluation.features`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from specdm.conditions.controls import compute, window_rgb
from specdm.metrics.reference import ssim

TOLERANCE = 1  # pixels: edge and line F1


def tolerant_f1(pred: np.ndarray, ref: np.ndarray, tolerance: int = TOLERANCE) -> float:
    """F1 of two binary maps (``> 0``) where a marked pixel matches when the other map marks one within
    ``tolerance`` pixels (chessboard distance); 1.0 when both are empty, 0.0 when only one is."""
    p, r = np.asarray(pred) > 0, np.asarray(ref) > 0
    if not p.any() and not r.any():
        return 1.0
    if not p.any() or not r.any():
        return 0.0
    grow = np.ones((2 * tolerance + 1,) * 2, bool)
    precision = (p & ndimage.binary_dilation(r, grow)).sum() / p.sum()
    recall = (r & ndimage.binary_dilation(p, grow)).sum() / r.sum()
    return float(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))


def map_ssim(pred: np.ndarray, ref: np.ndarray) -> float:
    """SSIM of two condition maps ``(H, W, k)`` with values in [0, 1]."""
    return ssim(np.asarray(pred, np.float32)[None], np.asarray(ref, np.float32)[None])


def adherence(images: np.ndarray, given: dict[str, np.ndarray], rgb_bands, params: dict | None = None,
              content=None) -> dict:
    """Structure adherence of generated ``images`` ``(N, C, H, W)`` (model units) to the conditions they were given
    (``name -> (N, ...)``), averaged over images: ``{name: {"ssim": ..., "f1": ...}}`` (content: ``cosine``, with
    the model's ``content`` function, None: the histogram descriptor)."""
    params = params or {}
    out = {}
    for name, maps in given.items():
        if name == "text":
            continue
        scores: dict[str, list] = {}
        for img, ref in zip(images, maps):
            got = compute(name, window_rgb(img, rgb_bands), params.get(name), content)
            if name == "content":
                scores.setdefault("cosine", []).append(float(np.dot(got, ref)))
                continue
            scores.setdefault("ssim", []).append(map_ssim(got, ref))
            if name in ("edges", "lines"):
                scores.setdefault("f1", []).append(tolerant_f1(got[..., 0], ref[..., 0]))
        out[name] = {k: float(np.mean(v)) for k, v in scores.items()}
    return out


def reference_ssim(images: np.ndarray, references: np.ndarray) -> float:
    """SSIM of generated ``(N, C, H, W)`` to the real windows ``(N, C, H, W)`` their conditions came from, per
    band on [0, 1] (both clipped)."""
    move = lambda a: np.clip(np.moveaxis(np.asarray(a, np.float32), 1, -1), 0, 1)  # noqa: E731
    return ssim(move(images), move(references))
