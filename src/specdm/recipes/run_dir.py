"""The run folder: ``config.yaml``, ``model/``, ``checkpoints/``, ``synthetic/``; claimed once, never clobbered."""

from __future__ import annotations

from pathlib import Path

from specdm import __version__
from specdm.output.dataset import claim_folder

RUN_MARKER = ".specdm-run"


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool, create: bool = True) -> None:
    """Create ``run_dir``; an existing one is only continued (``resume``) or replaced (``overwrite``,
    and only if specdm made it). ``create=False`` only checks, so that a run whose input fails
    its checks leaves no folder behind that would block the corrected re-run."""
    claim_folder(run_dir, (Path(run_dir) / RUN_MARKER).is_file(), resume, overwrite, "run", create)
    if create:
        (Path(run_dir) / RUN_MARKER).write_text(__version__)
