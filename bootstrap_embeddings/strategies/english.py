"""The encoder finetuned on English NLI triplets only (the usual SimCSE baseline)."""

from __future__ import annotations

from bootstrap_embeddings.strategies import RecipeInputs, Strategy
from bootstrap_embeddings.strategies._rows import real_rows_from, require


def build_recipe(language: str, inputs: RecipeInputs) -> dict:
    from bootstrap_embeddings.digests import content_digest

    nli = require(inputs.nli_path, "prepare_shared")
    # the hash makes the generate stage re-run when the triplets change
    return {"triplets": str(nli), "triplets_sha256": content_digest(nli)}


def read_rows(recipe: dict) -> list[dict]:
    from bootstrap_embeddings.rows import NliRow, read_rows

    rows = read_rows(recipe["triplets"], NliRow, written_by="prepare_shared")
    return [{"id": r.get("id", f"nli-{i}"), **{k: r[k] for k in ("anchor", "positive", "negative")}}
            for i, r in enumerate(rows)]


STRATEGY = Strategy(
    name="english",
    description="the encoder finetuned on English NLI triplets only",
    order=1,
    generates=False,
    output_language="english",
    has_negative=True,
    trains=True,
    setup_stage="setup_plain",
    make_rows=real_rows_from(read_rows),
    build_recipe=build_recipe,
)
