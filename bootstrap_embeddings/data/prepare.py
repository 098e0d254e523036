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
from bootstrap_embeddings.data import cldr
from bootstrap_embeddings.data.tables import (
    anchor_texts,
    monolingual_texts,
    nli_triplets,
    parallel_pairs,
)
from bootstrap_embeddings.data.udhr import ENGLISH, align, normalise, open_udhr, split_sentences
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
        kept = [r for r in rows if not any(sentence_keys(r[f]) & self.keys for f in fields)]
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


def held_out_pairs(
    params: Params, lang: str, language_key: str = "languages"
) -> tuple[list[dict], dict]:
    """{id, text, english} aligned segments of the held-out articles, and the declaration used."""
    data = params.data
    archive = open_udhr(data.udhr_archive)
    declaration, why = archive.choose(lang, data.udhr_variants, language_key)
    segments = align(archive.english, declaration, only_articles=set(data.held_out_articles))
    rows = [{"id": s.id, "text": s.text, "english": s.english} for s in segments]
    info = {"declaration": declaration.info.code, "name": declaration.info.name, "chosen_by": why}
    return rows, info


def _english_held_out(params: Params) -> list[str]:
    """Every English paragraph of the held-out articles, aligned with the target or not."""
    english = open_udhr(params.data.udhr_archive).english
    held_out = set(params.data.held_out_articles)
    return [t for article, _, t in english.paragraphs() if article in held_out]


def prepare_language(params: Params, lang: str) -> Prepared:
    """anchors, monolingual text, training pairs and the evaluation split of one language."""
    data, seed = params.data, params.seed
    held_out = set(data.held_out_articles)
    evaluation, udhr_info = held_out_pairs(params, lang)
    if not evaluation:
        raise UserError(
            f"languages: {lang}: no paragraph of the held-out UDHR articles "
            f"(data.held_out_articles) aligns with English, so it cannot be evaluated"
        )
    guard = LeakGuard([r["text"] for r in evaluation] + _english_held_out(params)
                      + cldr.held_out_texts([lang]))  # CLDR: the second evaluation
    anchors = guard.clean("anchors", anchor_texts(data.anchors, data, lang, held_out), ("text",))
    anchors = _sample(
        _unique(anchors, ("text",)), data.anchors_per_language, seed, f"anchors:{lang}"
    )
    monolingual = guard.clean(
        "monolingual", monolingual_texts(data.monolingual, data, lang, held_out), ("text",)
    )
    monolingual = _sample(
        _unique(monolingual, ("text",)), data.monolingual_per_language, seed, f"monolingual:{lang}"
    )
    pairs = parallel_pairs(data.parallel, data, lang, held_out)
    pairs = _unique(guard.clean("train_pairs", pairs, ("text", "english")), ("text", "english"))
    files = {
        "anchors.jsonl": anchors,
        "monolingual.jsonl": monolingual,
        "train_pairs.jsonl": pairs,
        "eval.jsonl": evaluation,
    }
    # CLDR: the second held-out evaluation and the dev split
    files |= cldr.prepared_files(lang, required=CLDR in sources(params.eval.local_tasks))
    manifest = {
        "language": lang,
        "udhr": udhr_info,
        "held_out_articles": sorted(held_out),
        "seed": seed,
        "sources": _sources(data, ("anchors", "monolingual", "parallel")),
        "counts": {name.removesuffix(".jsonl"): len(rows) for name, rows in files.items()},
        "dropped_for_sharing_a_sentence_with_eval": guard.dropped,
    }
    return Prepared(files, manifest)


def _sources(data, keys: tuple[str, ...]) -> dict:
    return {k: getattr(data, k).model_dump(exclude_defaults=True) for k in keys}


def xl_lora_languages(params: Params) -> list[str]:
    """XL-LoRA's premise languages minus the targets, which must stay unseen by it."""
    return [c for c in params.data.xl_lora_languages if c not in params.languages]


def prepare_shared(params: Params) -> Prepared:
    """English NLI triplets, English running text and XL-LoRA's parallel pairs."""
    data, seed = params.data, params.seed
    held_out = set(data.held_out_articles)
    # English held-out text, and the targets' own: a shared row must match neither
    target_texts = [r["text"] for lang in params.languages for r in held_out_pairs(params, lang)[0]]
    guard = LeakGuard(_english_held_out(params) + target_texts
                      + cldr.held_out_texts(params.languages))  # CLDR: the second evaluation

    nli = guard.clean("nli", nli_triplets(data.nli, data, seed), ("anchor", "positive", "negative"))
    nli = _unique(nli, ("anchor", "positive", "negative"))
    english = monolingual_texts(data.monolingual, data, ENGLISH, held_out)
    english = _unique(guard.clean("eng_monolingual", english, ("text",)), ("text",))
    english = _sample(english, data.monolingual_per_language, seed, "monolingual:eng")

    parallel, per_language = [], {}
    for lang in xl_lora_languages(params):
        pairs = parallel_pairs(data.parallel, data, lang, held_out, language_key=XL_KEY)
        pairs = guard.clean(f"xl_parallel:{lang}", pairs, ("text", "english"))
        pairs = _unique(pairs, ("text", "english"))
        pairs = _sample(pairs, data.xl_lora_pairs_per_language, seed, f"xl_parallel:{lang}")
        parallel += [
            {"id": f"{lang}:{p['id']}", "language": lang} | {k: p[k] for k in ("text", "english")}
            for p in pairs
        ]
        per_language[lang] = len(pairs)
    if not parallel:
        raise UserError(
            "data.xl_lora_languages: no language is left once the target languages "
            f"({', '.join(params.languages)}) are dropped; add premise languages"
        )
    files = {"nli.jsonl": nli, "eng_monolingual.jsonl": english, "xl_parallel.jsonl": parallel}
    manifest = {
        "seed": seed,
        "held_out_articles": sorted(held_out),
        "sources": _sources(data, ("nli", "monolingual", "parallel")),
        "counts": {name.removesuffix(".jsonl"): len(rows) for name, rows in files.items()},
        "nli_relations": dict(Counter(row["relation"] for row in nli)),
        "xl_parallel_languages": per_language,
        "xl_lora_languages_dropped_as_targets": sorted(
            set(data.xl_lora_languages) & set(params.languages)
        ),
        "dropped_for_sharing_a_sentence_with_eval": guard.dropped,
    }
    if data.parallel.kind == "udhr":
        archive = open_udhr(data.udhr_archive)
        chosen = {lang: archive.choose(lang, data.udhr_variants, XL_KEY) for lang in per_language}
        manifest["udhr"] = {
            lang: {"declaration": declaration.info.code, "chosen_by": why}
            for lang, (declaration, why) in chosen.items()
        }
    return Prepared(files, manifest)
