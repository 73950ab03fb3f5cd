"""``specdm apply stage1-report MODEL_DIR --config CONFIG``: stage 1's reconstruction report of a trained model
folder on a config's windows (training and held-out), for any method: the method's own stage-1 hooks (its
reconstruction function) and the report every run writes (``model/stage1_quality.json``), here into ``OUT``."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from specdm.config import Strict
from specdm.operations.base import Operation
from specdm.recipes import recipe_of
from specdm.recipes.skeleton import QUALITY_FILE, Run


class Stage1ReportOptions(Strict):
    max_windows: int = Field(64, ge=1)  # windows scored per set, evenly spaced over it


class Stage1Report(Operation):
    name = "stage1-report"
    summary = "stage 1's reconstruction report of the model on a config's training and held-out windows"
    Options = Stage1ReportOptions
    needs_config = True

    def run(self, model_dir, out_dir, options, info, cfg, command) -> Path:
        from specdm.training.autoencoder import reconstruction_report

        recipe = recipe_of(info.method)
        stage = recipe.stages[0]
        data = recipe.prepare(cfg)
        run = Run(cfg, Path(model_dir).parent, data, model_dir=Path(model_dir))
        net = stage.model_class.from_pretrained(Path(model_dir) / "autoencoder")
        sets = stage.quality(run, net, stage.prepare(run))
        report = {name: None if s is None else reconstruction_report(*s, max_windows=options.max_windows)
                  for name, s in sets.items()}
        path = Path(out_dir) / QUALITY_FILE
        path.write_text(json.dumps({"model": str(model_dir), "command": command, "report": report}, indent=1))
        return path
