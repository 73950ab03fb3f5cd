"""Sampling a trained model folder into a data set + card: shared by every method's recipe.

``synthesize`` writes samples in batches, sharded over processes by sample index,
resumable; then reads the set back (so resumed and sharded runs count every sample)
to write previews, statistics and the dataset card.

Layout-conditioned models get a layout per sample (:mod:`specdm.conditions.layouts`).
With a filter threshold, each pair is scored by a classifier of the real training
pixels (:mod:`specdm.augment.fidelity`); a pair below the threshold is drawn again (a
new layout and new noise) up to ``max_attempts`` times, then dropped. Every try is
logged in ``filter_log.jsonl``, so a resumed run skips dropped samples and the card
and ``metadata.json`` state the rule, the threshold and what was dropped per class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from accelerate import PartialState
from tqdm.auto import tqdm

from specdm import __version__
from specdm.data.normalize import Normalizer
from specdm.errors import ConfigError, OutputError
from specdm.metrics.spectral import ClassSpectra
from specdm.models.info import ModelInfo
from specdm.output.card import save_preview, source_licence, write_card
from specdm.output.dataset import MARKER, DatasetWriter, SyntheticDataset, image_dirs, prepare_output
from specdm.pipelines import LayoutPipeline, load_pipeline
from specdm.pipelines.base import sample_seed
from specdm.schedulers import DEFAULT_SAMPLER, default_steps

FILTER_LOG = "filter_log.jsonl"
RETRY_STREAM = 1 << 40  # retries draw their noise from seeds far from any sample index


def layout_options(cfg) -> dict:
    """The plain options of a ``layout`` config section (or of the CLI's flags)."""
    return cfg.model_dump() if hasattr(cfg, "model_dump") else dict(cfg)


class _Layouts:
    """Layouts per sample index for a layout model: the real training masks or the user's files."""

    def __init__(self, model_dir: Path, info: ModelInfo, opts: dict, seed: int):
        from specdm.conditions.layouts import RealLayouts, class_targets, load_real_layouts, read_layouts

        k = len(info.class_names)
        self.files = None
        if opts.get("source") == "dir":
            self.files, self.masks = read_layouts(opts["masks_dir"], info.patch_size, k)
            self.source = None
        else:
            real = load_real_layouts(model_dir)
            shares = np.bincount(real.ravel(), minlength=k) / real.size
            targets = class_targets(opts.get("class_targets"), opts.get("balance", False), info.class_names,
                                    info.ignore_index, shares)
            self.source = RealLayouts(real, k, targets, opts.get("copy_paste", 0.0), info.ignore_index, seed)

    def __call__(self, indices, attempt: int) -> np.ndarray:
        if self.source is None:
            return np.stack([self.masks[i % len(self.masks)] for i in indices])
        return self.source.layouts(indices, attempt)

    def describe(self) -> dict:
        if self.source is None:
            return {"source": "user masks", "files": [str(f) for f in self.files]}
        s = self.source
        return {"source": "real training masks under D4 transforms", "copy_paste": s.copy_paste,
                "class_targets": None if s.targets is None else [round(float(v), 4) for v in s.targets],
                "real_shares": [round(float(v), 4) for v in s.real_shares]}


def synthesize(
    model_dir: Path,
    out_dir: Path,
    num_samples: int,
    sampler: str = DEFAULT_SAMPLER,
    num_inference_steps: int | None = None,
    eta: float = 0.0,
    batch_size: int = 50,
    seed: int = 0,
    image_format: str = "tif",
    mask_format: str = "png",
    previews: int = 8,
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
    device: str | None = None,
    layout: dict | None = None,
    filter_threshold: float | None = None,
    max_attempts: int = 4,
) -> Path:
    """Write ``num_samples`` samples of the model in ``model_dir`` to ``out_dir``; returns the card's path.

    ``layout``: options of layout-conditioned sampling (the keys of the config's ``layout`` section:
    ``source``, ``masks_dir``, ``class_targets``, ``balance``, ``copy_paste``, ``guidance_scale``); None
    uses their defaults for a layout model and is required for the others. ``filter_threshold``: drop
    pairs below this label fidelity after ``max_attempts`` draws (any method).
    """
    state = PartialState()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    steps = num_inference_steps or default_steps(sampler)
    pipe = load_pipeline(model_dir, device or state.device)
    info = pipe.info
    if layout is not None and not isinstance(pipe, LayoutPipeline):
        raise ConfigError(f"layout options (--masks, --classes, --balance, --guidance, --copy-paste) steer "
                          f"layout-conditioned models; this model ({info.method}) samples its own masks", model_dir)
    opts = {"filter_threshold": filter_threshold, "max_attempts": max_attempts, **(layout or {})}
    layouts = _Layouts(model_dir, info, opts, seed) if isinstance(pipe, LayoutPipeline) else None
    scorer = None
    if filter_threshold is not None:
        from specdm.augment.fidelity import LabelFidelity, load_pixels

        scorer = LabelFidelity(len(info.class_names), info.ignore_index, seed=seed).fit_pixels(*load_pixels(model_dir))
    shape = (num_samples, info.num_dates, info.num_bands, info.patch_size, len(info.class_names), image_format, mask_format)
    if state.is_main_process:
        prepare_output(out_dir, resume, overwrite)
        meta = dataset_metadata(pipe, model_dir, num_samples, sampler, steps, eta, seed, image_format, mask_format, command)
        if layouts is not None:
            meta["layouts"] = {**layouts.describe(), "guidance_scale": opts.get("guidance_scale", 1.0)}
        if scorer is not None:
            redraw = "new noise and, for layout models, a new layout" if opts.get("redraw_layouts") else \
                "new noise; a layout model keeps the sample's layout"
            meta["filter"] = {"rule": "a pair whose labelled pixels agree with a random forest of the real training "
                                      f"pixels less often than the threshold is drawn again ({redraw}), "
                                      "and dropped after max_attempts tries",
                              "threshold": opts["filter_threshold"], "max_attempts": opts.get("max_attempts", 4),
                              "classifier": scorer.trained_on}
        meta_file = out_dir / "metadata.json"

        def rule(m):  # the filter's settings, not the summary that finishing adds
            return {k: v for k, v in (m.get("filter") or {}).items() if k in ("threshold", "max_attempts")}

        check_resumable(meta_file, {**meta, "filter": rule(meta)}, resume,
                        ("num_samples", "sampler", "seed", "model", "format", "layouts", "filter"),
                        lambda old: {**old, "filter": rule(old)})
        meta_file.write_text(json.dumps(meta, indent=1))
        DatasetWriter(out_dir, *shape)
    state.wait_for_everyone()
    writer = DatasetWriter(out_dir, *shape)
    dropped = _filter_log(out_dir)[1]
    todo = [i for i in writer.pending() if i not in dropped][state.process_index :: state.num_processes]
    bar = tqdm(total=len(todo), desc=f"sampling ({sampler}, {steps} steps)", unit="sample",
               disable=not state.is_main_process)
    log = out_dir / (FILTER_LOG if state.num_processes == 1 else f"{FILTER_LOG}.{state.process_index}")
    norm = Normalizer.from_dict(info.normalization)
    kw = dict(sampler=sampler, num_inference_steps=steps, eta=eta)
    if layouts is not None:
        kw["guidance_scale"] = opts.get("guidance_scale", 1.0)
    for s in range(0, len(todo), batch_size):
        _sample_batch(pipe, writer, todo[s : s + batch_size], seed, kw, layouts, scorer, opts, norm, log)
        bar.update(len(todo[s : s + batch_size]))
    bar.close()
    state.wait_for_everyone()
    card = out_dir / "README.md"
    if state.is_main_process:
        card = finish_dataset(out_dir, info, previews, model_dir, pipe.autoencoder)
    state.wait_for_everyone()
    return card


def check_resumable(meta_file: Path, meta: dict, resume: bool, keys, view=lambda old: old) -> None:
    """Before resuming into ``meta_file``'s data set: refuse one whose ``keys`` (of ``view(old metadata)``)
    differ from ``meta``'s, i.e. a set made with other settings, inputs or another model."""
    if resume and meta_file.is_file():
        old = view(json.loads(meta_file.read_text()))
        if any(old.get(k) != meta.get(k) for k in keys):
            raise OutputError("holds a data set made with other settings, inputs or another model; use --overwrite",
                              meta_file.parent)


def _sample_batch(pipe, writer: DatasetWriter, pending: list[int], seed: int, kw: dict, layouts, scorer, opts: dict,
                  norm: Normalizer, log: Path) -> None:
    """Draw samples ``pending`` and write them; with a ``scorer``, redraw those under the threshold (new noise and
    layout, up to ``max_attempts`` tries), log every try and drop what never passes."""
    attempts = opts.get("max_attempts", 4) if scorer is not None else 1
    for attempt in range(attempts):
        # attempt 0 is the plain sample i; later attempts draw new noise (and a new layout)
        run_seed = seed if attempt == 0 else sample_seed(seed, RETRY_STREAM + attempt)
        if layouts is not None:  # a retry keeps the sample's layout unless asked to redraw it too
            out = pipe(layouts(pending, attempt if opts.get("redraw_layouts") else 0), pending, seed=run_seed, **kw)
        else:
            out = pipe(pending, seed=run_seed, **kw)
        keep = np.ones(len(pending), bool)
        if scorer is not None:
            x = np.moveaxis(norm(np.moveaxis(out["images"], 2, -1)), -1, 2)
            scores = scorer.sample_scores(x, out["masks"])
            keep = ~(scores < opts["filter_threshold"])  # NaN (no labelled pixel) is kept
            with log.open("a") as f:
                for i, sc, k, m in zip(pending, scores, keep, out["masks"]):
                    rec = {"index": int(i), "attempt": attempt, "score": None if np.isnan(sc) else float(sc),
                           "kept": bool(k)}
                    if not k and attempt == attempts - 1:
                        rec.update(dropped=True, classes=np.unique(m).tolist())
                    f.write(json.dumps(rec) + "\n")
        for i, images, mask, k in zip(pending, out["images"], out["masks"], keep):
            if k:
                writer.write(i, images, mask)
        pending = [i for i, k in zip(pending, keep) if not k]
        if not pending:
            return


def dataset_metadata(pipe, model_dir, n, sampler, steps, eta, seed, image_format, mask_format, command) -> dict:
    info = pipe.info
    return {
        MARKER: __version__,
        "task": info.task,
        "method": info.method,
        "num_samples": n,
        "images": image_dirs(info.num_dates),
        "masks": True,
        "image_format": image_format,
        "mask_format": mask_format,
        "format": {"image": image_format, "mask": mask_format,
                   "image_layout": "(bands, rows, cols) float32, the data's own units",
                   "mask_layout": "(rows, cols) class values"},
        "band_names": info.band_names,
        "wavelengths": info.wavelengths,
        "rgb_bands": info.rgb_bands,
        "class_names": info.class_names,
        "ignore_index": info.ignore_index,
        "patch_size": info.patch_size,
        "normalization": info.normalization,
        "value_range": "normalized values clipped to [0, 1] before the inverse normalization",
        "sampler": {"name": sampler, "num_inference_steps": steps, "eta": eta},
        "seed": seed,
        "seed_rule": "sample i uses numpy SeedSequence([seed, i])",
        "model": {"path": str(model_dir), **pipe.hashes(model_dir)},
        "source": info.source,
        "licence": source_licence(info.source),
        "command": command,
    }


def _filter_log(out_dir: Path) -> tuple[list[dict], set[int]]:
    """Every logged try (all processes' logs) and the indices dropped for good."""
    rows = []
    for f in sorted(Path(out_dir).glob(f"{FILTER_LOG}*")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return rows, {r["index"] for r in rows if r.get("dropped")}


def filter_summary(out_dir: Path, class_names: list[str]) -> dict | None:
    """What the filter did: tries, redraws, dropped samples, and per class the dropped samples whose layout held it."""
    rows, dropped = _filter_log(out_dir)
    if not rows:
        return None
    per_class = np.zeros(len(class_names), int)
    for r in rows:
        if r.get("dropped"):
            per_class[r["classes"]] += 1
    first = [r for r in rows if r["attempt"] == 0]
    return {"tries": len(rows), "scored_samples": len(first), "failed_first_try": sum(not r["kept"] for r in first),
            "redrawn": sum(1 for r in rows if r["attempt"] > 0), "dropped": len(dropped),
            "dropped_per_class": {class_names[k]: int(v) for k, v in enumerate(per_class) if v}}


def _real_examples(model_dir: Path | None, autoencoder) -> tuple[np.ndarray, np.ndarray] | None:
    """The real windows kept in the model folder (N, T, C, H, W) and their stage-1 reconstructions."""
    import torch
    from safetensors.torch import load_file

    from specdm.output.card import EXAMPLES_FILE

    f = None if model_dir is None else Path(model_dir) / EXAMPLES_FILE
    if f is None or not f.is_file() or autoencoder is None:
        return None
    d = load_file(str(f))
    with torch.no_grad():
        mean, _ = autoencoder.encode(d["images"].to(autoencoder.device), d["masks"].to(autoencoder.device))
        rec = autoencoder.decode(mean)[0].clamp(0, 1).cpu()
    return d["images"].numpy(), rec.numpy()


def finish_dataset(out_dir: Path, info: ModelInfo, previews: int, model_dir: Path | None = None,
                   autoencoder=None) -> Path:
    """Read the finished data set back, write previews, statistics and the card. With the model folder's real
    example windows, every picture shares one colour stretch (the real windows' 2nd-98th percentiles) and the
    card shows real windows, their reconstructions and synthetic samples side by side. A set without masks keeps
    its statistics over all pixels (:func:`~specdm.output.card.card_classes`; real ones: ``info.real_stats`` when
    the model has them)."""
    from specdm.data.plot import rgb_stretch
    from specdm.output.card import card_classes, plot_comparison

    norm = Normalizer.from_dict(info.normalization)
    examples = _real_examples(model_dir, autoencoder)
    stretch = None
    if examples is not None:
        stretch = rgb_stretch(np.moveaxis(examples[0][:, 0], 1, -1), info.rgb_bands)
    ds = SyntheticDataset(out_dir)
    meta = json.loads((out_dir / "metadata.json").read_text())
    names = card_classes(meta)
    synth = ClassSpectra(len(names), info.num_bands)
    preview_paths, firsts = [], []  # firsts: (date-1 image, mask) of the samples the comparison figure shows
    n_examples = 0 if examples is None else len(examples[0])
    (out_dir / "previews").mkdir(exist_ok=True)
    for k in range(len(ds)):
        item = ds[k]
        imgs = [norm(im.transpose(1, 2, 0)) for im in item["images"]]
        mask = item.get("mask")
        for im in imgs:
            synth.update(im, np.zeros(im.shape[:2], np.int64) if mask is None else mask)
        if k < n_examples:
            firsts.append((imgs[0], mask))
        if k < previews:
            p = out_dir / "previews" / f"{ds.indices[k]:06d}.png"
            preview_paths.append(save_preview(np.concatenate(imgs, 1) if len(imgs) > 1 else imgs[0],
                                              None if mask is None else np.tile(mask, (1, len(imgs))), info.rgb_bands,
                                              p, len(names), stretch))
    real = ClassSpectra.from_dict(info.real_stats) if info.real_stats else ClassSpectra(len(names), info.num_bands)
    summary = filter_summary(out_dir, info.class_names)
    if summary is not None:
        meta["filter"] = {**meta.get("filter", {}), **summary}
    meta["complete"] = len(ds) + (summary or {}).get("dropped", 0) == meta["num_samples"]
    meta["synthetic_stats"] = synth.to_dict()
    figures = []
    if examples is not None:
        meta["preview_stretch"] = {"low": [float(v) for v in stretch[0]], "high": [float(v) for v in stretch[1]],
                                   "bands": list(info.rgb_bands), "units": "normalized"}
        rows = {"real": np.moveaxis(examples[0][:, 0], 1, -1), "reconstructed": np.moveaxis(examples[1][:, 0], 1, -1),
                "synthetic": np.stack([im for im, _ in firsts])}
        (out_dir / "card").mkdir(exist_ok=True)
        figures.append(plot_comparison(rows, info.rgb_bands, stretch, out_dir / "card" / "real_reconstructed_synthetic.png",
                                       np.stack([m for _, m in firsts]), len(info.class_names)))
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=1))
    return write_card(out_dir, real, synth, meta, preview_paths, extra_figures=figures)
