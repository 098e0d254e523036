"""Stage `generate <lang>`: the strategy's training rows for a language.

The strategy (bootstrap_embeddings/strategies/) makes them from its recipe: the
generator writes triplets from the language's anchors (icl, composition, xl_lora),
or they are real rows (`english`: English NLI; `parallel`: the language's (X, English)
pairs); `base` trains nothing and gets an empty file. Generation keeps its progress in
a partial file under .cache/generate/ (outside DVC's outputs), so an interrupted run
resumes. Under torchrun (or BOOTSTRAP_NPROC) the processes share the batches.
"""

import time
from pathlib import Path

from bootstrap_embeddings import strategies
from bootstrap_embeddings.cli import TargetLanguage, stage_entry
from bootstrap_embeddings.distributed import is_main_process
from bootstrap_embeddings.files import atomic_dir, write_json, write_jsonl
from bootstrap_embeddings.tracking import tracked_run


@stage_entry(distributed=True)
def main(params, language: TargetLanguage) -> None:
    strategy = strategies.get(params.strategy)
    recipe = strategies.read_recipe(strategy.name, language)
    start = time.perf_counter()
    with strategy.make_rows(params, language, recipe) as (rows, stats):
        stats |= {"strategy": strategy.name, "language": language,
                  "wall_seconds": round(time.perf_counter() - start, 2)}
        if not is_main_process():
            return  # under torchrun: this process generated its share; the main one writes
        with atomic_dir(Path("data/generated") / language) as out:
            write_jsonl(out / "triplets.jsonl", rows)
            write_json(out / "stats.json", stats)

    with tracked_run(params, "generate", language) as run:
        generation = params.generator.generation.model_dump()
        run.log_params({f"generator.generation.{k}": v for k, v in generation.items()})
        run.log_metrics({k: v for k, v in stats.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool)})
    print(f"{language}: {len(rows)} triplets ({strategy.name}), "
          f"{stats['generated_tokens']} tokens in {stats['wall_seconds']} s")


if __name__ == "__main__":
    main()
