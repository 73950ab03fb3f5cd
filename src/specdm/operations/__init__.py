"""Operations on an existing model folder: ``specdm apply OPERATION MODEL_DIR [--config CONFIG] [--set KEY=VALUE]``.

A recipe makes a model folder from a config (``specdm run``, keyed by the config's method); an operation starts from
a trained folder and makes something new from it: a report, a data set, a derived model (a few-step sampler
distilled from it, super-resolved training scenes ...). Each is one file here, an :class:`Operation` with typed
options, registered in :data:`OPERATIONS`; it may use everything a recipe uses (the run skeleton's stages, the
writer), and writes into its own output folder, never into the model folder.
"""

from __future__ import annotations

from pathlib import Path

from specdm.config import RunConfig, validate
from specdm.errors import ConfigError
from specdm.models.info import ModelInfo
from specdm.operations.base import MARKER, Operation
from specdm.operations.stage1_report import Stage1Report
from specdm.operations.super_resolve import SuperResolve
from specdm.output.dataset import claim_folder

OPERATIONS: dict[str, Operation] = {op.name: op for op in (Stage1Report(), SuperResolve())}


def apply(name: str, model_dir: Path, out_dir: Path, overrides: dict | None = None, cfg: RunConfig | None = None,
          overwrite: bool = False, command: str = "") -> Path:
    """Run operation ``name`` on ``model_dir`` into ``out_dir`` with its options ``overrides`` (validated by the
    operation's :attr:`~Operation.Options`); ``cfg``: the config whose data it reads, when it needs one."""
    if name not in OPERATIONS:
        raise ConfigError(f"unknown operation '{name}'; choose one of {', '.join(OPERATIONS)}")
    op = OPERATIONS[name]
    info = ModelInfo.load(Path(model_dir))
    if op.methods is not None and info.method not in op.methods:
        raise ConfigError(f"operation {name} takes models of method {' or '.join(op.methods)}; this one was made by "
                          f"{info.method}", model_dir)
    if op.needs_config and cfg is None:
        raise ConfigError(f"operation {name} reads the real data of a config; give --config CONFIG")
    if cfg is not None and op.same_method and cfg.method != info.method:
        raise ConfigError(f"the config is for method {cfg.method}, the model was made by {info.method}", model_dir)
    options = validate(op.Options, overrides or {}, f"specdm apply {name}")
    out_dir = Path(out_dir)
    claim_folder(out_dir, (out_dir / MARKER).is_file(), False, overwrite, "operation output")
    (out_dir / MARKER).write_text(name)
    return op.run(Path(model_dir), out_dir, options, info, cfg, command)


__all__ = ["OPERATIONS", "Operation", "apply"]
