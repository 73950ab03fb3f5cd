"""The one run skeleton: what ``specdm run`` does for every method, from a validated config to a data set + card.

A method's recipe (``recipes/<method>.py``, named by its declaration in :data:`specdm.config.METHODS`) is a
:class:`Recipe`: how its training data is prepared and checked, its :class:`Stage` s (each a trainer with its
checkpoint folder and, for stage 1, the reconstruction report), its input kind and what ``specdm run`` samples
for. The skeleton does the rest, the same way for every method: it refuses bad inputs before the run folder
exists, claims the folder on the main process and writes ``config.yaml`` once, prints the data line and the
estimate (a dry run of the method's own stages, :func:`~specdm.recipes.estimate.dry_run_estimate`) before the
first training step, runs each stage (seeded right before its network is built, its loop settings from its config
section, resumable, saved and reported on the main process) and writes the data set with the one writer
(:func:`~specdm.recipes.sampling.write_set`).

A run folder holds::

    config.yaml          the resolved configuration
    model/               the self-describing model folder (see specdm.pipelines.base)
    checkpoints/         resumable training state of every stage (one folder each)
    synthetic/           the synthetic data set (see specdm.output.dataset)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
import yaml
from accelerate import PartialState
from accelerate.utils import set_seed

from specdm.config import RunConfig
from specdm.data.datamodule import prepare_data
from specdm.output.dataset import check_format
from specdm.recipes.estimate import dry_run_estimate
from specdm.recipes.run_dir import loop_config, prepare_run_dir
from specdm.recipes.sampling import Inputs, check_treatments, write_set
from specdm.training.autoencoder import reconstruction_report

QUALITY_FILE = "stage1_quality.json"


@dataclass
class Run:
    """What every hook of a stage sees: the config, the run folder, the prepared data, whether it resumes."""

    cfg: RunConfig
    run_dir: Path
    data: object
    resume: bool = False
    model_dir: Path | None = None  # default: run_dir / "model"

    def __post_init__(self):
        self.model_dir = Path(self.model_dir) if self.model_dir is not None else Path(self.run_dir) / "model"


class Stage:
    """One trainer of a method's run, as hooks (torchgeo's ``BaseTask`` for specdm's stages). The skeleton calls,
    in order: :meth:`trained` (resume: skip), :meth:`prepare` (what the steps train on), ``set_seed(train.seed)``,
    :meth:`build` (the network), :meth:`fit` with the loop of :meth:`section`'s steps, batch size, learning rate
    (and EMA) in ``checkpoints/<checkpoint>``, then on the main process :meth:`save` and the reconstruction report
    of :meth:`quality`'s window sets, and waits for every process."""

    def enabled(self, run: Run) -> bool:
        return True

    def section(self, cfg: RunConfig):
        """The config section with the stage's ``steps``, ``batch_size``, ``lr`` (and ``ema_decay``)."""
        raise NotImplementedError

    def checkpoint(self, cfg: RunConfig) -> str:
        """The stage's checkpoint folder under ``checkpoints/``."""
        raise NotImplementedError

    def trained(self, run: Run) -> bool:
        """Whether the model folder holds this stage's result already (a resumed run skips the stage)."""
        raise NotImplementedError

    def prepare(self, run: Run):
        """What the stage trains on (latents, tables, the library ...), before the seed is set."""
        return None

    def build(self, run: Run, prepared) -> torch.nn.Module:
        """The untrained network(s), right after ``set_seed(train.seed)``."""
        raise NotImplementedError

    def fit(self, run: Run, net: torch.nn.Module, prepared, loop, ckpt_dir: Path) -> torch.nn.Module:
        """Train ``net`` (the trainer of :mod:`specdm.training`)."""
        raise NotImplementedError

    def save(self, run: Run, net: torch.nn.Module, prepared) -> None:
        """Write the stage's part of the model folder (main process)."""

    def quality(self, run: Run, net: torch.nn.Module, prepared) -> dict | None:
        """Stage 1: ``{name: (reconstruct, count) or None}``, the window sets the reconstruction report scores
        (:func:`~specdm.training.autoencoder.reconstruction_report`); None: no report."""
        return None


@dataclass(frozen=True)
class Recipe:
    """A method's part of the run: the rest is the skeleton's."""

    stages: tuple[Stage, ...]  # the first is stage 1 (`specdm train-autoencoder`), the others stage 2
    inputs: type[Inputs]  # the input kind its models are sampled for (`specdm sample`'s options)
    run_inputs: Callable[[RunConfig, object], Inputs]  # what `specdm run` samples for
    prepare: Callable[[RunConfig], object] = field(default=lambda cfg: prepare_data(cfg.data))
    check: Callable[[RunConfig, object], None] = field(default=lambda cfg, data: None)  # refusals, before the folder


