"""MLflow run tracking, linked to DVC.

The database is a sqlite file at an absolute path in the project root. Queued DVC
experiments run in temporary copies under `.dvc/tmp/exps/`: a relative URI would log
into a copy that is then deleted, so the root is resolved past that folder.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

DB_NAME = "mlflow.db"


def project_root(start: str | Path | None = None) -> Path:
    """The user's project folder, also when DVC runs us in a temporary copy of it."""
    path = Path(start or os.getcwd()).resolve()
    parts = path.parts
    if ".dvc" in parts:  # .../<root>/.dvc/tmp/exps/<copy>/...
        return Path(*parts[: parts.index(".dvc")])
    return path


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / DB_NAME}"


def _git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_tags(stage: str, strategy: str, language: str | None) -> dict[str, str]:
    # DVC sets DVC_EXP_NAME and DVC_EXP_BASELINE_REV for the commands of `dvc exp run`.
    return {
        "stage": stage,
        "strategy": strategy,
        "language": language or "-",
        "git_revision": _git_revision(),
        "dvc_experiment": os.environ.get("DVC_EXP_NAME", "workspace"),
        "dvc_baseline_revision": os.environ.get("DVC_EXP_BASELINE_REV", _git_revision()),
    }


class _NoRun:
    """Takes any `mlflow.log_*` / `set_tag` call and does nothing."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


@contextlib.contextmanager
def tracked_run(
    params, stage: str, language: str | None = None, strategy: str | None = None
) -> Iterator[object]:
    """Open an MLflow run for one stage, tagged so it can be found from `dvc exp show`.

    Yields the `mlflow` module so callers log with `run.log_metric(...)` and friends.
    Under torchrun every process runs the stage, but only the main one logs: the
    others get a stand-in that does nothing, so a stage makes one run, not one per process.
    """
    from bootstrap_embeddings.distributed import is_main_process

    if not is_main_process():
        yield _NoRun()
        return
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    name = params.tracking.experiment
    if mlflow.get_experiment_by_name(name) is None:
        # artifacts default to ./mlruns of the current folder: a DVC temp copy, for
        # queued experiments, so pin them to the project root like the database
        mlflow.create_experiment(name, artifact_location=(project_root() / "mlartifacts").as_uri())
    mlflow.set_experiment(name)
    strategy = strategy or params.strategy
    name = f"{stage}:{strategy}" + (f":{language}" if language else "")
    with mlflow.start_run(run_name=name, tags=run_tags(stage, strategy, language)):
        mlflow.log_param("seed", params.seed)
        yield mlflow
