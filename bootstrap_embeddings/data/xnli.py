"""XL-LoRA's training pairs from XNLI: a premise in language L, the English hypothesis of the same row.

The paper's XL-LoRA data (its `mixed_parallel_xnli_14l_..._{pos,neg}.csv`) pairs
premises in 14 XNLI languages with English entailments (pos) and contradictions
(neg), 10,000 rows each, the two files sampled separately. XNLI (`facebook/xnli`)
has one config per language, aligned row by row (the same MNLI pair, translated), so
row i of config L gives the premise and row i of `en` the English hypothesis; the
labels of the two rows must agree, which checks the alignment of every row used.
"""

from __future__ import annotations

import random

from bootstrap_embeddings.config import Source, XlLoraNli
from bootstrap_embeddings.data.source_languages import xnli_config
from bootstrap_embeddings.errors import UserError

KEY = "data.xl_lora_nli"
LANGUAGES_KEY = "data.xl_lora_languages"
COLUMNS = ("premise", "hypothesis", "label")
ENGLISH_CONFIG = "en"
# XNLI's labels: 0 entailment, 1 neutral, 2 contradiction; XL-LoRA's adapters by label
LABELS = {"pos": 0, "neg": 2}


def _config(source: XlLoraNli, config: str):
    from bootstrap_embeddings.data.tables import _load_dataset

    dataset = _load_dataset(Source(kind="hf", name=source.name, config=config,
                                   split=source.split), KEY, None)
    missing = [c for c in COLUMNS if c not in dataset.column_names]
    if missing:
        raise UserError(f"{KEY}.name: {source.name} ({config}): column(s) {', '.join(missing)} "
                        f"missing; an XNLI-shaped dataset has {', '.join(COLUMNS)}")
    return dataset


def quotas(total: int, languages: list[str]) -> dict[str, int]:
    """`total` rows split evenly over the languages (the first ones take the remainder)."""
    share, extra = divmod(total, len(languages))
    return {lang: share + (i < extra) for i, lang in enumerate(languages)}


def xnli_pairs(source: XlLoraNli, languages: list[str], seed: int) -> list[dict]:
    """{id, language, relation, text, english} rows: `source.rows` with relation pos and as many neg.

    Per relation, each language gives its quota of rows, a seeded sample (its own stream
    per relation and language) of the rows with that label; sampled in source order.
    A language with fewer such rows than its quota gives all it has.
    """
    if not languages:
        raise UserError(f"{LANGUAGES_KEY}: no premise language is left for {KEY}")
    configs = {lang: xnli_config(lang, LANGUAGES_KEY) for lang in languages}
    if ENGLISH_CONFIG in configs.values():
        raise UserError(f"{LANGUAGES_KEY}: English is the hypotheses' language; XL-LoRA's "
                        "premises are in the other XNLI languages")
    english = _config(source, ENGLISH_CONFIG)
    english_labels = list(english["label"])
    share = quotas(source.rows, languages)
    rows = []
    for lang, config in configs.items():
        dataset = _config(source, config)
        if len(dataset) != len(english):
            raise UserError(f"{KEY}.name: {source.name}: config {config} has {len(dataset)} "
                            f"{source.split} rows, {ENGLISH_CONFIG} has {len(english)}: the "
                            "configs are not aligned row by row")
        labels = list(dataset["label"])
        for kind, label in LABELS.items():
            candidates = [i for i, value in enumerate(labels) if value == label]
            rng = random.Random(f"{seed}:xl_nli:{kind}:{lang}")
            picked = sorted(rng.sample(candidates, min(share[lang], len(candidates))))
            premises = dataset.select(picked)["premise"]
            hypotheses = english.select(picked)["hypothesis"]
            for i, premise, hypothesis in zip(picked, premises, hypotheses):
                if english_labels[i] != label:
                    raise UserError(f"{KEY}.name: {source.name}: row {i} is label {label} in "
                                    f"{config} and {english_labels[i]} in {ENGLISH_CONFIG}: "
                                    "the configs are not aligned row by row")
                premise, hypothesis = (premise or "").strip(), (hypothesis or "").strip()
                if premise and hypothesis:
                    rows.append({"id": f"{lang}:{source.split}:{i}", "language": lang,
                                 "relation": kind, "text": premise, "english": hypothesis})
    return rows
