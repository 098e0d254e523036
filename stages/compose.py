"""Stage `compose <lang>`: the composition strategy's adapters for one language.

pos = task_pos + lambda * (language_<lang> - language_eng), neg likewise, in the mode
of generator.composition (adamergex: the paper's A/B arithmetic; exact: the sum of
the weight deltas). Writes models/generators/composition/<lang>/{pos/, neg/, recipe.json}.
"""

from pathlib import Path

from bootstrap_embeddings import strategies
from bootstrap_embeddings.cli import TargetLanguage, stage_entry
from bootstrap_embeddings.files import atomic_dir, write_json
from bootstrap_embeddings.strategies import composition

ADAPTERS = Path("models/adapters")


@stage_entry
def main(params, language: TargetLanguage) -> None:
    from bootstrap_embeddings.generator.composition import compose_language_adapter

    comp = params.generator.composition
    out = strategies.recipe_dir("composition", language)
    with atomic_dir(out) as tmp:
        for kind in ("pos", "neg"):
            compose_language_adapter(
                ADAPTERS / f"task_{kind}",
                ADAPTERS / f"language_{language}",
                ADAPTERS / "language_eng",
                comp.lambda_,
                comp.mode,
                tmp / kind,
            )
        write_json(tmp / strategies.RECIPE_FILE,
                   composition.recipe(language, out, comp.mode, comp.lambda_))
    print(f"composition/{language}: {comp.mode}, lambda={comp.lambda_}")


if __name__ == "__main__":
    main()
