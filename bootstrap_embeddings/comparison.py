"""The comparison across experiments: per strategy x language, the main score over seeds
with its 95% interval, its difference to `base` and to `parallel` with theirs, each
task's score, and the cost; markdown tables and two plots.

Rows come from experiments.py. Runs that differ only in `seed` are aggregated; runs of
one strategy that differ in another param too (e.g. filters.consistency.enabled) are
variants, labelled with that param. Intervals: intervals.py (a bootstrap over the
held-out items of the seed-averaged per-item scores; pairs by item for differences).
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from pathlib import Path

from bootstrap_embeddings import intervals
from bootstrap_embeddings import strategies
from bootstrap_embeddings.cost import FIELDS as COST_FIELDS
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.report import (
    ALL,
    MAIN,
    fmt,
    fmt_interval,
    fmt_seconds,
    md_header,
    md_row,
    save_png,
)

log = logging.getLogger(__name__)

# Baselines first, then the strategies whose data the generator writes (registry order)
STRATEGY_ORDER = strategies.names()
BASELINES = tuple(name for name, s in strategies.registry().items() if not s.generates)
# The strategies every other is compared with, item by item
REFERENCES = ("base", "parallel")
MARK = "*"


def _base_strategy(label: str) -> str:
    """`xl_lora` from a variant label such as `xl_lora (filters.consistency.enabled=true)`."""
    return label.split(" (", 1)[0]


def _strategy_key(strategy: str) -> tuple[int, str]:
    base = _base_strategy(strategy)
    order = STRATEGY_ORDER.index(base) if base in STRATEGY_ORDER else len(STRATEGY_ORDER)
    return order, strategy


# --- aggregation -----------------------------------------------------------------


def _seed_mean_groups(runs: list[dict], tasks: list[str] | None = None):
    """The item groups of the runs' seed-averaged score (main, or the mean over `tasks`)."""
    groups = [intervals.task_groups(r["items"], tasks) if r.get("items") else None for r in runs]
    return None if not groups or None in groups else intervals.mean_over_runs(groups)


def _cell(strategy: str, language: str, runs: dict[int, dict], groups) -> dict:
    seeds = sorted(runs)
    values = [runs[s][MAIN] for s in seeds]
    kept = [runs[s]["kept_share"] for s in seeds if runs[s].get("kept_share") is not None]
    return {"strategy": strategy, "language": language, "n": len(values), "seeds": seeds,
            "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else None,
            "kept_share": statistics.fmean(kept) if kept else None,
            "groups": groups, "ci": intervals.interval(groups) if groups else None}


def _task_scores(runs: dict[int, dict]) -> dict[str, tuple[float, tuple | None]]:
    tasks = sorted({t for r in runs.values() for t in r.get("scores", {}) if t != MAIN})
    out = {}
    for task in tasks:
        present = [r for r in runs.values() if task in r.get("scores", {})]
        groups = _seed_mean_groups(present, [task]) if len(present) == len(runs) else None
        out[task] = (statistics.fmean(r["scores"][task] for r in present),
                     intervals.interval(groups) if groups else None)
    return out


def aggregate_experiments(rows: list[dict]) -> list[dict]:
    """One row per strategy x language: {strategy, language, n, seeds, mean, sd,
    kept_share, ci, tasks, deltas}.

    Rows are {strategy, language, seed, main_score, [scores, items, kept_share]}; sd is
    None with a single seed, ci None without per-item scores. Each strategy with every
    language also gets language "all": per seed the mean over the languages, over the
    seeds that have every language. `deltas`: {reference: (difference of means,
    interval of the item-paired difference)} for `base` and `parallel`.
    """
    by_cell: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for row in rows:
        cell = by_cell[(row["strategy"], row["language"])]
        if row["seed"] in cell:
            raise UserError(f"two rows for strategy {row['strategy']}, language "
                            f"{row['language']}, seed {row['seed']}")
        cell[row["seed"]] = row
    languages = sorted({language for _, language in by_cell})
    strategies = sorted({strategy for strategy, _ in by_cell}, key=_strategy_key)

    table = []
    for strategy in strategies:
        cells = {lang: by_cell[(strategy, lang)] for lang in languages
                 if (strategy, lang) in by_cell}
        for lang, runs in cells.items():
            row = _cell(strategy, lang, runs, _seed_mean_groups(list(runs.values())))
            table.append(row | {"tasks": _task_scores(runs)})
        if len(languages) > 1 and len(cells) == len(languages):
            complete = sorted(set.intersection(*(set(runs) for runs in cells.values())))
            if not complete:
                continue
            per_seed = {s: {MAIN: statistics.fmean(cells[lang][s][MAIN] for lang in languages),
                            "kept_share": None} for s in complete}
            per_language = [_seed_mean_groups([cells[lang][s] for s in complete])
                            for lang in languages]
            groups = intervals.across_languages(per_language) if all(per_language) else None
            table.append(_cell(strategy, ALL, per_seed, groups) | {"tasks": {}})
    _add_deltas(table)
    return table


