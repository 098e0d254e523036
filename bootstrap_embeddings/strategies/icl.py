"""In-context learning: the untouched generator, prompted with k worked NLI examples."""

from __future__ import annotations

import random

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.strategies import RecipeInputs, Strategy
from bootstrap_embeddings.strategies._rows import generated_triplets


def choose_shots(nli_rows: list[dict], k: int, seed: int, language: str) -> list[dict]:
    """k seeded examples {premise, entailment, contradiction} from NLI triplets.

    Rows in the target language (a `language` column, where the NLI source has one)
    are preferred; the embedded WordNet triplets are English only.
    """
    complete = [r for r in nli_rows if r.get("anchor") and r.get("positive") and r.get("negative")]
    pool = [r for r in complete if r.get("language") == language] or complete
    if k > len(pool):
        raise UserError(
            f"generator.icl.shots: {k} shots asked for, the NLI data has {len(pool)} usable rows"
        )
    picked = random.Random(seed).sample(pool, k)
    return [
        {"premise": r["anchor"], "entailment": r["positive"], "contradiction": r["negative"]}
        for r in picked
    ]


def build_recipe(language: str, inputs: RecipeInputs) -> dict:
    from bootstrap_embeddings.rows import NliRow, read_rows

    nli = read_rows(inputs.nli_path, NliRow, written_by="prepare_shared")
    return {"adapters": None, "shots": choose_shots(nli, inputs.shots, inputs.seed, language)}


STRATEGY = Strategy(
    name="icl",
    description="k English NLI examples in the prompt of the untouched generator",
    order=10,
    generates=True,
    output_language="target",
    has_negative=True,
    trains=True,
    setup_stage="setup_plain",
    make_rows=generated_triplets,
    build_recipe=build_recipe,
)
