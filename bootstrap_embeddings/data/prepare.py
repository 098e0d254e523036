"""The prepared data: the evaluation split and everything the pipeline trains or generates from.

The evaluation split is the UDHR's `data.held_out_articles`, aligned target/English, in
every language. Held out by article, so no translation of an evaluation sentence comes
back in through another language. On top of that, every row that would be trained or
generated from is checked sentence by sentence against the held-out text and dropped
on a match, which also guards sources (hub datasets, files) that know no articles.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap_embeddings.config import Params
from bootstrap_embeddings.data import cldr, sts
from bootstrap_embeddings.data.tables import LanguageTables, nli_triplets
from bootstrap_embeddings.data.udhr import ENGLISH, normalise, open_udhr, split_sentences
from bootstrap_embeddings.data.xnli import xnli_pairs
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.evaluation.sources import CLDR, sources
from bootstrap_embeddings.files import atomic_dir, write_json, write_jsonl

XL_KEY = "data.xl_lora_languages"


@dataclass
class Prepared:
    """The rows of each output file (name -> rows) and the manifest that describes them."""

    files: dict[str, list[dict]]
    manifest: dict = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> None:
        """Replace `out_dir` with the JSONL files and manifest.json, atomically."""
        with atomic_dir(out_dir) as tmp:
            for name, rows in self.files.items():
                write_jsonl(tmp / name, rows)
            write_json(tmp / "manifest.json", self.manifest)


def sentence_keys(text: str) -> set[str]:
    """The whitespace-normalised text and each of its sentences: what a leak check compares."""
    return {normalise(text), *(normalise(s) for s in split_sentences(text))}


class LeakGuard:
    """Drops rows that share a sentence with the held-out split, and counts them."""

    def __init__(self, held_out_texts) -> None:
        self.keys = set().union(*(sentence_keys(t) for t in held_out_texts))
        self.dropped: dict[str, int] = {}

    def clean(self, name: str, rows: list[dict], fields: tuple[str, ...]) -> list[dict]:
        kept = [r for r in rows
                if not any(sentence_keys(r[f]) & self.keys for f in fields if r.get(f))]
        self.dropped[name] = len(rows) - len(kept)
        return kept


def _unique(rows: list[dict], fields: tuple[str, ...]) -> list[dict]:
    seen, out = set(), []
    for row in rows:
        key = tuple(normalise(row[f]) for f in fields)
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def _sample(rows: list[dict], n: int, seed: int, purpose: str) -> list[dict]:
    """At most n rows, a seeded sample kept in source order (each purpose its own stream)."""
    if len(rows) <= n:
        return rows
    keep = sorted(random.Random(f"{seed}:{purpose}").sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def adapter_text(params: Params, tables: LanguageTables, guard: LeakGuard, name: str
                 ) -> tuple[list[dict], int]:
    """A language adapter's rows ({text} or {prompt, text}): `data.monolingual`'s, and
    where it has fewer than `data.monolingual_per_language`, as many more from
    `data.monolingual_top_up` (as the paper tops Aya up from Aya Collection). Returns the
    rows and how many came from the top-up (marked `"source": "top_up"`)."""
    data, seed, lang = params.data, params.seed, tables.language
    fields = ("prompt", "text")  # both are trained on (loss on every token)
    rows = _unique(guard.clean(name, tables.monolingual(), fields), ("text",))
    rows = _sample(rows, data.monolingual_per_language, seed, f"monolingual:{lang}")
    short = data.monolingual_per_language - len(rows)
    if short <= 0 or data.monolingual_top_up is None:
        return rows, 0
    have = {normalise(r["text"]) for r in rows}
    extra = [r for r in guard.clean(f"{name}_top_up", tables.monolingual_top_up(), fields)
             if normalise(r["text"]) not in have]
    extra = _sample(_unique(extra, ("text",)), short, seed, f"monolingual_top_up:{lang}")
    return rows + [r | {"source": "top_up"} for r in extra], len(extra)


def language_tables(params: Params, lang: str, language_key: str = "languages") -> LanguageTables:
    """The language's text in every role, its UDHR declaration chosen once."""
    return LanguageTables(params.data, lang, frozenset(params.data.held_out_articles),
                          language_key)


def _english_held_out(params: Params) -> list[str]:
    """Every English paragraph of the held-out articles, aligned with the target or not."""
    english = open_udhr(params.data.udhr_archive).english
    held_out = set(params.data.held_out_articles)
    return [t for article, _, t in english.paragraphs() if article in held_out]


def _sts_dev(params: Params, lang: str) -> list[dict]:
    """The language's STS dev pairs where checkpoints are chosen on them, else none."""
    dev = params.embedder.dev
    if dev is None or not dev.on_sts(lang):
        return []
    return sts.sts_rows(dev.sts, lang)


def _dev_on_cldr(params: Params, lang: str) -> bool:
    dev = params.embedder.dev
    return dev is not None and not dev.on_sts(lang)