def _add_deltas(table: list[dict]) -> None:
    cells = {(r["strategy"], r["language"]): r for r in table}
    for row in table:
        row["deltas"] = {}
        for reference in REFERENCES:
            other = cells.get((reference, row["language"]))
            if other is None or row["strategy"] == reference:
                continue
            paired = (intervals.difference(row["groups"], other["groups"])
                      if row["groups"] and other["groups"] else None)
            if row["groups"] and other["groups"] and paired is None:
                log.warning("%s and %s on %s scored different items: no paired interval",
                            row["strategy"], reference, row["language"])
            row["deltas"][reference] = (row["mean"] - other["mean"],
                                        intervals.interval(paired) if paired else None)


def cost_by_strategy(rows: list[dict]) -> dict[str, dict]:
    """{strategy: {n experiments, mean of each cost field}} (each experiment counted once)."""
    per_experiment: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        if row.get("cost"):
            per_experiment[row["strategy"]][row["experiment"]] = row["cost"]
    out = {}
    for strategy, costs in per_experiment.items():
        out[strategy] = {"n": len(costs)}
        for field in COST_FIELDS:
            values = [c[field] for c in costs.values() if c.get(field) is not None]
            out[strategy][field] = statistics.fmean(values) if len(values) == len(costs) else None
    return out


# --- markdown --------------------------------------------------------------------


def _layout(table: list[dict]) -> tuple[list[str], list[str], dict[tuple[str, str], dict]]:
    """Languages (then "all"), strategies (baselines first), the rows by (strategy, language)."""
    languages = sorted({r["language"] for r in table} - {ALL})
    if any(r["language"] == ALL for r in table):
        languages.append(ALL)
    strategies = sorted({r["strategy"] for r in table}, key=_strategy_key)
    return languages, strategies, {(r["strategy"], r["language"]): r for r in table}


def _score_cell(row: dict | None) -> str:
    if row is None:
        return "—"
    spread = "" if row["sd"] is None else f" ± {row['sd']:.4f}"
    kept = "" if row.get("kept_share") is None else f", kept {row['kept_share']:.0%}"
    return f"{fmt(row['mean'])}{fmt_interval(row['ci'])}{spread} (n={row['n']}{kept})"


def _delta_cell(row: dict | None, reference: str) -> str:
    if row is None or reference not in row["deltas"]:
        return "—"
    value, bounds = row["deltas"][reference]
    mark = f" {MARK}" if intervals.excludes_zero(bounds) else ""
    return f"{fmt(value, signed=True)}{fmt_interval(bounds, signed=True)}{mark}"


def _strategy_table(table: list[dict], cell, leave_out: str | None = None) -> list[str]:
    languages, strategies, cells = _layout(table)
    lines = md_header(["strategy", *languages])
    for strategy in (s for s in strategies if s != leave_out):
        lines.append(md_row([strategy, *(cell(cells.get((strategy, lang))) for lang in languages)]))
    return lines


def _task_tables(table: list[dict]) -> list[str]:
    languages, strategies, cells = _layout(table)
    lines = []
    for language in (lang for lang in languages if lang != ALL):
        rows = [cells[(s, language)] for s in strategies if (s, language) in cells]
        tasks = sorted({t for r in rows for t in r["tasks"]})
        lines += ["", f"### {language}", "", *md_header(["strategy", *tasks])]
        for r in rows:
            lines.append(md_row([r["strategy"], *(
                fmt(r["tasks"][t][0]) + fmt_interval(r["tasks"][t][1]) if t in r["tasks"] else "—"
                for t in tasks)]))
    return lines


