"""Bad input files and arguments: one line naming the file (and line, and field) or the
argument, exit 2, nothing written. And a refused param costs no output under `dvc repro`.

Each case runs the real stage as a subprocess in a copy of a small project (tiny models
built from configs, a few rows of each file) with one thing damaged.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from project_copy import commit_stand_in_outputs, copy_project, pipeline_paths, run, stage_env

pytestmark = pytest.mark.integration

ANCHORS = [{"id": f"a{i}", "text": f"Kowane mutum yana da hakki {i}."} for i in range(4)]
PAIRS = [{"id": f"p{i}", "text": f"Kowa yana da ’yanci {i}.", "english": f"Everyone is free {i}."}
         for i in range(4)]
CLDR_PAIRS = [{"id": f"cldr:{i}", "text": f"fuska {i}", "english": f"face {i}"} for i in range(4)]
TRIPLETS = [{"id": f"a{i}", "anchor": a["text"], "positive": f"Everyone has a right {i}.",
             "negative": f"Nobody has a right {i}.", "strategy": "icl", "language": "hau",
             "generator": "models/base/generator", "adapter_pos": None, "adapter_neg": None}
            for i, a in enumerate(ANCHORS)]


def _jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_generator, tiny_encoder) -> Path:
    """Every input the filter, generate, train_embedder and evaluate stages read, all good."""
    from bootstrap_embeddings.base_models import materialize_embedder, materialize_generator

    root = tmp_path_factory.mktemp("bad-input") / "project"
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["strategy"] = "icl"
    (root / "data").mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    materialize_generator(str(tiny_generator), root / "models/base/generator")
    materialize_embedder(str(tiny_encoder), root / "models/base/embedder")
    shutil.copytree(root / "models/base/embedder", root / "models/embedders/hau")
    _jsonl(root / "data/prepared/hau/anchors.jsonl", ANCHORS)
    _jsonl(root / "data/prepared/hau/eval.jsonl", PAIRS)
    _jsonl(root / "data/prepared/hau/eval_cldr.jsonl", CLDR_PAIRS)
    recipe = {"strategy": "icl", "language": "hau", "adapters": None, "shots": []}
    (root / "models/generators/icl/hau").mkdir(parents=True)
    (root / "models/generators/icl/hau/recipe.json").write_text(json.dumps(recipe))
    _jsonl(root / "data/generated/hau/triplets.jsonl", TRIPLETS)
    _jsonl(root / "data/triplets/hau/triplets.jsonl", TRIPLETS)
    return root


def _tear(path: Path) -> None:
    """A crash mid-write: the last line cut in half."""
    text = path.read_text()
    path.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit_rows(path: Path, edit) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    edit(rows)
    _jsonl(path, rows)


def _set_param(root: Path, key: str, value) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    *parents, last = key.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


GENERATED = "data/generated/hau"
# (id, stage and arguments, damage, the start of the one line expected on stderr)
CASES = [
    ("seed-true", ["stages.filter", "hau"], lambda r: _set_param(r, "seed", True),
     "error: params.yaml: seed: Input should be a valid integer"),
    ("torn-triplets", ["stages.filter", "hau"], lambda r: _tear(r / GENERATED / "triplets.jsonl"),
     f"error: {GENERATED}/triplets.jsonl:4: not a JSON line"),
    ("torn-anchors", ["stages.generate", "hau"],
     lambda r: _tear(r / "data/prepared/hau/anchors.jsonl"),
     "error: data/prepared/hau/anchors.jsonl:4: not a JSON line"),
    ("torn-eval", ["stages.evaluate", "hau"], lambda r: _tear(r / "data/prepared/hau/eval.jsonl"),
     "error: data/prepared/hau/eval.jsonl:4: not a JSON line"),
    ("anchor-without-text", ["stages.generate", "hau"],
     lambda r: _edit_rows(r / "data/prepared/hau/anchors.jsonl", lambda rows: rows[1].pop("text")),
     "error: data/prepared/hau/anchors.jsonl:2: field 'text' is missing"),
    ("empty-anchors", ["stages.generate", "hau"],
     lambda r: (r / "data/prepared/hau/anchors.jsonl").write_text(""),
     "error: data/prepared/hau/anchors.jsonl: no rows"),
    ("triplet-without-positive", ["stages.filter", "hau"],
     lambda r: _edit_rows(r / GENERATED / "triplets.jsonl", lambda rows: rows[2].pop("positive")),
     f"error: {GENERATED}/triplets.jsonl:3: field 'positive' is missing"),
    ("number-as-positive", ["stages.filter", "hau"],
     lambda r: _edit_rows(r / GENERATED / "triplets.jsonl",
                          lambda rows: rows[0].update(positive=42)),
     f"error: {GENERATED}/triplets.jsonl:1: field 'positive': input should be a valid string"),
    ("truncated-base-embedder", ["stages.train_embedder", "hau"],
     lambda r: _truncate(r / "models/base/embedder/model.safetensors"),
     "error: models/base/embedder: the sentence-transformers model does not load"),  # see _absent: the trained model's folder stays as it was
    ("truncated-embedder", ["stages.evaluate", "hau"],
     lambda r: _truncate(r / "models/embedders/hau/model.safetensors"),
     "error: models/embedders/hau: the sentence-transformers model does not load"),
    ("truncated-generator", ["stages.generate", "hau"],
     lambda r: _truncate(r / "models/base/generator/model.safetensors"),
     "error: models/base/generator: the generator checkpoint does not load"),
    ("no-language", ["stages.generate"], None,
     "error: usage: python -m stages.generate <language>: missing <language>"),
    ("extra-argument", ["stages.filter", "hau", "afr"], None,
     "error: usage: python -m stages.filter <language>: unexpected argument 'afr'"),
    ("language-not-in-params", ["stages.prepare", "xho"], None,
     "error: usage: python -m stages.prepare <language>: 'xho' is not a language of "
     "params.yaml `languages` (hau)"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, project, tmp_path):
    _, argv, damage, expected = case
    root = tmp_path / "project"
    shutil.copytree(project, root, symlinks=True)
    if argv[0] == "stages.generate":  # its own output: absent before, so absent after
        shutil.rmtree(root / GENERATED)
    if damage is not None:
        damage(root)
    before = _snapshot(root)
    done = subprocess.run([sys.executable, "-m", *argv], cwd=root, env=stage_env(REPO),
                          capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-3000:]
    # the error is one line, the last; what the stage logged before it may precede it
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [done.stderr.strip().splitlines()[-1]], done.stderr[-3000:]
    assert errors[0].startswith(expected) and "Traceback" not in done.stderr, done.stderr[-3000:]
    after = _snapshot(root)
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert not changed, f"written despite the error: {sorted(changed)}"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder with its size and modification time (MLflow's database aside)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.name != "mlflow.db" and not p.is_dir()} | {
            str(p.relative_to(root)): (0, 0) for p in root.rglob("*") if p.is_dir()}


@pytest.mark.parametrize("key, value", [("generator.quantization", "3bit"),
                                        ("filters.min_chars", 500)])
def test_a_refused_param_costs_no_output_under_dvc_repro(tmp_path, key, value):
    """dvc repro deletes a stage's outputs before running it: the check_params gate must
    refuse the value first, so every output is still there afterwards."""
    root = commit_stand_in_outputs(copy_project(tmp_path / "repo", {}))
    outs, _ = pipeline_paths(root)
    _set_param(root, key, value)
    done = subprocess.run(["dvc", "repro", "generate@hau", "filter@hau"], cwd=root,
                          env=stage_env(root), capture_output=True, text=True)
    assert done.returncode != 0
    assert f"error: params.yaml: {key.split('.')[0]}" in done.stderr, done.stderr
    # the gate's own marker is the one output DVC deletes (it runs the gate)
    missing = [out for out in outs if not (root / out).exists()]
    assert missing == ["data/params_checked.txt"], f"outputs lost to a refused param: {missing}"
    run(["git", "checkout", "params.yaml"], root)
    run(["dvc", "repro", "check_params"], root)  # the marker back, with the same content
    assert json.loads(run(["dvc", "status", "--json"], root)) == {}  # nothing else to redo
