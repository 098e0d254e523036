"""Stage `compose <lang>`: the composition strategy's adapters for one language.

pos = task_pos + lambda * (language_<lang> - language_eng), neg likewise, in the mode
of generator.composition (adamergex: the paper's A/B arithmetic; exact: the sum of
the weight deltas). Writes models/generators/composition/<lang>/{pos/, neg/, recipe.json}.
"""

from pathlib import Path

from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_dir, write_json

ADAPTERS = Path("models/adapters")


@stage_entry
def main(params, language: str) -> None:
    from bootstrap_embeddings.generator.composition import compose_language_adapter
    from bootstrap_embeddings.generator.setup import RECIPE_FILE

    if language not in params.languages:
        raise UserError(f"language {language!r}: not in params.yaml languages {params.languages}")
    comp = params.generator.composition
    out = Path("models/generators/composition") / language
    recipe = {
        "strategy": "composition",
        "language": language,
        "generate": True,
        "adapters": {kind: str(out / kind) for kind in ("pos", "neg")},
        "shots": [],
        "mode": comp.mode,
        "lambda": comp.lambda_,
    }
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
        write_json(tmp / RECIPE_FILE, recipe)
    print(f"composition/{language}: {comp.mode}, lambda={comp.lambda_}")


if __name__ == "__main__":
    main()
