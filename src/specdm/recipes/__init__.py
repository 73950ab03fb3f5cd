"""Recipes: what ``specdm run`` does for each method, from a validated config to a data set.

One module per method (``config.method``); each exposes ``run(cfg, run_dir, resume,
overwrite, command)`` and its own stage commands. Sampling a trained model folder and
the run folder's rules are shared (:mod:`specdm.recipes.sampling`, :mod:`specdm.recipes.run_dir`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from specdm.errors import ConfigError

RECIPES = {"specdm": "specdm.recipes.specdm", "layout": "specdm.recipes.layout",
           "controllable": "specdm.recipes.controllable", "hyperldm": "specdm.recipes.hyperldm"}


def get_recipe(method: str) -> ModuleType:
    if method not in RECIPES:
        raise ConfigError(f"unknown method '{method}'; choose one of {', '.join(RECIPES)}")
    return importlib.import_module(RECIPES[method])
