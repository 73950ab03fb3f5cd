"""What a synthesis method is: declared once, looked up by name (:data:`specdm.config.METHODS`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from specdm.config.sections import RunConfig


def no_card_section(meta: dict) -> list[str]:
    return []


@dataclass(frozen=True)
class Method:
    """One synthesis method. Its parts above the config stage are named, not imported (this stage may not import
    them), and resolved where they live: ``recipe`` by :func:`specdm.recipes.recipe_of` (its stages, what ``specdm
    run`` samples for and the input kind ``specdm sample`` takes), ``pipeline`` by
    :func:`specdm.pipelines.load_pipeline`."""

    name: str
    config: type[RunConfig]  # the typed config: the shared sections and the method's own, validated on their own
    summary: str  # what the method makes, one sentence (dataset cards)
    recipe: str  # module path of the recipe (specdm.recipes.<name>)
    pipeline: str  # "module:Class" of the pipeline (specdm.pipelines.<name>)
    card: Callable[[dict], list[str]] = field(default=no_card_section)  # the card's "Model" lines, from metadata.json
