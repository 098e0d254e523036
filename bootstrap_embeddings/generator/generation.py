"""Batched, resumable generation of (anchor, positive, hard negative) triplets.

Two prompts per anchor, as in the paper: one asks for an entailment (the positive),
one for a contradiction (the hard negative), each through its own LoRA when the
strategy has them (none for ICL). Prompts are ordered by token length and batched
with left padding, and decoded by `decoding.decode` (finished rows leave the batch,
nucleus sampling over the top-k logits, exact); each batch is sampled under its own seed, derived from the run's seed, the relation and the
batch's position, so a run that resumes after a crash writes the same rows as one
that never stopped.

Resumption: every finished batch is appended (flush + fsync) to a partial JSONL file
named by a fingerprint of the run's inputs (model, adapters, recipe, anchors,
generation params, seed, dtype). Its first line is a header holding a second key,
over what shapes the output besides those: every prompt text the run asks, and the
source of the code that builds prompts, decodes and cleans answers (`code_digest`).
A rerun with the same inputs skips the batches already there; other inputs mean
another file; a header key that differs (a prompt or the code was edited since) means
the file is stale: it is removed, the run says so and starts afresh. The caller
writes the final output atomically and then deletes the partial file (`discard_partial`).

Several processes (torchrun): the batches still left are split between them, each
process appends to its own partial file (`<fingerprint>.rank<i>.jsonl`), and then
every process reads all the files back. A batch has the same prompts, padding and
seed whichever process generates it, so the merged result is the one-process result,
byte for byte on the same hardware, dtype and thread count (floating-point sums are
not associative, so a GPU and a CPU, or 1 and 2 threads, may sample differently).
A rerun resumes from every process's file, whatever the number of processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap_embeddings.digests import content_digest, model_digest, sha256_file
from bootstrap_embeddings.generator.adapted import AdaptedModels, generation_dtype
from bootstrap_embeddings.generator.prompts import (
    RELATIONS,
    chat_wrap,
    clean_generation,
    has_chat_template,
    icl_prompt,
)

log = logging.getLogger(__name__)

# recipe["adapters"] key of the adapter that writes each relation
ADAPTER_KEY = {"entailment": "pos", "contradiction": "neg"}
# Bump when the partial-file format or the sampling scheme changes.
_FORMAT = 2  # 2: batches by token length, decoding.decode's sampling


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


# --------------------------------------------------------------------------- fingerprint


def partial_path(fingerprint: str, kind: str = "generate") -> Path:
    """Where an unfinished run keeps its batches: the user's project root, also under `dvc exp`."""
    from bootstrap_embeddings.tracking import project_root

    return project_root() / ".cache" / kind / f"{fingerprint}.jsonl"


# The code whose text shapes a run's output besides its inputs: the prompts and answer
# cleaning, batching and seeding, the decoding loop, merged or switched adapters.
_CODE_FILES = ("prompts.py", "generation.py", "decoding.py", "adapted.py")


def code_digest(names=_CODE_FILES) -> str:
    """sha256 over the source of the generator modules that build prompts, decode and clean."""
    h = hashlib.sha256()
    for name in names:
        path = Path(__file__).with_name(name)
        if path.is_file():
            h.update(name.encode() + b"\0")
            sha256_file(path, h)
    return h.hexdigest()


def prompts_key(prompts: Sequence[str]) -> str:
    """The partial file's header key: the run's prompt texts, the code, the format."""
    h = hashlib.sha256(f"{_FORMAT}\0{code_digest()}\0".encode())
    for text in prompts:
        h.update(text.encode("utf-8") + b"\0")
    return h.hexdigest()[:24]


