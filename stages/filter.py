"""Stage `filter <lang>`: quality filters on the generated triplets, and their card.

With filters.consistency.enabled, generated triplets are also scored by an encoder
(the base embedder by default) and kept only if the positive is close to the anchor.
"""

from pathlib import Path

from bootstrap_embeddings import filters, strategies
from bootstrap_embeddings.consistency import check_from_params
from bootstrap_embeddings.cli import TargetLanguage, stage_entry
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_dir, write_json, write_jsonl
from bootstrap_embeddings.rows import TripletRow, read_rows
from bootstrap_embeddings.tracking import tracked_run


@stage_entry
def main(params, language: TargetLanguage) -> None:
    source = Path("data/generated") / language / "triplets.jsonl"
    # empty for `base`, which trains nothing
    rows = read_rows(source, TripletRow, written_by=f"generate@{language}", allow_empty=True)
    other = sorted({r.get("strategy") for r in rows} - {params.strategy}, key=str)
    if other:
        raise UserError(f"{source}: rows of strategy {other}, but params.yaml strategy is "
                        f"{params.strategy!r}; re-run the generate stage")

    check = None
    if params.filters.consistency.enabled and strategies.get(params.strategy).generates and rows:
        check = check_from_params(params, language)
    ctx = filters.make_context(rows, params.strategy, params.filters, check)
    report = filters.apply_filters(rows, ctx)
    stats = filters.filter_stats(report, params.strategy, language, ctx, rows)
    card = filters.render_card(report, stats)

    with atomic_dir(Path("data/triplets") / language) as out:
        write_jsonl(out / "triplets.jsonl", report.kept)
        write_json(out / "filter_stats.json", stats)
        (out / "card.md").write_text(card, encoding="utf-8")
    # a DVC metric, so `dvc exp show` and the comparison report can show it
    write_json(Path("metrics/filter") / f"{language}.json", {
        "language": language, "n_in": stats["n_in"], "n_out": stats["n_out"],
        "kept_share": round(stats["n_out"] / stats["n_in"], 4) if stats["n_in"] else None})

    with tracked_run(params, "filter", language) as run:
        run.log_params({"filters." + k: v for k, v in params.filters.model_dump().items()
                        if k != "consistency"})
        run.log_params({"filters.consistency." + k: v
                        for k, v in params.filters.consistency.model_dump().items()})
        run.log_metrics({"triplets_in": stats["n_in"], "triplets_out": stats["n_out"],
                         **{f"removed_{name}": n for name, n in stats["removed"].items()}})
        run.log_text(card, "card.md")
    print(f"{language}: kept {stats['n_out']} of {stats['n_in']} triplets")


if __name__ == "__main__":
    main()
