"""Inference pipelines (one ``__call__`` each)."""

from specdm.pipelines.synthesis import SpecDMPipeline, sample_seed

__all__ = ["SpecDMPipeline", "sample_seed"]
