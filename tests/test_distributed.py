"""Data-parallel stages over two processes (torchrun, gloo on the CPU), on tiny models.

Each test runs a real stage module in a small project folder under torchrun with two
processes and compares it with the same stage in one process: adapter and embedder
training give the one-process losses (the global batch is the same), generation
gives the one-process file byte for byte. The two-process runs are subprocesses;
one-process runs happen in this process where that is faster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, deep_merge, make_lora, tiny_sentence_transformer

from bootstrap_embeddings import distributed
from bootstrap_embeddings.generator.adapters import _batches

LAUNCH_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
              distributed.NPROC_ENV)


# --------------------------------------------------------------------------- helpers


def _project(root: Path, **overrides) -> Path:
    """A project folder: params.yaml (the committed one with `overrides` merged in)."""
    raw = deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()), overrides)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root


def _base_model(project: Path, kind: str, model_dir: Path) -> None:
    target = project / "models/base" / kind
    shutil.copytree(model_dir, target)
    (target / "source.json").write_text(json.dumps({"kind": "local", "spec": str(model_dir)}))


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _stage(project: Path, module: str, *args: str, processes: int = 1, nproc_env=False):
    """Run `stages.<module>` in `project`: plain, under torchrun, or through BOOTSTRAP_NPROC."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env |= {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db"}
    command = [sys.executable, "-m", f"stages.{module}", *args]
    if processes > 1 and nproc_env:
        env[distributed.NPROC_ENV] = str(processes)
    elif processes > 1:
        command = distributed.relaunch_command(f"stages.{module}", args, processes)
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stderr[-5000:]}"
    return result


def _in_process(project: Path, monkeypatch, module: str, *args: str) -> None:
    """Run a stage in this process, as one process (faster: no imports to pay for)."""
    import importlib

    from bootstrap_embeddings.config import load_params

    for key in LAUNCH_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project}/mlflow.db")
    stage = importlib.import_module(f"stages.{module}")
    stage.main.__wrapped__(load_params(), *args)


@contextlib.contextmanager
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _mlflow_runs(project: Path) -> list:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")
    return mlflow.search_runs(experiment_names=["bootstrap-embeddings"], output_format="list")


def _leftovers(folder: Path) -> list[str]:
    """Temporary siblings atomic_dir would leave behind if two processes raced on a write."""
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


# --------------------------------------------------------------------------- units


def test_processes_share_each_global_batch_and_the_short_tail_is_padded():
    single, shares = _batches(10, 4, seed=5), [_batches(10, 4, 5, p, 2) for p in range(2)]
    for _ in range(6):  # two epochs of 4 + 4 + 2 rows
        batch = next(single)
        mine = [next(s) for s in shares]
        assert len(mine[0]) == len(mine[1])  # 2 + 2, and the tail of 2 splits 1 + 1
        assert sorted(mine[0] + mine[1]) == sorted(batch)
    odd = [next(_batches(3, 4, 0, p, 2)) for p in range(2)]  # 3 rows: padded to 4
    assert len(odd[0]) == len(odd[1]) == 2 and set(odd[0] + odd[1]) == {0, 1, 2}


def test_one_process_answers_without_a_process_group(monkeypatch):
    for key in LAUNCH_ENV:
        monkeypatch.delenv(key, raising=False)
    assert distributed.num_processes() == 1 and distributed.is_main_process()
    assert distributed.shard([1, 2, 3]) == [1, 2, 3]
    distributed.wait_for_everyone()
    distributed.relaunch_if_requested(["hau"])  # nothing requested: returns


def test_bad_process_count_and_single_process_stages_under_torchrun(monkeypatch, capsys):
    from bootstrap_embeddings.errors import UserError
    from stages import prepare

    monkeypatch.setenv(distributed.NPROC_ENV, "two")
    with pytest.raises(UserError, match="BOOTSTRAP_NPROC='two': expected a number"):
        distributed.requested_processes()
    monkeypatch.delenv(distributed.NPROC_ENV)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(sys, "argv", ["prepare", "hau"])
    with pytest.raises(SystemExit) as exit_:
        prepare.main()
    assert exit_.value.code == 2
    assert "this stage runs in one process" in capsys.readouterr().err


