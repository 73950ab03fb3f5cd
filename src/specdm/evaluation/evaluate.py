"""``specdm evaluate``: how close is a synthetic data set to the real training data?

Reference: the windows of the real TRAINING split (what the generator was
trained on), in normalized units ([0, 1] per band by the training split's
percentiles). Synthetic samples are brought to the same units with the
normalization recorded in their ``metadata.json`` (a warning is written when it
differs from the one the real config gives). Conventions of
``/work/shared/PROTOCOL.md``:

- distribution: Frechet distance and KID on features of encoders trained once
  on the real training windows (:func:`specdm.evaluation.features.train_encoder`) and kept
  in an encoder folder for reuse: ``image`` (each date's image is one sample),
  ``mask`` (one-hot masks) and, for change detection, ``pair`` (both dates
  stacked along channels). ``joint`` concatenates a sample's image features
  (``pair`` for change detection) and mask features. The FD between two
  disjoint random halves of the real windows is the noise floor.
- spectral: per-class SAD between real and synthetic class-mean spectra
  (radians), mSAD over the classes present in both (``ignore_index`` left out),
  class proportions, sPr/sRec (k = 10, 10 groups) on equal numbers of per-pixel
  spectra. Every date's pixels count.
- texture (:mod:`specdm.metrics.texture`): within-window standard deviation, edge density (Sobel magnitude above
  the real windows' 0.8 quantile), radially averaged spatial power per band in a few frequency bins, and per class
  the spread of pixel spectra; each real, synthetic and their ratio. sPr/sRec of one real half against the other
  is the reference for the synthetic sRec.
- label fidelity, with the share of each class's pixels that cleaning relabelled ``ignore_index`` (from the set's
  ``metadata.json``) beside it: a fidelity reached by relabelling most pixels does not count.
- optional FID of a 3-band false colour through a local TorchScript Inception.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from specdm import __version__
from specdm.augment.fidelity import LabelFidelity
from specdm.augment.synthetic import load_synthetic, open_synthetic
from specdm.config import Config
from specdm.data.datamodule import prepare_data
from specdm.errors import CheckpointError, ConfigError, DataError, OutputError
from specdm.evaluation.features import extract_features, load_encoder, mask_one_hot, save_encoder, train_encoder
from specdm.evaluation.records import json_safe, log, write_json
from specdm.metrics import ClassSpectra, frechet_distance, kid, msad, per_class_sad, spectral_precision_recall
from specdm.metrics.texture import texture_markdown

ENCODER_BATCH = 32
FEATURE_DIM = 64
KID_SUBSETS = 10
KID_SUBSET_SIZE = 1000
PR_K = 10
PR_GROUPS = 10
INCEPTION_SIZE = 299
ENCODER_INPUTS = {
    "image": "one date's normalized image (C channels)",
    "mask": "one-hot mask (K channels)",
    "pair": "both dates' normalized images stacked along channels (T*C channels)",
}

NOT_APPLICABLE_DIVERSITY = (
    "SD/SDM measure the spread of several outputs generated for the same input (conditional "
    "generation); an unconditional data set has one output per seed, so they do not apply. "
    "specdm.metrics.spectral_diversity stays available for conditional pipelines."
)
INCEPTION_SKIPPED = (
    "skipped: no Inception model given (specdm never downloads weights). Pass --inception PATH, a local "
    "TorchScript file mapping (N, 3, 299, 299) images in [0, 1] to (N, 2048) features."
)


def evaluate(
    cfg: Config,
    synth_dir,
    out_dir=None,
    encoder_dir=None,
    seed: int = 0,
    max_spectra: int = 20000,
    encoder_steps: int = 400,
    inception=None,
    overwrite: bool = False,
    command: str = "",
    max_samples: int = 2000,
) -> dict:
    """Score the synthetic data set ``synth_dir`` against the real training split of ``cfg``.

    Writes ``<out_dir>/evaluation.json`` (every number and its conventions) and
    ``<out_dir>/evaluation.md`` (:func:`format_markdown`); returns the JSON dict.
    ``out_dir`` defaults to ``<synth_dir>/evaluation``, ``encoder_dir`` to
    ``<out_dir>/encoders``; encoders found there for the same real windows, seed
    and training settings are reused, others raise :class:`OutputError` unless
    ``overwrite`` (which also allows replacing an existing evaluation.json).
    ``seed`` fixes encoder training, the real halves, KID subsets and the
    spectra drawn for sPr/sRec (at most ``max_spectra`` per set). Only the first
    ``max_samples`` complete samples (file order) are read, which bounds memory
    (about 0.8 MB per 200-band 32x32 sample); FD depends on the sample count, so
    compare runs with equal counts.
    ``inception``: optional path of a TorchScript Inception for a false-colour FID.
    """
    t0 = time.time()
    synth_dir = Path(synth_dir)
    out_dir = Path(out_dir) if out_dir is not None else synth_dir / "evaluation"
    encoder_dir = Path(encoder_dir) if encoder_dir is not None else out_dir / "encoders"
    if max_samples < 2:
        raise ConfigError(f"max_samples={max_samples}: at least 2 synthetic samples are needed")
    ds = open_synthetic(synth_dir, min_samples=2)
    result_file = out_dir / "evaluation.json"
    if result_file.exists() and not overwrite:
        raise OutputError("exists", result_file, hint="pass --overwrite to replace it")

    data = prepare_data(cfg.data)
    ref = data.reference
    real_x, real_y = (t.numpy() for t in data.train.batch(range(len(data.train))))
    if len(real_x) < 2:
        raise DataError(f"config '{cfg.name}' gives {len(real_x)} training window; at least 2 are needed", ref.source)
    synthetic = load_synthetic(ds, data, max_samples, cfg.name)
    synth_x, synth_y, warnings = synthetic.x, synthetic.y, synthetic.warnings
    k, dates = ref.num_classes, real_x.shape[1]
    log(f"evaluating {len(synth_x)} synthetic samples against {len(real_x)} real training windows")

    encoders, encoder_info = _encoders(real_x, real_y, k, encoder_dir, seed, encoder_steps, overwrite)
    real_f = _features(encoders, real_x, real_y, k)
    synth_f = _features(encoders, synth_x, synth_y, k)
    halves = np.array_split(np.random.default_rng(seed).permutation(len(real_x)), 2)
    distribution = {kind: _distances(real_f[kind], synth_f[kind], halves, dates if kind == "image" else 1, seed)
                    for kind in real_f}  # fmt: skip

    real_s, synth_s = ClassSpectra.of_windows(real_x, real_y, k), ClassSpectra.of_windows(synth_x, synth_y, k)
    fidelity = label_fidelity(data, real_x, real_y, synth_x, synth_y, seed)
    _relabelled_beside(fidelity, ds.meta)
    result = {
        "specdm_evaluation": __version__,
        "command": command,
        "real": {
            "config": cfg.name,
            "scenes": [s.name for s in data.scenes],
            "sources": [s.source for s in data.scenes],
            "split": cfg.data.split.model_dump(),
            "reference": "windows of the training split (after cleaning), every date",
            "windows": len(real_x),
            "dates": dates,
            "bands": ref.num_bands,
            "patch_size": cfg.data.patch_size,
            "class_names": ref.class_names,
            "ignore_index": ref.ignore_index,
        },
        "synthetic": {
            "path": str(synth_dir),
            "samples": len(synth_x),
            "samples_in_set": len(ds),
            "max_samples": max_samples,
            "patch_size": int(synth_x.shape[-1]),
            "sampler": ds.meta.get("sampler"),
            "seed": ds.meta.get("seed"),
            "model": ds.meta.get("model"),
        },
        "conventions": {
            "data_range": "[0, 1] per band: normalized by the real training split's percentiles "
                          f"{list(data.normalizer.percentiles)} (clip={data.normalizer.clip}); synthetic samples "
                          "by the normalization recorded in their metadata.json",
            "angles": "radians (degrees beside them)",
            "change_detection": "each date's image is one image sample; the pair encoder sees both dates "
                                "stacked along channels; joint = pair ++ mask features",
            "fd": "Frechet distance of Gaussians fitted to encoder features; it grows as samples shrink, so "
                  "compare fd with fd_real_halves (two disjoint random halves of the real windows, i.e. "
                  "half as many samples) and only across runs with equal sample counts",
            "kid": f"unbiased MMD^2, cubic polynomial kernel, {KID_SUBSETS} subsets of "
                   f"min({KID_SUBSET_SIZE}, n_real, n_synthetic) samples; mean and std over subsets",
        },
        "seed": seed,
        "warnings": warnings,
        "encoders": encoder_info,
        "distribution": distribution,
        "spectral": _spectral(real_s, synth_s, real_x, synth_x, ref, max_spectra, seed, halves),
        "texture": texture(real_x, synth_x, real_s, synth_s, ref),
        "label_fidelity": fidelity,
        "treatments": {key: ds.meta.get(key) for key in ("decode", "clean", "hard_classes", "filter")},
        "inception_fid": _inception_fid(inception, real_x, synth_x, ref.rgb_bands),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} on cpu",
    }
    result["wall_time_s"] = round(time.time() - t0, 1)
    result["output"] = {"json": str(result_file), "markdown": str(out_dir / "evaluation.md")}
    result = json_safe(result)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(result_file, result, indent=2)
        (out_dir / "evaluation.md").write_text(format_markdown(result))
    except OSError as e:
        raise OutputError(f"cannot write ({e.strerror or e})", out_dir) from None
    return result


def label_fidelity(data, real_x, real_y, synth_x, synth_y, seed: int) -> dict:
    """Per class: agreement of a real-trained pixel classifier with the synthetic masks, against its recall
    on held-out real pixels (:class:`~specdm.augment.fidelity.LabelFidelity`)."""
    ref = data.reference
    held = data.test_pixels()
    if held is not None:
        hx, hy = held
        source = f"the {hy.size} pixels of the test regions"
    else:
        hx, hy, source = real_x, real_y, "the training windows themselves (no test split: an optimistic ceiling)"
    try:
        clf = LabelFidelity(ref.num_classes, ref.ignore_index, seed=seed).fit(real_x, real_y)
    except DataError as e:
        return {"skipped": e.problem, "min_ratio": None}
    return clf.report((hx, hy), (synth_x, synth_y), ref.class_names, source)


def _relabelled_beside(fidelity: dict, meta: dict) -> None:
    """Each class's relabelled share (pixel cleaning, from the set's metadata) beside its fidelity row."""
    per = ((meta.get("clean") or {}).get("per_class")) or {}
    fidelity["cleaned"] = bool(meta.get("clean"))
    for row in fidelity.get("classes", []):
        c = per.get(row["name"])
        row["relabelled_share"] = None if c is None else c["relabelled_share"]


def texture(real_x, synth_x, real_s: ClassSpectra, synth_s: ClassSpectra, ref) -> dict:
    """Texture statistics of the real training windows and the synthetic samples (:mod:`specdm.metrics.texture`),
    the edge threshold fitted on the real windows."""
    from specdm.metrics.texture import class_spread, compare_texture, edge_threshold, texture_stats

    thr = edge_threshold(real_x)
    return compare_texture(texture_stats(real_x, thr), texture_stats(synth_x, thr), class_spread(real_s.std()),
                           class_spread(synth_s.std()), ref.class_names, ref.ignore_index)


# --------------------------------------------------------------------------- encoders and features


def _encoder_inputs(x: np.ndarray, y: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """Per encoder kind, its input array: ``image`` (N*T, C, H, W), ``mask`` (N, K, H, W), ``pair`` (N, T*C, H, W)."""
    n, t, c, h, w = x.shape
    inputs = {"image": x.reshape(n * t, c, h, w), "mask": mask_one_hot(y, num_classes)}
    if t > 1:
        inputs["pair"] = x.reshape(n, t * c, h, w)
    return inputs


def _sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def _encoders(real_x, real_y, num_classes, encoder_dir: Path, seed, steps, overwrite):
    """Load the encoders in ``encoder_dir`` if they were trained on these windows with these settings,
    else train them on the real windows and save them there. Returns the models and their record."""
    inputs = _encoder_inputs(real_x, real_y, num_classes)
    fingerprint = {
        "real_windows_sha256": _sha256(real_x, real_y),
        "seed": seed,
        "steps": steps,
        "batch_size": ENCODER_BATCH,
        "feature_dim": FEATURE_DIM,
        "kinds": sorted(inputs),
    }
    index = encoder_dir / "encoders.json"
    reused = False
    if index.is_file():
        try:
            reused = json.loads(index.read_text()).get("fingerprint") == fingerprint
        except (OSError, ValueError, AttributeError) as e:
            raise CheckpointError(f"cannot read ({e})", index) from None
        if not reused and not overwrite:
            raise OutputError(
                "holds feature encoders trained on other real windows or with other settings", encoder_dir,
                hint="pass another --encoders folder, or --overwrite to retrain them here",
            )
    if reused:
        log(f"reusing feature encoders from {encoder_dir}")
        models = {kind: load_encoder(encoder_dir / kind) for kind in inputs}
    else:
        log(f"training feature encoders ({steps} steps, batch {ENCODER_BATCH}) on the real training windows")
        targets = {"image": np.repeat(real_y, real_x.shape[1], axis=0), "mask": real_y, "pair": real_y}
        models = {
            kind: train_encoder(inp, targets[kind], steps, seed, num_classes, FEATURE_DIM, ENCODER_BATCH)
            for kind, inp in inputs.items()
        }
        try:
            for kind, model in models.items():
                save_encoder(model, encoder_dir / kind)
            index.write_text(json.dumps({"fingerprint": fingerprint, "specdm": __version__}, indent=2))
        except OSError as e:
            raise OutputError(f"cannot write ({e.strerror or e})", encoder_dir) from None
    info = {
        "dir": str(encoder_dir),
        "reused": reused,
        "fingerprint": fingerprint,
        "models": {kind: {"input": ENCODER_INPUTS[kind], "class": type(m).__name__, "config": m.config,
                          "training": m.train_info} for kind, m in models.items()},
    }  # fmt: skip
    return models, info


def _features(models, x, y, num_classes) -> dict[str, np.ndarray]:
    """Features per encoder kind, plus ``joint`` (per sample: image or pair features ++ mask features)."""
    feats = {kind: extract_features(models[kind], inp) for kind, inp in _encoder_inputs(x, y, num_classes).items()}
    feats["joint"] = np.concatenate([feats.get("pair", feats["image"]), feats["mask"]], axis=1)
    return feats


def _distances(real, synth, halves, rows_per_window: int, seed: int) -> dict:
    """FD and KID real vs synthetic, and between the real halves (window indices; a window owns
    ``rows_per_window`` consecutive feature rows)."""
    kid_mean, kid_std = kid(real, synth, KID_SUBSETS, KID_SUBSET_SIZE, seed=seed)
    a, b = ([i * rows_per_window + t for i in h for t in range(rows_per_window)] for h in halves)
    halves_ok = min(len(a), len(b)) >= 2
    return {
        "fd": frechet_distance(real, synth),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "fd_real_halves": frechet_distance(real[a], real[b]) if halves_ok else None,
        "kid_real_halves": kid(real[a], real[b], KID_SUBSETS, KID_SUBSET_SIZE, seed=seed)[0] if halves_ok else None,
        "n_real": len(real),
        "n_synthetic": len(synth),
        "n_real_halves": [len(a), len(b)],
        "feature_dim": int(real.shape[1]),
    }


# --------------------------------------------------------------------------- spectral


def _draw_pixels(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct random pixel spectra (n, C) from images (N, T, C, H, W), every date."""
    flat = x.reshape(-1, x.shape[2], x.shape[3] * x.shape[4])
    idx = rng.choice(flat.shape[0] * flat.shape[2], n, replace=False)
    return flat[idx // flat.shape[2], :, idx % flat.shape[2]]


def _spectral(real: ClassSpectra, synth: ClassSpectra, real_x, synth_x, ref, max_spectra: int, seed: int,
              halves=None) -> dict:
    classes = [c for c in range(ref.num_classes) if c != ref.ignore_index]
    angles = per_class_sad(real, synth)
    both = [c for c in classes if not math.isnan(angles[c])]
    p_real, p_synth = real.proportions(), synth.proportions()
    per_class = [
        {
            "class": c,
            "name": ref.class_names[c],
            "ignored": c == ref.ignore_index,
            "sad_rad": angles[c],
            "sad_deg": math.degrees(angles[c]),
            "real_pixels": int(real.counts[c]),
            "synthetic_pixels": int(synth.counts[c]),
            "real_fraction": float(p_real[c]),
            "synthetic_fraction": float(p_synth[c]),
        }
        for c in range(ref.num_classes)
    ]
    m = msad(real, synth, classes)
    rng = np.random.default_rng(seed)
    n = min(max_spectra, real_x[:, :, 0].size, synth_x[:, :, 0].size)
    pr = spectral_precision_recall(_draw_pixels(real_x, n, rng), _draw_pixels(synth_x, n, rng), PR_K, PR_GROUPS, seed=seed)
    halves_pr = None
    if halves is not None and min(map(len, halves)) >= 1:
        a, b = real_x[halves[0]], real_x[halves[1]]
        nh = min(max_spectra, a[:, :, 0].size, b[:, :, 0].size)
        if nh >= PR_K + 1:
            h = spectral_precision_recall(_draw_pixels(a, nh, rng), _draw_pixels(b, nh, rng), PR_K, PR_GROUPS, seed=seed)
            halves_pr = {"precision": h["precision"], "recall": h["recall"], "n_spectra": h["n_spectra"]}
    return {
        "msad_rad": m,
        "msad_deg": math.degrees(m),
        "msad_classes": both,
        "msad_note": "mean over classes present in both sets, ignore_index excluded; SAD between class-mean "
                     "spectra (pixels of every date), NaN (null) for a class missing from either set",
        "per_class": per_class,
        "class_proportion_tv": 0.5 * float(np.abs(p_real - p_synth).sum()),
        "precision_recall": {
            "precision": pr["precision"],
            "recall": pr["recall"],
            "k": PR_K,
            "groups": pr["groups"],
            "n_spectra": pr["n_spectra"],
            "note": "per-pixel spectra of every date, equal numbers drawn at random from each set "
                    f"(cap {max_spectra}), Euclidean distance in normalized units",
            "real_halves": halves_pr,
            "recall_vs_real_halves": None if not halves_pr or not halves_pr["recall"] else
            pr["recall"] / halves_pr["recall"],
        },
        "diversity": {"applicable": False, "note": NOT_APPLICABLE_DIVERSITY},
    }


# --------------------------------------------------------------------------- Inception FID


def _false_colour(x: np.ndarray, rgb_bands) -> torch.Tensor:
    """(N*T, 3, H, W) in [0, 1]: bands ``rgb_bands`` of every date, normalized values clipped."""
    n, t, c, h, w = x.shape
    return torch.from_numpy(x.reshape(n * t, c, h, w)[:, list(rgb_bands)]).clamp(0, 1)


@torch.no_grad()
def _inception_features(model, images: torch.Tensor, path: Path, batch_size: int = 32) -> np.ndarray:
    out = []
    for s in range(0, len(images), batch_size):
        batch = F.interpolate(images[s : s + batch_size], size=(INCEPTION_SIZE,) * 2, mode="bilinear", align_corners=False)
        f = model(batch)
        if not isinstance(f, torch.Tensor) or f.ndim != 2 or len(f) != len(batch):
            raise CheckpointError(f"must return (N, D) features, got {getattr(f, 'shape', type(f))}", path)
        out.append(f.double().numpy())
    return np.concatenate(out)


def _inception_fid(inception, real_x, synth_x, rgb_bands) -> dict:
    if inception is None:
        return {"computed": False, "note": INCEPTION_SKIPPED}
    path = Path(inception)
    try:
        model = torch.jit.load(str(path), map_location="cpu").eval()
    except (OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"cannot load the TorchScript Inception model ({e})", path) from None
    log(f"Inception features from {path}")
    real = _inception_features(model, _false_colour(real_x, rgb_bands), path)
    synth = _inception_features(model, _false_colour(synth_x, rgb_bands), path)
    return {
        "computed": True,
        "fid": frechet_distance(real, synth),
        "model": str(path),
        "rgb_bands": list(rgb_bands),
        "input": "bands rgb_bands of each date's normalized image, clipped to [0, 1], bilinear resize to 299x299",
        "n_real": len(real),
        "n_synthetic": len(synth),
        "note": "Inception was trained on natural photos; treat this FID as a rough visual check only",
    }


# --------------------------------------------------------------------------- output


def _f(v, spec: str = ".4g") -> str:
    return "n/a" if v is None else format(v, spec)


def format_markdown(result: dict) -> str:
    """The readable report of an evaluation result (as written to evaluation.md)."""
    r, s, d = result["real"], result["spectral"], result["distribution"]
    pr, fid = s["precision_recall"], result["inception_fid"]
    labels = {"image": "images (per date)", "pair": "image pairs (both dates)", "mask": "masks (one-hot)",
              "joint": "joint (image ++ mask)"}  # fmt: skip
    lines = [
        f"# Evaluation of `{result['synthetic']['path']}`",
        "",
        f"{result['synthetic']['samples']} synthetic samples (the first of {result['synthetic']['samples_in_set']}) "
        f"vs {r['windows']} real training windows of config "
        f"`{r['config']}` (scenes {', '.join(r['scenes'])}; {r['bands']} bands, {r['dates']} date(s)). "
        "Data in [0, 1] per band, normalized by the real training split; angles in radians.",
        "",
        "| metric | synthetic vs real | real half vs real half |",
        "|---|---:|---:|",
    ]
    for kind, v in d.items():
        lines.append(f"| FD {labels[kind]} (n = {v['n_synthetic']} vs {v['n_real']}) | {_f(v['fd'])} | {_f(v['fd_real_halves'])} |")
    for kind, v in d.items():
        lines.append(f"| KID {labels[kind]} (mean +- std) | {_f(v['kid_mean'])} +- {_f(v['kid_std'], '.2g')} "
                     f"| {_f(v['kid_real_halves'])} |")
    lines += [
        f"| mSAD over {len(s['msad_classes'])} classes (rad / deg) | {_f(s['msad_rad'])} / {_f(s['msad_deg'], '.3g')} | |",
        f"| sPr / sRec (k = {pr['k']}, {pr['n_spectra']} spectra per set, {pr['groups']} groups) "
        f"| {_f(pr['precision'], '.3f')} / {_f(pr['recall'], '.3f')} | "
        + ("" if not pr.get("real_halves") else
           f"{_f(pr['real_halves']['precision'], '.3f')} / {_f(pr['real_halves']['recall'], '.3f')}") + " |",
        f"| sRec / sRec of the real halves | {_f(pr.get('recall_vs_real_halves'), '.3f')} | |",
        f"| class proportions, total variation | {_f(s['class_proportion_tv'], '.3f')} | |",
        f"| FID, Inception on false colour | {_f(fid['fid']) if fid['computed'] else 'skipped'} | |",
        "",
        "## Per class",
        "",
        "| value | class | real (%) | synthetic (%) | SAD (rad) | SAD (deg) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for c in s["per_class"]:
        name = c["name"] + (" (ignored)" if c["ignored"] else "")
        lines.append(f"| {c['class']} | {name} | {100 * c['real_fraction']:.2f} | {100 * c['synthetic_fraction']:.2f} "
                     f"| {_f(c['sad_rad'])} | {_f(c['sad_deg'], '.3g')} |")
    lines += ["", *texture_markdown(result["texture"])] if result.get("texture") else []
    fid_ = result.get("label_fidelity")
    if fid_ and fid_.get("skipped"):
        lines += ["", "## Label fidelity", "", f"Not computed: {fid_['skipped']}."]
    elif fid_:
        lines += ["", "## Label fidelity", "",
                  f"{fid_['classifier']}; ceiling: its recall on {fid_['ceiling_source']}. Agreement: the share of "
                  "synthetic pixels of a class that it also assigns to that class. Ratio = agreement / ceiling; "
                  f"lowest over the classes of the training split: **{_f(fid_['min_ratio'], '.3f')}**.", "",
                  *(["Relabelled: the share of the class's synthetic pixels that pixel cleaning set to the ignore "
                     "index (metadata.json); agreement counts the pixels that kept their label.", ""]
                    if fid_.get("cleaned") else []),
                  "| value | class | ceiling (real) | agreement (synthetic) | ratio | relabelled (%) | synthetic pixels "
                  "| nearest real class (SAD rad) |",
                  "|---:|---|---:|---:|---:|---:|---:|---|"]
        for c in fid_["classes"]:
            near = c["nearest_real_class"]
            near = "-" if near is None else f"{near['name']} ({near['sad_rad']:.3f})"
            rel = c.get("relabelled_share")
            lines.append(f"| {c['class']} | {c['name']} | {_f(c['ceiling'], '.3f')} | {_f(c['agreement'], '.3f')} "
                         f"| {_f(c['ratio'], '.3f')} | {'-' if rel is None else f'{100 * rel:.1f}'} "
                         f"| {c['synthetic_pixels']} | {near} |")
        if fid_["classes_without_synthetic_pixels"]:
            lines.append(f"\nClasses of the training split with no synthetic pixel: "
                         f"{', '.join(fid_['classes_without_synthetic_pixels'])}.")
    enc, fp = result["encoders"], result["encoders"]["fingerprint"]
    lines += [
        "",
        "## Notes",
        "",
        f"- Encoders ({', '.join(fp['kinds'])}): PatchEncoder, {fp['feature_dim']} features, {fp['steps']} steps of "
        f"batch {fp['batch_size']}, seed {fp['seed']}, trained on the real training windows only; "
        f"{'reused from' if enc['reused'] else 'saved to'} `{enc['dir']}`.",
        "- FD grows as samples shrink: the real halves hold half as many samples, so their FD is a generous "
        "noise floor; compare runs with equal sample counts.",
        f"- SD/SDM: not applicable. {s['diversity']['note']}",
        f"- FID: {fid['note']}",
        *(f"- Warning: {w}" for w in result["warnings"]),
        f"- Seed {result['seed']}; wall time {result['wall_time_s']} s on {result['machine']}.",
        "",
        "```",
        result["command"] or "(library call)",
        "```",
        "",
    ]
    return "\n".join(lines)
