"""Real pairs with generated hard negatives: the language's real (X, English) pairs as anchor
and positive, and a hard negative that the English contradiction task adapter writes for
the English side.

It uses the generator where it is strongest (English, through the task adapter trained
on English NLI) and the little real data a low-resource language has; it is cheap: one
short generation per distinct English sentence. The triplets are cross-lingual (target
anchor, English positive and negative), like XL-LoRA's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.strategies import RecipeInputs, Strategy

RELATION = "contradiction"


def build_recipe(language: str, inputs: RecipeInputs) -> dict:
    from bootstrap_embeddings.digests import content_digest
    from bootstrap_embeddings.strategies._rows import require

    pairs = require(inputs.prepared_dir / language / "train_pairs.jsonl", f"prepare@{language}")
    adapter = inputs.adapters_dir / "task_neg"
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(f"{adapter}: no adapter there; run `dvc repro task_adapter@neg` first")
    return {"triplets": str(pairs), "triplets_sha256": content_digest(pairs),
            "adapters": {"neg": str(adapter)}, "adapter_sha256": {"neg": content_digest(adapter)},
            "shots": []}


def _triplets(pairs: list[dict], english: list[dict], result, recipe: dict,
              language: str) -> tuple[list[dict], dict]:
    """(rows, stats): each pair with its English side's generated contradiction as negative."""
    from bootstrap_embeddings.base_models import BASE_GENERATOR, generator_name
    from bootstrap_embeddings.text import normalise

    negative_of = {it["text"]: result.texts[RELATION].get(it["id"], "") for it in english}
    rows, dropped = [], {"empty": 0, "same_as_positive": 0}
    for pair in pairs:
        negative = negative_of[pair["english"]]
        if not negative:
            dropped["empty"] += 1
        elif normalise(negative) == normalise(pair["english"]):
            dropped["same_as_positive"] += 1
        else:
            rows.append({"id": pair["id"], "anchor": pair["text"], "positive": pair["english"],
                         "negative": negative, "strategy": "parallel_hn", "language": language,
                         "generator": generator_name(BASE_GENERATOR), "adapter_pos": None,
                         "adapter_neg": recipe["adapters"]["neg"]})
    stats = {**result.stats, "pairs": len(pairs), "unique_english": len(english),
             "triplets": len(rows), "dropped": dropped}
    return rows, stats


@contextlib.contextmanager
def make_rows(params, language: str, recipe: dict) -> Iterator[tuple[list[dict], dict]]:
    """The pairs with a generated contradiction of their English side as the negative.

    A pair whose negative came out empty, or the same as its positive (up to case and
    punctuation), is dropped and counted; the filter stage checks the rest.
    """
    from bootstrap_embeddings.base_models import BASE_GENERATOR, resolve_generator_path
    from bootstrap_embeddings.generator.generation import generate_completions, unique_items
    from bootstrap_embeddings.generator.prompts import XL_LORA_PROMPT_LANGUAGE, nli_prompt
    from bootstrap_embeddings.generator.resume import resumable_run
    from bootstrap_embeddings.rows import PairRow, read_rows

    pairs = read_rows(recipe["triplets"], PairRow, written_by=f"prepare@{language}")
    english = unique_items(pairs, text_key="english")
    base = resolve_generator_path(BASE_GENERATOR)
    gen, quant, seed = params.generator.generation, params.generator.quantization, params.seed
    with resumable_run("generate", base, recipe, english, gen, quant, seed) as batches:
        result = generate_completions(
            base, english,
            lambda text, relation: nli_prompt(text, relation, XL_LORA_PROMPT_LANGUAGE),
            {RELATION: recipe["adapters"]["neg"]}, gen, quant, seed, batches,
            relations=(RELATION,))
        yield _triplets(pairs, english, result, recipe, language)


STRATEGY = Strategy(
    name="parallel_hn",
    description="the language's real (X, English) pairs, with a hard negative the English "
                "contradiction task adapter writes for the English side",
    order=3,
    generates=True,
    output_language="english",
    has_negative=True,
    trains=True,
    setup_stage="setup_parallel_hn",
    make_rows=make_rows,
    build_recipe=build_recipe,
)
