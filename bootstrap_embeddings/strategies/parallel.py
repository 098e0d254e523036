"""The encoder finetuned on the language's own real (X, English) pairs outside the held-out
split: the little real data a low-resource language has. No hard negative (in-batch only)."""

from __future__ import annotations

from bootstrap_embeddings.strategies import RecipeInputs, Strategy
from bootstrap_embeddings.strategies._rows import real_rows_from, require


def build_recipe(language: str, inputs: RecipeInputs) -> dict:
    from bootstrap_embeddings.digests import content_digest

    pairs = require(inputs.prepared_dir / language / "train_pairs.jsonl", f"prepare@{language}")
    return {"triplets": str(pairs), "triplets_sha256": content_digest(pairs)}


def read_rows(recipe: dict) -> list[dict]:
    from bootstrap_embeddings.rows import PairRow, read_rows

    # train_pairs.jsonl: {id, text (target language), english}
    pairs = read_rows(recipe["triplets"], PairRow, written_by=f"prepare@{recipe['language']}")
    return [{"id": r["id"], "anchor": r["text"], "positive": r["english"], "negative": None}
            for r in pairs]


STRATEGY = Strategy(
    name="parallel",
    description="the encoder finetuned on the language's real (X, English) pairs",
    order=2,
    generates=False,
    output_language="english",
    has_negative=False,
    trains=True,
    setup_stage="setup_plain",
    make_rows=real_rows_from(read_rows),
    build_recipe=build_recipe,
)
