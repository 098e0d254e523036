"""What an experiment cost: generated tokens and the wall time of generation and training.

Read from what the stages already record:
- `data/generated/<lang>/stats.json` (generate): generated_tokens, wall_seconds;
- `models/embedders/<lang>/training.json` (train_embedder): train_runtime_s;
- `models/adapters/<name>/training.json` (adapter stages): wall_time_s of each adapter
  the strategy's generator is built from, and `data/xl_lora/stats.json` (xl_lora_data):
  the tokens and time the task adapters spent writing XL-LoRA's training rows.

An adapter shared by two languages is counted once per experiment, as it is trained
once. The report stage does not declare the adapter files as deps (that would make
`dvc repro report` build every strategy's adapters); a retrained adapter changes the
generated triplets, which the report does depend on, so it re-runs anyway.
A figure a stage did not record is left out (None), never guessed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bootstrap_embeddings.files import read_json

log = logging.getLogger(__name__)

# The adapters (models/adapters/<name>) each strategy's generator is built from, and the
# generation run that made their training data. TODO(registry): belongs to the strategy
# registry once it lands.
STRATEGY_ADAPTERS = {
    "composition": ("task_pos", "task_neg", "language_{lang}", "language_eng"),
    "xl_lora": ("task_pos", "task_neg", "xl_lora_pos", "xl_lora_neg"),
}
STRATEGY_DATA_GENERATION = {"xl_lora": "data/xl_lora/stats.json"}
# strategies whose embedder is the untouched base model (nothing trained)
UNTRAINED = ("base",)

FIELDS = ("generated_tokens", "generation_s", "adapter_training_s", "embedder_training_s",
          "total_s")


def _read(path: Path, key: str) -> float | None:
    if not path.is_file():
        log.info("%s: not there; its cost is left out", path)
        return None
    value = read_json(path).get(key)
    return None if value is None else float(value)


def _sum(values) -> float | None:
    values = list(values)
    return None if not values or any(v is None for v in values) else float(sum(values))


def language_cost(strategy: str, language: str, root: Path) -> dict:
    """Generation and embedder training of one language."""
    stats = root / "data/generated" / language / "stats.json"
    training = root / "models/embedders" / language / "training.json"
    return {
        "generated_tokens": _read(stats, "generated_tokens"),
        "generation_s": _read(stats, "wall_seconds"),
        "embedder_training_s": 0.0 if strategy in UNTRAINED
        else _read(training, "train_runtime_s"),
    }


def experiment_cost(strategy: str, languages: list[str], root: str | Path = ".") -> dict:
    """{per_language: {lang: {...}}, total: {generated_tokens, generation_s,
    adapter_training_s, embedder_training_s, total_s}} of the current experiment."""
    root = Path(root)
    per_language = {lang: language_cost(strategy, lang, root) for lang in languages}
    adapters = sorted({name.format(lang=lang) for lang in languages
                       for name in STRATEGY_ADAPTERS.get(strategy, ())})
    adapter_s = _sum(_read(root / "models/adapters" / a / "training.json", "wall_time_s")
                     for a in adapters) if adapters else 0.0
    data_tokens, data_s = 0.0, 0.0
    if strategy in STRATEGY_DATA_GENERATION:
        stats = root / STRATEGY_DATA_GENERATION[strategy]
        data_tokens, data_s = _read(stats, "generated_tokens"), _read(stats, "wall_seconds")
    rows = per_language.values()
    total = {
        "generated_tokens": _sum([data_tokens, *(r["generated_tokens"] for r in rows)]),
        "generation_s": _sum([data_s, *(r["generation_s"] for r in rows)]),
        "adapter_training_s": adapter_s,
        "embedder_training_s": _sum(r["embedder_training_s"] for r in rows),
    }
    parts = [total["generation_s"], total["adapter_training_s"], total["embedder_training_s"]]
    total["total_s"] = _sum(parts)
    if total["generated_tokens"] is not None:
        total["generated_tokens"] = int(total["generated_tokens"])
    return {"per_language": per_language, "total": total, "adapters": adapters}
