"""Stage `filter <lang>`: quality filters on the generated triplets, and their card."""

from pathlib import Path

from bootstrap_embeddings import filters
from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_dir, read_jsonl, write_json, write_jsonl
from bootstrap_embeddings.tracking import tracked_run


@stage_entry
def main(params, language: str) -> None:
    if language not in params.languages:
        raise UserError(f"language {language!r}: not in params.yaml languages {params.languages}")
    source = Path("data/generated") / language / "triplets.jsonl"
    if not source.is_file():
        raise UserError(f"{source}: no such file; run the generate stage first")
    rows = read_jsonl(source)
    other = sorted({r.get("strategy") for r in rows} - {params.strategy}, key=str)
    if other:
        raise UserError(f"{source}: rows of strategy {other}, but params.yaml strategy is "
                        f"{params.strategy!r}; re-run the generate stage")

    ctx = filters.make_context(rows, params.strategy, params.filters)
    report = filters.apply_filters(rows, ctx)
    stats = filters.filter_stats(report, params.strategy, language, ctx, rows)
    card = filters.render_card(report, stats)

    with atomic_dir(Path("data/triplets") / language) as out:
        write_jsonl(out / "triplets.jsonl", report.kept)
        write_json(out / "filter_stats.json", stats)
        (out / "card.md").write_text(card, encoding="utf-8")

    with tracked_run(params, "filter", language) as run:
        run.log_params({"filters." + k: v for k, v in params.filters.model_dump().items()})
        run.log_metrics({"triplets_in": stats["n_in"], "triplets_out": stats["n_out"],
                         **{f"removed_{name}": n for name, n in stats["removed"].items()}})
        run.log_text(card, "card.md")
    print(f"{language}: kept {stats['n_out']} of {stats['n_in']} triplets")


if __name__ == "__main__":
    main()
