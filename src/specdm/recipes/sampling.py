"""The one sampling-and-writing loop: a trained model folder -> a data set + its card, for every method and input kind.

:func:`write_set` prepares the folder and ``metadata.json`` (one schema for every method: the licence, the
command, the model's weight hashes and what the samples were drawn for), refuses to resume a set made otherwise,
then draws the pending samples in batches, the batches sharded over processes (each batch is the same whatever
the number of processes, so W processes write the very files one process writes), each process writing the files
of its own samples and only the main process everything shared; then it reads the set back (so resumed and
sharded runs count every sample) for previews, statistics, the dataset card and its STAC item.

What the samples are drawn for is an :class:`Inputs` (an input kind): nothing (SpecDM's joint samples), given
masks (layouts), conditions, or RGB images; each method's recipe declares its kind (``Recipe.inputs``), and
:func:`sample_model` (``specdm sample``) builds it from the options given.

With a filter threshold (input kinds with masks), each pair is scored by a classifier of the real training
pixels (:mod:`specdm.augment.fidelity`); a pair below the threshold is drawn again (new noise and, if asked, a new
layout) up to ``max_attempts`` times, then dropped. Every try is logged in ``filter_log.jsonl``, so a resumed run
skips dropped samples and the card and ``metadata.json`` state the rule, the threshold and what was dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
from accelerate import PartialState
from tqdm.auto import tqdm

from specdm import __version__
from specdm.config import METHODS, SamplingConfig
from specdm.data.normalize import Normalizer
from specdm.errors import ConfigError, OutputError
from specdm.metrics.spectral import ClassSpectra
from specdm.models.info import ModelInfo
from specdm.output.card import save_preview, source_licence, write_card
from specdm.output.dataset import MARKER, DatasetWriter, SyntheticDataset, image_dirs, prepare_output
from specdm.pipelines import load_pipeline
from specdm.pipelines.base import sample_seed

FILTER_LOG = "filter_log.jsonl"
RETRY_STREAM = 1 << 40  # retries draw their noise from seeds far from any sample index
SEED_RULE = "sample i uses numpy SeedSequence([seed, i])"


class Inputs:
    """What the samples of a data set are drawn for: one input kind. Subclasses (one per method's recipe) say what
    ``specdm sample`` options they take, check them against the model (:meth:`bind`, before anything is
    written), describe themselves in ``metadata.json`` and the card, and draw a batch of samples."""

    kind: ClassVar[str] = "joint"
    options: ClassVar[dict[str, str]] = {}  # option -> the `specdm sample` flag that gives it
    has_masks: ClassVar[bool] = True  # the samples come with masks (the filter applies)
    any_size: ClassVar[bool] = False  # samples may differ in size (no patch size, no zarr)
    seed_rule: ClassVar[str] = SEED_RULE
    retry: ClassVar[str] = "new noise"  # what a filter retry draws anew

    @classmethod
    def from_options(cls, options: dict) -> "Inputs":
        """The inputs of ``specdm sample``'s options (only this kind's; the caller refuses the others)."""
        return cls()

    def bind(self, pipe, model_dir: Path, settings: SamplingConfig) -> None:
        """Read and check what is given against the model ``pipe`` of ``model_dir`` (a wrong file stops here)."""

    def count(self, settings: SamplingConfig) -> int:
        """How many samples the set holds."""
        return settings.num_samples

    def scaled(self, n: int, settings: SamplingConfig) -> tuple["Inputs", SamplingConfig]:
        """These inputs and settings for a set of ``n`` units (the run-time estimate samples one batch)."""
        return self, settings.model_copy(update={"num_samples": n})

    def estimate_units(self, settings: SamplingConfig) -> tuple[int, int]:
        """(units of the whole set, units of one batch): what the estimate scales."""
        return settings.num_samples, min(settings.batch_size, settings.num_samples)

    def metadata(self, out_dir: Path) -> dict:
        """This kind's part of ``metadata.json`` (``inputs``, besides ``kind``)."""
        return {}

    def save(self, out_dir: Path) -> None:
        """Files written beside the samples (main process, after the metadata passed its resume check)."""

    def units(self, pending: list[int], batch_size: int) -> list[list[int]]:
        """The batches the pending samples are drawn in (the same for any number of processes)."""
        return [pending[s : s + batch_size] for s in range(0, len(pending), batch_size)]

    def draw(self, pipe, indices: list[int], seed: int, attempt: int, kw: dict) -> dict:
        """Samples ``indices`` of the run seeded ``seed`` (``attempt`` > 0: a filter retry): ``{"images": (N, T, C,
        H, W), "masks": (N, H, W) or None}`` in the data's own units."""
        return pipe(indices, seed=seed, **kw)

    def card(self, meta: dict) -> list[str]:
        """The dataset card's section on what the samples were drawn for."""
        return []


