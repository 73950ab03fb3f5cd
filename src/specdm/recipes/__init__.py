"""Recipes: what ``specdm run`` does for each method, from a validated config to a data set.

The run skeleton (:mod:`~specdm.recipes.skeleton`) and the writer (:mod:`~specdm.recipes.sampling`) are shared by
every method; a method's module (``recipes/<method>.py``, named by its declaration in
:data:`specdm.config.METHODS`) holds its :class:`~specdm.recipes.skeleton.Recipe`: its stages, its input kind and
what ``specdm run`` samples for. The run folder's rules: :mod:`~specdm.recipes.run_dir`.
"""

from __future__ import annotations

import importlib

from specdm.config import METHODS, method_of
from specdm.recipes.skeleton import Recipe, run, train

__all__ = ["Recipe", "input_kinds", "recipe_of", "run", "train"]


def recipe_of(method: str, source=None) -> Recipe:
    """The recipe of method ``method`` (its module's ``RECIPE``); an unknown name is a :class:`ConfigError`."""
    return importlib.import_module(method_of(method, source).recipe).RECIPE


def input_kinds() -> list[type]:
    """The input kind of every method, in the order of :data:`~specdm.config.METHODS`."""
    return [recipe_of(name).inputs for name in METHODS]
