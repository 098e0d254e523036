"""The rehearsal: profiles/paper.yaml as committed, end to end through `dvc repro`, offline.

A throwaway copy of the project gets params.yaml = the profile + tests/rehearsal/
override.yaml (hub ids -> local stand-ins, smaller sizes; tests/test_rehearsal_override.py
holds it to that), and the stand-ins of every hub model and dataset the profile reads
(tests/rehearsal/standins.py). Then, as a user with a GPU would:

1. `dvc repro report`: the profile's strategy for all seven paper languages;
2. `dvc exp run -S strategy=<s> -S languages=[hau] report` for every other strategy.

Run it alone with `pytest -m rehearsal`; it is deselected from the fast suite
(`-m "not integration"` does not select it either: it is marked both).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from bootstrap_embeddings.config import parse_params
from bootstrap_embeddings.strategies import names as strategy_names
from conftest import REPO, deep_merge
from project_copy import (
    commit_copied_sources, copy_project, git_commit, run, stage_env, stages_run,
)
from rehearsal import standins

pytestmark = [pytest.mark.rehearsal, pytest.mark.integration]

ONE_LANGUAGE = "hau"


def rehearsal_params() -> dict:
    profile = yaml.safe_load((REPO / "profiles" / "paper.yaml").read_text())
    return deep_merge(copy.deepcopy(profile), standins.override())


def rehearsal_env(root: Path) -> dict[str, str]:
    """Offline, with the copy's own Hugging Face cache (no stale datasets from elsewhere)."""
    return stage_env(root, MLFLOW_TRACKING_URI=f"sqlite:///{root}/mlflow.db",
                     HF_HOME=str(root / ".hf-home"), HF_HUB_OFFLINE="1",
                     HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("rehearsal") / "repo", {})
    (root / "params.yaml").write_text(yaml.safe_dump(rehearsal_params(), sort_keys=False))
    git_commit(root, "params: profiles/paper.yaml + tests/rehearsal/override.yaml")
    standins.write_standins(root)  # untracked, as a user's hub cache would be
    commit_copied_sources(root, rehearsal_env(root))
    return root


def _dvc(project: Path, *args: str) -> str:
    return run(["dvc", *args], project, rehearsal_env(project))


def _eval_metrics(project: Path, language: str) -> dict:
    return json.loads((project / "metrics" / "eval" / f"{language}.json").read_text())[language]


def test_profile_runs_for_all_seven_languages(project):
    params = parse_params(rehearsal_params())
    out = _dvc(project, "repro", "report")
    assert "Running stage 'report'" in out
    for language in params.languages:
        scores = _eval_metrics(project, language)
        assert 0.0 <= scores["main_score"] <= 1.0, language
        # each mteb task that has a subset in the language was evaluated
        from bootstrap_embeddings.evaluation.tasks import registry_tasks

        wanted = {t.metadata.name for t in registry_tasks(params.eval.mteb_tasks, language)}
        assert wanted <= set(scores), (language, wanted - set(scores))
    assert "Running stage" not in _dvc(project, "repro", "report")


@pytest.mark.parametrize("strategy", [s for s in strategy_names()
                                      if s != parse_params(rehearsal_params()).strategy])
def test_every_other_strategy_for_one_language(project, strategy):
    out = _dvc(project, "exp", "run", "-S", f"strategy={strategy}",
               "-S", f"languages=[{ONE_LANGUAGE}]", "report")
    assert f"evaluate@{ONE_LANGUAGE}" in stages_run(out)
    assert 0.0 <= _eval_metrics(project, ONE_LANGUAGE)["main_score"] <= 1.0
