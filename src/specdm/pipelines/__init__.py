"""Inference pipelines, one file per method, one ``__call__`` each; outputs in the data's own units."""

from __future__ import annotations

import importlib
from pathlib import Path

from specdm.errors import CheckpointError
from specdm.models.info import ModelInfo
from specdm.pipelines.base import SpecdmPipeline, sample_seed
from specdm.pipelines.controllable import ControllablePipeline
from specdm.pipelines.hyperldm import HyperLDMPipeline
from specdm.pipelines.layout import LayoutPipeline
from specdm.pipelines.specdm import SpecDMPipeline


def pipeline_class(method: str, model_dir=None) -> type[SpecdmPipeline]:
    """The pipeline class that method ``method`` declares (:data:`specdm.config.METHODS`)."""
    from specdm.config import METHODS

    if method not in METHODS:
        raise CheckpointError(f"the model was made by method '{method}', which this specdm does not know "
                              f"({', '.join(METHODS)})", model_dir)
    module, name = METHODS[method].pipeline.split(":")
    return getattr(importlib.import_module(module), name)


def load_pipeline(model_dir: str | Path, device="cpu") -> SpecdmPipeline:
    """The pipeline of the method that trained ``model_dir`` (``specdm.json``'s ``method``)."""
    info = ModelInfo.load(Path(model_dir))
    return pipeline_class(info.method, model_dir).from_pretrained(model_dir, device)


__all__ = ["ControllablePipeline", "HyperLDMPipeline", "LayoutPipeline", "SpecDMPipeline", "SpecdmPipeline",
           "load_pipeline", "pipeline_class", "sample_seed"]
