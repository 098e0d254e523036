"""The results of many DVC experiments: read from `dvc exp show --json` and git, or from
the committed export, reports/experiments.json.

One row per (experiment, language): {strategy, language, seed, main_score, scores
(every task), experiment, rev, kept_share, cost, items}. `items` are the experiment's
per-item scores (metrics/items/<lang>.json), read from the experiment's git commit:
DVC commits that file with each experiment (a `cache: false` output).

The export holds `dvc exp show --json` cut down to each entry's params and metrics,
and the per-item scores of every row, so the comparison's tables can be rebuilt on a
fresh clone, where no experiment exists (`python -m scripts.compare_experiments`).
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_file, read_json

log = logging.getLogger(__name__)

MAIN = "main_score"
EXPORT = Path("reports/experiments.json")
EXPORT_FORMAT = "bootstrap-embeddings experiments v1"
ITEMS = "metrics/items/{language}.json"
SUMMARY = "reports/summary.json"
# Params that never make two runs different variants: seed is what the runs are
# aggregated over, and each language has its own row anyway.
NOT_VARIANT = ("seed", "languages", "strategy")


# --- dvc and git -----------------------------------------------------------------


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError(f"{cmd[0]}: not found on PATH (activate the project's .venv)") from None


def exp_show(all_commits: bool = False) -> list[dict]:
    cmd = ["dvc", "exp", "show", "--json"] + (["--all-commits"] if all_commits else [])
    done = _run(cmd)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise UserError(f"{' '.join(cmd)} failed: {last[0]}")
    return json.loads(done.stdout)


def git_reader(rev: str, path: str) -> dict | None:
    """A file of a commit (the workspace's own file for rev "workspace"), or None."""
    if rev == "workspace":
        return read_json(path) if Path(path).is_file() else None
    done = _run(["git", "show", f"{rev}:{path}"])
    return json.loads(done.stdout) if done.returncode == 0 else None


# --- rows ------------------------------------------------------------------------


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, name + ".")
        else:
            flat[name] = json.dumps(value, sort_keys=True)  # lists become hashable
    return flat


def _params(entry: dict) -> dict:
    """The params of one `dvc exp show` entry, from params.yaml (or the first params file)."""
    files = (entry.get("data") or {}).get("params") or {}
    for name in ["params.yaml", *files]:
        data = (files.get(name) or {}).get("data")
        if data:
            return data
    return {}


def _metric(metrics: dict, path: str) -> dict:
    # a file the run did not write reads {"error": {"type": "FileNotFoundError", ...}}
    return (metrics.get(path) or {}).get("data") or {}


def _entry_rows(entry: dict, experiment: str) -> list[dict]:
    params = _params(entry)
    if "strategy" not in params or "seed" not in params:
        return []
    metrics = (entry.get("data") or {}).get("metrics") or {}
    # metrics/filter/<lang>.json: the share of triplets the filters kept
    kept = {m["data"]["language"]: m["data"]["kept_share"] for path, m in metrics.items()
            if "/filter/" in path and "kept_share" in ((m or {}).get("data") or {})}
    cost = _metric(metrics, SUMMARY).get("cost") or None
    flat = {k: v for k, v in _flatten(params).items() if k not in NOT_VARIANT}
    rows = []
    for path in metrics:
        if "/eval/" not in path:
            continue
        for language, s in _metric(metrics, path).items():
            if isinstance(s, dict) and MAIN in s:
                rows.append({
                    "strategy": params["strategy"], "language": language, "seed": params["seed"],
                    MAIN: s[MAIN], "scores": s, "experiment": experiment,
                    "rev": entry.get("rev"), "params": flat,
                    "kept_share": kept.get(language), "cost": cost,
                })
    return rows


def _label_variants(rows: list[dict]) -> None:
    """Name each row's variant: its strategy, plus the params in which runs of that
    strategy differ (other than seed). Pops the rows' params."""
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_strategy[row["strategy"]].append(row)
    for strategy, group in by_strategy.items():
        keys = set().union(*(r["params"] for r in group))
        differing = sorted(k for k in keys if len({r["params"].get(k) for r in group}) > 1)
        for row in group:
            params = row.pop("params")
            if differing:
                spec = ", ".join(f"{k}={params.get(k)}" for k in differing)
                row["strategy"] = f"{strategy} ({spec})"


def _label(entry: dict) -> str:
    """An entry's experiment / branch name, else its short revision."""
    rev = entry.get("rev") or "?"
    return entry.get("name") or (rev if rev == "workspace" else rev[:7])


