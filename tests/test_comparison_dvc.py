"""The comparison on real DVC experiments: per-item scores travel with each experiment's
commit (a `cache: false` output), the export rebuilds the tables on a fresh clone, and
the README's compact `dvc exp show` command lists one column per metric."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from project_copy import GIT_USER, stage_env

pytestmark = pytest.mark.integration

# A stand-in for the evaluate, filter and report stages: their metric files, in their
# formats, with scores drawn from the params (the real stages take minutes).
FAKE_STAGE = '''
import json, os, random, yaml
p = yaml.safe_load(open("params.yaml"))
rng = random.Random(f"{p['strategy']}-{p['seed']}")
level = {"base": 0.4, "parallel": 0.7}.get(p["strategy"], 0.45)
for d in ("metrics/eval", "metrics/items", "metrics/filter", "reports"):
    os.makedirs(d, exist_ok=True)
for lang in p["languages"]:
    tasks = {t: {"source": s, "ids": [f"{s}{i}" for i in range(n)],
                 "scores": [min(1, max(0, level + rng.gauss(0, .2))) for _ in range(n)]}
             for t, s, n in [("UDHRBitextMining", "udhr", 24), ("UDHRRetrieval", "udhr", 24),
                             ("CLDRBitextMining", "cldr", 300), ("CLDRRetrieval", "cldr", 300)]}
    scores = {t: sum(e["scores"]) / len(e["scores"]) for t, e in tasks.items()}
    scores["main_score"] = sum(scores.values()) / 4
    json.dump({lang: scores}, open(f"metrics/eval/{lang}.json", "w"))
    json.dump({"language": lang, "main_score_tasks": list(tasks), "tasks": tasks},
              open(f"metrics/items/{lang}.json", "w"))
    json.dump({"language": lang, "kept_share": 0.9}, open(f"metrics/filter/{lang}.json", "w"))
json.dump({"cost": {"generated_tokens": 10, "total_s": 5.0}, "all": {"main_score": 0.5}},
          open("reports/summary.json", "w"))
'''
DVC_YAML = """
stages:
  evaluate:
    cmd: python fake.py
    deps: [fake.py]
    params: [strategy, seed, languages]
    outs:
      - metrics/items:
          cache: false
    metrics:
      - metrics/eval:
          cache: false
      - metrics/filter:
          cache: false
      - reports/summary.json:
          cache: false
"""


def _run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, env=stage_env(REPO, COLUMNS="250"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_experiments_carry_their_items_and_the_export_rebuilds_the_tables(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "fake.py").write_text(FAKE_STAGE)
    (project / "dvc.yaml").write_text(DVC_YAML)
    params = (REPO / "params.yaml").read_text().replace("languages: [hau]", "languages: [hau, xho]")
    (project / "params.yaml").write_text(params)
    git = ["git", *GIT_USER]
    _run(["git", "init", "-q"], project)
    _run(["dvc", "init", "-q"], project)
    _run(["dvc", "config", "core.analytics", "false"], project)
    _run([*git, "add", "-A"], project)
    _run([*git, "commit", "-qm", "init"], project)
    for strategy, seed in [("base", 0), ("parallel", 0), ("icl", 0), ("icl", 1)]:
        _run(["dvc", "exp", "run", "-q", "-n", f"{strategy}-s{seed}",
              "-S", f"strategy={strategy}", "-S", f"seed={seed}"], project)

    # each experiment's commit holds its own per-item scores
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], project))
    revs = {rev["name"]: rev["rev"] for c in shown for e in c.get("experiments") or []
            for rev in e["revs"]}
    items = {name: json.loads(_run(["git", "show", f"{rev}:metrics/items/hau.json"], project))
             for name, rev in revs.items()}
    assert items["icl-s0"]["tasks"] != items["icl-s1"]["tasks"]

    compare = [sys.executable, "-m", "scripts.compare_experiments"]
    _run(compare, project)
    table = (project / "reports/comparison.md").read_text()
    assert "## Difference to `base`" in table and "| icl |" in table
    _run([*git, "add", "reports/experiments.json"], project)
    _run([*git, "commit", "-qm", "export"], project)

    # a fresh clone has no experiments: the tables come back from the export
    _run(["git", "clone", "-q", str(project), str(tmp_path / "clone")], tmp_path)
    out = _run(compare, tmp_path / "clone")
    assert "rebuilding from reports/experiments.json" in out
    assert (tmp_path / "clone/reports/comparison.md").read_text() == table

    # the README's compact view: one column per score, no repeats
    compact = _run(["dvc", "exp", "show", "--no-pager", "--drop", ".*", "--keep",
                    r"Experiment|[a-z]{3}\.main_score|strategy|seed|cost\.total_s"], project)
    header = compact.splitlines()[1].split()
    assert header == ["Experiment", "hau.main_score", "xho.main_score", "cost.total_s",
                      "all.main_score", "strategy", "seed"]
