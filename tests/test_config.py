"""params.yaml is validated at every stage start: bad values give one line naming the key."""

import copy
import subprocess
import sys

import pytest
import yaml

from bootstrap_embeddings.config import load_params, parse_params
from bootstrap_embeddings.strategies import names as strategy_names
from bootstrap_embeddings.errors import UserError
from conftest import REPO


@pytest.fixture
def raw():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def _error(raw) -> str:
    with pytest.raises(UserError) as err:
        parse_params(raw)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_committed_params_are_valid(params):
    assert params.strategy in strategy_names()
    assert params.languages == ["hau"]


def test_unknown_strategy_names_key_and_allowed_values(raw):
    raw["strategy"] = "magic"
    message = _error(raw)
    assert message.startswith("params.yaml: strategy:")
    assert "'magic'" in message
    for name in strategy_names():
        assert name in message


def test_unknown_language_code(raw):
    raw["languages"] = ["hau", "xx1"]
    message = _error(raw)
    assert "languages.1" in message and "'xx1'" in message and "ISO 639-3" in message


def test_wrong_type_names_nested_key(raw):
    raw["generator"]["training"]["max_steps"] = "many"
    assert "generator.training.max_steps" in _error(raw)


def test_misspelt_key_is_an_error_not_a_default(raw):
    raw["embedder"]["poolng"] = "mean"
    message = _error(raw)
    assert "embedder.poolng" in message and "unknown key" in message


def test_missing_section(raw):
    del raw["filters"]
    assert "filters: missing" in _error(raw)


def test_file_source_needs_a_path(raw):
    raw["data"]["nli"] = {"kind": "file"}
    assert "data.nli" in _error(raw) and "path" in _error(raw)


def test_filter_bounds(raw):
    raw["filters"]["max_chars"] = raw["filters"]["min_chars"]
    assert "max_chars" in _error(raw)


def test_missing_params_file(tmp_path):
    with pytest.raises(UserError, match="no such params file"):
        load_params(tmp_path / "params.yaml")


def test_bad_yaml(tmp_path):
    (tmp_path / "params.yaml").write_text("strategy: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_stage_exits_2_with_one_line_and_writes_nothing(tmp_path, raw):
    """A stage run on bad params: non-zero exit, one-line error, no output written."""
    bad = copy.deepcopy(raw)
    bad["strategy"] = "magic"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    result = subprocess.run(
        [sys.executable, "-m", "stages.sources"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: params.yaml: strategy:")
    assert not (tmp_path / "data").exists()


def test_paper_scale_profile_is_valid():
    params = load_params(REPO / "profiles" / "paper.yaml")
    assert params.generator.model == "google/gemma-3-27b-it"
    assert params.generator.quantization == "4bit"
    assert params.embedder.pooling == "avg_first_last"


def _defaults_standing_in(model, prefix: str = "") -> list[str]:
    """Keys the file leaves out whose schema default is a real value (not None / empty)."""
    from pydantic import BaseModel

    found = []
    for name, field in type(model).model_fields.items():
        key, value = prefix + (field.alias or name), getattr(model, name)
        if name not in model.model_fields_set:
            if value not in (None, {}, [], ""):
                found.append(key)
        elif isinstance(value, BaseModel):
            found += _defaults_standing_in(value, key + ".")
    return found


@pytest.mark.parametrize("path", ["params.yaml", "profiles/paper.yaml", "profiles/paper_mmbert.yaml"])
def test_params_files_spell_out_every_value_a_stage_reads(path):
    """DVC sees a value only if the params file holds it: a schema default standing in for
    a missing key would shape outputs behind DVC's back (scripts/code_deps.py leaves
    config.py out of the stages' code deps on this ground)."""
    assert _defaults_standing_in(load_params(REPO / path)) == []


def test_a_bool_is_not_a_number(raw):
    raw["seed"] = True
    assert _error(raw).startswith("params.yaml: seed: Input should be a valid integer")
    raw["seed"] = 0
    raw["embedder"]["training"]["lr"] = False
    assert "embedder.training.lr" in _error(raw)


def test_adapter_training_length_is_steps_or_epochs(raw):
    from bootstrap_embeddings.config import AdapterTraining

    fields = dict(lr=2e-4, warmup_ratio=0.0, batch_size=16, grad_accum=4, max_grad_norm=0.3,
                  max_length=512, max_examples=10000)
    assert AdapterTraining(max_steps=24, **fields).steps(10000) == 24
    # the paper: 3 epochs of 10,000 rows, 625 batches of 16, 4 a step
    assert AdapterTraining(epochs=3, **fields).steps(10000) == 469
    assert AdapterTraining(epochs=3, **fields).steps(100) == 6  # 7 batches: 5.25 steps
    raw["generator"]["training"]["epochs"] = 3
    assert "generator.training: set one of max_steps and epochs" in _error(raw)
    raw["generator"]["training"]["max_steps"] = None
    assert parse_params(raw).generator.training.epochs == 3
