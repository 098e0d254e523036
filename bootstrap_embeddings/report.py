"""The report stage's view of one experiment: scores with 95% intervals, cost, DVC metrics.

Inputs: metrics/eval/<lang>.json (each task's score and main_score), metrics/items/<lang>.json
(per-item scores, for the intervals; see intervals.py) and the cost records
(cost.py). Outputs: reports/report.md, reports/summary.json (DVC metrics),
reports/scores.csv and a bar plot.

The comparison across experiments is comparison.py. Plots use matplotlib's `Figure`
directly (the Agg canvas for PNG), so no pyplot backend or global state is involved.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from bootstrap_embeddings import intervals
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_file, read_json

MAIN = "main_score"
# The language column / row of the aggregate over all languages
ALL = "all"
MAIN_SCORE_MEANING = {
    "local": "the mean of the local tasks (held-out UDHR and CLDR, bitext mining and "
             "retrieval, both directions)",
    "mteb": "the mean of the mteb registry tasks the language has (the local tasks are "
            "extra columns)",
}


# --- formatting, shared with comparison.py ---------------------------------------


def fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def fmt_interval(bounds: tuple[float, float] | None, signed: bool = False) -> str:
    if bounds is None:
        return ""
    spec = "+.3f" if signed else ".3f"
    return f" [{bounds[0]:{spec}}, {bounds[1]:{spec}}]"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def md_header(columns: list[str]) -> list[str]:
    return [md_row(columns), "| --- |" + " ---: |" * (len(columns) - 1)]


def save_png(fig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)


# --- inputs ----------------------------------------------------------------------


def _per_language(metrics_dir: str | Path, languages: list[str], stage: str) -> dict[str, dict]:
    out = {}
    for language in languages:
        path = Path(metrics_dir) / f"{language}.json"
        if not path.is_file():
            raise UserError(f"{path}: no such file; run the {stage} stage for {language} first")
        out[language] = read_json(path)
    return out


def read_eval_metrics(metrics_dir: str | Path, languages: list[str]) -> dict[str, dict[str, float]]:
    """{language: {task: score, ..., "main_score": x}} from metrics/eval/<lang>.json.

    Only the current params' languages: the folder may still hold files of languages
    an earlier experiment had.
    """
    scores = {}
    for language, data in _per_language(metrics_dir, languages, "evaluate").items():
        entry = data.get(language) if isinstance(data, dict) else None
        if not isinstance(entry, dict) or MAIN not in entry:
            raise UserError(f"{Path(metrics_dir) / language}.json: expected "
                            f"{{{language!r}: {{<task>: score, ..., {MAIN!r}: x}}}}")
        scores[language] = entry
    return scores


def read_items(items_dir: str | Path, languages: list[str]) -> dict[str, dict]:
    """{language: per-item scores} from metrics/items/<lang>.json (the evaluate stage)."""
    return _per_language(items_dir, languages, "evaluate")


# --- intervals -------------------------------------------------------------------


def score_intervals(scores: dict[str, dict[str, float]], items: dict[str, dict]) -> dict:
    """{language or "all": {task or "main_score": (low, high) or None}}: 95% bootstrap
    intervals over the items (None where a score has no per-item scores)."""
    out, mains = {}, []
    for language, s in scores.items():
        out[language] = {}
        for task in s:
            groups = intervals.task_groups(items[language], None if task == MAIN else [task])
            out[language][task] = intervals.interval(groups) if groups else None
            if task == MAIN:
                mains.append(groups)
    if len(scores) > 1:
        out[ALL] = {MAIN: intervals.interval(intervals.across_languages(mains))
                    if all(mains) else None}
    return out


# --- outputs ---------------------------------------------------------------------


def summary(scores: dict[str, dict[str, float]], cost: dict) -> dict:
    """DVC metrics beside metrics/eval/<lang>.json, with no number repeated: the
    experiment's cost, and with several languages the mean main score over them
    (`all.main_score`; with one it would repeat `<lang>.main_score`)."""
    out = {"cost": {k: v for k, v in cost["total"].items() if v is not None}}
    if len(scores) > 1:
        out[ALL] = {MAIN: statistics.fmean(s[MAIN] for s in scores.values())}
    return out


def task_names(scores: dict[str, dict[str, float]]) -> list[str]:
    return sorted({task for s in scores.values() for task in s if task != MAIN})


def _score_table(scores: dict, bounds: dict) -> list[str]:
    tasks = task_names(scores)
    lines = md_header(["language", *tasks, MAIN])
    for language, s in scores.items():
        cells = [fmt(s.get(t)) + fmt_interval(bounds[language].get(t)) for t in [*tasks, MAIN]]
        lines.append(md_row([language, *cells]))
    if len(scores) > 1:
        means = [statistics.fmean(s[t] for s in scores.values() if t in s) for t in tasks]
        overall = statistics.fmean(s[MAIN] for s in scores.values())
        lines.append(md_row([ALL, *map(fmt, means), fmt(overall) + fmt_interval(bounds[ALL][MAIN])]))
    return lines


def _cost_table(cost: dict) -> list[str]:
    lines = md_header(["language", "generated tokens", "generation", "embedder training"])
    for language, c in cost["per_language"].items():
        tokens = "—" if c["generated_tokens"] is None else f"{int(c['generated_tokens']):,}"
        lines.append(md_row([language, tokens, fmt_seconds(c["generation_s"]),
                             fmt_seconds(c["embedder_training_s"])]))
    total = cost["total"]
    tokens = "—" if total["generated_tokens"] is None else f"{total['generated_tokens']:,}"
    adapters = ", ".join(cost["adapters"]) or "none"
    lines += [
        "",
        f"Experiment total: {tokens} generated tokens; generation {fmt_seconds(total['generation_s'])}, "
        f"adapter training {fmt_seconds(total['adapter_training_s'])} (adapters: {adapters}), "
        f"embedder training {fmt_seconds(total['embedder_training_s'])}; "
        f"total {fmt_seconds(total['total_s'])}. Wall times as the stages measured them "
        "(on a shared machine they vary); generation includes XL-LoRA's training-data run.",
    ]
    return lines


def render_report(scores: dict, bounds: dict, cost: dict, strategy: str, seed: int,
                  main_score: str = "local") -> str:
    """Markdown: scores per language and task with 95% intervals, then the cost."""
    lines = [
        "# Evaluation report",
        "",
        f"Strategy `{strategy}`, seed {seed}, languages {', '.join(scores)}.",
        "",
        *_score_table(scores, bounds),
        "",
        "Each task's score is its mteb main score averaged over its subsets (both directions "
        f"for the local tasks); `{MAIN}` is {MAIN_SCORE_MEANING[main_score]}. In brackets: "
        f"the {intervals.CONFIDENCE:.0%} percentile bootstrap interval over the held-out "
        f"items ({intervals.N_RESAMPLES:,} resamples; the UDHR and CLDR items resampled "
        "separately), where per-item scores exist. mteb's full results are under "
        "`results/mteb/<language>/`.",
        "",
        "![scores](figures/scores.png)",
        "",
        "## Cost",
        "",
        *_cost_table(cost),
        "",
    ]
    return "\n".join(lines)


def plot_scores(scores: dict[str, dict[str, float]], strategy: str, path: str | Path) -> None:
    """Grouped bars: per language, one bar per task and one for the main score."""
    from matplotlib.figure import Figure

    columns = [*task_names(scores), MAIN]
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
    save_png(fig, path)


def write_scores_csv(scores: dict[str, dict[str, float]], strategy: str, path: str | Path) -> None:
    """language,strategy,main_score rows: the data of DVC's bar plot."""
    with atomic_file(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["language", "strategy", MAIN])
        for language, s in scores.items():
            writer.writerow([language, strategy, s[MAIN]])
