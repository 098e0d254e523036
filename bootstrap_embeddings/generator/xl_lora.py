"""XL-LoRA's training data: a non-English premise -> an English entailment / contradiction.

The paper's data-augmentation branch: for parallel (English, X) pairs, the English
task adapters write an entailment and a contradiction of the English side; each is
then paired with the X side as the premise. The XL-LoRA adapters trained on these
rows learn to answer a premise in any language with an English hypothesis.

Rows are what `adapters.train_lora_adapter(rows, completion_only=True)` reads: the
un-templated prompt and the answer (`chat_wrap` and `format_completion` are applied
at training time, with the tokenizer being trained), plus provenance.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bootstrap_embeddings.generator.generation import (
    ADAPTER_KEY,
    generate_completions,
    unique_items,
)
from bootstrap_embeddings.generator.prompts import RELATIONS, XL_LORA_PROMPT_LANGUAGE, nli_prompt
from bootstrap_embeddings.text import normalise


def task_recipe(adapters_dir: str | Path = "models/adapters") -> dict:
    """The English task adapters as a generation recipe (also keys the partial file)."""
    return {
        "strategy": "task",
        "adapters": {kind: str(Path(adapters_dir) / f"task_{kind}") for kind in ("pos", "neg")},
        "prompt_language": XL_LORA_PROMPT_LANGUAGE,
    }


def english_sides(parallel: list[dict]) -> list[dict]:
    """{id, text} per unique English sentence: generated from once, however many X sides it has."""
    return unique_items(parallel, text_key="english")


def xl_lora_rows(
    base_path, parallel: list[dict], recipe: dict, gen, quantization: str, seed: int, batch_log
) -> tuple[dict[str, list[dict]], dict]:
    """The pos and neg training rows from parallel {id, language, text, english} pairs.

    Returns ({"pos": rows, "neg": rows}, stats). A row is {prompt_text, completion,
    id, language, english}. Dropped: empty answers, and answers that repeat the English
    premise up to case and punctuation (no filter stage runs on these rows, and a
    copy would teach the XL-LoRA adapter to translate rather than to infer).
    """
    items = english_sides(parallel)
    result = generate_completions(
        base_path,
        items,
        lambda premise, relation: nli_prompt(premise, relation, recipe["prompt_language"]),
        {r: recipe["adapters"][ADAPTER_KEY[r]] for r in RELATIONS},
        gen,
        quantization,
        seed,
        batch_log,
    )
    id_of = {it["text"]: it["id"] for it in items}
    rows: dict[str, list[dict]] = {}
    dropped = {}
    for relation in RELATIONS:
        kind = ADAPTER_KEY[relation]
        answers = result.texts[relation]
        rows[kind], dropped[kind] = [], 0
        for pair in parallel:
            answer = answers.get(id_of[pair["english"]], "")
            if not answer or normalise(answer) == normalise(pair["english"]):
                dropped[kind] += 1
                continue
            rows[kind].append(
                {
                    "prompt_text": nli_prompt(pair["text"], relation, recipe["prompt_language"]),
                    "completion": answer,
                    "id": pair["id"],
                    "language": pair["language"],
                    "english": pair["english"],
                }
            )
    stats = {
        **result.stats,
        "parallel_pairs": len(parallel),
        "unique_english": len(items),
        "rows": {kind: len(r) for kind, r in rows.items()},
        "dropped": dropped,
        "languages": dict(sorted(Counter(p["language"] for p in parallel).items())),
    }
    return rows, stats


def nli_dataset_rows(pairs: list[dict]) -> tuple[dict[str, list[dict]], dict]:
    """The pos and neg training rows from an NLI dataset's {id, language, relation, text,
    english} pairs (`data.xl_lora_nli`, e.g. XNLI): the paper's branch, nothing generated.

    A row is {prompt_text, completion, id, language}: the premise in the prompt, the
    dataset's English hypothesis as the answer.
    """
    relation_of = {kind: relation for relation, kind in ADAPTER_KEY.items()}
    rows: dict[str, list[dict]] = {kind: [] for kind in relation_of}
    for pair in pairs:
        kind = pair["relation"]
        rows[kind].append({
            "prompt_text": nli_prompt(pair["text"], relation_of[kind], XL_LORA_PROMPT_LANGUAGE),
            "completion": pair["english"],
            "id": pair["id"],
            "language": pair["language"],
        })
    stats = {
        "source": "nli_dataset",
        "rows": {kind: len(r) for kind, r in rows.items()},
        "languages": {kind: dict(sorted(Counter(r["language"] for r in kind_rows).items()))
                      for kind, kind_rows in rows.items()},
    }
    return rows, stats
