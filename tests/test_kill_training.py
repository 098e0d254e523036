"""kill -9 of adapter and embedder training, at 6 points each, then a rerun: the same output.

Each stage runs as a subprocess in a small project on the tiny models and kills itself
with SIGKILL (tests/kill_at.py) at, in turn: right after loading the base model; at an
early optimiser step (before the first resumable state); while writing a resumable
state / trainer checkpoint; at a late step; while writing the output; and just after
the output was renamed into place (before the state is removed). Each rerun resumes
where the last complete state allows; the last one runs to the end. The final output
must hold the same tensors as an uninterrupted run's, with nothing half-written at any
point, no temporary folder left and no resumable state left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, tiny_sentence_transformer

KILL_AT = REPO / "tests" / "kill_at.py"
LAUNCH_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
              "BOOTSTRAP_NPROC")


def _project(root: Path, **sections) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in sections.items():
        for key, value in values.items():
            target = raw[section]
            *path, last = key.split(".")
            for part in path:
                target = target[part]
            target[last] = value
    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root


def _base_model(project: Path, kind: str, model_dir: Path) -> None:
    target = project / "models/base" / kind
    shutil.copytree(model_dir, target)
    (target / "source.json").write_text(json.dumps({"kind": "local", "spec": str(model_dir)}))


def _run(project: Path, stage: list[str], kill: tuple[str, int] | None = None):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env |= {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db"}
    command = [sys.executable, *([str(KILL_AT), kill[0], str(kill[1])] if kill else []),
               "-m", *stage]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)
    expected = -signal.SIGKILL if kill else 0
    assert done.returncode == expected, f"{kill}: rc {done.returncode}\n{done.stderr[-4000:]}"
    return done


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path)


def _assert_same_tensors(a: Path, b: Path) -> None:
    import torch

    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys()
    assert all(torch.equal(ta[k], tb[k]) for k in ta), [k for k in ta if not torch.equal(ta[k], tb[k])]


def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name] \
        if folder.is_dir() else []


def _kill_and_resume(project: Path, stage: list[str], kills, output: Path, check_whole):
    """Run `stage` killed at each point of `kills` in turn, then to the end."""
    for point in kills:
        _run(project, stage, kill=point)
        # never a half-written output: none, or a whole one (after `swapped`)
        if output.exists():
            check_whole(output)
    done = _run(project, stage)
    assert _temporaries(output.parent) == []
    return done


# --------------------------------------------------------------------------- adapters

# 8 steps, a state every 2: the process-local step counts below are global steps
# 3 (no state yet: from scratch), the write of state 4 (state 2 stays), 7 (state 6)
ADAPTER_KILLS = [("load", 1), ("step", 3), ("save", 1), ("step", 5), ("output", 1),
                 ("swapped", 1)]


@pytest.mark.integration
def test_adapter_training_killed_at_6_points_gives_the_uninterrupted_adapter(
        tiny_generator, tmp_path):
    training = {"generator.quantization": "none", "generator.lora.dropout": 0.1,
                "generator.training.max_steps": 8, "generator.training.checkpoint_every": 2,
                "generator.training.batch_size": 4, "generator.training.max_length": 400,
                "generator.training.warmup_ratio": 0.25}
    rows = [{"anchor": f"a dog {i} ran", "positive": "a dog moved",
             "negative": "a dog sat still", "relation": "x"} for i in range(10)]
    projects = {}
    for name in ("reference", "killed"):
        project = _project(tmp_path / name, generator={
            k.removeprefix("generator."): v for k, v in training.items()})
        _base_model(project, "generator", tiny_generator)
        nli = project / "data/prepared/shared/nli.jsonl"
        nli.parent.mkdir(parents=True)
        nli.write_text("".join(json.dumps(r) + "\n" for r in rows))
        projects[name] = project
    stage = ["stages.task_adapter", "pos"]
    _run(projects["reference"], stage)

    def check_whole(adapter: Path):
        json.loads((adapter / "training.json").read_text())
        _tensors(adapter / "adapter_model.safetensors")

    project = projects["killed"]
    done = _kill_and_resume(project, stage, ADAPTER_KILLS,
                            project / "models/adapters/task_pos", check_whole)
    assert "resuming from" in done.stderr and "6 of 8 steps done" in done.stderr, \
        done.stderr[-3000:]
    weights = "models/adapters/task_pos/adapter_model.safetensors"
    _assert_same_tensors(projects["reference"] / weights, project / weights)
    record = json.loads((project / "models/adapters/task_pos/training.json").read_text())
    reference = json.loads(
        (projects["reference"] / "models/adapters/task_pos/training.json").read_text())
    assert record["losses"] == reference["losses"] and record["tokens"] == reference["tokens"]
    cache = project / ".cache/task_adapter_pos/all"
    assert list(cache.iterdir()) == []  # no resumable state left, no temporary folder


# --------------------------------------------------------------------------- embedder

# 16 triplets, batch 4, 2 epochs: 8 steps, a checkpoint every 2: global steps
# 3 (no checkpoint yet), the save of checkpoint 4 (checkpoint 2 stays), 7 (checkpoint 6)
EMBEDDER_KILLS = [("load", 1), ("step", 3), ("checkpoint", 1), ("step", 5), ("output", 1),
                  ("swapped", 1)]


@pytest.mark.integration
def test_embedder_training_killed_at_6_points_gives_the_uninterrupted_embedder(
        tiny_encoder, tmp_path):
    from test_embedder import toy_triplets

    base = tiny_sentence_transformer(tmp_path / "base/embedder", tiny_encoder)
    triplets = [{"id": str(i), "strategy": "icl", "language": "hau", **t}
                for i, t in enumerate(toy_triplets())]
    projects = {}
    for name in ("reference", "killed"):
        project = _project(tmp_path / name, embedder={
            "training.epochs": 2, "training.batch_size": 4, "training.lr": 1e-3,
            "training.max_length": 32, "training.checkpoint_every": 2},
)
        raw = yaml.safe_load((project / "params.yaml").read_text())
        raw |= {"strategy": "icl", "languages": ["hau"]}
        (project / "params.yaml").write_text(yaml.safe_dump(raw))
        _base_model(project, "embedder", base)
        data = project / "data/triplets/hau/triplets.jsonl"
        data.parent.mkdir(parents=True)
        data.write_text("".join(json.dumps(r) + "\n" for r in triplets))
        projects[name] = project
    stage = ["stages.train_embedder", "hau"]
    _run(projects["reference"], stage)

    def check_whole(model: Path):
        json.loads((model / "training.json").read_text())
        _tensors(model / "model.safetensors")

    project = projects["killed"]
    done = _kill_and_resume(project, stage, EMBEDDER_KILLS,
                            project / "models/embedders/hau", check_whole)
    # the run killed just after the swap had saved checkpoint 8: the last run trains nothing
    assert "checkpoint-8" in done.stderr, done.stderr[-3000:]
    weights = "models/embedders/hau/model.safetensors"
    _assert_same_tensors(projects["reference"] / weights, project / weights)
    curve = json.loads((project / "metrics/train/hau.json").read_text())
    assert curve == json.loads((projects["reference"] / "metrics/train/hau.json").read_text())
    assert [p["step"] for p in curve] == list(range(1, 9))
    assert list((project / ".cache/train_embedder/hau").iterdir()) == []
