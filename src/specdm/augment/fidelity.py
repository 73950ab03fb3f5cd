"""Label fidelity: does a synthetic pixel's label fit its spectrum?

A random forest trained on the labelled pixels of the REAL training split predicts
the class of each synthetic pixel. Its agreement with the synthetic mask, per class,
is compared with its recall on held-out real pixels of that class (the ceiling): a
ratio near 1 means the synthetic class looks like the real class to a model that
only knows real data. The same classifier scores each synthetic pair (the share of
its labelled pixels it agrees with), which is what filtering uses.

Pixels are described by their spectra of every date side by side (``T * C`` values),
so change-detection pairs are scored on both dates at once.
"""

from __future__ import annotations

import numpy as np

from specdm.errors import DataError
from specdm.metrics.spectral import ClassSpectra, sad


def _pixels(x: np.ndarray) -> np.ndarray:
    """(N, T, C, H, W) -> (N*H*W, T*C)."""
    n, t, c, h, w = x.shape
    return np.moveaxis(x.reshape(n, t * c, h, w), 1, -1).reshape(-1, t * c)


class LabelFidelity:
    """A pixel classifier of real spectra, and the label-fidelity scores it gives.

    ``fit`` draws at most ``max_pixels`` labelled pixels (label != ``ignore_index``)
    with ``seed``; the forest has ``n_estimators`` trees (one CPU thread). With ``oob``, the forest also keeps
    its out-of-bag votes (each training pixel scored by the trees that did not see it; the trees and their
    predictions are the same): :meth:`oob_class_losses` calibrates rules per class on them.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None, max_pixels: int = 20000,
                 n_estimators: int = 100, seed: int = 0, oob: bool = False):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.max_pixels, self.n_estimators, self.seed, self.oob = max_pixels, n_estimators, seed, oob
        self.model = None

    def _labelled(self, y: np.ndarray) -> np.ndarray:
        flat = y.reshape(-1)
        return flat != self.ignore_index if self.ignore_index is not None else np.ones(flat.shape, bool)

    def training_pixels(self, x: np.ndarray, y: np.ndarray, return_index: bool = False):
        """The labelled pixels of real windows ``x`` (N, T, C, H, W) and masks ``y`` (N, H, W) that :meth:`fit`
        trains on: at most ``max_pixels``, drawn with ``seed``; ``(pixels (n, T*C) float32, labels (n,) int64)``
        (and, with ``return_index``, their indices into the windows' flattened pixels (N*H*W,))."""
        px, lab = _pixels(x), y.reshape(-1)
        keep = np.flatnonzero(self._labelled(y))
        if len(keep) > self.max_pixels:
            keep = np.sort(np.random.default_rng(self.seed).choice(keep, self.max_pixels, replace=False))
        out = px[keep].astype(np.float32), lab[keep].astype(np.int64)
        return (*out, keep) if return_index else out

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LabelFidelity":
        """Train on real windows ``x`` (N, T, C, H, W) in normalized units and masks ``y`` (N, H, W)."""
        return self.fit_pixels(*self.training_pixels(x, y))

    def fit_pixels(self, pixels: np.ndarray, labels: np.ndarray) -> "LabelFidelity":
        """Train on labelled pixels (n, T*C) and their classes (n,) (e.g. stored by :func:`save_pixels`)."""
        from sklearn.ensemble import RandomForestClassifier

        if len(np.unique(labels)) < 2:
            raise DataError("label fidelity needs at least two labelled classes in the real training windows")
        self.model = RandomForestClassifier(n_estimators=self.n_estimators, n_jobs=1, random_state=self.seed,
                                            oob_score=self.oob)
        self.model.fit(pixels, labels)
        self.labels = np.asarray(labels, np.int64)
        self.trained_on = {"pixels": int(len(labels)), "classes": sorted(int(c) for c in np.unique(labels))}
        return self

    @property
    def loss_floor(self) -> float:
        """The smallest probability a pixel loss uses (half a tree's vote), so the loss stays finite."""
        return 0.5 / self.n_estimators

    def class_probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """The forest's class probabilities of pixels (n, T*C) over every class value: (n, num_classes); classes
        the forest never saw get 0."""
        if self.model is None:
            raise RuntimeError("call fit first")
        proba = np.zeros((len(pixels), self.num_classes))
        if len(pixels):
            proba[:, self.model.classes_] = self.model.predict_proba(pixels)
        return proba

    def pixel_losses(self, proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``-log p(label)`` of each pixel from :meth:`class_probabilities` (p floored at :attr:`loss_floor`)."""
        p = proba[np.arange(len(labels)), labels]
        return -np.log(np.maximum(p, self.loss_floor))

    def oob_class_losses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per class (num_classes,): the mean out-of-bag loss ``-log p(label)`` of the forest's own training pixels
        of that class, their out-of-bag recall and how many were scored (NaN where none was). Out-of-bag pixels
        are real pixels the scoring trees did not train on, but neighbours of pixels they did, so both are
        optimistic next to a spatially held-out part."""
        if self.model is None or not self.oob:
            raise RuntimeError("fit with oob=True first")
        votes = self.model.oob_decision_function_
        ok = np.isfinite(votes).all(axis=1)
        proba = np.zeros((len(votes), self.num_classes))
        proba[:, self.model.classes_] = np.nan_to_num(votes)
        lab = self.labels
        loss = self.pixel_losses(proba, lab)
        hit = proba.argmax(1) == lab
        count = np.bincount(lab[ok], minlength=self.num_classes).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(lab[ok], loss[ok], minlength=self.num_classes) / count
            recall = np.bincount(lab[ok], hit[ok], minlength=self.num_classes) / count
        return mean, recall, count

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted classes (N, H, W) of windows ``x`` (N, T, C, H, W)."""
        if self.model is None:
            raise RuntimeError("call fit first")
        n, _, _, h, w = x.shape
        return self.model.predict(_pixels(x)).reshape(n, h, w).astype(np.int64)

    def sample_scores(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per sample, the share of its labelled pixels whose predicted class equals the mask (NaN if none)."""
        pred = self.predict(x)
        lab = self._labelled(y).reshape(y.shape)
        hits = ((pred == y) & lab).sum(axis=(1, 2))
        count = lab.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, hits / np.maximum(count, 1), np.nan)

    def per_class(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per class k: the share of pixels labelled k that are predicted k, and the count of such pixels."""
        pred, lab = self.predict(x).reshape(-1), y.reshape(-1)
        counts = np.bincount(lab, minlength=self.num_classes).astype(float)
        hits = np.bincount(lab[pred == lab], minlength=self.num_classes).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan), counts

    def report(self, real_held_out: tuple[np.ndarray, np.ndarray], synthetic: tuple[np.ndarray, np.ndarray],
               class_names: list[str], ceiling_source: str = "held-out real windows") -> dict:
        """Per class: ``ceiling`` (recall on real held-out pixels), ``agreement`` (on synthetic pixels), their
        ``ratio``, pixel counts, and the real class whose mean spectrum is nearest (SAD) to the synthetic
        class mean; plus ``min_ratio`` over the classes present in the real training split."""
        ceil, ceil_n = self.per_class(*real_held_out)
        agree, agree_n = self.per_class(*synthetic)
        real_means = ClassSpectra.of_windows(real_held_out[0], real_held_out[1], self.num_classes).means()
        synth_means = ClassSpectra.of_windows(synthetic[0], synthetic[1], self.num_classes).means()
        train_classes = set(self.trained_on["classes"])
        rows = []
        for k, name in enumerate(class_names):
            if k == self.ignore_index:
                continue
            nearest = None
            if agree_n[k] > 0:
                ok = [j for j in range(self.num_classes) if ceil_n[j] > 0 and j != self.ignore_index]
                if ok:
                    angles = [float(sad(synth_means[k], real_means[j])) for j in ok]
                    j = ok[int(np.argmin(angles))]
                    nearest = {"class": j, "name": class_names[j], "sad_rad": min(angles)}
            ratio = agree[k] / ceil[k] if ceil_n[k] > 0 and agree_n[k] > 0 and ceil[k] > 0 else None
            rows.append({"class": k, "name": name, "in_training_split": k in train_classes,
                         "ceiling": None if ceil_n[k] == 0 else float(ceil[k]), "real_pixels": int(ceil_n[k]),
                         "agreement": None if agree_n[k] == 0 else float(agree[k]), "synthetic_pixels": int(agree_n[k]),
                         "ratio": ratio, "nearest_real_class": nearest})
        ratios = [r["ratio"] for r in rows if r["in_training_split"] and r["ratio"] is not None]
        missing = [r["name"] for r in rows if r["in_training_split"] and r["synthetic_pixels"] == 0]
        return {"classifier": f"random forest, {self.n_estimators} trees, seed {self.seed}, trained on "
                              f"{self.trained_on['pixels']} labelled real training pixels (every date's spectrum)",
                "ceiling_source": ceiling_source, "classes": rows,
                "min_ratio": min(ratios) if ratios else None, "classes_without_synthetic_pixels": missing}


def block_calibration(scorer: "LabelFidelity", pixels: np.ndarray, labels: np.ndarray, positions: np.ndarray,
                      block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class (num_classes,): the mean loss ``-log p(label)``, the recall and the count of real training pixels
    scored by a forest (the scorer's settings) that did not see their part of the scene: the pixels are split by
    ``block``-pixel squares of the scene in a checkerboard (``positions``: (n, 3) scene, row, col), a forest
    trained on each half scores the other. Spatially held out, so honest where out-of-bag votes are optimistic
    (a pixel's neighbours are in the bag); NaN where a class has no pixel on either side."""
    k = scorer.num_classes
    pos = np.asarray(positions, np.int64)
    group = (pos[:, 0] + pos[:, 1] // block + pos[:, 2] // block) % 2
    loss = np.full(len(labels), np.nan)
    hit = np.zeros(len(labels), bool)
    for g in (0, 1):
        train, test = group == g, group != g
        if len(np.unique(labels[train])) < 2 or not test.any():
            continue
        half = LabelFidelity(k, scorer.ignore_index, n_estimators=scorer.n_estimators, seed=scorer.seed)
        half.fit_pixels(pixels[train], labels[train])
        proba = half.class_probabilities(pixels[test])
        loss[test] = half.pixel_losses(proba, labels[test])
        hit[test] = proba.argmax(1) == labels[test]
    ok = np.isfinite(loss)
    count = np.bincount(labels[ok], minlength=k)[:k].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(labels[ok], loss[ok], minlength=k)[:k] / count
        recall = np.bincount(labels[ok], hit[ok], minlength=k)[:k] / count
    return mean, recall, count


PIXELS_FILE = "fidelity_pixels.safetensors"


def save_pixels(model_dir, pixels: np.ndarray, labels: np.ndarray, positions: np.ndarray | None = None) -> None:
    """Store the classifier's real training pixels in a model folder, so that sampling can filter
    without the real data (safetensors: no code runs on load); ``positions`` (n, 3): each pixel's scene, row and
    column (for spatially held-out calibration, :func:`block_calibration`)."""
    from pathlib import Path

    import torch
    from safetensors.torch import save_file

    t = {"pixels": torch.from_numpy(np.ascontiguousarray(pixels, np.float32)),
         "labels": torch.from_numpy(np.ascontiguousarray(labels, np.int64))}
    if positions is not None:
        t["positions"] = torch.from_numpy(np.ascontiguousarray(positions, np.int64))
    save_file(t, str(Path(model_dir) / PIXELS_FILE))


def load_positions(model_dir) -> np.ndarray | None:
    """The scene positions (n, 3) of the stored pixels, or None for folders written before they were kept."""
    from pathlib import Path

    from safetensors import safe_open

    f = Path(model_dir) / PIXELS_FILE
    if not f.is_file():
        return None
    with safe_open(str(f), "pt") as h:
        return h.get_tensor("positions").numpy() if "positions" in h.keys() else None


def load_pixels(model_dir) -> tuple[np.ndarray, np.ndarray]:
    from pathlib import Path

    from safetensors.torch import load_file

    f = Path(model_dir) / PIXELS_FILE
    if not f.is_file():
        raise DataError(f"the model folder holds no {PIXELS_FILE}; it was trained before filtering existed, "
                        "retrain stage 1 (specdm train-autoencoder) to filter its samples", model_dir)
    d = load_file(str(f))
    return d["pixels"].numpy(), d["labels"].numpy()
