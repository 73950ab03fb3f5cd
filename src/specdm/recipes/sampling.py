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

Input kinds with masks take four treatments of every drawn batch, in this order (:class:`Treatment`), each
off by default and recorded in ``metadata.json`` and the card when used:

- class-aware decoding (``decode``, :mod:`specdm.augment.painting`): each class region repainted from real training
  data of its class (residual patches, nearest real spectra);
- the filter (``filter_threshold``): each pair is scored by a classifier of the real training pixels
  (:mod:`specdm.augment.fidelity`); a pair below the threshold fails;
- pixel-level label cleaning (``clean``, :mod:`specdm.augment.cleaning`): each pixel the classifier rejects becomes
  ``ignore_index`` in the written mask; a pair keeping fewer than ``clean_min_kept`` of its labelled pixels fails;
- hard-class steering (``hard_classes``): layout models draw their layouts toward class targets raised by the
  classifier's per-class loss; joint models redraw a sample with a probability that falls as it holds more of the
  hard classes (the last try is kept).

A pair that fails is drawn again (new noise and, if asked, a new layout) up to ``max_attempts`` times, then
dropped. Every try is logged in ``filter_log.jsonl``, so a resumed run skips dropped samples and the card and
``metadata.json`` state the rules, the thresholds, what was dropped and what was relabelled per class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
from accelerate import PartialState
from tqdm.auto import tqdm

from specdm import __version__
from specdm.augment.cleaning import HardClassAcceptance, PixelCleaner, hard_class_targets, no_ignore_index_error
from specdm.augment.fidelity import LabelFidelity, load_pixels
from specdm.augment.painting import ClassPainter, ClassReferences, load_real_texture, painter_rngs
from specdm.config import METHODS, SamplingConfig
from specdm.data.normalize import Normalizer
from specdm.errors import ConfigError, DataError, OutputError
from specdm.metrics.spectral import ClassSpectra
from specdm.models.info import ModelInfo
from specdm.output.card import save_preview, source_licence, write_card
from specdm.output.dataset import MARKER, DatasetWriter, SyntheticDataset, image_dirs, prepare_output
from specdm.pipelines import load_pipeline
from specdm.pipelines.base import sample_seed

FILTER_LOG = "filter_log.jsonl"
RETRY_STREAM = 1 << 40  # retries draw their noise from seeds far from any sample index
SEED_RULE = "sample i uses numpy SeedSequence([seed, i])"
ACCEPT_STREAM = 0xACC  # the hard-class acceptance draw of a try: SeedSequence([seed, i, attempt, ACCEPT_STREAM])


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

    def check_settings(self, settings: SamplingConfig) -> None:
        """Refuse settings this kind cannot follow (before ``specdm run`` trains)."""

    def steer(self, targets: np.ndarray, steered: np.ndarray) -> bool:
        """Draw toward class shares ``targets`` (K,) of the classes ``steered`` (hard-class steering); False when
        this kind cannot choose its masks (the writer then redraws samples by :class:`HardClassAcceptance`)."""
        return False


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
    check_treatments(s, info.method, inputs.has_masks, info.ignore_index, model_dir)
    treat = Treatment.build(pipe, model_dir, inputs, s)
    n = inputs.count(s)
    steps = pipe.steps(s.sampler, s.num_inference_steps)
    classes = len(info.class_names) if inputs.has_masks else None
    shape = (n, info.num_dates, info.num_bands, None if inputs.any_size else info.patch_size, classes,
             s.image_format, s.mask_format)
    if state.is_main_process:
        prepare_output(out_dir, resume, overwrite)
        meta = dataset_metadata(pipe, model_dir, out_dir, inputs, n, s, steps, command, treat)
        meta_file = out_dir / "metadata.json"
        check_resumable(meta_file, meta, resume, ("num_samples", "sampler", "seed", "model", "format", "inputs",
                                                  "filter", "decode", "clean", "hard_classes"), _comparable)
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
        _draw_unit(pipe, inputs, writer, unit, s, kw, treat, log)
        bar.update(len(unit))
    bar.close()
    state.wait_for_everyone()
    card = out_dir / "README.md"
    if state.is_main_process:
        card = finish_dataset(out_dir, info, s.previews, model_dir, pipe.autoencoder, inputs)
    state.wait_for_everyone()
    return card


