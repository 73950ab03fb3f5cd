"""Inference pipelines, one file per method, one ``__call__`` each; outputs in the data's own units."""

from __future__ import annotations

from pathlib import Path

from specdm.errors import CheckpointError
from specdm.models.info import ModelInfo
from specdm.pipelines.base import SpecdmPipeline, sample_seed
from specdm.pipelines.controllable import ControllablePipeline
from specdm.pipelines.hyperldm import HyperLDMPipeline
from specdm.pipelines.layout import LayoutPipeline
from specdm.pipelines.specdm import SpecDMPipeline

PIPELINES: dict[str, type[SpecdmPipeline]] = {"specdm": SpecDMPipeline, "layout": LayoutPipeline,
                                               "controllable": ControllablePipeline, "hyperldm": HyperLDMPipeline}


def load_pipeline(model_dir: str | Path, device="cpu") -> SpecdmPipeline:
    """The pipeline of the method that trained ``model_dir`` (``specdm.json``'s ``method``)."""
    info = ModelInfo.load(Path(model_dir))
    if info.method not in PIPELINES:
        raise CheckpointError(f"the model was made by method '{info.method}', which this specdm does not know "
                              f"({', '.join(PIPELINES)})", model_dir)
    return PIPELINES[info.method].from_pretrained(model_dir, device)


__all__ = ["PIPELINES", "ControllablePipeline", "HyperLDMPipeline", "LayoutPipeline", "SpecDMPipeline", "SpecdmPipeline",
           "load_pipeline", "sample_seed"]
