"""Stage `generator_setup <strategy> <lang>`: a strategy's recipe for one language.

Writes models/generators/<strategy>/<lang>/recipe.json with what the strategy's
`build_recipe` gives: ICL's seeded examples, XL-LoRA's adapters (with content hashes),
or the real data file a baseline trains on. The composition recipe comes from the
compose stage.
"""

from bootstrap_embeddings import strategies
from bootstrap_embeddings.cli import StrategyArg, TargetLanguage, stage_entry
from bootstrap_embeddings.files import atomic_dir, write_json


@stage_entry
def main(params, strategy: StrategyArg, language: TargetLanguage) -> None:
    recipe = strategies.build_recipe(strategy, language, shots=params.generator.icl.shots,
                                     seed=params.seed,
                                     released_triplets=params.data.released_triplets)
    with atomic_dir(strategies.recipe_dir(strategy, language)) as out:
        write_json(out / strategies.RECIPE_FILE, recipe)
    shots = f" ({len(recipe['shots'])} shots)" if recipe.get("shots") else ""
    print(f"{strategy}/{language}: recipe written{shots}")


if __name__ == "__main__":
    main()
