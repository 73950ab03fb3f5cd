"""Typed, validated configuration: YAML in, checked once here, plain values inward.

Every field has a documented default; ``specdm run indian_pines`` loads the packaged ``configs/indian_pines.yaml``,
a path loads the user's own file. A config is the run config of its ``method``: the shared sections
(:mod:`~specdm.config.sections`) and that method's own, each method's in its file here, validated on their own.

:data:`METHODS` is where a method is registered, the one place: its declaration
(:class:`~specdm.config.method.Method`) names its config, its recipe and its pipeline; the command line, the
recipes, the pipelines and the dataset card look methods up here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel

from specdm.config import controllable as _controllable
from specdm.config import hyperldm as _hyperldm
from specdm.config import layout as _layout
from specdm.config import specdm as _specdm
from specdm.config.controllable import CONDITIONS, ContentEncoderConfig, ControllableConfig, ControllableRunConfig
from specdm.config.hyperldm import HYPERLDM_SCHEDULE, HyperLDMConfig, HyperLDMRunConfig
from specdm.config.layout import LayoutConfig, LayoutRunConfig
from specdm.config.method import Method
from specdm.config.sections import (
    OWN_FILE_OPTIONS,
    AlignConfig,
    AutoencoderConfig,
    BenchmarkOptions,
    DataConfig,
    DiffusionConfig,
    EvaluateOptions,
    RunConfig,
    SamplingConfig,
    SplitConfig,
    Strict,
    SuperResConfig,
    TrainConfig,
)
from specdm.config.sections import validate as validate_section
from specdm.config.specdm import SpecDMRunConfig
from specdm.errors import ConfigError

METHODS: dict[str, Method] = {m.name: m for m in (_specdm.METHOD, _layout.METHOD, _controllable.METHOD,
                                                   _hyperldm.METHOD)}
DEFAULT_METHOD = "specdm"
Config = RunConfig  # the type of any method's config (each method's class derives from it)


def method_of(name: str, source=None) -> Method:
    """The declaration of method ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}", source)
    return METHODS[name]


def validate(model: type[BaseModel], raw: dict, source=None):
    """``model.model_validate(raw)``, or one :class:`ConfigError` listing every bad field. For :class:`RunConfig`
    (:data:`Config`) the class is that of ``raw``'s method; a section of another method is named as such."""
    if model is not RunConfig:
        return validate_section(model, raw, source)
    name = raw.get("method", DEFAULT_METHOD) if isinstance(raw, dict) else DEFAULT_METHOD
    if name not in METHODS:
        raise ConfigError(f"invalid configuration:\n  method: '{name}' is not one of {', '.join(METHODS)}", source)
    target = METHODS[name].config
    foreign = []
    for key, value in raw.items():
        if key not in target.model_fields:
            owners = [m.name for m in METHODS.values() if key in m.config.model_fields]
            if owners:
                foreign.append(f"  {key}: belongs to {_methods(owners)}; this config's method is {name}")
        elif isinstance(value, dict):
            mine = _section(target, key)
            for sub in value:
                owners = [m.name for m in METHODS.values() if sub in _section(m.config, key, {})]
                if mine is not None and sub not in mine.model_fields and owners:
                    foreign.append(f"  {key}.{sub}: a setting of the {key} of {_methods(owners)}; method {name}'s "
                                   "has none")
    if foreign:
        raise ConfigError("invalid configuration:\n" + "\n".join(foreign), source)
    return validate_section(target, {**raw, "method": name}, source)


def _methods(names: list[str]) -> str:
    return f"method {names[0]}" if len(names) == 1 else f"methods {', '.join(names[:-1])} and {names[-1]}"


def _section(config: type[RunConfig], key: str, missing=None):
    """The section class of ``config``'s field ``key`` (``missing`` when it has no such section)."""
    field = config.model_fields.get(key)
    kind = getattr(field, "annotation", None)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return kind if missing is None else kind.model_fields
    return missing


def as_method(cfg: RunConfig, name: str) -> RunConfig:
    """``cfg`` as a config of method ``name``: the sections that method has, validated by its class (e.g. a
    SpecDM generator trained from another method's config)."""
    target = method_of(name).config
    if type(cfg) is target:
        return cfg
    raw = cfg.model_dump(mode="json")
    return validate(RunConfig, {k: v for k, v in raw.items() if k in target.model_fields} | {"method": name})


def packaged_configs() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("specdm.configs").iterdir() if p.name.endswith(".yaml"))


def load_config(name_or_path: str, overrides: list[str] | None = None) -> RunConfig:
    """Load a packaged config by name or a YAML file by path, apply ``key.sub=value`` overrides, validate."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError("config file not found", path)
        text = path.read_text()
    elif name_or_path in packaged_configs():
        text = resources.files("specdm.configs").joinpath(f"{name_or_path}.yaml").read_text()
    else:
        raise ConfigError(f"'{name_or_path}' is neither a YAML file nor a packaged config "
                          f"({', '.join(packaged_configs())})")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"is not valid YAML: {e}", name_or_path) from None
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override '{item}' must look like section.key=value")
        node = raw
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return validate(RunConfig, raw, name_or_path)


__all__ = [
    "CONDITIONS", "DEFAULT_METHOD", "HYPERLDM_SCHEDULE", "METHODS", "OWN_FILE_OPTIONS", "AlignConfig",
    "AutoencoderConfig", "BenchmarkOptions", "Config", "ContentEncoderConfig", "ControllableConfig",
    "ControllableRunConfig", "DataConfig", "DiffusionConfig", "EvaluateOptions", "HyperLDMConfig",
    "HyperLDMRunConfig", "LayoutConfig", "LayoutRunConfig", "Method", "RunConfig", "SamplingConfig",
    "SpecDMRunConfig", "SplitConfig", "Strict", "SuperResConfig", "TrainConfig", "as_method", "load_config", "method_of",
    "packaged_configs", "validate",
]
