"""Tables and plots from the evaluation metrics.

Two views:
- one experiment (the `report` stage): metrics/eval/<lang>.json of the current
  params -> a markdown table (language x task), DVC metrics and a bar plot;
- several experiments (scripts/compare_experiments.py): rows {strategy, language,
  seed, main_score} parsed from `dvc exp show --json` -> mean ± sd over the runs that
  differ only in seed, per strategy x language, with the baselines (base, english,
  parallel) next to the generative strategies. Runs of one strategy that differ in
  another param too (e.g. filters.consistency.enabled) are kept apart as variants,
  labelled with that param.

Plots use matplotlib's `Figure` directly (the Agg canvas for PNG), so no pyplot
backend or global state is involved.
"""

from __future__ import annotations

import csv
import json
import logging
import statistics
from collections import defaultdict
from pathlib import Path

from bootstrap_embeddings.config import BASELINE_STRATEGIES, GENERATIVE_STRATEGIES
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_file, read_json

log = logging.getLogger(__name__)

MAIN = "main_score"
# The language column of the aggregate over all languages
ALL = "all"
# Baselines first, then the strategies whose data the generator writes
STRATEGY_ORDER = (*BASELINE_STRATEGIES, *GENERATIVE_STRATEGIES)
BASELINES = BASELINE_STRATEGIES
# Params that never make two runs different variants: seed is what the runs are
# aggregated over, and each language has its own row anyway.
NOT_VARIANT = ("seed", "languages", "strategy")


def _base_strategy(label: str) -> str:
    """`xl_lora` from a variant label such as `xl_lora (filters.consistency.enabled=true)`."""
    return label.split(" (", 1)[0]


def _strategy_key(strategy: str) -> tuple[int, str]:
    base = _base_strategy(strategy)
    order = STRATEGY_ORDER.index(base) if base in STRATEGY_ORDER else len(STRATEGY_ORDER)
    return order, strategy


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, name + ".")
        else:
            flat[name] = json.dumps(value, sort_keys=True)  # lists become hashable
    return flat


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _save_png(fig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)


# --- one experiment --------------------------------------------------------------


def read_eval_metrics(metrics_dir: str | Path, languages: list[str]) -> dict[str, dict[str, float]]:
    """{language: {task: score, ..., "main_score": x}} from metrics/eval/<lang>.json.

    Only the current params' languages: the folder may still hold files of languages
    an earlier experiment had.
    """
    scores = {}
    for language in languages:
        path = Path(metrics_dir) / f"{language}.json"
        if not path.is_file():
            raise UserError(f"{path}: no such file; run the evaluate stage for {language} first")
        data = read_json(path)
        entry = data.get(language) if isinstance(data, dict) else None
        if not isinstance(entry, dict) or MAIN not in entry:
            raise UserError(
                f"{path}: expected {{{language!r}: {{<task>: score, ..., {MAIN!r}: x}}}}"
            )
        scores[language] = entry
    return scores


def summary(scores: dict[str, dict[str, float]]) -> dict:
    """DVC metrics: each language's main score and their mean."""
    mains = {language: s[MAIN] for language, s in scores.items()}
    return {MAIN: mains, f"mean_{MAIN}": statistics.fmean(mains.values())}


def _task_names(scores: dict[str, dict[str, float]]) -> list[str]:
    return sorted({task for s in scores.values() for task in s if task != MAIN})


def render_report(scores: dict[str, dict[str, float]], strategy: str, seed: int) -> str:
    """Markdown: one row per language, one column per task, then the main score."""
    tasks = _task_names(scores)
    lines = [
        "# Evaluation report",
        "",
        f"Strategy `{strategy}`, seed {seed}, languages {', '.join(scores)}.",
        "",
        _md_row(["language", *tasks, MAIN]),
        "| --- |" + " ---: |" * (len(tasks) + 1),
    ]
    for language, s in scores.items():
        lines.append(_md_row([language, *(_fmt(s.get(t)) for t in tasks), _fmt(s[MAIN])]))
    if len(scores) > 1:
        means = [statistics.fmean(s[t] for s in scores.values() if t in s) for t in tasks]
        overall = summary(scores)[f"mean_{MAIN}"]
        lines.append(_md_row(["mean", *map(_fmt, means), _fmt(overall)]))
    lines += [
        "",
        "Each task's score is its mteb main score averaged over its subsets (both directions "
        f"for the held-out UDHR tasks); `{MAIN}` is the mean over the held-out UDHR tasks. "
        "mteb's full results are under `results/mteb/<language>/`.",
        "",
        "![scores](figures/scores.png)",
        "",
    ]
    return "\n".join(lines)


