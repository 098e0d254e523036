"""Stage `report`: the current experiment's scores as a markdown table, DVC metrics and a plot."""

from pathlib import Path

from bootstrap_embeddings import report
from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.files import atomic_dir, atomic_file, write_json

REPORTS = Path("reports")


@stage_entry
def main(params) -> None:
    scores = report.read_eval_metrics("metrics/eval", params.languages)
    with atomic_dir(REPORTS / "figures") as figures:
        report.plot_scores(scores, params.strategy, figures / "scores.png")
    report.write_scores_csv(scores, params.strategy, REPORTS / "scores.csv")
    summary = report.summary(scores)
    write_json(REPORTS / "summary.json", summary)
    with atomic_file(REPORTS / "report.md") as fh:
        fh.write(report.render_report(scores, params.strategy, params.seed))
    print(f"{REPORTS / 'report.md'}: mean main score {summary['mean_main_score']:.4f}")


if __name__ == "__main__":
    main()
