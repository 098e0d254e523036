"""Stage `xl_lora_data`: XL-LoRA's cross-lingual training rows (data/xl_lora/{pos,neg}.jsonl).

The English task adapters write an entailment and a contradiction for the English
side of each parallel pair; the other side becomes the premise. Resumable like
`generate` (partial file under .cache/xl_lora_data/), and shared between processes
like it under torchrun (or BOOTSTRAP_NPROC).
"""

import time
from pathlib import Path

from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.distributed import is_main_process
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_dir, write_json, write_jsonl
from bootstrap_embeddings.rows import XlParallelRow, read_rows
from bootstrap_embeddings.tracking import tracked_run
from bootstrap_embeddings.base_models import BASE_GENERATOR
from bootstrap_embeddings.generator.generation import discard_partial, partial_path

PARALLEL = Path("data/prepared/shared/xl_parallel.jsonl")
OUT = Path("data/xl_lora")


@stage_entry(distributed=True)
def main(params) -> None:
    from bootstrap_embeddings.base_models import resolve_generator_path
    from bootstrap_embeddings.generator.generation import generation_fingerprint
    from bootstrap_embeddings.generator.xl_lora import english_sides, task_recipe, xl_lora_rows

    parallel = read_rows(PARALLEL, XlParallelRow, written_by="prepare_shared")
    recipe = task_recipe()
    for path in recipe["adapters"].values():
        if not (Path(path) / "adapter_config.json").is_file():
            raise UserError(f"{path}: no adapter there; run the task_adapter stage first")
    base = resolve_generator_path(BASE_GENERATOR)
    gen, quant = params.generator.generation, params.generator.quantization
    items = english_sides(parallel)
    partial = partial_path(
        generation_fingerprint(base, recipe, items, gen, quant, params.seed), "xl_lora_data"
    )

    start = time.perf_counter()
    rows, stats = xl_lora_rows(base, parallel, recipe, gen, quant, params.seed, partial)
    stats["wall_seconds"] = round(time.perf_counter() - start, 2)
    if not all(rows.values()):
        raise UserError(f"{PARALLEL}: the task adapters wrote no usable answer for a relation "
                        f"(rows: {stats['rows']})")
    if not is_main_process():
        return  # under torchrun: this process generated its share; the main one writes

    with atomic_dir(OUT) as out:
        for kind, kind_rows in rows.items():
            write_jsonl(out / f"{kind}.jsonl", kind_rows)
        write_json(out / "stats.json", stats)
    discard_partial(partial)

    with tracked_run(params, "xl_lora_data", strategy="xl_lora") as run:
        run.log_metrics({
            "generated_tokens": stats["generated_tokens"],
            "generation_seconds": stats["generation_seconds"],
            **{f"rows_{kind}": n for kind, n in stats["rows"].items()},
        })
    print(f"xl_lora data: {stats['rows']} rows from {stats['unique_english']} English sentences "
          f"in {stats['wall_seconds']} s")


if __name__ == "__main__":
    main()
