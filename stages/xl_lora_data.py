"""Stage `xl_lora_data`: XL-LoRA's cross-lingual training rows (data/xl_lora/{pos,neg}.jsonl).

With `data.xl_lora_nli` (the paper's branch), the rows are the NLI dataset's pairs that
prepare_shared sampled (data/prepared/shared/xl_nli.jsonl): nothing is generated and
the task adapters are not read. Otherwise (the augmentation branch), the English task adapters write an entailment and a contradiction for the English
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
from bootstrap_embeddings.rows import XlNliRow, XlParallelRow, read_rows
from bootstrap_embeddings.tracking import tracked_run
from bootstrap_embeddings.base_models import BASE_GENERATOR

PARALLEL = Path("data/prepared/shared/xl_parallel.jsonl")
XL_NLI = Path("data/prepared/shared/xl_nli.jsonl")
OUT = Path("data/xl_lora")


def from_nli_dataset(params) -> None:
    """The paper's branch: the sampled NLI pairs as training rows, written as they are."""
    from bootstrap_embeddings.generator.xl_lora import nli_dataset_rows

    start = time.perf_counter()
    rows, stats = nli_dataset_rows(read_rows(XL_NLI, XlNliRow, written_by="prepare_shared"))
    # nothing generated: the cost report reads these two
    stats |= {"generated_tokens": 0, "wall_seconds": round(time.perf_counter() - start, 2)}
    if not all(rows.values()):
        raise UserError(f"{XL_NLI}: no row for a relation (rows: {stats['rows']}); check "
                        "data.xl_lora_nli")
    if not is_main_process():
        return
    with atomic_dir(OUT) as out:
        for kind, kind_rows in rows.items():
            write_jsonl(out / f"{kind}.jsonl", kind_rows)
        write_json(out / "stats.json", stats)
    with tracked_run(params, "xl_lora_data", strategy="xl_lora") as run:
        run.log_metrics({f"rows_{kind}": n for kind, n in stats["rows"].items()})
    print(f"xl_lora data: {stats['rows']} rows from {params.data.xl_lora_nli.name}")


@stage_entry(distributed=True)
def main(params) -> None:
    if params.data.xl_lora_nli is not None:
        return from_nli_dataset(params)
    from bootstrap_embeddings.base_models import resolve_generator_path
    from bootstrap_embeddings.generator.resume import resumable_run
    from bootstrap_embeddings.generator.xl_lora import english_sides, task_recipe, xl_lora_rows

    parallel = read_rows(PARALLEL, XlParallelRow, written_by="prepare_shared")
    recipe = task_recipe()
    for path in recipe["adapters"].values():
        if not (Path(path) / "adapter_config.json").is_file():
            raise UserError(f"{path}: no adapter there; run the task_adapter stage first")
    base = resolve_generator_path(BASE_GENERATOR)
    gen, quant = params.generator.generation, params.generator.quantization
    start = time.perf_counter()
    with resumable_run("xl_lora_data", base, recipe, english_sides(parallel), gen, quant,
                       params.seed) as batches:
        rows, stats = xl_lora_rows(base, parallel, recipe, gen, quant, params.seed, batches)
        stats["wall_seconds"] = round(time.perf_counter() - start, 2)
        if not all(rows.values()):
            raise UserError(f"{PARALLEL}: the task adapters wrote no usable answer for a "
                            f"relation (rows: {stats['rows']})")
        if not is_main_process():
            return  # under torchrun: this process generated its share; the main one writes
        with atomic_dir(OUT) as out:
            for kind, kind_rows in rows.items():
                write_jsonl(out / f"{kind}.jsonl", kind_rows)
            write_json(out / "stats.json", stats)

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
