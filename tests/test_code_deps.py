"""Code is a dependency: each stage lists the project files that can change its output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from project_copy import commit_stand_in_outputs, copy_project, run, stage_env
from scripts import code_deps

# a library module used by some stages and not others
EDITED = "bootstrap_embeddings/text.py"


def test_dvc_yaml_lists_each_stages_import_closure():
    diff = code_deps.differences()
    assert not diff, "dvc.yaml disagrees with the imports; run `python -m scripts.code_deps " \
        "--write`:\n" + "\n".join(f"{s}: add {a}, remove {r}" for s, (a, r) in diff.items())


def test_the_closure_follows_lazy_imports_and_stops_at_the_exempt_modules():
    closure = set(code_deps.import_closure(code_deps.ROOT / "stages" / "generate.py"))
    # imported inside functions, two steps away
    assert "bootstrap_embeddings/generator/prompts.py" in closure
    # every strategy, since the registry lists the package
    assert {"bootstrap_embeddings/strategies/icl.py",
            "bootstrap_embeddings/strategies/parallel.py"} <= closure
    assert not closure & set(code_deps.NOT_OUTPUT_SHAPING)


def test_every_exempt_module_says_why():
    for path, why in code_deps.NOT_OUTPUT_SHAPING.items():
        assert (code_deps.ROOT / path).is_file(), path
        assert len(why) > 20, path


@pytest.mark.integration
def test_editing_a_library_module_changes_exactly_the_stages_that_import_it(tmp_path):
    """Committed stand-in outputs for every stage, then one edit: `dvc status` must name the
    stages whose import closure holds the edited file, and no other."""
    root = commit_stand_in_outputs(copy_project(tmp_path / "repo", {}))
    assert json.loads(run(["dvc", "status", "--json"], root)) == {}

    with open(root / EDITED, "a", encoding="utf-8") as fh:
        fh.write("\n# an edit\n")
    status = json.loads(run(["dvc", "status", "--json"], root))
    changed = {name.split("@")[0] for name in status}
    importers = {name for name, files in code_deps.expected(root).items() if EDITED in files}
    assert importers and changed == importers
    # downstream stages are not "changed" yet: their deps (the outputs) are as committed
    assert "report" not in changed


def test_a_stage_without_the_python_m_form_is_refused(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages:\n  odd:\n    cmd: bash run.sh\n")
    with pytest.raises(ValueError, match="stage odd"):
        code_deps.expected(tmp_path)


def test_the_checker_exits_1_and_names_the_stage_when_dvc_yaml_is_stale(tmp_path):
    import shutil

    for part in ("stages", "bootstrap_embeddings"):
        shutil.copytree(code_deps.ROOT / part, tmp_path / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    dvc = (code_deps.ROOT / "dvc.yaml").read_text()
    (tmp_path / "dvc.yaml").write_text(dvc.replace("        - stages/filter.py\n", "", 1))
    assert code_deps.differences(tmp_path) == {"filter": (["stages/filter.py"], [])}
    done = subprocess.run([sys.executable, "-m", "scripts.code_deps", "--root", str(tmp_path)],
                          cwd=code_deps.ROOT, env=stage_env(code_deps.ROOT),
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stdout.strip() == "filter: add ['stages/filter.py']; remove -"