def dataset_metadata(pipe, model_dir: Path, out_dir: Path, inputs: Inputs, n: int, s: SamplingConfig, steps: int,
                     command: str, treat: "Treatment | None" = None) -> dict:
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
        "decode": None,
        "clean": None,
        "hard_classes": None,
        "texture": None,
    }
    if treat is not None:
        meta.update(treat.metadata(inputs, info.class_names, s))
    return meta


RESUME_KEYS = {"filter": ("threshold", "max_attempts"), "decode": ("mode", "alpha", "k", "pool"),
               "clean": ("rule", "ratio", "min_kept", "max_attempts", "calibrated_on"),
               "hard_classes": ("strength", "targets")}


def _comparable(meta: dict) -> dict:
    """What decides whether a set resumes: the treatments' settings, not the summaries finishing adds."""
    out = dict(meta)
    for key, keep in RESUME_KEYS.items():
        v = meta.get(key)
        out[key] = None if v is None else {k: x for k, x in v.items() if k in keep}
    return out


def check_treatments(s: SamplingConfig, method: str, has_masks: bool, ignore_index: int | None, where=None) -> None:
    """Refuse, before anything is drawn (and before ``specdm run`` trains), treatments the samples cannot take:
    every treatment needs masks; cleaning needs an ignore index to write."""
    used = [flag for flag, on in (("--filter (sampling.filter_threshold)", s.filter_threshold is not None),
                                  ("--decode (sampling.decode)", s.decode != "none"),
                                  ("--clean (sampling.clean)", s.clean != "none"),
                                  ("--hard-classes (sampling.hard_classes)", s.hard_classes)) if on]
    if used and not has_masks:
        raise ConfigError(f"{', '.join(used)} work{'s' * (len(used) == 1)} on masks; {method} models sample images "
                          "without masks", where)
    if s.clean != "none" and ignore_index is None:
        raise no_ignore_index_error(where)