def plot_scores(scores: dict[str, dict[str, float]], strategy: str, path: str | Path) -> None:
    """Grouped bars: per language, one bar per task and one for the main score."""
    from matplotlib.figure import Figure

    columns = [*_task_names(scores), MAIN]
    languages = list(scores)
    width = 0.8 / len(columns)
    fig = Figure(figsize=(3 + 1.2 * len(languages), 3.5), layout="constrained")
    ax = fig.subplots()
    for i, column in enumerate(columns):
        xs = [j + (i - (len(columns) - 1) / 2) * width for j in range(len(languages))]
        ax.bar(xs, [scores[lang].get(column, 0.0) for lang in languages], width, label=column)
    ax.set_xticks(range(len(languages)), languages)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(f"strategy {strategy}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    _save_png(fig, path)


def write_scores_csv(scores: dict[str, dict[str, float]], strategy: str, path: str | Path) -> None:
    """language,strategy,main_score rows: the data of DVC's bar plot."""
    with atomic_file(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["language", "strategy", MAIN])
        for language, s in scores.items():
            writer.writerow([language, strategy, s[MAIN]])


# --- several experiments ---------------------------------------------------------


def _params(entry: dict) -> dict:
    """The params of one `dvc exp show` entry, from params.yaml (or the first params file)."""
    files = (entry.get("data") or {}).get("params") or {}
    for name in ["params.yaml", *files]:
        data = (files.get(name) or {}).get("data")
        if data:
            return data
    return {}


def _entry_rows(entry: dict, experiment: str) -> list[dict]:
    params = _params(entry)
    if "strategy" not in params or "seed" not in params:
        return []
    metrics = (entry.get("data") or {}).get("metrics") or {}
    # metrics/filter/<lang>.json: the share of triplets the filters kept
    kept = {m["data"]["language"]: m["data"]["kept_share"] for path, m in metrics.items()
            if "/filter/" in path and "kept_share" in ((m or {}).get("data") or {})}
    flat = {k: v for k, v in _flatten(params).items() if k not in NOT_VARIANT}
    rows = []
    for path, metric in metrics.items():
        # a file the run did not write reads {"error": {"type": "FileNotFoundError", ...}}
        if "/eval/" not in path or "data" not in (metric or {}):
            continue
        for language, s in metric["data"].items():
            if isinstance(s, dict) and MAIN in s:
                row = {"strategy": params["strategy"], "language": language,
                       "seed": params["seed"], MAIN: s[MAIN], "experiment": experiment,
                       "params": flat}
                if kept.get(language) is not None:
                    row["kept_share"] = kept[language]
                rows.append(row)
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


def rows_from_exp_show(data: list[dict], include_workspace: bool = False) -> list[dict]:
    """Rows {strategy, language, seed, main_score, experiment} from `dvc exp show --json`.

    Each baseline commit and each of its experiments contributes one row per
    metrics/eval/<lang>.json it has; entries without them (failed runs, commits from
    before the pipeline) contribute none. The workspace is left out unless asked for:
    after `dvc exp run` it repeats the newest experiment, and after a failed run its
    params no longer match its metrics. A (strategy, language, seed) seen twice keeps
    its first occurrence (newest experiments come first); a differing duplicate is
    logged, since it means some other param differed. Experiments still queued or
    running, or failed, are left out.
    """
    rows = []
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
                rows += _entry_rows(rev, _label(rev))
        rows += _entry_rows(commit, _label(commit))
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


def _stats(strategy: str, language: str, per_seed: dict[int, float],
           kept: dict[int, float] | None = None) -> dict:
    values = [per_seed[s] for s in sorted(per_seed)]
    kept_values = [kept[s] for s in sorted(per_seed) if kept and s in kept]
    return {"strategy": strategy, "language": language, "n": len(values),
            "seeds": sorted(per_seed), "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else None,
            "kept_share": statistics.fmean(kept_values) if kept_values else None}


def aggregate_experiments(rows: list[dict]) -> list[dict]:
    """Mean ± sample sd of the main score over seeds, per strategy x language.

    Rows are {strategy, language, seed, main_score}; the result has one row
    {strategy, language, n, seeds, mean, sd} per cell (sd None with a single seed).
    Each strategy with every language also gets language "all": per seed the mean over
    the languages, over the seeds that have every language.
    """
    by_cell: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    kept_by_cell: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for row in rows:
        cell = by_cell[(row["strategy"], row["language"])]
        if row["seed"] in cell:
            raise UserError(f"two rows for strategy {row['strategy']}, language "
                            f"{row['language']}, seed {row['seed']}")
        cell[row["seed"]] = float(row[MAIN])
        if row.get("kept_share") is not None:
            kept_by_cell[(row["strategy"], row["language"])][row["seed"]] = row["kept_share"]
    languages = sorted({language for _, language in by_cell})
    strategies = sorted({strategy for strategy, _ in by_cell}, key=_strategy_key)

    table = []
    for strategy in strategies:
        cells = {lang: by_cell[(strategy, lang)] for lang in languages
                 if (strategy, lang) in by_cell}
        table += [_stats(strategy, lang, per_seed, kept_by_cell.get((strategy, lang)))
                  for lang, per_seed in cells.items()]
        if len(languages) > 1 and len(cells) == len(languages):
            complete = set.intersection(*(set(per_seed) for per_seed in cells.values()))
            per_seed = {seed: statistics.fmean(cells[lang][seed] for lang in languages)
                        for seed in complete}
            if per_seed:
                table.append(_stats(strategy, ALL, per_seed))
    return table


def _layout(table: list[dict]) -> tuple[list[str], list[str], dict[tuple[str, str], dict]]:
    """Languages (then "all"), strategies (baselines first), the rows by (strategy, language)."""
    languages = sorted({r["language"] for r in table} - {ALL})
    if any(r["language"] == ALL for r in table):
        languages.append(ALL)
    strategies = sorted({r["strategy"] for r in table}, key=_strategy_key)
    return languages, strategies, {(r["strategy"], r["language"]): r for r in table}


def _cell(row: dict | None) -> str:
    if row is None:
        return "—"
    spread = "" if row["sd"] is None else f" ± {row['sd']:.4f}"
    kept = "" if row.get("kept_share") is None else f", kept {row['kept_share']:.0%}"
    return f"{row['mean']:.4f}{spread} (n={row['n']}{kept})"


def render_comparison(table: list[dict]) -> str:
    """Markdown: strategies (baselines first) x languages, mean ± sd (n seeds)."""
    languages, strategies, cells = _layout(table)
    lines = [
        "# Strategy comparison",
        "",
        f"`{MAIN}` (mean of the held-out UDHR tasks): mean ± sample sd over seeds "
        "(n = number of seeds; kept = mean share of the generated triplets the filters "
        "kept). `base` is the untouched embedder, `english` the one trained on English NLI, "
        "`parallel` the one trained on the language's real (X, English) pairs. "
        f"`{ALL}`: per seed the mean over languages, for the seeds that have every language.",
        "",
        _md_row(["strategy", *languages]),
        "| --- |" + " ---: |" * len(languages),
    ]
    for strategy in strategies:
        row = [_cell(cells.get((strategy, lang))) for lang in languages]
        lines.append(_md_row([strategy, *row]))
    lines += ["", "![comparison](comparison.png)", ""]
    return "\n".join(lines)


def plot_comparison(table: list[dict], path: str | Path) -> None:
    """Grouped bars with sd error bars (none for one seed): per language, a bar per strategy."""
    from matplotlib.figure import Figure

    languages, strategies, cells = _layout(table)
    width = 0.8 / len(strategies)
    fig = Figure(figsize=(3 + 0.4 * len(languages) * len(strategies), 3.8), layout="constrained")
    ax = fig.subplots()
    for i, strategy in enumerate(strategies):
        present = [(j, cells[(strategy, lang)]) for j, lang in enumerate(languages)
                   if (strategy, lang) in cells]
        ax.bar([j + (i - (len(strategies) - 1) / 2) * width for j, _ in present],
               [r["mean"] for _, r in present], width, label=strategy, capsize=3,
               yerr=[float("nan") if r["sd"] is None else r["sd"] for _, r in present],
               hatch="//" if _base_strategy(strategy) in BASELINES else None)
    ax.set_xticks(range(len(languages)), languages)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{MAIN} (mean ± sd over seeds)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    _save_png(fig, path)
