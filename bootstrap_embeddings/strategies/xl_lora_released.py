"""The paper's released XL-LoRA triplets (`data.released_triplets`, mbasoz/xllora-datasets).

Trains on the triplets the paper published for the language instead of generating them:
a check of this pipeline's embedder training and evaluation against the paper's own
data. The triplets are cross-lingual like XL-LoRA's (target anchor, English positive
and hard negative); the paper's generator wrote them, so the filters treat them as
generated.

The setup stage reads the triplets once (the hub download lands in the `datasets`
cache) and puts their digest in the recipe: the generate stage re-runs when the
released data change, and stops if they changed after setup.
"""

from __future__ import annotations

import hashlib
import json

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.strategies import RecipeInputs, Strategy
from bootstrap_embeddings.strategies._rows import real_rows_from

KEY = "data.released_triplets"
FIELDS = ("anchor", "positive", "negative")


def _source_for(source, language: str):
    """The source with `{language}` in its path filled in (the English name, lower case)."""
    from bootstrap_embeddings.languages import fill_language

    return source.model_copy(update={"path": fill_language(source.path, language)}
                             if source.path else {})


def released_triplets(source, language: str) -> list[dict]:
    """{id, anchor, positive, negative} rows of the language's released file, in file order."""
    from bootstrap_embeddings.data.tables import load_table

    if source is None:
        raise UserError(f"{KEY}: null; strategy xl_lora_released reads the paper's released "
                        "triplets: set it (profiles/paper.yaml names mbasoz/xllora-datasets)")
    if source.kind not in ("hf", "file"):
        raise UserError(f"{KEY}.kind: the released triplets are an hf or file source, "
                        f"not {source.kind!r}")
    rows = load_table(_source_for(source, language), FIELDS, KEY, language)
    if not rows:
        raise UserError(f"{KEY}: no complete triplet for {language} in the source")
    return [{"id": str(i), **row} for i, row in enumerate(rows)]


def _digest(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def build_recipe(language: str, inputs: RecipeInputs) -> dict:
    source = inputs.released_triplets
    if source is None:
        # Unset on the embedded default: a bare `dvc repro` builds every strategy's setup
        # stage, so this one must not fail there. The recipe says so, and the strategy
        # itself (its generate stage) stops with the one-line error of `released_triplets`.
        return {"source": None, "triplets": 0, "triplets_sha256": None, "shots": []}
    rows = released_triplets(source, language)
    return {"source": _source_for(source, language).model_dump(exclude_defaults=True),
            "triplets": len(rows), "triplets_sha256": _digest(rows), "shots": []}


def read_rows(recipe: dict) -> list[dict]:
    from bootstrap_embeddings.config import Source

    source = recipe["source"] and Source.model_validate(recipe["source"])
    rows = released_triplets(source, recipe["language"])
    if _digest(rows) != recipe["triplets_sha256"]:
        raise UserError(f"{KEY}: the released triplets of {recipe['language']} changed since "
                        "the setup stage read them; re-run it (dvc repro)")
    return rows


STRATEGY = Strategy(
    name="xl_lora_released",
    description="the paper's released XL-LoRA triplets (mbasoz/xllora-datasets), not generated",
    order=13,
    generates=True,
    output_language="english",
    has_negative=True,
    trains=True,
    setup_stage="setup_xl_lora_released",
    make_rows=real_rows_from(read_rows),
    build_recipe=build_recipe,
)
