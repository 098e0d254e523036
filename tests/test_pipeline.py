"""The real pipeline, end to end, on the embedded default's real models and data.

Runs `dvc repro` in a fresh copy of the project with the sizes shrunk (few anchors,
few adapter steps), then checks what a user relies on: every stage ran, a second
`dvc repro` does nothing, and switching the strategy re-runs only what depends on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, deep_merge

pytestmark = pytest.mark.integration

# What a copy of the project needs: the sources, not the outputs or caches.
ROOT_OUTPUTS = {".venv", ".git", ".pytest_cache", ".cache", "mlflow.db",
                "data", "models", "metrics", "results", "reports", "dvc.lock"}
DVC_LOCAL = {"cache", "tmp", "config.local"}


def COPY_IGNORE(folder: str, names: list[str]) -> set[str]:
    here = Path(folder).resolve()
    ignored = {n for n in names if n == "__pycache__"}
    if here == REPO:
        ignored |= ROOT_OUTPUTS & set(names)
    elif here == REPO / ".dvc":
        ignored |= DVC_LOCAL & set(names)
    return ignored

SMALL = {
    "data": {
        "anchors_per_language": 12,
        "monolingual_per_language": 24,
        "xl_lora_languages": ["deu", "swh"],
        "xl_lora_pairs_per_language": 6,
        "nli": {"kind": "wordnet", "max_rows": 400},
    },
    "generator": {
        "training": {"max_steps": 2, "batch_size": 4, "max_length": 128},
        "generation": {"max_new_tokens": 16, "batch_size": 12},
    },
    # no warm-up: with two steps, a warm-up would make the first one a no-op
    "embedder": {"training": {"epochs": 2, "batch_size": 8, "max_length": 32,
                              "lr": 1.0e-4, "warmup_ratio": 0.0}},
}


def _run(cmd: list[str], cwd: Path) -> str:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env["PYTHONPATH"] = str(cwd)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{cwd}/mlflow.db"
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project") / "repo"
    shutil.copytree(REPO, root, ignore=COPY_IGNORE)
    # the tarballs from npm, if this checkout already has them (saves a registry call)
    if (REPO / "data" / "sources").is_dir():
        shutil.copytree(REPO / "data" / "sources", root / "data" / "sources")
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(deep_merge(params, SMALL), sort_keys=False))
    _run(["git", "init", "-q"], root)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], root)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], root)
    return root


def test_repro_runs_everything_then_nothing(project):
    out = _run(["dvc", "repro"], project)
    assert "Running stage 'report'" in out
    metrics = json.loads((project / "metrics" / "eval" / "hau.json").read_text())
    assert 0.0 <= metrics["hau"]["main_score"] <= 1.0
    again = _run(["dvc", "repro"], project)
    assert "Running stage" not in again


def test_strategy_switch_reruns_only_what_depends_on_it(project):
    out = _run(["dvc", "exp", "run", "-S", "strategy=icl", "report"], project)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert "generate@hau" in ran and "evaluate@hau" in ran
    # nothing upstream of the strategy is recomputed
    assert not ran & {"task_adapter@pos", "task_adapter@neg", "base_generator", "prepare@hau"}
