"""Metric functions: numpy or torch in, floats or arrays out (a leaf: imports only :mod:`specdm.errors`).

Conventions follow ``/work/shared/PROTOCOL.md``: spectral angles in radians with
zero-norm spectra excluded and counted; PSNR/SSIM per band on data in [0, 1];
Frechet distance/KID on features of encoders trained on the real training split
(the encoders live in :mod:`specdm.evaluation.features`).

- :mod:`.spectral`: spectral angles, class-mean spectra, sPr/sRec, SD/SDM;
- :mod:`.distribution`: Frechet distance and KID of feature sets;
- :mod:`.reference`: full-reference scores (PSNR, SSIM, SAM, RMSE, MRAE, ERGAS);
- :mod:`.confusion`: confusion matrices and per-class IoU / F1.
"""

from .confusion import confusion_matrix, nanmean, outcomes, per_class_f1, per_class_iou, safe_ratio
from .distribution import frechet_distance, frechet_from_moments, kid
from .reference import ergas, mrae, psnr, reference_scores, rmse, sam, ssim
from .spectral import (
    ClassSpectra,
    msad,
    per_class_sad,
    sad,
    sad_stats,
    spectral_diversity,
    spectral_precision_recall,
)

__all__ = [
    "ClassSpectra",
    "confusion_matrix",
    "ergas",
    "frechet_distance",
    "frechet_from_moments",
    "kid",
    "msad",
    "mrae",
    "nanmean",
    "outcomes",
    "per_class_f1",
    "per_class_iou",
    "per_class_sad",
    "psnr",
    "reference_scores",
    "rmse",
    "sad",
    "sad_stats",
    "safe_ratio",
    "sam",
    "spectral_diversity",
    "spectral_precision_recall",
    "ssim",
]
