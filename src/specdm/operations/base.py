"""What every operation on a model folder is (:class:`Operation`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from specdm.config import RunConfig, Strict
from specdm.models.info import ModelInfo

MARKER = ".specdm-operation"


class Operation:
    """One operation on a trained model folder. Subclasses set :attr:`name`, :attr:`summary`, :attr:`Options` (the
    typed options, given as ``--set key=value``), :attr:`needs_config` (it reads a config's real data) and
    :attr:`methods` (the methods whose folders it takes; None: any; ``superres``: a super-resolver of ``specdm
    superres``), :attr:`same_method` (whether the config must be of the model's method), and implement :meth:`run`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Options: ClassVar[type[Strict]] = Strict
    needs_config: ClassVar[bool] = False
    methods: ClassVar[tuple[str, ...] | None] = None
    same_method: ClassVar[bool] = True  # the config (--config) must be of the model's method

    def run(self, model_dir: Path, out_dir: Path, options, info: ModelInfo, cfg: RunConfig | None,
            command: str) -> Path:
        """Do it; returns the main file written."""
        raise NotImplementedError
