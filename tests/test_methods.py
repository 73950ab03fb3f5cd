"""Methods are declared once (:data:`specdm.config.METHODS`): every declaration resolves to its config, recipe and
pipeline; a fifth method needs only its entry there; operations on a trained model folder (``specdm apply``)."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from conftest import single_thread, tiny_method_config, write_config

from specdm.cli import main
from specdm.config import METHODS, Config, Method, SpecDMRunConfig, validate
from specdm.errors import ConfigError
from specdm.pipelines import pipeline_class
from specdm.pipelines.base import LatentPipeline
from specdm.recipes import input_kinds, recipe_of
from specdm.recipes.sampling import Inputs
from specdm.recipes.stages import AutoencoderStage, DenoiserStage


@pytest.mark.parametrize("name", list(METHODS))
def test_every_declaration_resolves(name):
    m = METHODS[name]
    assert m.name == name and m.config.model_fields["method"].default == name
    assert m.recipe.startswith("specdm.recipes.") and m.pipeline.startswith("specdm.pipelines.")
    recipe = recipe_of(name)
    assert isinstance(recipe.stages[0], AutoencoderStage) and isinstance(recipe.stages[-1], DenoiserStage)
    assert recipe.stages[-1].method == name  # what specdm.json records, so the folder loads this pipeline
    assert issubclass(recipe.inputs, Inputs) and issubclass(pipeline_class(name), LatentPipeline)
    assert {"method", "data", "sampling", "train", "autoencoder", "diffusion"} <= set(m.config.model_fields)


def test_input_kinds_differ_and_name_their_flags():
    kinds = input_kinds()
    assert [k.kind for k in kinds] == ["joint", "layouts", "conditions", "rgb"]
    flags = [f for k in kinds for f in k.options.values()]
    assert len(flags) == len(set(flags))  # a flag belongs to one kind


def test_a_fifth_method_is_one_entry(monkeypatch, tmp_path):
    """A method registered in METHODS (here one that reuses SpecDM's recipe and pipeline under another name) is a
    valid config, has a recipe and a pipeline, and its sections are refused in other methods' configs."""

    class EchoRunConfig(SpecDMRunConfig):
        method: Literal["echo"] = "echo"

    monkeypatch.setitem(METHODS, "echo", Method("echo", EchoRunConfig, "echoes", "specdm.recipes.specdm",
                                                "specdm.pipelines.specdm:SpecDMPipeline"))
    cfg = validate(Config, {"method": "echo", "data": {"dataset": "indian_pines"}})
    assert type(cfg) is EchoRunConfig and recipe_of("echo") is recipe_of("specdm")
    with pytest.raises(ConfigError, match="'nope' is not one of specdm, layout, controllable, hyperldm, echo"):
        validate(Config, {"method": "nope", "data": {"dataset": "indian_pines"}})
    with pytest.raises(ConfigError, match="hyperldm: belongs to method hyperldm; this config's method is echo"):
        validate(Config, {"method": "echo", "data": {"dataset": "indian_pines"}, "hyperldm": {}})


@pytest.fixture(scope="module", params=["specdm", "hyperldm"])
def stage1(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"stage1_{request.param}")
    cfg = write_config(tmp / "cfg.yaml", tiny_method_config(tmp, request.param))
    with single_thread():
        assert main(["--threads", "1", "train-autoencoder", str(cfg), "--run-dir", str(tmp / "run")]) == 0
    return tmp, cfg


def test_stage1_report_operation_reproduces_the_runs_report(stage1, capsys):
    """`specdm apply stage1-report`: the method's own stage-1 hooks score the folder's autoencoder on the config's
    windows, as the run did; the model folder is left alone."""
    tmp, cfg = stage1
    model = tmp / "run" / "model"
    before = sorted(p.name for p in model.rglob("*"))
    assert main(["apply", "--list"]) == 0 and "stage1-report:" in capsys.readouterr().out
    with single_thread():
        assert main(["--threads", "1", "apply", "stage1-report", str(model), "--config", str(cfg), "--out",
                     str(tmp / "report")]) == 0
    got = json.loads((tmp / "report" / "stage1_quality.json").read_text())["report"]
    want = json.loads((model / "stage1_quality.json").read_text())
    assert got == want and sorted(p.name for p in model.rglob("*")) == before
    code = main(["apply", "stage1-report", str(model), "--config", str(cfg), "--out", str(tmp / "report")])
    assert code == 2 and "exists and is not empty" in capsys.readouterr().err  # an output folder is not reused


def test_operations_refuse_what_they_cannot_take(stage1, tmp_path, capsys):
    tmp, cfg = stage1
    model = tmp / "run" / "model"
    assert main(["apply", "distill", str(model), "--out", str(tmp_path / "a")]) == 2
    assert "unknown operation 'distill'; choose one of stage1-report" in capsys.readouterr().err
    assert main(["apply", "stage1-report", str(model), "--out", str(tmp_path / "b")]) == 2
    assert "give --config CONFIG" in capsys.readouterr().err
    other = write_config(tmp_path / "other.yaml", tiny_method_config(tmp_path, "layout"))
    assert main(["apply", "stage1-report", str(model), "--config", str(other), "--out", str(tmp_path / "c")]) == 2
    assert "the config is for method layout" in capsys.readouterr().err
    assert main(["apply", "stage1-report", str(model), "--config", str(cfg), "--out", str(tmp_path / "d"),
                 "--set", "max_windows=0"]) == 2
    assert "max_windows" in capsys.readouterr().err and not (tmp_path / "d").exists()
