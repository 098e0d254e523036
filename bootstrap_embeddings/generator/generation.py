"""Batched, resumable generation of (anchor, positive, hard negative) triplets.

Two prompts per anchor, as in the paper: one asks for an entailment (the positive),
one for a contradiction (the hard negative), each through its own LoRA when the
strategy has them (none for ICL). Prompts are ordered by token length and batched
with left padding, and decoded by `decoding.decode` (finished rows leave the batch,
nucleus sampling over the top-k logits, exact). Each batch is sampled under its own
seed, derived from the run's seed, the relation and the batch's position, so a run
that resumes after a crash (its finished batches kept by `resume.BatchLog`) writes the
same rows as one that never stopped.

Several processes (torchrun): the batches still left are split between them, and then
every process reads all of them back. A batch has the same prompts, padding and seed
whichever process generates it, so the merged result is the one-process result, byte
for byte on the same hardware, dtype and thread count (floating-point sums are not
associative, so a GPU and a CPU, or 1 and 2 threads, may sample differently).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bootstrap_embeddings.generator.adapted import AdaptedModels, generation_dtype
from bootstrap_embeddings.generator.prompts import (
    RELATIONS,
    chat_wrap,
    clean_generation,
    has_chat_template,
    icl_prompt,
)
from bootstrap_embeddings.generator.resume import BatchLog, prompts_key

log = logging.getLogger(__name__)

# recipe["adapters"] key of the adapter that writes each relation
ADAPTER_KEY = {"entailment": "pos", "contradiction": "neg"}


@dataclass
class Completions:
    """One generation run's cleaned answers (per relation, per item id) and its cost."""

    texts: dict[str, dict[str, str]]
    stats: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- prompts


def prompt_language(recipe: dict, language: str) -> str:
    """The language the prompt names: the recipe's (XL-LoRA: English), else the target's."""
    from bootstrap_embeddings.languages import language_name

    return recipe.get("prompt_language") or language_name(language)


def recipe_prompt(recipe: dict, premise: str, relation: str, language: str) -> str:
    """The unwrapped prompt of a recipe: the paper's prompt, with the recipe's ICL shots if any.

    Recipe shots are {premise, entailment, contradiction}; each relation's prompt shows
    the matching hypothesis.
    """
    shots = [
        {"premise": s["premise"], "hypothesis": s[relation]} for s in recipe.get("shots") or []
    ]
    return icl_prompt(premise, relation, prompt_language(recipe, language), shots)


# --------------------------------------------------------------------------- batches


