"""XL-LoRA: adapters trained on (non-English premise -> English entailment / contradiction).

The generator answers a target-language anchor in English, the language it writes
best, so the triplets are cross-lingual: target anchor, English positive and negative.
"""

from __future__ import annotations

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.strategies import RecipeInputs, Strategy
from bootstrap_embeddings.strategies._rows import generated_triplets



def build_recipe(language: str, inputs: RecipeInputs) -> dict:
    from bootstrap_embeddings.digests import content_digest
    from bootstrap_embeddings.generator.prompts import XL_LORA_PROMPT_LANGUAGE

    paths = {kind: inputs.adapters_dir / f"xl_lora_{kind}" for kind in ("pos", "neg")}
    for path in paths.values():
        if not (path / "adapter_config.json").is_file():
            raise UserError(f"{path}: no adapter there; run `dvc repro xl_lora_adapter` first")
    return {
        "adapters": {kind: str(path) for kind, path in paths.items()},
        # retrained adapters keep their paths: their hashes make the recipe change
        "adapter_sha256": {kind: content_digest(path) for kind, path in paths.items()},
        "prompt_language": XL_LORA_PROMPT_LANGUAGE,
        "shots": [],
    }


STRATEGY = Strategy(
    name="xl_lora",
    description="XL-LoRA adapters: trained on (non-English premise -> English entailment / "
                "contradiction)",
    order=12,
    generates=True,
    output_language="english",
    has_negative=True,
    trains=True,
    setup_stage="setup_xl_lora",
    make_rows=generated_triplets,
    build_recipe=build_recipe,
)