def prepare_language(params: Params, lang: str) -> Prepared:
    """anchors, monolingual text, training pairs and the evaluation split of one language."""
    data, seed = params.data, params.seed
    held_out = set(data.held_out_articles)
    tables = language_tables(params, lang)
    evaluation = tables.held_out_pairs()
    if not evaluation:
        raise UserError(
            f"languages: {lang}: no paragraph of the held-out UDHR articles "
            f"(data.held_out_articles) aligns with English, so it cannot be evaluated"
        )
    dev_sts = _sts_dev(params, lang)
    guard = LeakGuard([r["text"] for r in evaluation] + _english_held_out(params)
                      + cldr.held_out_texts([lang])  # CLDR: the second evaluation and dev
                      + [r[f] for r in dev_sts for f in ("sentence1", "sentence2")])
    anchors = guard.clean("anchors", tables.anchors(), ("text",))
    anchors = _sample(
        _unique(anchors, ("text",)), data.anchors_per_language, seed, f"anchors:{lang}"
    )
    monolingual, topped_up = adapter_text(params, tables, guard, "monolingual")
    pairs = guard.clean("train_pairs", tables.parallel(), ("text", "english"))
    pairs = _unique(pairs, ("text", "english"))
    files = {
        "anchors.jsonl": anchors,
        "monolingual.jsonl": monolingual,
        "train_pairs.jsonl": pairs,
        "eval.jsonl": evaluation,
    }
    # CLDR: the second held-out evaluation and the dev split
    files |= cldr.prepared_files(lang, required=CLDR in sources(params.eval.local_tasks)
                                 or _dev_on_cldr(params, lang))
    files[sts.FILE] = dev_sts  # always written (train_embedder depends on it); empty if unused
    manifest = {
        "language": lang,
        "udhr": tables.udhr_info(),
        "held_out_articles": sorted(held_out),
        "seed": seed,
        "sources": _sources(data, ("anchors", "monolingual", "monolingual_top_up", "parallel")),
        "counts": {name.removesuffix(".jsonl"): len(rows) for name, rows in files.items()},
        "monolingual_from_top_up": topped_up,
        "dropped_for_sharing_a_sentence_with_eval": guard.dropped,
    }
    return Prepared(files, manifest)


def _sources(data, keys: tuple[str, ...]) -> dict:
    return {k: getattr(data, k).model_dump(exclude_defaults=True) for k in keys
            if getattr(data, k) is not None}


def xl_lora_languages(params: Params) -> list[str]:
    """XL-LoRA's premise languages, minus the targets where `data.xl_lora_exclude_targets`
    (a target then stays unseen by XL-LoRA; the paper's data has Hindi, one of its targets)."""
    if not params.data.xl_lora_exclude_targets:
        return list(params.data.xl_lora_languages)
    return [c for c in params.data.xl_lora_languages if c not in params.languages]


def prepare_shared(params: Params) -> Prepared:
    """English NLI triplets, English running text and XL-LoRA's parallel pairs (or, with
    `data.xl_lora_nli`, its premise / English hypothesis pairs from the NLI dataset)."""
    data, seed = params.data, params.seed
    held_out = set(data.held_out_articles)
    # English held-out text, and the targets' own: a shared row must match neither
    target_texts = [r["text"] for lang in params.languages
                    for r in language_tables(params, lang).held_out_pairs()]
    guard = LeakGuard(_english_held_out(params) + target_texts
                      + cldr.held_out_texts(params.languages))  # CLDR: the second evaluation

    nli = guard.clean("nli", nli_triplets(data.nli, data, seed), ("anchor", "positive", "negative"))
    nli = _unique(nli, ("anchor", "positive", "negative"))
    english, english_topped_up = adapter_text(params, language_tables(params, ENGLISH), guard,
                                              "eng_monolingual")

    parallel, per_language, chosen, xl_nli = [], {}, {}, []
    if data.xl_lora_nli is not None:  # XL-LoRA's rows come from the NLI dataset instead
        xl_nli = guard.clean("xl_nli", xnli_pairs(data.xl_lora_nli, xl_lora_languages(params),
                                                  seed), ("text", "english"))
        if not xl_nli:
            raise UserError(f"data.xl_lora_nli: {data.xl_lora_nli.name} gave no row")
    for lang in xl_lora_languages(params) if data.xl_lora_nli is None else ():
        tables = language_tables(params, lang, language_key=XL_KEY)
        pairs = guard.clean(f"xl_parallel:{lang}", tables.parallel(), ("text", "english"))
        pairs = _unique(pairs, ("text", "english"))
        pairs = _sample(pairs, data.xl_lora_pairs_per_language, seed, f"xl_parallel:{lang}")
        parallel += [
            {"id": f"{lang}:{p['id']}", "language": lang} | {k: p[k] for k in ("text", "english")}
            for p in pairs
        ]
        per_language[lang] = len(pairs)
        if data.parallel.kind == "udhr":
            chosen[lang] = tables.udhr_info()
    if not parallel and data.xl_lora_nli is None:
        raise UserError(
            "data.xl_lora_languages: no language is left once the target languages "
            f"({', '.join(params.languages)}) are dropped; add premise languages"
        )
    # both XL-LoRA files always (stages depend on both); the unused branch's is empty
    files = {"nli.jsonl": nli, "eng_monolingual.jsonl": english, "xl_parallel.jsonl": parallel,
             "xl_nli.jsonl": xl_nli}
    manifest = {
        "seed": seed,
        "held_out_articles": sorted(held_out),
        "sources": _sources(data, ("nli", "monolingual", "monolingual_top_up", "parallel")) | (
            {"xl_lora_nli": data.xl_lora_nli.model_dump()} if data.xl_lora_nli else {}),
        "counts": {name.removesuffix(".jsonl"): len(rows) for name, rows in files.items()},
        "eng_monolingual_from_top_up": english_topped_up,
        "nli_relations": dict(Counter(row["relation"] for row in nli)),
        "xl_parallel_languages": per_language,
        "xl_nli": {kind: dict(sorted(Counter(r["language"] for r in xl_nli
                                             if r["relation"] == kind).items()))
                   for kind in ("pos", "neg")} if xl_nli else None,
        "xl_lora_languages_dropped_as_targets": sorted(
            set(data.xl_lora_languages) & set(params.languages)
        ),
        "dropped_for_sharing_a_sentence_with_eval": guard.dropped,
    }
    if chosen:
        manifest["udhr"] = {lang: {k: info[k] for k in ("declaration", "chosen_by")}
                            for lang, info in chosen.items()}
    return Prepared(files, manifest)