def _batch_seed(seed: int, relation: str, index: int) -> int:
    digest = hashlib.sha256(f"{seed}:{relation}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _can_write_newline(tokenizer) -> bool:
    ids = tokenizer("\n", add_special_tokens=False)["input_ids"]
    return bool(ids) and tokenizer.unk_token_id not in ids


def _stop_ids(model, tokenizer) -> set[int]:
    """What ends a row: the model's end-of-sequence ids, and in the completion format a
    newline (the answer is one line, and a base model goes on writing new "Premise:"
    examples after it until max_new_tokens)."""
    from bootstrap_embeddings.generator.decoding import stop_token_ids

    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos = eos if isinstance(eos, list) else [eos]
    newline = not has_chat_template(tokenizer) and _can_write_newline(tokenizer)
    ids = stop_token_ids(tokenizer, newline)
    return ids | {e for e in eos if isinstance(e, int)}


def _generate_batch(model, tokenizer, texts: list[str], gen, seed: int) -> tuple[list[str], int]:
    """Sample one batch; returns the decoded continuations and how many tokens were generated.

    Through `decoding.decode`: finished rows leave the batch, and nucleus sampling sorts
    only the top-k logits (exactly the full nucleus; see there).
    """
    from bootstrap_embeddings.generator.decoding import decode

    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    enc = enc.to(model.device)
    out = decode(model, enc["input_ids"], enc["attention_mask"],
                 max_new_tokens=gen.max_new_tokens, stop_ids=_stop_ids(model, tokenizer),
                 do_sample=gen.do_sample, temperature=gen.temperature, top_p=gen.top_p,
                 seed=seed)
    tokens = sum(len(row) for row in out.tokens)
    return tokenizer.batch_decode(out.tokens, skip_special_tokens=True), tokens


def length_order(items: list[dict], tokenizer) -> list[dict]:
    """`items` by the token length of their text, shortest first (ties: as given).

    Batches of similar length waste less compute on padding; the order is a function
    of the texts and the tokenizer, so a resumed run forms the same batches.
    """
    lengths = [len(ids) for ids in tokenizer([it["text"] for it in items],
                                             add_special_tokens=False)["input_ids"]]
    return [items[i] for i in sorted(range(len(items)), key=lambda i: (lengths[i], i))]


def generate_completions(
    base_path,
    items: list[dict],
    prompt_fn: Callable[[str, str], str],
    adapters: dict[str, str | None],
    gen,
    quantization: str,
    seed: int,
    batch_log: BatchLog,
    relations: Sequence[str] = RELATIONS,
) -> Completions:
    """Answer `prompt_fn(text, relation)` for every item ({id, text}) and each relation.

    `adapters` maps a relation to the LoRA that writes it (None: the base model).
    Each relation runs as its own pass, so only one adapted copy of the model is in
    memory at a time. Batches already in `batch_log` are not generated again. Under
    torchrun each process generates a contiguous share of the batches left, and every
    process returns the complete result.
    """
    from tqdm import tqdm

    from bootstrap_embeddings import distributed
    from bootstrap_embeddings.generator.loading import (
        load_generator,
        load_tokenizer,
        resolve_quantization,
    )

    ordered = length_order(items, load_tokenizer(str(base_path))) if items else items
    batches = [ordered[i : i + gen.batch_size] for i in range(0, len(ordered), gen.batch_size)]
    expected = {
        (r, b): [it["id"] for it in batch] for r in relations for b, batch in enumerate(batches)
    }
    key = prompts_key([prompt_fn(it["text"], r) for r in relations for it in items])
    done = batch_log.finished(expected, key)
    resumed = len(done)
    todo = [k for k in expected if k not in done]
    mine = distributed.shard(todo)  # contiguous: with 2 processes, often one relation each

    quant_used = resolve_quantization(quantization)
    dtype_name = generation_dtype(quant_used)
    merge = gen.merge_adapter and quant_used == "none" and any(adapters.values())
    if gen.merge_adapter and quant_used != "none" and any(adapters.values()):
        log.info("not merging adapters into %s weights (that would re-quantize them)", quant_used)

    if mine:
        import torch

        # Merging: load at full precision, merge, then cast each merged copy. Otherwise
        # load straight in the generation dtype.
        base, tokenizer, _ = load_generator(
            str(base_path), quant_used, for_training=False, dtype=None if merge else dtype_name
        )
        cast = getattr(torch, dtype_name) if merge and dtype_name else None
        models = AdaptedModels(base, adapters, merge, cast)
        with batch_log.appending(key) as append, tqdm(
            total=resumed + len(mine), initial=resumed, desc="generate", unit="batch"
        ) as bar:
            for relation in relations:
                keys = [k for k in mine if k[0] == relation]
                if not keys:
                    continue
                with models.active(relation) as model:
                    for _, b in keys:
                        prompts = [prompt_fn(it["text"], relation) for it in batches[b]]
                        texts = [chat_wrap(tokenizer, p) for p in prompts]
                        start = time.perf_counter()
                        batch_seed = _batch_seed(seed, relation, b)
                        raw, tokens = _generate_batch(model, tokenizer, texts, gen, batch_seed)
                        record = {
                            "relation": relation,
                            "batch": b,
                            "ids": expected[(relation, b)],
                            "raw": raw,
                            "tokens": tokens,
                            "seconds": time.perf_counter() - start,
                        }
                        append(record)
                        done[(relation, b)] = record
                        bar.update()
        del models, base
    if distributed.is_distributed():
        done = batch_log.gathered(expected, key)

    answers: dict[str, dict[str, str]] = {r: {} for r in relations}
    for (relation, _), rec in sorted(done.items()):
        for id_, raw in zip(rec["ids"], rec["raw"]):
            answers[relation][id_] = clean_generation(raw)
    tokens = sum(rec["tokens"] for rec in done.values())
    seconds = sum(rec["seconds"] for rec in done.values())  # summed over processes
    stats = {
        "prompts": len(items) * len(relations),
        "generated_tokens": tokens,
        "generation_seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 2) if seconds else None,
        "batch_size": gen.batch_size,
        "max_new_tokens": gen.max_new_tokens,
        "merged_adapter": merge,
        "quantization": quant_used,
        "dtype": dtype_name or "default",
        "resumed_batches": resumed,
        "processes": distributed.num_processes(),
    }
    return Completions(answers, stats)


# --------------------------------------------------------------------------- triplets


def unique_items(rows: list[dict], text_key: str = "text") -> list[dict]:
    """{id, text} items, one per distinct text (first id kept): the paper deduplicates by anchor."""
    seen: dict[str, str] = {}
    for row in rows:
        seen.setdefault(row[text_key], str(row["id"]))
    return [{"id": id_, "text": text} for text, id_ in seen.items()]


def generate_triplets(
    base_path,
    recipe: dict,
    anchors: list[dict],
    language: str,
    gen,
    quantization: str,
    seed: int,
    batch_log: BatchLog,
    generator_name: str | None = None,
) -> tuple[list[dict], dict]:
    """Triplets from a language's anchors ({id, text}) with a strategy's recipe: (rows, stats).

    Rows: {id, anchor, positive, negative, strategy, language, generator, adapter_pos,
    adapter_neg}. As in the paper, an anchor whose positive or negative came out
    empty is dropped, and so is one whose answer is the premise verbatim; near-copies
    are the filter stage's to drop and report.
    """
    items = unique_items(anchors)
    adapters = recipe.get("adapters") or {}
    by_relation = {r: adapters.get(ADAPTER_KEY[r]) for r in RELATIONS}
    result = generate_completions(
        base_path,
        items,
        lambda premise, relation: recipe_prompt(recipe, premise, relation, language),
        by_relation,
        gen,
        quantization,
        seed,
        batch_log,
    )
    pos, neg = (result.texts[r] for r in RELATIONS)
    rows, empty, echo = [], 0, 0
    for it in items:
        p, n = pos.get(it["id"], ""), neg.get(it["id"], "")
        if not p or not n:
            empty += 1
        elif it["text"] in (p, n):
            echo += 1
        else:
            rows.append(
                {
                    "id": it["id"],
                    "anchor": it["text"],
                    "positive": p,
                    "negative": n,
                    "strategy": recipe["strategy"],
                    "language": language,
                    "generator": generator_name or str(base_path),
                    "adapter_pos": adapters.get("pos"),
                    "adapter_neg": adapters.get("neg"),
                }
            )
    stats = {
        **result.stats,
        "anchors": len(anchors),
        "unique_anchors": len(items),
        "triplets": len(rows),
        "dropped_empty": empty,
        "dropped_echo": echo,
    }
    return rows, stats
