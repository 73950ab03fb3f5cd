"""Metric functions: numpy or torch in, floats or arrays out.

Conventions follow ``/work/shared/PROTOCOL.md``: spectral angles in radians with
zero-norm spectra excluded and counted; PSNR/SSIM per band on data in [0, 1];
Frechet distance/KID on features of encoders trained on the real training split.
"""

from .distribution import frechet_distance, frechet_from_moments, kid
from .features import (
    PatchEncoder,
    SpectralCNN,
    extract_features,
    load_encoder,
    mask_one_hot,
    save_encoder,
    train_encoder,
    train_spectral_cnn,
)
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
    "PatchEncoder",
    "SpectralCNN",
    "ergas",
    "extract_features",
    "frechet_distance",
    "frechet_from_moments",
    "kid",
    "load_encoder",
    "mask_one_hot",
    "msad",
    "mrae",
    "per_class_sad",
    "psnr",
    "reference_scores",
    "rmse",
    "sad",
    "sad_stats",
    "sam",
    "save_encoder",
    "spectral_diversity",
    "spectral_precision_recall",
    "ssim",
    "train_encoder",
    "train_spectral_cnn",
]