def sample_model(model_dir: Path, out_dir: Path, settings: SamplingConfig, options: dict | None = None,
                 resume: bool = False, overwrite: bool = False, command: str = "", device: str | None = None) -> Path:
    """``specdm sample``: the model folder's method decides the input kind (its recipe's ``inputs``), built from
    ``options`` (option -> value, only those given); an option of another kind is refused, naming the model.
    Returns the card's path."""
    from specdm.recipes import recipe_of

    info = ModelInfo.load(Path(model_dir))
    kind = recipe_of(info.method, model_dir).inputs
    options = options or {}
    stray = sorted(k for k in options if k not in kind.options)
    if stray:
        from specdm.recipes import recipe_of as recipe

        owners = [m for m in METHODS if any(k in recipe(m).inputs.options for k in stray)]
        takes = ", ".join(kind.options.values())
        raise ConfigError(f"{', '.join(_flag(k) for k in stray)} steer{'s' * (len(stray) == 1)} "
                          f"{' and '.join(owners)} models; this model ({info.method}: {METHODS[info.method].summary}) "
                          + (f"takes {takes}" if takes else "takes no input options"), model_dir)
    return write_set(model_dir, out_dir, kind.from_options(options), settings, resume, overwrite, command, device)


def _flag(option: str) -> str:
    from specdm.recipes import input_kinds

    return next((k.options[option] for k in input_kinds() if option in k.options), option)


def write_set(model_dir: Path, out_dir: Path, inputs: Inputs, settings: SamplingConfig, resume: bool = False,
              overwrite: bool = False, command: str = "", device: str | None = None) -> Path:
    """Write the samples of the model in ``model_dir`` drawn for ``inputs`` to ``out_dir`` (sampler, seed, batch,
    formats, previews and filter from ``settings``); returns the card's path."""
    state = PartialState()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    pipe = load_pipeline(model_dir, device or state.device)
    info = pipe.info
    s = settings
    inputs.bind(pipe, model_dir, s)
    if s.filter_threshold is not None and not inputs.has_masks:
        raise ConfigError(f"the label-fidelity filter scores masks; {info.method} models sample images without masks",
                          model_dir)
    n = inputs.count(s)
    steps = pipe.steps(s.sampler, s.num_inference_steps)
    classes = len(info.class_names) if inputs.has_masks else None
    shape = (n, info.num_dates, info.num_bands, None if inputs.any_size else info.patch_size, classes,
             s.image_format, s.mask_format)
    scorer = None
    if s.filter_threshold is not None:
        from specdm.augment.fidelity import LabelFidelity, load_pixels

        scorer = LabelFidelity(len(info.class_names), info.ignore_index, seed=s.seed)
        scorer = scorer.fit_pixels(*load_pixels(model_dir))
    if state.is_main_process:
        prepare_output(out_dir, resume, overwrite)
        meta = dataset_metadata(pipe, model_dir, out_dir, inputs, n, s, steps, command, scorer)
        meta_file = out_dir / "metadata.json"
        check_resumable(meta_file, meta, resume, ("num_samples", "sampler", "seed", "model", "format", "inputs",
                                                  "filter"), _comparable)
        inputs.save(out_dir)
        meta_file.write_text(json.dumps(meta, indent=1))
        DatasetWriter(out_dir, *shape)
    state.wait_for_everyone()
    writer = DatasetWriter(out_dir, *shape)
    dropped = _filter_log(out_dir)[1]
    pending = [i for i in writer.pending() if i not in dropped]
    mine = inputs.units(pending, s.batch_size)[state.process_index :: state.num_processes]
    bar = tqdm(total=sum(map(len, mine)), desc=f"sampling ({s.sampler}, {steps} steps)", unit="sample",
               disable=not state.is_main_process)
    log = out_dir / (FILTER_LOG if state.num_processes == 1 else f"{FILTER_LOG}.{state.process_index}")
    kw = dict(sampler=s.sampler, num_inference_steps=steps, eta=s.eta)
    for unit in mine:
        _draw_unit(pipe, inputs, writer, unit, s, kw, scorer, log)
        bar.update(len(unit))
    bar.close()
    state.wait_for_everyone()
    card = out_dir / "README.md"
    if state.is_main_process:
        card = finish_dataset(out_dir, info, s.previews, model_dir, pipe.autoencoder, inputs)
    state.wait_for_everyone()
    return card


