"""The untouched encoder: no training data; the base embedder is evaluated as it is."""

from __future__ import annotations

from bootstrap_embeddings.strategies import RecipeInputs, Strategy
from bootstrap_embeddings.strategies._rows import real_rows


def build_recipe(language: str, inputs: RecipeInputs) -> dict:
    return {}


STRATEGY = Strategy(
    name="base",
    description="the untouched encoder",
    order=0,
    generates=False,
    output_language="english",
    has_negative=True,
    trains=False,
    setup_stage="setup_plain",
    make_rows=lambda params, language, recipe: real_rows([], "base", language),
    build_recipe=build_recipe,
)
