"""Condition encoders trained by specdm, one file per family."""

from specdm.models.encoders.content import ContentEncoder

__all__ = ["ContentEncoder"]
