"""``specdm apply super-resolve MODEL_DIR --config CONFIG --out DIR``: a trained super-resolver (``specdm superres``)
applied to a config's scenes (its training part, or whole scenes with ``--set regions=all``), written as a data set
of super-resolved scenes in ``OUT/scenes`` for ``data.super_resolved``. The config may be of any method and any
scene with the model's bands; another band count is refused, naming the model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from specdm.config import Strict
from specdm.errors import DataError
from specdm.operations.base import Operation
from specdm.schedulers import DEFAULT_SAMPLER, SAMPLERS


class SuperResolveOptions(Strict):
    scales: list[int] | None = None  # default: the scales the model was trained for
    rgb_stage: Literal["diffusion", "bicubic"] = "diffusion"  # bicubic: the guided stage alone
    regions: Literal["train", "all"] = "train"  # all: whole scenes (never use them beside a test on that scene)
    seed: int = 0
    sampler: Literal[SAMPLERS] = DEFAULT_SAMPLER
    num_inference_steps: int = Field(20, ge=1)


class SuperResolve(Operation):
    name = "super-resolve"
    summary = "super-resolved copies of a config's training scenes by a model of specdm superres (data.super_resolved)"
    Options = SuperResolveOptions
    needs_config = True
    methods = ("superres",)
    same_method = False  # any config whose scenes have the model's bands

    def run(self, model_dir, out_dir, options, info, cfg, command) -> Path:
        from specdm.data.datamodule import prepare_data
        from specdm.recipes.superres import SCENES, write_scenes

        data = prepare_data(cfg.data.model_copy(update={"super_resolved": []}))
        ref = data.reference
        if ref.num_bands != info.num_bands:
            raise DataError(f"the super-resolver was trained on {info.num_bands} bands; the config's scene "
                            f"'{ref.name}' has {ref.num_bands}", model_dir)
        return write_scenes(model_dir, Path(out_dir) / SCENES, data, options.scales, options.seed, options.rgb_stage,
                            options.sampler, options.num_inference_steps, command=command, regions=options.regions)