def test_generation_resumes_from_every_process_shard(tiny_generator, tmp_path, monkeypatch):
    """A run that two processes left half done finishes in one process, equal to a full run."""
    from bootstrap_embeddings.config import GenerationParams
    from bootstrap_embeddings.generator import generation
    from bootstrap_embeddings.generator.resume import BatchLog

    anchors = [{"id": f"a{i}", "text": f"Sentence number {i} is here."} for i in range(5)]
    gen = GenerationParams(max_new_tokens=4, do_sample=True, temperature=0.8, top_p=0.95,
                           batch_size=2)
    adapters = {k: str(make_lora(tiny_generator, tmp_path / k, s)) for k, s in (("pos", 1), ("neg", 2))}
    recipe = {"strategy": "xl_lora", "language": "hau", "adapters": adapters,
              "prompt_language": "English"}

    def run(partial):
        return generation.generate_triplets(tiny_generator, recipe, anchors, "hau", gen,
                                            "none", 0, BatchLog(partial))

    full, _ = run(tmp_path / "full.jsonl")
    header, *records = (tmp_path / "full.jsonl").read_text().splitlines()  # 3 batches x 2
    partial = tmp_path / "run.jsonl"
    (tmp_path / "run.rank0.jsonl").write_text("\n".join([header, *records[:2]]) + "\n")
    (tmp_path / "run.rank1.jsonl").write_text(f"{header}\n{records[3]}\n{records[4][:20]}")  # torn
    calls = []
    real = generation._generate_batch
    monkeypatch.setattr(generation, "_generate_batch",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed, stats = run(partial)
    assert resumed == full and stats["resumed_batches"] == 3 and len(calls) == 3
    BatchLog(partial).discard()
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["full.jsonl"]


# --------------------------------------------------------------------------- two processes
# Each launches Python three times (torchrun and two workers) at ~15 s of imports
# apiece on a 2-core machine: 35-70 s a test there, hence `integration`.


@pytest.mark.integration
def test_adapter_trains_data_parallel_like_one_process(tiny_generator, tmp_path, monkeypatch):
    one = _project(tmp_path / "one", generator={
        "quantization": "none",
        "lora": {"dropout": 0.0},  # no dropout: one and two processes see the same function
        "training": {"max_steps": 4, "batch_size": 4, "grad_accum": 2, "lr": 2.0e-2,
                     "warmup_ratio": 0.0, "max_length": 400, "max_examples": 100}})
    _base_model(one, "generator", tiny_generator)
    # One answer for all: every row has as many loss tokens, so the mean over two
    # processes' halves equals the mean over the whole batch.
    _write_jsonl(one / "data/prepared/shared/nli.jsonl", [
        {"anchor": f"a dog {i} ran", "positive": "a dog moved", "negative": "a dog sat",
         "relation": "x"} for i in range(12)])
    two = Path(shutil.copytree(one, tmp_path / "two"))

    result = _stage(two, "task_adapter", "pos", processes=2)
    _in_process(one, monkeypatch, "task_adapter", "pos")

    adapters = two / "models/adapters"
    record = json.loads((adapters / "task_pos/training.json").read_text())
    reference = json.loads((one / "models/adapters/task_pos/training.json").read_text())
    losses = [p["loss"] for p in record["losses"]]
    assert record["processes"] == 2 and reference["processes"] == 1
    assert losses[-1] < losses[0]
    # the first step's loss is the same function of the same weights: float noise only;
    # after it, gloo's all-reduce adds the halves' gradients in another order than one
    # process does, and lr 2e-2 grows that noise (1.02e-4 relative at step 3 once, in
    # CI). Gradients summed instead of averaged would double the step: far more than 1e-3
    expected = [p["loss"] for p in reference["losses"]]
    assert losses[0] == pytest.approx(expected[0], rel=1e-5)
    assert losses == pytest.approx(expected, rel=1e-3)
    assert record["tokens"] == reference["tokens"]
    # gradients were all-reduced: both processes ended with the same weights
    digests = [line.rsplit(" ", 1)[-1] for line in result.stderr.splitlines()
               if "adapter weights sha256" in line]
    assert len(digests) == 2 and digests[0] == digests[1]
    # saved once, logged once, printed once
    assert [p.name for p in adapters.iterdir()] == ["task_pos"]
    assert result.stdout.count("task_pos: 4 steps") == 1
    (run,) = _mlflow_runs(two)
    assert run.data.metrics["final_loss"] == pytest.approx(losses[-1])


@pytest.mark.integration
def test_embedder_trains_data_parallel_like_one_process(tiny_encoder, tmp_path, monkeypatch):
    import torch
    from sentence_transformers import SentenceTransformer
    from test_embedder import toy_triplets

    one = _project(tmp_path / "one", strategy="icl", languages=["hau"], embedder={
        "pooling": "mean", "query_prefix": "", "passage_prefix": "",
        "training": {"epochs": 2, "batch_size": 8, "lr": 1.0e-3, "max_length": 32,
                     "warmup_ratio": 0.0, "max_triplets": None}})
    _base_model(one, "embedder", tiny_sentence_transformer(
        tmp_path / "models/embedder", tiny_encoder,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    rows = [{"id": f"t{i}", **t, "strategy": "icl", "language": "hau"}
            for i, t in enumerate(toy_triplets())]
    _write_jsonl(one / "data/triplets/hau/triplets.jsonl", rows)  # 16: 2 batches
    two = Path(shutil.copytree(one, tmp_path / "two"))

    result = _stage(two, "train_embedder", "hau", processes=2, nproc_env=True)
    _in_process(one, monkeypatch, "train_embedder", "hau")

    curve = json.loads((two / "metrics/train/hau.json").read_text())
    reference = json.loads((one / "metrics/train/hau.json").read_text())
    assert [p["step"] for p in curve] == [p["step"] for p in reference] == [1, 2, 3, 4]
    # the same global batches, each anchor against all of them: the one-process loss
    assert [p["loss"] for p in curve] == pytest.approx([p["loss"] for p in reference], rel=1e-3)
    assert curve[-1]["loss"] < curve[0]["loss"]
    assert result.stdout.count("hau: trained on 16 triplets") == 1
    assert _leftovers(two / "models/embedders") == [] and len(_mlflow_runs(two)) == 1
    texts = ["apple", "river stone"]
    trained = SentenceTransformer(str(two / "models/embedders/hau")).encode(texts)
    base = SentenceTransformer(str(two / "models/base/embedder")).encode(texts)
    assert not torch.allclose(torch.tensor(trained), torch.tensor(base), atol=1e-4)


@pytest.mark.integration
def test_sharded_generation_merges_to_the_one_process_file(tiny_generator, tmp_path, monkeypatch):
    from bootstrap_embeddings.files import write_json
    from bootstrap_embeddings.strategies import RECIPE_FILE, build_recipe

    one = _project(tmp_path / "one", strategy="xl_lora", languages=["hau"], generator={
        "quantization": "none",
        "generation": {"max_new_tokens": 6, "batch_size": 2, "do_sample": True}})
    _base_model(one, "generator", tiny_generator)
    for kind, seed in (("pos", 1), ("neg", 2)):
        make_lora(tiny_generator, one / f"models/adapters/xl_lora_{kind}", seed)
    monkeypatch.chdir(one)  # the recipe names the adapters relative to the project
    write_json(one / "models/generators/xl_lora/hau" / RECIPE_FILE, build_recipe("xl_lora", "hau"))
    # 7 anchors: 4 batches a relation, 8 in all, 4 for each process
    _write_jsonl(one / "data/prepared/hau/anchors.jsonl",
                 [{"id": f"a{i}", "text": f"Sentence number {i} is here."} for i in range(7)])
    two = Path(shutil.copytree(one, tmp_path / "two"))

    result = _stage(two, "generate", "hau", processes=2)
    with one_thread():  # as each of the two processes: the same floating-point sums
        _in_process(one, monkeypatch, "generate", "hau")

    merged = (two / "data/generated/hau/triplets.jsonl").read_bytes()
    assert merged == (one / "data/generated/hau/triplets.jsonl").read_bytes()
    assert merged.count(b"\n") >= 3
    stats = json.loads((two / "data/generated/hau/stats.json").read_text())
    assert stats["processes"] == 2 and stats["resumed_batches"] == 0
    assert list((two / ".cache/generate").iterdir()) == []  # every shard file removed
    assert result.stdout.count("hau: ") == 1 and len(_mlflow_runs(two)) == 1