def dataset_metadata(pipe, model_dir: Path, out_dir: Path, inputs: Inputs, n: int, s: SamplingConfig, steps: int,
                     command: str, scorer=None) -> dict:
    """``metadata.json`` of a set: the same keys for every method and input kind."""
    info, masks = pipe.info, inputs.has_masks
    layout = "(bands, rows, cols) float32, the data's own units" + (", each the size of its input" if inputs.any_size
                                                                    else "")
    meta = {
        MARKER: __version__,
        "task": info.task if masks else "image",
        "method": info.method,
        "num_samples": n,
        "images": image_dirs(info.num_dates),
        "masks": masks,
        "image_format": s.image_format,
        "mask_format": s.mask_format if masks else None,
        "format": {"image": s.image_format, "mask": s.mask_format if masks else None, "image_layout": layout,
                   "mask_layout": "(rows, cols) class values" if masks else None},
        "band_names": info.band_names,
        "wavelengths": info.wavelengths,
        "rgb_bands": info.rgb_bands,
        "class_names": info.class_names if masks else [],
        "ignore_index": info.ignore_index if masks else None,
        "patch_size": None if inputs.any_size else info.patch_size,
        "normalization": info.normalization,
        "value_range": "normalized values clipped to [0, 1] before the inverse normalization",
        "sampler": {"name": s.sampler, "num_inference_steps": steps, "eta": s.eta},
        "seed": s.seed,
        "seed_rule": inputs.seed_rule,
        "model": {"path": str(model_dir), **pipe.hashes(model_dir)},
        "source": info.source,
        "licence": source_licence(info.source),
        "command": command,
        "inputs": {"kind": inputs.kind, **inputs.metadata(out_dir)},
        "filter": None,
    }
    if scorer is not None:
        meta["filter"] = {"rule": "a pair whose labelled pixels agree with a random forest of the real training "
                                  f"pixels less often than the threshold is drawn again ({inputs.retry}), "
                                  "and dropped after max_attempts tries",
                          "threshold": s.filter_threshold, "max_attempts": s.max_attempts,
                          "classifier": scorer.trained_on}
    return meta


def _comparable(meta: dict) -> dict:
    """What decides whether a set resumes: the filter's settings, not the summary finishing adds."""
    f = meta.get("filter") or {}
    return {**meta, "filter": {k: v for k, v in f.items() if k in ("threshold", "max_attempts")}}


def check_resumable(meta_file: Path, meta: dict, resume: bool, keys, view=lambda m: m) -> None:
    """Before resuming into ``meta_file``'s data set: refuse one whose ``keys`` (of ``view(metadata)``) differ from
    ``meta``'s, i.e. a set made with other settings, inputs or another model."""
    if resume and meta_file.is_file():
        old, new = view(json.loads(meta_file.read_text())), view(meta)
        if any(old.get(k) != new.get(k) for k in keys):
            raise OutputError("holds a data set made with other settings, inputs or another model; use --overwrite",
                              meta_file.parent)


