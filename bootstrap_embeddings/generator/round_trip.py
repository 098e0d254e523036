"""The optional round-trip check: asked in the other direction, does the generator
recover something close to the anchor?

For each triplet the base generator is prompted with the paper's entailment prompt on
the *positive*, asking for the answer in the *anchor's* language: for XL-LoRA (target
anchor -> English positive) that is the way back from English, for ICL and composition
a second paraphrase step. The encoder then compares what comes back with the anchor.
Greedy decoding, so the check does not depend on sampling luck; generation is batched
and resumable like the generate stage's (generator.generation.generate_completions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from bootstrap_embeddings.languages import language_name

RELATION = "entailment"


def back_generator(base_path: str | Path, language: str, gen, quantization: str, seed: int
                   ) -> Callable[[Sequence[dict]], list[str]]:
    """rows -> the generator's answer in `language` to each row's positive."""
    from bootstrap_embeddings.generator.generation import generate_completions
    from bootstrap_embeddings.generator.prompts import nli_prompt
    from bootstrap_embeddings.generator.resume import resumable_run

    greedy = gen.model_copy(update={"do_sample": False})
    name = language_name(language)

    def generate(rows: Sequence[dict]) -> list[str]:
        items = [{"id": str(i), "text": r["positive"]} for i, r in enumerate(rows)]
        if not items:
            return []
        recipe = {"round_trip": language}
        with resumable_run("round_trip", base_path, recipe, items, greedy, quantization,
                           seed) as batches:
            result = generate_completions(
                base_path, items, lambda text, relation: nli_prompt(text, relation, name),
                {RELATION: None}, greedy, quantization, seed, batches, relations=(RELATION,))
        return [result.texts[RELATION].get(it["id"], "") for it in items]

    return generate
