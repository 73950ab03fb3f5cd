"""``specdm benchmark CONFIG``: the protocol over spatial folds and label settings, generators included.

For every label setting (share of the training part's labels kept) and every fold of the fold design:

1. the default generator (a joint SpecDM model, ``--generator specdm``) is trained on that fold's training
   part with that setting's labels only (stage 1 sees the training part's windows), in
   ``OUT/generators/fold<i>-<setting>/``, resumable, and samples its synthetic set there;
2. the single-split benchmark (:func:`specdm.evaluation.benchmark.run.benchmark`) trains the arms ``real``,
   ``classical`` (the best classical recipe chosen per model on a validation part of the training part),
   ``self_training`` and ``classical+specdm x1`` with paired seeds and scores them on the fold's test part;
3. the cells are pooled (:func:`specdm.evaluation.benchmark.protocol.combine`) into ``OUT/benchmark.json``
   and ``OUT/report.md`` after every cell.

The primary comparison's model runs first over every cell (label settings in order, then folds), the other
models after it, so the primary verdict is complete as early as it can be.

The protocol (design, cells, models, arms, seeds, steps, primary comparison) is written to
``OUT/protocol.json`` before the first training. ``--folds`` runs a subset of the folds (two processes with
``--threads 1`` each can share the cores; every cell is its own folder), ``--resume`` continues everything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from specdm.config import Config
from specdm.data import folds as fold_designs
from specdm.errors import ConfigError
from specdm.evaluation.benchmark.protocol import Cell, combine, label_setting, parse_steps, primary_of, write_protocol
from specdm.evaluation.benchmark.report import write_protocol_report
from specdm.evaluation.benchmark.run import benchmark
from specdm.evaluation.records import log

__all__ = ["DEFAULT_ARMS", "GENERATORS", "design_for", "run_protocol"]

GENERATORS = ("specdm", "none")
DEFAULT_ARMS = ("real", "classical", "self_training")  # + classical+<generator> with a generator


def design_for(cfg: Config, design: str, out_dir: Path) -> str:
    """The fold design the protocol uses: a packaged name or file as given, or for ``auto`` the packaged design
    named like the config's data set when there is one, else one computed from the label map and written to
    ``OUT/design.json`` (once: a rerun reads it back)."""
    if design != "auto":
        fold_designs.load_design(design)  # a missing or broken file stops here, naming it
        return design
    name = cfg.data.dataset
    if name and name in fold_designs.packaged_designs():
        return name
    path = Path(out_dir) / "design.json"
    if not path.is_file():
        from specdm.data.datamodule import load_data
        from specdm.data.splits import compute_design

        log(f"computing a fold design from the label map of config '{cfg.name}' (saved to {path})")
        scenes = load_data(cfg.data)
        d = compute_design(scenes, cfg.data.patch_size, name=cfg.name)
        d["source"] = str(path)
        fold_designs.save_design(d, path)
    return str(path)


def _cell_config(cfg: Config, design: str, fold: int, share: float) -> Config:
    data = cfg.data.model_copy(update={"split": cfg.data.split.model_validate(
        {"kind": "folds", "design": design, "fold": fold}), "labels_keep": share})
    return cfg.model_copy(update={"data": data})


def _complete(path: Path) -> bool:
    """Whether a cell's ``benchmark.json`` holds every planned run (the protocol's settings are checked by
    ``protocol.json`` before any cell runs)."""
    try:
        return bool(json.loads(path.read_text()).get("complete"))
    except (OSError, ValueError, AttributeError):
        return False


def _generator(cfg: Config, cell: Cell, out_dir: Path, kind: str, resume: bool) -> Path:
    """The synthetic set of the cell's generator, trained (or resumed) on the cell's data."""
    from specdm.output.dataset import SyntheticDataset
    from specdm.recipes import specdm as specdm_recipe

    run_dir = Path(out_dir) / "generators" / f"fold{cell.fold}-{cell.dir.name}"
    synthetic = run_dir / "synthetic"
    if (synthetic / "metadata.json").is_file():
        try:
            if SyntheticDataset(synthetic).meta.get("complete"):
                return synthetic
        except Exception:  # noqa: BLE001 - an unreadable set is resumed below
            pass
    log(f"training the {kind} generator of fold {cell.fold}, labels {cell.setting} in {run_dir}")
    gen_cfg = cfg.model_copy(update={"method": "specdm"})
    specdm_recipe.run(gen_cfg, run_dir, resume=run_dir.exists(), command=f"specdm benchmark (generator of {cell})")
    return synthetic


def run_protocol(
    cfg: Config,
    out_dir: Path,
    design: str = "auto",
    folds: Sequence[int] | None = None,
    labels: Sequence[float] = (0.05, 0.2, 1.0),
    generator: str = "specdm",
    models: Sequence[str] | None = None,
    seeds: int = 3,
    steps: int | str | dict[str, dict[str, int]] = 2000,
    batch_size: int = 16,
    lr: float = 1e-3,
    lr_schedule: str = "cosine",
    classical: str = "auto",
    primary: dict | None = None,
    self_training_threshold: float = 0.9,
    speed: str = "fast",
    resume: bool = False,
    command: str = "",
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Run (or continue) the protocol's cells in ``folds`` (default all) and pool every cell there is. ``steps``:
    training steps of every task model, or per model and label setting (:func:`parse_steps`'s text or result)."""
    from specdm.data.datamodule import load_data
    from specdm.evaluation.benchmark.plan import DEFAULT_MODELS

    if generator not in GENERATORS:
        raise ConfigError(f"unknown generator {generator!r}", hint=f"choose from {', '.join(GENERATORS)}")
    t0 = time.time()
    out_dir = Path(out_dir)
    design = design_for(cfg, design, out_dir)
    d = fold_designs.load_design(design)
    k = int(d["k"])
    folds = list(range(k)) if folds is None else list(folds)
    bad = [f for f in folds if not 0 <= f < k]
    if bad:
        raise ConfigError(f"fold(s) {bad} are not in the design ({k} folds: 0..{k - 1})", design)
    stacked = f"classical+{generator} x1" if generator != "none" else None
    arms = list(DEFAULT_ARMS) + ([f"classical+{generator}"] if stacked else [])
    ref = load_data(cfg.data)[0]
    task = ref.task
    if task == "change":  # the self-training control is a segmentation protocol's (PROTOCOL.md; OSCD: no)
        arms = [a for a in arms if a != "self_training"]
    models = list(models or DEFAULT_MODELS[task])
    if not isinstance(steps, dict):
        steps = parse_steps(steps, models, labels)
    primary = primary or primary_of(models, labels, stacked)
    protocol = write_protocol(out_dir, {
        "config": cfg.name, "design": design, "design_sha256": d.get("sha256"), "folds": list(range(k)),
        "labels": [float(s) for s in labels], "settings": [label_setting(s) for s in labels], "models": models,
        "arms": arms, "generator": generator, "seeds": seeds, "steps": steps, "batch_size": batch_size, "lr": lr,
        "lr_schedule": lr_schedule, "classical": classical, "self_training_threshold": self_training_threshold,
        "speed": speed, "primary": primary, "command": command})
    cells = [Cell(out_dir, f, s) for s in labels for f in range(k)]
    todo = [c for c in cells if c.fold in folds]
    log(f"benchmark protocol on config '{cfg.name}': design {design} ({k} folds), label settings "
        f"{', '.join(label_setting(s) for s in labels)}, {len(todo)} cell(s) here, models {', '.join(models)}, "
        f"arms {', '.join(arms)}, {seeds} seed(s) each; output {out_dir}")
    result = None
    # the primary comparison's model first, over every cell (its verdict is complete first), then the others
    order = sorted(models, key=lambda m: not primary or m != primary["model"])
    for model, cell in ((m, c) for m in order for c in todo):
        if _complete(cell.dir / model / "benchmark.json"):  # kept (also restored from a copy, without generator)
            continue
        ccfg = _cell_config(cfg, design, cell.fold, cell.share)
        synthetic = {}
        if stacked:  # trained once per cell; later models find it complete
            synthetic[generator] = _generator(ccfg, cell, out_dir, generator, resume)
        log(f"cell fold {cell.fold}, labels {cell.setting}, {model} ({steps[model][cell.setting]} steps): "
            f"{cell.dir / model}")
        benchmark(ccfg, synthetic, cell.dir / model, seeds=seeds, steps=steps[model][cell.setting],
                  batch_size=batch_size, lr=lr, lr_schedule=lr_schedule, models=[model], amounts=[1], limited=0.0,
                  arms=arms, resume=True, command=command, device=device, progress=progress,
                  classical=classical, self_training_threshold=self_training_threshold, speed=speed)
        result = combine(out_dir, cells, protocol, command)
        write_protocol_report(result, out_dir)
    result = combine(out_dir, cells, protocol, command)
    result["output"] = write_protocol_report(result, out_dir)
    log(f"protocol: {sum(c.get('status') == 'complete' for c in result['cells'])} of {len(cells)} cells complete "
        f"({time.time() - t0:.0f} s in this call)")
    return result