def _draw_unit(pipe, inputs: Inputs, writer: DatasetWriter, pending: list[int], s: SamplingConfig, kw: dict, scorer,
               log: Path) -> None:
    """Draw samples ``pending`` and write them; with a ``scorer``, redraw those under the threshold (up to
    ``max_attempts`` tries), log every try and drop what never passes."""
    attempts = s.max_attempts if scorer is not None else 1
    norm = Normalizer.from_dict(pipe.info.normalization)
    for attempt in range(attempts):
        # attempt 0 is the plain sample i; later attempts draw new noise (and, if asked, a new layout)
        run_seed = s.seed if attempt == 0 else sample_seed(s.seed, RETRY_STREAM + attempt)
        out = inputs.draw(pipe, pending, run_seed, attempt, kw)
        masks = out.get("masks")
        keep = np.ones(len(pending), bool)
        if scorer is not None:
            x = np.moveaxis(norm(np.moveaxis(out["images"], 2, -1)), -1, 2)
            scores = scorer.sample_scores(x, masks)
            keep = ~(scores < s.filter_threshold)  # NaN (no labelled pixel) is kept
            with log.open("a") as f:
                for i, sc, k, m in zip(pending, scores, keep, masks):
                    rec = {"index": int(i), "attempt": attempt, "score": None if np.isnan(sc) else float(sc),
                           "kept": bool(k)}
                    if not k and attempt == attempts - 1:
                        rec.update(dropped=True, classes=np.unique(m).tolist())
                    f.write(json.dumps(rec) + "\n")
        for k, (i, images) in enumerate(zip(pending, out["images"])):
            if keep[k]:
                writer.write(i, images, None if masks is None else masks[k])
        pending = [i for i, k in zip(pending, keep) if not k]
        if not pending:
            return


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
                   autoencoder=None, inputs: Inputs | None = None) -> Path:
    """Read the finished data set back, write previews, statistics, the card and its STAC item. With the model
    folder's real example windows, every picture shares one colour stretch (the real windows' 2nd-98th
    percentiles) and the card shows real windows, their reconstructions and synthetic samples side by side. A set
    without masks keeps its statistics over all pixels (:data:`~specdm.output.card.ALL_PIXELS`), compared with
    the model's real ones when it has them."""
    from specdm.data.plot import rgb_stretch
    from specdm.output.card import card_classes, plot_comparison

    norm = Normalizer.from_dict(info.normalization)
    ds = SyntheticDataset(out_dir)
    meta = json.loads((out_dir / "metadata.json").read_text())
    names = card_classes(meta)
    examples = _real_examples(model_dir, autoencoder) if ds.has_masks else None
    stretch = None
    if examples is not None:
        stretch = rgb_stretch(np.moveaxis(examples[0][:, 0], 1, -1), info.rgb_bands)
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
    real = ClassSpectra(len(names), info.num_bands)
    if info.real_stats and len(info.real_stats.get("counts", [])) == len(names):
        real = ClassSpectra.from_dict(info.real_stats)
    summary = filter_summary(out_dir, info.class_names) if ds.has_masks else None
    if summary is not None:
        meta["filter"] = {**(meta.get("filter") or {}), **summary}
    meta["complete"] = len(ds) + (summary or {}).get("dropped", 0) == meta["num_samples"]
    meta["synthetic_stats"] = synth.to_dict()
    meta["preview_stretch"] = None
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
    method = METHODS.get(meta.get("method"))
    sections = [*(method.card(meta) if method else []), *(inputs.card(meta) if inputs else [])]
    return write_card(out_dir, real, synth, meta, preview_paths, extra_figures=figures, sections=sections,
                      summary=method.summary if method else None)


__all__ = ["FILTER_LOG", "Inputs", "check_resumable", "dataset_metadata", "filter_summary",
           "finish_dataset", "sample_model", "write_set"]