def generation_fingerprint(
    base_path, recipe: dict, items: list[dict], gen, quantization: str, seed: int
) -> str:
    """A key for a generation run's inputs (names its partial file).

    The prompt texts and the code are checked against the file's header
    (`prompts_key`) when the run starts: the fingerprint is computed before the
    prompts exist, by callers that only know the recipe.
    """
    from bootstrap_embeddings.generator.loading import resolve_quantization

    used = resolve_quantization(quantization)
    adapters = recipe.get("adapters") or {}
    payload = {
        "format": _FORMAT,
        "model": model_digest(base_path),
        "adapters": {k: content_digest(adapters[k]) for k in ("pos", "neg") if adapters.get(k)},
        "recipe": recipe,
        "items": [[it["id"], it["text"]] for it in items],
        "generation": gen.model_dump(),
        "quantization": used,
        "dtype": generation_dtype(used),
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


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


def _read_partial(path: Path) -> list[dict]:
    """Finished batches from an earlier run; a torn last line (crash mid-write) is cut off."""
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with open(path, "r+b") as fh:
            fh.truncate(len(data))
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _shard_file(path: Path, process: int) -> Path:
    return path.with_name(f"{path.stem}.rank{process}{path.suffix}")


def _partial_files(path: Path) -> list[Path]:
    """The one-process file and every process's shard file of a run."""
    shards = sorted(path.parent.glob(f"{path.stem}.rank*{path.suffix}"))
    return [f for f in [path, *shards] if f.exists()]


def discard_partial(path) -> None:
    """Delete a finished run's partial files (the one-process file and every shard)."""
    for f in _partial_files(Path(path)):
        f.unlink(missing_ok=True)


def _done_batches(path: Path, expected: dict, key: str) -> tuple[dict, list[Path]]:
    """Finished batches in the run's partial files, keyed (relation, batch), and the stale files.

    A file is stale when its header (first line) holds another key than `key`, or
    none (written before headers existed).
    """
    done, stale = {}, []
    for f in _partial_files(path):
        records = _read_partial(f)
        if not records:
            continue
        if records[0].get("key") != key:
            stale.append(f)
            continue
        for rec in records[1:]:
            if expected.get((rec["relation"], rec["batch"])) == rec["ids"]:
                done[(rec["relation"], rec["batch"])] = rec
    return done, stale


def _append(fh, record: dict) -> None:
    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def generate_completions(
    base_path,
    items: list[dict],
    prompt_fn: Callable[[str, str], str],
    adapters: dict[str, str | None],
    gen,
    quantization: str,
    seed: int,
    partial_path,
    relations: Sequence[str] = RELATIONS,
) -> Completions:
    """Answer `prompt_fn(text, relation)` for every item ({id, text}) and each relation.

    `adapters` maps a relation to the LoRA that writes it (None: the base model).
    Each relation runs as its own pass, so only one adapted copy of the model is in
    memory at a time. Batches already in `partial_path` (or its shards) are not
    generated again. Under torchrun each process generates a contiguous share of the
    batches left, and every process returns the complete result.
    """
    from tqdm import tqdm

    from bootstrap_embeddings import distributed
    from bootstrap_embeddings.generator.loading import (
        load_generator,
        load_tokenizer,
        resolve_quantization,
    )

    partial_path = Path(partial_path)
    ordered = length_order(items, load_tokenizer(str(base_path))) if items else items
    batches = [ordered[i : i + gen.batch_size] for i in range(0, len(ordered), gen.batch_size)]
    expected = {
        (r, b): [it["id"] for it in batch] for r in relations for b, batch in enumerate(batches)
    }
    key = prompts_key([prompt_fn(it["text"], r) for r in relations for it in items])
    done, stale = _done_batches(partial_path, expected, key)
    # Everyone has read the earlier files (and cut any torn line) before anyone appends.
    distributed.wait_for_everyone()
    if stale:
        log.warning("%s: written with other prompt texts or generator code (key %s, now %s): "
                    "removed, starting afresh", ", ".join(map(str, stale)),
                    _read_partial(stale[0])[0].get("key"), key)
        if distributed.is_main_process():
            for f in stale:
                f.unlink(missing_ok=True)
        distributed.wait_for_everyone()  # gone before anyone opens its file
    resumed = len(done)
    todo = [k for k in expected if k not in done]
    if resumed:
        log.info("resuming from %s: %d of %d batches done", partial_path, resumed, len(expected))
    mine = distributed.shard(todo)  # contiguous: with 2 processes, often one relation each
    own_file = (_shard_file(partial_path, distributed.process_index())
                if distributed.is_distributed() else partial_path)

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
        own_file.parent.mkdir(parents=True, exist_ok=True)  # once the model has loaded
        with open(own_file, "a", encoding="utf-8") as fh, tqdm(
            total=resumed + len(mine), initial=resumed, desc="generate", unit="batch"
        ) as bar:
            if fh.tell() == 0:
                _append(fh, {"key": key})
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
                        _append(fh, record)
                        done[(relation, b)] = record
                        bar.update()
        del models, base
    if distributed.is_distributed():
        distributed.wait_for_everyone()  # every share is on disk
        done, _ = _done_batches(partial_path, expected, key)
        distributed.wait_for_everyone()  # ... and read, before the main process deletes it

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
    partial_path,
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
        partial_path,
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