class Treatment:
    """What happens to each drawn batch before it is written (module docstring): class-aware decoding, the filter,
    pixel cleaning and hard-class acceptance, built once per process from the model folder and the settings."""

    def __init__(self, norm, painter=None, scorer=None, threshold=None, cleaner=None, min_kept=0.0, acceptance=None,
                 hard=None):
        self.norm, self.painter, self.scorer, self.threshold = norm, painter, scorer, threshold
        self.cleaner, self.min_kept, self.acceptance, self.hard = cleaner, min_kept, acceptance, hard

    @classmethod
    def build(cls, pipe, model_dir: Path, inputs: Inputs, s: SamplingConfig) -> "Treatment":
        info = pipe.info
        norm = Normalizer.from_dict(info.normalization)
        if not inputs.has_masks:
            return cls(norm)
        scorer = cleaner = acceptance = hard = calibration = source = painter = None
        accepted_pool = s.decode != "none" and "snap" in s.decode and s.snap_pool == "accepted"
        calibrate = s.clean != "none" or s.hard_classes or accepted_pool
        if s.filter_threshold is not None or calibrate:
            pixels, labels = load_pixels(model_dir)
            scorer = LabelFidelity(len(info.class_names), info.ignore_index, seed=s.seed,
                                   oob=calibrate and s.clean_calibration == "oob")
            scorer = scorer.fit_pixels(pixels, labels)
            if calibrate:
                calibration, source = cls.calibration(scorer, pixels, labels, model_dir, info, s)
        rule = PixelCleaner(scorer, s.clean_ratio, calibration, source) if calibrate else None
        if s.clean != "none":
            cleaner = rule
        if s.decode != "none":
            refs = ClassReferences.load(model_dir)
            if accepted_pool:
                refs = refs.subset(~rule.rejects(refs.pixels, refs.labels) | (refs.labels == info.ignore_index))
            painter = ClassPainter(refs, s.decode, s.snap_alpha, s.snap_k, s.snap_pool)
        if s.hard_classes:
            from specdm.conditions.layouts import load_real_layouts

            k = len(info.class_names)
            real = load_real_layouts(model_dir)
            shares = np.bincount(real.ravel(), minlength=k)[:k] / real.size
            loss, recall, count = calibration
            targets, steered = hard_class_targets(loss, shares, info.ignore_index, s.hard_strength)
            by_layouts = inputs.steer(targets, steered)
            acceptance = None if by_layouts else HardClassAcceptance(targets, steered, shares)
            hard = {"loss": loss, "recall": recall, "shares": shares, "targets": targets, "steered": steered,
                    "by": "layouts" if by_layouts else "acceptance", "source": source}
        return cls(norm, painter, scorer, s.filter_threshold, cleaner, s.clean_min_kept, acceptance, hard)

    @staticmethod
    def calibration(scorer, pixels, labels, model_dir: Path, info, s: SamplingConfig):
        """Per class, the real pixels' mean loss, recall and count that cleaning and hard-class steering use, and
        what they were measured on (``clean_calibration``)."""
        if s.clean_calibration == "oob":
            return scorer.oob_class_losses(), "the forest's out-of-bag real pixels"
        from specdm.augment.fidelity import block_calibration, load_positions

        positions = load_positions(model_dir)
        if positions is None:
            raise DataError("the model folder's fidelity pixels have no scene positions (its stage 1 was trained "
                            "before they were kept), so cleaning cannot be calibrated on held-out scene blocks; "
                            "retrain stage 1, or pass --clean-calibration oob", model_dir)
        return (block_calibration(scorer, pixels, labels, positions, info.patch_size),
                f"stored real training pixels of {info.patch_size}-pixel scene blocks (a checkerboard) held out from "
                "a forest trained on the other blocks")

    @property
    def retries(self) -> bool:
        """Whether a drawn pair can fail (and be drawn again)."""
        return self.threshold is not None or self.cleaner is not None or self.acceptance is not None

    def metadata(self, inputs: Inputs, class_names: list[str], s: SamplingConfig) -> dict:
        """The treatments' records in ``metadata.json`` (null when unused)."""
        out = {}
        if self.threshold is not None:
            out["filter"] = {"rule": "a pair whose labelled pixels agree with a random forest of the real training "
                                     f"pixels less often than the threshold is drawn again ({inputs.retry}), "
                                     "and dropped after max_attempts tries",
                             "threshold": self.threshold, "max_attempts": s.max_attempts,
                             "classifier": self.scorer.trained_on}
        if self.painter is not None:
            out["decode"] = self.painter.record(class_names)
        if self.cleaner is not None:
            out["clean"] = {**self.cleaner.record(class_names), "min_kept": self.min_kept,
                            "max_attempts": s.max_attempts, "classifier": self.scorer.trained_on,
                            "pair_rule": f"a pair keeping fewer than {self.min_kept:g} of its labelled pixels is "
                                         f"drawn again ({inputs.retry}), and dropped after max_attempts tries"}
        if self.hard is not None:
            h = self.hard
            rows = {n: {"real_loss": _num(h["loss"][k]), "real_recall": _num(h["recall"][k]),
                        "real_share": float(h["shares"][k]), "target_share": float(h["targets"][k]),
                        "steered": bool(h["steered"][k])} for k, n in enumerate(class_names)}
            how = ("the layouts are drawn toward the targets" if h["by"] == "layouts" else
                   "a drawn sample is kept with probability sum_k share_k x (target_k / real_k) / max_k (target_k / "
                   "real_k), else drawn again (new noise); the last try is kept")
            out["hard_classes"] = {"rule": "target share of each labelled class = real share x (mean loss of the "
                                           f"real-pixel random forest on the class's held-out real pixels, {h['source']}"
                                           " / its mean over classes) ** strength, rescaled to the labelled classes' "
                                           f"real total; {how}",
                                   "strength": s.hard_strength, "steered_by": h["by"],
                                   "targets": [round(float(v), 6) for v in h["targets"]], "classes": rows}
        return out

    def paint(self, images: np.ndarray, masks: np.ndarray, indices, seed: int) -> np.ndarray:
        """Class-aware decoding of a batch in the data's units."""
        x = self.normalized(images)
        x = self.painter(x, masks, painter_rngs(seed, indices))
        return np.moveaxis(self.norm.inverse(np.moveaxis(x, 2, -1)), -1, 2).astype(np.float32)

    def normalized(self, images: np.ndarray) -> np.ndarray:
        return np.moveaxis(self.norm(np.moveaxis(images, 2, -1)), -1, 2)


def _num(v) -> float | None:
    return float(v) if np.isfinite(v) else None


def check_resumable(meta_file: Path, meta: dict, resume: bool, keys, view=lambda m: m) -> None:
    """Before resuming into ``meta_file``'s data set: refuse one whose ``keys`` (of ``view(metadata)``) differ from
    ``meta``'s, i.e. a set made with other settings, inputs or another model."""
    if resume and meta_file.is_file():
        old, new = view(json.loads(meta_file.read_text())), view(meta)
        if any(old.get(k) != new.get(k) for k in keys):
            raise OutputError("holds a data set made with other settings, inputs or another model; use --overwrite",
                              meta_file.parent)