def _entries(data: list[dict], include_workspace: bool):
    """(entry, label) of every finished experiment and baseline commit, newest first."""
    for commit in data:
        if commit.get("rev") == "workspace" and not include_workspace:
            continue
        for exp in commit.get("experiments") or []:
            # a queued, running or failed experiment shows the params it was given with
            # whatever metrics the workspace holds: not its result
            state = (exp.get("executor") or {}).get("state")
            if state not in (None, "success"):
                log.info("leaving out %s (%s)", exp.get("name"), state)
                continue
            for rev in exp.get("revs") or []:
                yield rev, _label(rev)
        yield commit, _label(commit)


def rows_from_exp_show(data: list[dict], include_workspace: bool = False) -> list[dict]:
    """Rows (module docstring; without items) from `dvc exp show --json` or the export.

    Each baseline commit and each of its experiments contributes one row per
    metrics/eval/<lang>.json it has; entries without them (failed runs, commits from
    before the pipeline) contribute none. The workspace is left out unless asked for:
    after `dvc exp run` it repeats the newest experiment, and after a failed run its
    params no longer match its metrics. A (strategy, language, seed) seen twice keeps
    its first occurrence (newest experiments come first); a differing duplicate is
    logged, since it means some other param differed. Experiments still queued or
    running, or failed, are left out.
    """
    rows = [row for entry, label in _entries(data, include_workspace)
            for row in _entry_rows(entry, label)]
    _label_variants(rows)
    kept: dict[tuple, dict] = {}
    for row in rows:
        key = (row["strategy"], row["language"], row["seed"])
        if key not in kept:
            kept[key] = row
        elif kept[key][MAIN] != row[MAIN]:
            log.warning("%s and %s both have strategy %s, language %s, seed %s, with different "
                        "scores; keeping %s", kept[key]["experiment"], row["experiment"], *key,
                        kept[key]["experiment"])
    return list(kept.values())


def experiments_only(data: list[dict]) -> list[dict]:
    """`dvc exp show --json` without the baseline commits' own results: a commit with no
    experiment is dropped, and a commit's own metrics are cleared (its metric files may
    come from an older run, e.g. under an earlier evaluation); its experiments stay."""
    return [{**commit, "data": {**(commit.get("data") or {}), "metrics": {}}}
            for commit in data if commit.get("experiments")]


def count_experiments(data: list[dict]) -> int:
    """How many experiments (not baseline commits) `dvc exp show --json` lists."""
    return sum(len(commit.get("experiments") or []) for commit in data)


def attach_items(rows: list[dict], read: Callable[[str, str], dict | None]) -> None:
    """Put each row's per-item scores in row["items"] (None where the run has none,
    e.g. an experiment from before they were recorded)."""
    for row in rows:
        row["items"] = read(row["rev"], ITEMS.format(language=row["language"])) \
            if row.get("rev") else None


# --- the export ------------------------------------------------------------------


def _strip(entry: dict) -> dict:
    data = entry.get("data") or {}
    return {"rev": entry.get("rev"), "name": entry.get("name"),
            "data": {k: data.get(k) for k in ("rev", "timestamp", "params", "metrics")}}


def strip_exp_show(data: list[dict]) -> list[dict]:
    """`dvc exp show --json` with only what the rows are made of (params and metrics;
    no deps, outs or timing), in the same shape, so rows_from_exp_show reads either."""
    out = []
    for commit in data:
        experiments = [
            {"name": exp.get("name"), "executor": exp.get("executor"),
             "revs": [_strip(rev) for rev in exp.get("revs") or []]}
            for exp in commit.get("experiments") or []
        ]
        out.append(_strip(commit) | {"experiments": experiments or None})
    return out


def write_export(path: str | Path, data: list[dict], rows: list[dict]) -> None:
    items = {f"{row['rev']}:{row['language']}": row["items"] for row in rows if row["items"]}
    export = {"format": EXPORT_FORMAT, "exp_show": strip_exp_show(data), "items": items}
    with atomic_file(path) as fh:
        json.dump(export, fh, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        fh.write("\n")


def read_export(path: str | Path) -> tuple[list[dict], Callable[[str, str], dict | None]]:
    """(the stripped exp show data, a reader of its per-item scores) from an export."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    export = read_json(path)
    if not isinstance(export, dict) or export.get("format") != EXPORT_FORMAT:
        raise UserError(f"{path}: not an export of scripts.compare_experiments "
                        f"(expected format {EXPORT_FORMAT!r})")
    items = export["items"]

    def read(rev: str, item_path: str) -> dict | None:
        language = Path(item_path).stem
        return items.get(f"{rev}:{language}")

    return export["exp_show"], read
