"""Stage `generator_setup <strategy> <lang>`: the recipe of icl, xl_lora, base or english.

Writes models/generators/<strategy>/<lang>/recipe.json: ICL's seeded examples,
XL-LoRA's adapters (with content hashes), or `generate: false` for the strategies
that generate nothing. The composition recipe comes from the compose stage.
"""

from pathlib import Path

from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_dir, write_json
from bootstrap_embeddings.generator.setup import RECIPE_FILE, build_recipe


@stage_entry
def main(params, strategy: str, language: str) -> None:
    if language not in params.languages:
        raise UserError(f"language {language!r}: not in params.yaml languages {params.languages}")
    recipe = build_recipe(strategy, language, shots=params.generator.icl.shots, seed=params.seed)
    with atomic_dir(Path("models/generators") / strategy / language) as out:
        write_json(out / RECIPE_FILE, recipe)
    shots = f" ({len(recipe['shots'])} shots)" if recipe["shots"] else ""
    print(f"{strategy}/{language}: recipe written{shots}")


if __name__ == "__main__":
    main()