def _draw_unit(pipe, inputs: Inputs, writer: DatasetWriter, pending: list[int], s: SamplingConfig, kw: dict,
               treat: Treatment, log: Path) -> None:
    """Draw samples ``pending``, treat them (:class:`Treatment`) and write them; redraw those that fail (up to
    ``max_attempts`` tries), log every try and drop what never passes."""
    attempts = s.max_attempts if treat.retries else 1
    for attempt in range(attempts):
        # attempt 0 is the plain sample i; later attempts draw new noise (and, if asked, a new layout)
        run_seed = s.seed if attempt == 0 else sample_seed(s.seed, RETRY_STREAM + attempt)
        out = inputs.draw(pipe, pending, run_seed, attempt, kw)
        images, masks = out["images"], out.get("masks")
        if treat.painter is not None:
            images = treat.paint(images, masks, pending, run_seed)
        keep = np.ones(len(pending), bool)
        if treat.retries:
            records = [{"index": int(i), "attempt": attempt} for i in pending]
            failed = [[] for _ in pending]
            x = treat.normalized(images) if treat.scorer is not None else None
            if treat.threshold is not None:
                scores = treat.scorer.sample_scores(x, masks)
                for r, f, sc in zip(records, failed, scores):
                    r["score"] = None if np.isnan(sc) else float(sc)
                    if sc < treat.threshold:  # NaN (no labelled pixel) passes
                        f.append("filter")
            if treat.cleaner is not None:
                cleaned = treat.cleaner(x, masks)
                shares = cleaned.kept_share()
                for j, (r, f) in enumerate(zip(records, failed)):
                    r["kept_share"] = None if np.isnan(shares[j]) else float(shares[j])
                    if shares[j] < treat.min_kept:
                        f.append("clean")
                    r.update(labelled=cleaned.labelled[j].tolist(), agree=cleaned.agree[j].tolist(),
                             relabelled=cleaned.relabelled[j].tolist(), agree_kept=cleaned.agree_kept[j].tolist())
                masks = cleaned.masks
            if treat.acceptance is not None:
                prob = treat.acceptance.probability(out["masks"])
                for j, (i, r, f) in enumerate(zip(pending, records, failed)):
                    r["p_accept"] = float(prob[j])
                    u = np.random.default_rng([s.seed, int(i), attempt, ACCEPT_STREAM]).random()
                    if u >= prob[j] and attempt < attempts - 1:
                        f.append("hard_classes")
            keep = np.array([not f for f in failed])
            with log.open("a") as fh:
                for j, (r, f, k, m) in enumerate(zip(records, failed, keep, out["masks"])):
                    r["kept"] = bool(k)
                    if "score" not in r and treat.threshold is not None:
                        r["score"] = None
                    if f:
                        r["failed"] = f
                    if not k and attempt == attempts - 1:
                        r.update(dropped=True, classes=np.unique(m).tolist())
                    fh.write(json.dumps(r) + "\n")
        for k, (i, im) in enumerate(zip(pending, images)):
            if keep[k]:
                writer.write(i, im, None if masks is None else masks[k])
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
    """What the retries did: tries, redraws, dropped samples, and per class the dropped samples whose layout held
    it; with more than the filter, how many tries failed for each reason."""
    rows, dropped = _filter_log(out_dir)
    if not rows:
        return None
    per_class = np.zeros(len(class_names), int)
    for r in rows:
        if r.get("dropped"):
            per_class[r["classes"]] += 1
    first = [r for r in rows if r["attempt"] == 0]
    out = {"tries": len(rows), "scored_samples": len(first), "failed_first_try": sum(not r["kept"] for r in first),
           "redrawn": sum(1 for r in rows if r["attempt"] > 0), "dropped": len(dropped),
           "dropped_per_class": {class_names[k]: int(v) for k, v in enumerate(per_class) if v}}
    reasons = {}
    for r in rows:
        for why in r.get("failed", []):
            reasons[why] = reasons.get(why, 0) + 1
    if set(reasons) - {"filter"}:
        out["failed_tries_by_reason"] = reasons
    return out


