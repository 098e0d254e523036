"""The real pipeline, end to end, on the embedded default's real models and data.

Runs `dvc repro` in a fresh copy of the project with the sizes shrunk (few anchors,
few adapter steps), then checks what a user relies on: every stage ran, a second
`dvc repro` does nothing, and switching the strategy re-runs only what depends on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from project_copy import SMALL_DATA, copy_project, run as _run, stages_run

pytestmark = pytest.mark.integration

SMALL = {
    "data": SMALL_DATA,
    "generator": {
        "training": {"max_steps": 2, "batch_size": 4, "max_length": 128},
        "generation": {"max_new_tokens": 16, "batch_size": 12},
    },
    # no warm-up: with two steps, a warm-up would make the first one a no-op
    "embedder": {"training": {"epochs": 2, "batch_size": 8, "max_length": 32,
                              "lr": 1.0e-4, "warmup_ratio": 0.0}},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project") / "repo", SMALL)


def test_repro_runs_everything_then_nothing(project):
    out = _run(["dvc", "repro"], project)
    assert "Running stage 'report'" in out
    metrics = json.loads((project / "metrics" / "eval" / "hau.json").read_text())
    assert 0.0 <= metrics["hau"]["main_score"] <= 1.0
    again = _run(["dvc", "repro"], project)
    assert "Running stage" not in again


def test_strategy_switch_reruns_only_what_depends_on_it(project):
    out = _run(["dvc", "exp", "run", "-S", "strategy=icl", "report"], project)
    ran = stages_run(out)
    assert "generate@hau" in ran and "evaluate@hau" in ran
    # nothing upstream of the strategy is recomputed
    assert not ran & {"task_adapter@pos", "task_adapter@neg", "base_generator", "prepare@hau"}
