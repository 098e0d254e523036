"""kill -9 safety of the generating stages (issue 14.7): `generate` and `xl_lora_data` run as
real processes on the tiny models, are SIGKILLed at several points (tests/
generation_kill_point.py) one after the other, each rerun resuming from what the
killed one left; the final output must be byte for byte an uninterrupted run's, with no
temporary folder, partial file or half-written output left behind.

Every run is a fresh Python process (~10-20 s of imports on a 2-core machine): hence
`integration`.
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
from conftest import REPO, deep_merge, make_lora

KILLER = Path(__file__).with_name("generation_kill_point.py")
# 7 anchors, batches of 2: 4 batches a relation, 8 in all
ANCHORS = [{"id": f"a{i}", "text": f"Sentence number {i} is here."} for i in range(7)]
# The generate stage's kill points, in the order one chain of runs meets them: each run
# resumes from what the run before was killed with.
GENERATE_POINTS = [
    "load",                    # the model loaded, nothing generated
    "append:2",                # early: one batch on disk, the second torn mid-line
    "append:5",                # late: 1 + 4 batches on disk, the sixth of 8 torn
    "output:triplets.jsonl",   # while writing the output (stats.json not yet, not in place)
    "replaced",                # the output in place, partial file not yet deleted
]
XL_POINTS = ["load", "append:2", "output:pos.jsonl", "replaced"]


def _project(root: Path, generator_dir: Path, **overrides) -> Path:
    raw = deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()), overrides)
    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    target = root / "models/base/generator"
    shutil.copytree(generator_dir, target)
    (target / "source.json").write_text(json.dumps({"kind": "local", "spec": str(generator_dir)}))
    return root


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _run(project: Path, module: str, *args: str, kill_at: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db"}
    prefix = [str(KILLER), kill_at] if kill_at else []
    result = subprocess.run([sys.executable, *prefix, "-m", module, *args], cwd=project,
                            env=env, capture_output=True, text=True, timeout=600)
    expected = -signal.SIGKILL if kill_at else 0
    assert result.returncode == expected, (
        f"{module} {kill_at or ''}: exit {result.returncode}\n{result.stderr[-3000:]}")
    return result


def _leftovers(folder: Path) -> list[str]:
    """Temporary siblings or children an atomic write left behind."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name)


def _xl_lora_project(root: Path, tiny_generator: Path, module: str) -> Path:
    from bootstrap_embeddings.files import write_json
    from bootstrap_embeddings.strategies import RECIPE_FILE, build_recipe

    project = _project(root, tiny_generator, strategy="xl_lora", languages=["hau"], generator={
        "quantization": "none",
        "generation": {"max_new_tokens": 6, "batch_size": 2, "do_sample": True}})
    adapters = ("xl_lora", "task")[module == "xl_lora_data"]
    for kind, seed in (("pos", 1), ("neg", 2)):
        make_lora(tiny_generator, project / f"models/adapters/{adapters}_{kind}", seed)
    if module == "generate":
        here = Path.cwd()
        os.chdir(project)  # the recipe names the adapters relative to the project
        try:
            write_json(project / "models/generators/xl_lora/hau" / RECIPE_FILE,
                       build_recipe("xl_lora", "hau"))
        finally:
            os.chdir(here)
        _write_jsonl(project / "data/prepared/hau/anchors.jsonl", ANCHORS)
    else:
        pairs = [{"id": f"p{i}", "language": ("deu", "swh")[i % 2], "text": f"Satz {i}.",
                  "english": f"Sentence number {i // 2} is here."} for i in range(10)]
        _write_jsonl(project / "data/prepared/shared/xl_parallel.jsonl", pairs)
    return project


def _kill_chain(tmp_path, tiny_generator, module, args, points, output: Path, partial_kind):
    clean = _xl_lora_project(tmp_path / "clean", tiny_generator, module)
    _run(clean, f"stages.{module}", *args)
    killed = _xl_lora_project(tmp_path / "killed", tiny_generator, module)
    cache = killed / ".cache" / partial_kind
    for point in points:
        _run(killed, f"stages.{module}", *args, kill_at=point)
        if point.startswith("append:"):  # the torn line is on disk
            (partial,) = cache.glob("*.jsonl")
            assert not partial.read_bytes().endswith(b"\n")
    last = _run(killed, f"stages.{module}", *args)

    files = sorted(p.name for p in (clean / output).iterdir())
    assert files == sorted(p.name for p in (killed / output).iterdir())
    for name in files:
        if name.endswith(".jsonl"):
            data = (killed / output / name).read_bytes()
            assert data == (clean / output / name).read_bytes(), name
            assert data.count(b"\n") >= 1
    assert _leftovers(killed / output.parent) == []
    assert list(cache.iterdir()) == []  # the partial file is gone once the output is in place
    return last


@pytest.mark.integration
def test_generate_killed_at_five_points_ends_as_an_uninterrupted_run(tiny_generator, tmp_path):
    output = Path("data/generated/hau")
    last = _kill_chain(tmp_path, tiny_generator, "generate", ["hau"], GENERATE_POINTS, output,
                       "generate")
    stats = json.loads((tmp_path / "killed" / output / "stats.json").read_text())
    # the last run found the output of the 'replaced' kill in place and the whole partial
    # file still there: it regenerates nothing
    assert stats["resumed_batches"] == 8
    assert "hau: " in last.stdout


@pytest.mark.integration
def test_xl_lora_data_killed_at_four_points_ends_as_an_uninterrupted_run(tiny_generator, tmp_path):
    _kill_chain(tmp_path, tiny_generator, "xl_lora_data", [], XL_POINTS, Path("data/xl_lora"),
                "xl_lora_data")