def clean_summary(out_dir: Path, class_names: list[str], ignore_index: int | None, written: set[int]) -> dict | None:
    """Per class, over the written samples (the try that was kept): pixels labelled before cleaning, the share
    relabelled ``ignore_index``, and the forest's agreement with the labels before and after cleaning."""
    rows, _ = _filter_log(out_dir)
    last = {}
    for r in rows:
        if r.get("kept") and "labelled" in r and r["index"] in written:
            last[r["index"]] = r
    if not rows or not any("labelled" in r for r in rows):
        return None
    k = len(class_names)
    lab, agree, rel, agree_kept = np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k)
    for r in last.values():
        lab += np.asarray(r["labelled"], float)[:k]
        agree += np.asarray(r["agree"], float)[:k]
        rel += np.asarray(r["relabelled"], float)[:k]
        agree_kept += np.asarray(r["agree_kept"], float)[:k]
    per = {}
    for j, name in enumerate(class_names):
        if j == ignore_index or lab[j] == 0:
            continue
        kept = lab[j] - rel[j]
        per[name] = {"labelled_pixels": int(lab[j]), "relabelled": int(rel[j]),
                     "relabelled_share": float(rel[j] / lab[j]),
                     "agreement_before": float(agree[j] / lab[j]),
                     "agreement_after": None if kept == 0 else float(agree_kept[j] / kept)}
    first = [r for r in rows if r["attempt"] == 0 and "kept_share" in r]
    return {"samples": len(last), "labelled_pixels": int(lab.sum()), "relabelled_pixels": int(rel.sum()),
            "relabelled_share": float(rel.sum() / lab.sum()) if lab.sum() else None,
            "max_relabelled_share": max((v["relabelled_share"] for v in per.values()), default=None),
            "failed_first_try": sum("clean" in r.get("failed", []) for r in first),
            "dropped": sum(1 for r in rows if r.get("dropped") and "clean" in r.get("failed", [])),
            "per_class": per}


def hard_summary(out_dir: Path) -> dict | None:
    """Hard-class acceptance of joint samples: tries redrawn because of it, and the mean acceptance probability."""
    rows, _ = _filter_log(out_dir)
    probs = [r["p_accept"] for r in rows if "p_accept" in r]
    if not probs:
        return None
    return {"tries": len(probs), "redrawn_for_hard_classes": sum("hard_classes" in r.get("failed", []) for r in rows),
            "mean_acceptance_probability": float(np.mean(probs))}


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
    real_texture = load_real_texture(model_dir) if ds.has_masks else None
    texture = None
    if real_texture is not None:
        from specdm.metrics.texture import TextureStats

        texture = TextureStats(info.num_bands, real_texture.get("edge_threshold"),
                               [tuple(b) for b in real_texture["power_bins"]])
    preview_paths, firsts = [], []  # firsts: (date-1 image, mask) of the samples the comparison figure shows
    n_examples = 0 if examples is None else len(examples[0])
    (out_dir / "previews").mkdir(exist_ok=True)
    for k in range(len(ds)):
        item = ds[k]
        imgs = [norm(im.transpose(1, 2, 0)) for im in item["images"]]
        mask = item.get("mask")
        for im in imgs:
            synth.update(im, np.zeros(im.shape[:2], np.int64) if mask is None else mask)
        if texture is not None:
            texture.update(np.stack([np.moveaxis(im, -1, 0) for im in imgs]))
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
    if summary is not None and meta.get("filter") is not None:
        meta["filter"] = {**meta["filter"], **summary}
    if ds.has_masks and meta.get("clean") is not None:
        meta["clean"] = {**meta["clean"], **(clean_summary(out_dir, info.class_names, info.ignore_index,
                                                            set(ds.indices)) or {})}
    if ds.has_masks and meta.get("hard_classes") is not None:
        meta["hard_classes"] = {**meta["hard_classes"], **(hard_summary(out_dir) or {})}
    meta["complete"] = len(ds) + (summary or {}).get("dropped", 0) == meta["num_samples"]
    meta["synthetic_stats"] = synth.to_dict()
    if texture is not None and ds.has_masks:
        from specdm.metrics.texture import class_spread, compare_texture

        meta["texture"] = compare_texture(real_texture, texture.summary(), class_spread(real.std()),
                                          class_spread(synth.std()), names, info.ignore_index)
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


__all__ = ["FILTER_LOG", "Inputs", "Treatment", "check_resumable", "check_treatments", "clean_summary",
           "dataset_metadata", "filter_summary", "finish_dataset", "hard_summary", "sample_model", "write_set"]
