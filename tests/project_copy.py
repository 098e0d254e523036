"""A throwaway copy of the project for the integration tests that drive DVC.

The copy holds the sources, not the outputs or caches, with params.yaml overridden
and everything committed to a fresh git repository, so `dvc repro`, `dvc exp run`
and `git clone` behave as they would in a user's checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from conftest import REPO, deep_merge

# What a copy of the project needs: the sources, not the outputs or caches.
ROOT_OUTPUTS = {".venv", ".git", ".pytest_cache", ".cache", "mlflow.db", "mlartifacts",
                "data", "models", "metrics", "results", "reports", "dvc.lock"}
DVC_LOCAL = {"cache", "tmp", "config.local"}
GIT_USER = ["-c", "user.name=t", "-c", "user.email=t@t"]

# params.yaml `data` sizes small enough for every data stage to take seconds
SMALL_DATA = {
    "anchors_per_language": 12,
    "monolingual_per_language": 24,
    "xl_lora_languages": ["deu", "swh"],
    "xl_lora_pairs_per_language": 6,
    "nli": {"kind": "wordnet", "max_rows": 400},
}


def copy_ignore(folder: str, names: list[str]) -> set[str]:
    here = Path(folder).resolve()
    ignored = {n for n in names if n == "__pycache__"}
    if here == REPO:
        ignored |= ROOT_OUTPUTS & set(names)
    elif here == REPO / ".dvc":
        ignored |= DVC_LOCAL & set(names)
    return ignored


def stage_env(cwd: Path, **overrides: str | None) -> dict[str, str]:
    """The environment stages need: this interpreter first on PATH, the copy importable.

    A value of None in `overrides` removes that variable.
    """
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env["PYTHONPATH"] = str(cwd)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command in `cwd`; fail the test with its output if it fails. Returns the output."""
    if env is None:
        env = stage_env(cwd, MLFLOW_TRACKING_URI=f"sqlite:///{cwd}/mlflow.db")
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{output[-4000:]}"
    return output


def commit_copied_sources(root: Path, env: dict[str, str] | None = None) -> None:
    """Record the npm tarballs that came with the copy as the sources stage's output, so the
    copy stays offline (without them, as in a fresh clone, the stage fetches them). The
    stage depends on the params gate's output: that runs first (it only reads params.yaml)."""
    if (root / "data" / "sources").is_dir():
        run(["dvc", "repro", "check_params"], root, env)
        run(["dvc", "commit", "--force", "sources"], root, env)


def git_commit(root: Path, message: str, env: dict[str, str] | None = None) -> None:
    run(["git", *GIT_USER, "add", "-A"], root, env)
    run(["git", *GIT_USER, "commit", "-qm", message], root, env)


def copy_project(root: Path, params_override: dict) -> Path:
    """Copy the project into `root` with params.yaml overridden; git init and commit it.

    The npm tarballs in data/sources come along if this checkout has them (saves a
    registry call); whether the `sources` stage still runs is up to the caller.
    """
    shutil.copytree(REPO, root, ignore=copy_ignore)
    if (REPO / "data" / "sources").is_dir():
        shutil.copytree(REPO / "data" / "sources", root / "data" / "sources")
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(deep_merge(params, params_override),
                                                     sort_keys=False))
    run(["git", "init", "-q"], root)
    git_commit(root, "init")
    return root


def stages_run(output: str) -> set[str]:
    """The stages DVC says it ran ("Running stage 'X':") in a command's output."""
    return {line.split("'")[1] for line in output.splitlines()
            if line.startswith("Running stage '")}


def pipeline_paths(root: Path) -> tuple[list[str], list[str]]:
    """(every output, every dep) of the resolved pipeline (foreach and matrix expanded)."""
    out = run([sys.executable, "-c",
               "import json; from dvc.repo import Repo\n"
               "stages = Repo('.').index.stages\n"
               "print(json.dumps([sorted({str(o.def_path) for s in stages for o in s.outs}),"
               "sorted({str(d.def_path) for s in stages for d in s.deps})]))"], root)
    outs, deps = json.loads(out.strip().splitlines()[-1])
    return outs, deps


def _stand_in(path: Path) -> None:
    if path.suffix:  # a file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("stand-in\n")
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / "stand-in").write_text("stand-in\n")


def commit_stand_in_outputs(root: Path) -> Path:
    """A stand-in file for every output of the pipeline, committed to dvc.lock: every stage
    is then up to date, in seconds, so a test can watch what one change makes DVC do."""
    outs, deps = pipeline_paths(root)
    for out in outs:
        _stand_in(root / out)
    for dep in deps:  # files inside a directory output (data/prepared/hau/anchors.jsonl)
        if not (root / dep).exists():
            _stand_in(root / dep)
    run(["dvc", "commit", "-f", "-q"], root)
    return root


def queue_status(root: Path, env: dict[str, str]) -> dict[str, str]:
    """Experiment name -> its status in `dvc queue status` (Queued, Running, Success, Failed)."""
    table = run(["dvc", "queue", "status"], root, env)
    status = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 4 and re.fullmatch(r"[0-9a-f]{7}", fields[0]):
            status[fields[1]] = fields[-1]
    return status


def run_queue(root: Path, env: dict[str, str], jobs: int, timeout_s: float
              ) -> tuple[dict[str, str], dict[str, str], list]:
    """Run the queued experiments with `dvc queue start -j jobs` and wait for them; fail the
    test if one fails. Returns (name -> status, name -> `dvc queue logs`, `dvc exp show`)."""
    run(["dvc", "queue", "start", "-j", str(jobs)], root, env)
    deadline = time.monotonic() + timeout_s
    try:
        while (status := queue_status(root, env)) and \
                set(status.values()) & {"Queued", "Running"}:
            assert time.monotonic() < deadline, f"queue busy after {timeout_s} s: {status}"
            time.sleep(5)
    finally:
        subprocess.run(["dvc", "queue", "stop", "--kill"], cwd=root, env=env,
                       capture_output=True)
    logs = {name: run(["dvc", "queue", "logs", name], root, env) for name in status}
    failed = {name: logs[name][-3000:] for name, state in status.items() if state != "Success"}
    assert not failed, f"queued experiments failed: {failed}"
    return status, logs, json.loads(run(["dvc", "exp", "show", "--json"], root, env))


def experiments(shown: list) -> dict[str, dict]:
    """Experiment name -> its data, from `dvc exp show --json`."""
    found = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                found[rev["name"]] = rev["data"]
    return found
