"""Stage `report`: the current experiment's scores with 95% intervals and its cost, as a
markdown report, DVC metrics (reports/summary.json) and a plot."""

from pathlib import Path

from bootstrap_embeddings import report
from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.cost import experiment_cost
from bootstrap_embeddings.files import atomic_dir, atomic_file, write_json

REPORTS = Path("reports")


@stage_entry
def main(params) -> None:
    scores = report.read_eval_metrics("metrics/eval", params.languages)
    bounds = report.score_intervals(scores, report.read_items("metrics/items", params.languages))
    cost = experiment_cost(params.strategy, params.languages)
    with atomic_dir(REPORTS / "figures") as figures:
        report.plot_scores(scores, params.strategy, figures / "scores.png")
    report.write_scores_csv(scores, params.strategy, REPORTS / "scores.csv")
    write_json(REPORTS / "summary.json", report.summary(scores, cost))
    with atomic_file(REPORTS / "report.md") as fh:
        fh.write(report.render_report(scores, bounds, cost, params.strategy, params.seed,
                                      params.eval.main_score))
    mains = ", ".join(f"{lang} {s[report.MAIN]:.4f}" for lang, s in scores.items())
    print(f"{REPORTS / 'report.md'}: main score {mains}")


if __name__ == "__main__":
    main()