def _cost_table(table: list[dict], cost: dict[str, dict]) -> list[str]:
    languages, strategies, cells = _layout(table)
    headline = ALL if ALL in languages else (languages[0] if len(languages) == 1 else None)
    lines = md_header(["strategy", "experiments", "generated tokens", "generation",
                       "adapter training", "embedder training", "total",
                       f"main score ({headline})" if headline else "main score"])
    for strategy in (s for s in strategies if s in cost):
        c = cost[strategy]
        tokens = "—" if c["generated_tokens"] is None else f"{c['generated_tokens']:,.0f}"
        score = cells.get((strategy, headline)) if headline else None
        lines.append(md_row([strategy, str(c["n"]), tokens, *(
            fmt_seconds(c[f]) for f in ("generation_s", "adapter_training_s",
                                        "embedder_training_s", "total_s")),
            "—" if score is None else fmt(score["mean"])]))
    return lines


def render_comparison(table: list[dict], cost: dict[str, dict] | None = None) -> str:
    """Markdown: the main score, its differences to base and parallel, each task, the cost."""
    lines = [
        "# Strategy comparison",
        "",
        f"`{MAIN}` per language (the mean of its held-out tasks, see the evaluate stage): "
        "mean over seeds, in brackets its 95% interval (a percentile bootstrap over the "
        "held-out items of the seed-averaged per-item scores, UDHR and CLDR items resampled "
        "separately), ± the sample sd over seeds (n = number of seeds; kept = mean share of "
        "the generated triplets the filters kept). `base` is the untouched embedder, "
        "`english` the one trained on English NLI, `parallel` the one trained on the "
        f"language's real (X, English) pairs. `{ALL}`: per seed the mean over languages, "
        "for the seeds that have every language.",
        "",
        *_strategy_table(table, _score_cell),
        "",
        "![comparison](comparison.png)",
    ]
    for reference in REFERENCES:
        if any(reference in r["deltas"] for r in table):
            lines += [
                "", f"## Difference to `{reference}`", "",
                f"Mean over seeds minus `{reference}`'s; in brackets the 95% interval of the "
                f"item-paired difference; {MARK}: the interval excludes 0.", "",
                *_strategy_table(table, lambda row, ref=reference: _delta_cell(row, ref),
                                 leave_out=reference),
            ]
    lines += ["", "## Tasks", "", "Each task's score, mean over seeds [95% interval over items].",
              *_task_tables(table)]
    if cost:
        lines += ["", "## Cost", "",
                  "Per experiment (all its languages), mean over the strategy's experiments: "
                  "generated tokens, and wall time of generation (with XL-LoRA's training-data "
                  "run), of the adapters the strategy's generator is built from, and of "
                  "embedder training, as the stages measured them on this machine.", "",
                  *_cost_table(table, cost), "", "![cost](comparison_cost.png)"]
    return "\n".join([*lines, ""])


# --- plots -----------------------------------------------------------------------


def _yerr(rows: list[dict]):
    """Asymmetric error bars from the intervals (NaN where there is none). The mean of
    the metrics can sit a rounding error outside the interval of the per-item scores."""
    nan = float("nan")
    low = [max(0.0, r["mean"] - r["ci"][0]) if r["ci"] else nan for r in rows]
    high = [max(0.0, r["ci"][1] - r["mean"]) if r["ci"] else nan for r in rows]
    return [low, high]


def plot_comparison(table: list[dict], path: str | Path) -> None:
    """Grouped bars with 95% interval bars: per language, a bar per strategy."""
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
               yerr=_yerr([r for _, r in present]),
               hatch="//" if _base_strategy(strategy) in BASELINES else None)
    ax.set_xticks(range(len(languages)), languages)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{MAIN} (mean over seeds, 95% interval)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    save_png(fig, path)


def plot_cost(table: list[dict], cost: dict[str, dict], path: str | Path) -> None:
    """Main score (all languages, or the only one) against the experiment's total wall time."""
    from matplotlib.figure import Figure

    languages, strategies, cells = _layout(table)
    headline = ALL if ALL in languages else languages[0]
    points = [(s, cost[s]["total_s"], cells[(s, headline)]) for s in strategies
              if s in cost and cost[s]["total_s"] is not None and (s, headline) in cells]
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for strategy, seconds, row in points:
        ax.errorbar([seconds / 60], [row["mean"]], yerr=_yerr([row]),
                    fmt="s" if _base_strategy(strategy) in BASELINES else "o", capsize=3,
                    label=strategy)
    ax.set_xscale("symlog", linthresh=1)  # base costs ~nothing; generative runs ~hours
    ax.set_xlabel("total wall time per experiment (min): generation + adapters + embedder")
    ax.set_ylabel(f"{MAIN} ({headline}), 95% interval")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    save_png(fig, path)
