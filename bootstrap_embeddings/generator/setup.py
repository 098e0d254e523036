"""Recipes: what the generator uses for a strategy and language.

models/generators/<strategy>/<lang>/recipe.json is the generate stage's only
strategy-specific input, so DVC re-runs generation exactly when it changes. It names
adapters by path and, for XL-LoRA, by content hash too: retrained adapters change the
recipe even though their paths stay the same. The composition recipe is written by
the compose stage.

    {strategy, language, generate, adapters: {pos, neg} | null, shots: [...], ...}
"""

from __future__ import annotations

import random
from pathlib import Path

from bootstrap_embeddings.errors import UserError

RECIPE_FILE = "recipe.json"
SETUP_STRATEGIES = ("icl", "xl_lora", "base", "english", "parallel")
# XL-LoRA's adapters are trained to answer a non-English premise in English, with
# "English" named in the prompt (the official generation script passes --language English).
XL_LORA_PROMPT_LANGUAGE = "English"


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


def build_recipe(
    strategy: str,
    language: str,
    *,
    nli_path: str | Path = "data/prepared/shared/nli.jsonl",
    prepared_dir: str | Path = "data/prepared",
    adapters_dir: str | Path = "models/adapters",
    shots: int = 0,
    seed: int = 0,
) -> dict:
    """The recipe for a strategy other than composition."""
    from bootstrap_embeddings.files import read_jsonl
    from bootstrap_embeddings.generator.generation import content_digest

    recipe = {
        "strategy": strategy, "language": language, "generate": True, "adapters": None, "shots": []
    }
    if strategy == "icl":
        nli_path = Path(nli_path)
        if not nli_path.is_file():
            raise UserError(f"{nli_path}: missing; run `dvc repro prepare_shared` first")
        recipe["shots"] = choose_shots(read_jsonl(nli_path), shots, seed, language)
    elif strategy == "xl_lora":
        paths = {kind: Path(adapters_dir) / f"xl_lora_{kind}" for kind in ("pos", "neg")}
        for path in paths.values():
            if not (path / "adapter_config.json").is_file():
                raise UserError(f"{path}: no adapter there; run `dvc repro xl_lora_adapter` first")
        recipe["adapters"] = {kind: str(path) for kind, path in paths.items()}
        recipe["adapter_sha256"] = {kind: content_digest(path) for kind, path in paths.items()}
        recipe["prompt_language"] = XL_LORA_PROMPT_LANGUAGE
    elif strategy == "english":
        # The English NLI triplets are the training set; the hash makes the generate
        # stage re-run when they change.
        nli_path = Path(nli_path)
        if not nli_path.is_file():
            raise UserError(f"{nli_path}: missing; run `dvc repro prepare_shared` first")
        recipe.update(
            generate=False, triplets=str(nli_path), triplets_sha256=content_digest(nli_path)
        )
    elif strategy == "parallel":
        # The language's real (X, English) pairs outside the held-out split.
        pairs = Path(prepared_dir) / language / "train_pairs.jsonl"
        if not pairs.is_file():
            raise UserError(f"{pairs}: missing; run `dvc repro prepare@{language}` first")
        recipe.update(generate=False, triplets=str(pairs), triplets_sha256=content_digest(pairs))
    elif strategy == "base":
        recipe["generate"] = False  # the untouched embedder: no training data
    else:
        raise UserError(
            f"strategy: {strategy!r} has no setup here; allowed: {', '.join(SETUP_STRATEGIES)}"
        )
    return recipe


def read_recipe(recipe_dir: str | Path) -> dict:
    from bootstrap_embeddings.files import read_json

    path = Path(recipe_dir) / RECIPE_FILE
    if not path.is_file():
        raise UserError(f"{path}: missing; run the setup stage of this strategy first (dvc repro)")
    return read_json(path)
