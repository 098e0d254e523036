"""The project files each DVC stage must list as deps: its module and what it imports.

DVC re-runs a stage when one of its deps changes; a stage whose code changed but
whose deps do not name that code would keep a stale output. So each stage in
dvc.yaml lists `stages/<name>.py` and every project module it imports, transitively
(imports inside functions too: stages import heavy modules lazily), except the modules
below, which cannot change what a stage writes.

    python -m scripts.code_deps           # say which stages list the wrong code deps
    python -m scripts.code_deps --write   # rewrite those lists in dvc.yaml (comments kept)

`tests/test_code_deps.py` fails when dvc.yaml and the imports disagree.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bootstrap_embeddings", "stages")

# Modules a stage imports that cannot change its outputs, with the reason. Imports are
# not followed through them.
NOT_OUTPUT_SHAPING = {
    "bootstrap_embeddings/cli.py": "the stage entry point: loads params, checks arguments, "
                                   "turns a UserError into one line and exit 2",
    "bootstrap_embeddings/errors.py": "the exception type of bad input",
    "bootstrap_embeddings/tracking.py": "MLflow logging, beside the outputs",
    "bootstrap_embeddings/distributed.py": "which process does what under torchrun; the "
                                           "outputs equal the one-process run's "
                                           "(tests/test_distributed.py)",
    "bootstrap_embeddings/config.py": "the params schema: a stage's values reach it as the "
                                      "params dvc.yaml declares, and no default of the schema "
                                      "stands in for a value params.yaml leaves out "
                                      "(tests/test_config.py checks both params files)",
}

_STAGE_MODULE = re.compile(r"python -m (stages\.\w+)")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The file of a project module ("bootstrap_embeddings.files"), or None if it is not one."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _has_code(path: Path) -> bool:
    """Whether a package __init__ does more than hold a docstring."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
               for node in body)


def _discovers_submodules(tree: ast.Module) -> bool:
    """A package that imports its own modules by listing them (pkgutil.iter_modules(__path__))."""
    return any(isinstance(node, ast.Attribute) and node.attr == "iter_modules"
               for node in ast.walk(tree))


def direct_imports(path: Path, root: Path = ROOT) -> set[Path]:
    """Project files `path` imports anywhere in its body, with the package inits that run code."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(root).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    else:
        package = package.removesuffix(".__init__")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from ..data import y
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from pkg import mod` imports pkg.mod; `from mod import name` imports mod
            submodules = {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}", root)}
            names |= submodules
            if len(submodules) < len(node.names):
                names.add(base)
    found = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the module and the packages above it
            file = module_file(".".join(parts[:i]), root)
            if file is not None and (i == len(parts) or _has_code(file)):
                found.add(file)
    if path.name == "__init__.py" and _discovers_submodules(tree):
        # the public modules it lists (a leading underscore marks a helper or __main__)
        found |= {f for f in path.parent.glob("*.py") if not f.name.startswith("_")}
    return found


def import_closure(path: Path, root: Path = ROOT) -> list[str]:
    """`path` and every project file it imports, transitively, as paths relative to `root`."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += [f for f in direct_imports(current, root)
                 if str(f.relative_to(root)) not in NOT_OUTPUT_SHAPING]
    return sorted(str(f.relative_to(root)) for f in seen)


def _stage_defs(dvc: dict) -> dict[str, dict]:
    """name -> the stage's definition (the `do` body of a foreach / matrix stage)."""
    return {name: (stage.get("do", stage) if "foreach" in stage else stage)
            for name, stage in dvc["stages"].items()}


def expected(root: Path = ROOT) -> dict[str, list[str]]:
    """Stage name -> the code files its deps must list."""
    import yaml

    dvc = yaml.safe_load((root / "dvc.yaml").read_text())
    out = {}
    for name, stage in _stage_defs(dvc).items():
        match = _STAGE_MODULE.search(stage["cmd"])
        if match is None:
            raise ValueError(f"dvc.yaml: stage {name}: cmd is not `python -m stages.<name>`")
        out[name] = import_closure(module_file(match.group(1), root), root)
    return out


def declared(root: Path = ROOT) -> dict[str, list[str]]:
    """Stage name -> the .py files its deps list in dvc.yaml."""
    import yaml

    dvc = yaml.safe_load((root / "dvc.yaml").read_text())
    return {name: sorted(d for d in stage.get("deps", []) if str(d).endswith(".py"))
            for name, stage in _stage_defs(dvc).items()}


def differences(root: Path = ROOT) -> dict[str, tuple[list[str], list[str]]]:
    """Stage -> (code files to add to its deps, code files to remove), where they differ."""
    want, have = expected(root), declared(root)
    diff = {}
    for name in want:
        missing = sorted(set(want[name]) - set(have[name]))
        extra = sorted(set(have[name]) - set(want[name]))
        if missing or extra:
            diff[name] = (missing, extra)
    return diff


def write(root: Path = ROOT) -> list[str]:
    """Rewrite the code deps of every stage in dvc.yaml (data deps and comments kept)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedSeq

    yaml = YAML()  # round trip: comments and layout survive
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    path = root / "dvc.yaml"
    dvc = yaml.load(path.read_text())
    want = expected(root)
    changed = []
    for name, stage in dvc["stages"].items():
        body = stage["do"] if "foreach" in stage else stage
        if "deps" not in body:
            body["deps"] = CommentedSeq()
        deps = body["deps"]
        # data deps first, code after them: a comment on a data dep stays on its line
        data = [d for d in deps if not str(d).endswith(".py")]
        if list(deps) != data + want[name]:
            for i in reversed(range(len(deps))):
                if str(deps[i]).endswith(".py"):
                    del deps[i]
            deps.extend(want[name])
            changed.append(name)
        deps.fa.set_block_style()
    with open(path, "w") as fh:
        yaml.dump(dvc, fh)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project (default: this one)")
    args = parser.parse_args(argv)
    if args.write:
        changed = write(args.root)
        print(f"dvc.yaml: code deps rewritten for {', '.join(changed) or 'no stage'}")
        return 0
    diff = differences(args.root)
    for name, (missing, extra) in diff.items():
        print(f"{name}: add {missing or '-'}; remove {extra or '-'}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