def run(cfg: RunConfig, run_dir: Path, resume: bool = False, overwrite: bool = False, command: str = "") -> Path:
    """Train every stage of ``cfg``'s method and write the synthetic data set; returns the dataset card's path."""
    from specdm.recipes import recipe_of

    recipe = recipe_of(cfg.method)
    run_dir = Path(run_dir)
    t0 = time.time()
    state = PartialState()
    prepare_run_dir(run_dir, resume, overwrite, create=False)  # refuse early ...
    data = recipe.prepare(cfg)
    recipe.check(cfg, data)
    inputs = recipe.run_inputs(cfg, data)
    s = cfg.sampling
    check_format(s.image_format, s.mask_format, data.reference.num_classes if inputs.has_masks else None,
                 None if inputs.any_size else cfg.data.patch_size)
    check_treatments(s, cfg.method, inputs.has_masks, data.reference.ignore_index if inputs.has_masks else None)
    inputs.check_settings(s)
    claim(cfg, run_dir, resume, overwrite)  # ... and create the folder once the inputs passed their checks
    state.print(data.summary())

    def sample(model_dir: Path, out_dir: Path, n: int, resume: bool = False) -> Path:
        scaled, settings = inputs.scaled(n, s)
        return write_set(model_dir, out_dir, scaled, settings, resume=resume, command=command)

    if not resume:
        total, batch = inputs.estimate_units(s)
        dry_run_estimate(cfg, data, stage_functions(recipe.stages), sample, total, batch, started=t0)
    for stage in recipe.stages:
        train_stage(stage, cfg, run_dir, resume, data)
    card = sample(run_dir / "model", run_dir / "synthetic", inputs.estimate_units(s)[0], resume)
    state.print(f"done in {time.time() - t0:.0f} s")
    return card


def train(cfg: RunConfig, run_dir: Path, part: str, resume: bool = False, overwrite: bool = False,
          data=None) -> None:
    """``specdm train-autoencoder`` (``part`` "stage1": the first stage) or ``train-diffusion`` ("stage2": the
    others, on stage 1 in the same run folder)."""
    from specdm.recipes import recipe_of

    recipe = recipe_of(cfg.method)
    stages = recipe.stages[:1] if part == "stage1" else recipe.stages[1:]
    if data is None:
        data = recipe.prepare(cfg)
        recipe.check(cfg, data)
    if part == "stage1":
        claim(cfg, run_dir, resume, overwrite)
    for stage in stages:
        train_stage(stage, cfg, run_dir, resume, data)


def claim(cfg: RunConfig, run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Create (or continue) the run folder and write ``config.yaml``, on the main process; every process waits."""
    state = PartialState()
    if state.is_main_process:
        prepare_run_dir(run_dir, resume, overwrite)
        (Path(run_dir) / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    state.wait_for_everyone()


def train_stage(stage: Stage, cfg: RunConfig, run_dir: Path, resume: bool = False, data=None):
    """Run one stage's hooks (see :class:`Stage`)."""
    run = Run(cfg, Path(run_dir), data, resume)
    if not stage.enabled(run) or (resume and stage.trained(run)):
        return
    prepared = stage.prepare(run)
    set_seed(cfg.train.seed)
    net = stage.build(run, prepared)
    sec = stage.section(cfg)
    loop = loop_config(cfg, sec.steps, sec.batch_size, sec.lr, getattr(sec, "ema_decay", None))
    net = stage.fit(run, net, prepared, loop, run.run_dir / "checkpoints" / stage.checkpoint(cfg))
    state = PartialState()
    if state.is_main_process:
        stage.save(run, net, prepared)
        record_super_resolved(run)
        sets = stage.quality(run, net, prepared)
        if sets is not None:
            write_quality(sets, run.model_dir)
    state.wait_for_everyone()


def record_super_resolved(run: Run) -> None:
    """When the training windows include super-resolved scenes (``data.super_resolved``), say so in the model folder's
    ``specdm.json`` (``source.super_resolved``): every data set sampled from it carries the record in its
    ``metadata.json`` and card."""
    record = getattr(run.data, "super_resolved", None)
    if record is None or not (run.model_dir / "specdm.json").is_file():
        return
    from specdm.models.info import ModelInfo

    info = ModelInfo.load(run.model_dir)
    info.source = {**info.source, "super_resolved": record}
    info.save(run.model_dir)


def write_quality(sets: dict, model_dir: Path) -> dict:
    """The reconstruction report of every window set (``name -> (reconstruct, count) or None``) ->
    ``model/stage1_quality.json``, and one line on the first held-out set (else the training windows)."""
    report = {name: None if s is None else reconstruction_report(*s) for name, s in sets.items()}
    (Path(model_dir) / QUALITY_FILE).write_text(json.dumps(report, indent=1))
    held = next((k for k, r in report.items() if k.startswith("held_out") and r is not None), None)
    r = report[held or "train"]
    what = "held-out windows" if held in (None, "held_out") else f"held-out windows of {held.split('/', 1)[-1]}"
    line = (f"stage 1 reconstructs {what if held else 'training windows'} with PSNR {r['psnr']:.1f} dB, "
            f"SAM {r['sam_rad']:.3f} rad, border ring {r['edges']['ring']:.2f}x the interior error")
    if r["mask_agreement"] is not None:
        line += f", mask agreement {r['mask_agreement']:.3f}"
    print(line, flush=True)
    return report


def stage_functions(stages: Sequence[Stage]) -> list[Callable]:
    """The stages as ``stage(cfg, run_dir, resume, data)`` functions (what the estimate's dry run calls)."""
    return [partial(train_stage, st) for st in stages]
