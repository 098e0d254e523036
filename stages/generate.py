"""Stage `generate <lang>`: the strategy's training triplets for a language.

Generative strategies (icl, composition, xl_lora) prompt the generator from the
language's anchors with the strategy's recipe. `english` hands on the English NLI
triplets, `parallel` the language's real (X, English) pairs (no negative); `base`
trains nothing and gets an empty file. Progress goes to a partial
file under .cache/generate/ (outside DVC's outputs), so an interrupted run resumes.
Under torchrun (or BOOTSTRAP_NPROC) the processes share the batches.
"""

import time
from pathlib import Path

from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.distributed import is_main_process
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_dir, read_json, read_jsonl, write_json, write_jsonl
from bootstrap_embeddings.base_models import BASE_GENERATOR
from bootstrap_embeddings.tracking import tracked_run


def generator_name(base_dir: Path) -> str:
    """The generator as params.yaml named it (source.json of the base_generator stage)."""
    from bootstrap_embeddings.base_models import SOURCE_FILE

    source = base_dir / SOURCE_FILE
    return read_json(source).get("spec", str(base_dir)) if source.is_file() else str(base_dir)


def real_rows(recipe: dict, strategy: str, language: str) -> list[dict]:
    """The training rows of a strategy that generates nothing, in the triplet format."""
    if strategy == "base":
        return []
    rows = read_jsonl(recipe["triplets"])
    if strategy == "parallel":
        # train_pairs.jsonl: {id, text (target language), english}
        rows = [{"id": r["id"], "anchor": r["text"], "positive": r["english"], "negative": None}
                for r in rows]
    return [
        {"id": r.get("id", f"nli-{i}"), "anchor": r["anchor"], "positive": r["positive"],
         "negative": r["negative"], "strategy": strategy, "language": language,
         "generator": None, "adapter_pos": None, "adapter_neg": None}
        for i, r in enumerate(rows)
    ]


@stage_entry(distributed=True)
def main(params, language: str) -> None:
    from bootstrap_embeddings.generator.setup import read_recipe

    if language not in params.languages:
        raise UserError(f"language {language!r}: not in params.yaml languages {params.languages}")
    recipe_dir = Path("models/generators") / params.strategy / language
    recipe = read_recipe(recipe_dir)
    if recipe.get("strategy") != params.strategy:
        raise UserError(f"{recipe_dir}: recipe of strategy {recipe.get('strategy')!r}, "
                        f"params.yaml says {params.strategy!r}")

    start = time.perf_counter()
    partial = None
    if recipe.get("generate", True):
        from bootstrap_embeddings.base_models import resolve_generator_path
        from bootstrap_embeddings.generator.generation import (
            discard_partial,
            generate_triplets,
            generation_fingerprint,
            partial_path,
        )

        anchors_file = Path("data/prepared") / language / "anchors.jsonl"
        if not anchors_file.is_file():
            raise UserError(f"{anchors_file}: no such file; run the prepare stage first")
        anchors = read_jsonl(anchors_file)
        base = resolve_generator_path(BASE_GENERATOR)
        gen, quant = params.generator.generation, params.generator.quantization
        seed = params.seed
        partial = partial_path(generation_fingerprint(base, recipe, anchors, gen, quant, seed))
        rows, stats = generate_triplets(base, recipe, anchors, language, gen, quant, seed, partial,
                                        generator_name=generator_name(BASE_GENERATOR))
    else:
        rows = real_rows(recipe, params.strategy, language)
        stats = {"prompts": 0, "generated_tokens": 0, "triplets": len(rows)}
    stats |= {"strategy": params.strategy, "language": language,
              "wall_seconds": round(time.perf_counter() - start, 2)}
    if not is_main_process():
        return  # under torchrun: this process generated its share; the main one writes

    with atomic_dir(Path("data/generated") / language) as out:
        write_jsonl(out / "triplets.jsonl", rows)
        write_json(out / "stats.json", stats)
    if partial is not None:
        discard_partial(partial)

    with tracked_run(params, "generate", language) as run:
        generation = params.generator.generation.model_dump()
        run.log_params({f"generator.generation.{k}": v for k, v in generation.items()})
        run.log_metrics({k: v for k, v in stats.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool)})
    print(f"{language}: {len(rows)} triplets ({params.strategy}), "
          f"{stats['generated_tokens']} tokens in {stats['wall_seconds']} s")


if __name__ == "__main__":
    main()
