"""Stage `xl_lora_adapter pos|neg`: XL-LoRA's adapter, a premise in any language ->
an English entailment (pos) or contradiction (neg), trained on data/xl_lora/<kind>.jsonl
(loss on the answer only).

With `generator.xl_lora.released`, the published adapter is fetched and checked
against the base generator instead (bootstrap_embeddings/generator/released.py).
"""

from pathlib import Path

from bootstrap_embeddings.cli import AdapterKind, stage_entry
from bootstrap_embeddings.rows import PromptRow, read_rows

DATA = Path("data/xl_lora")


def released(params, kind: str, spec: str, out: str) -> None:
    from bootstrap_embeddings import distributed
    from bootstrap_embeddings.base_models import BASE_GENERATOR, model_revision, resolve_generator_path
    from bootstrap_embeddings.generator.released import materialise_adapter
    from bootstrap_embeddings.tracking import tracked_run

    if distributed.is_main_process():
        base = resolve_generator_path(BASE_GENERATOR)
        record = materialise_adapter(spec, out, base, model_revision(BASE_GENERATOR),
                                     f"generator.xl_lora.released.{kind}")
        with tracked_run(params, f"xl_lora_adapter_{kind}") as run:
            run.log_params({"released": spec, "adapter": Path(out).name})
            run.set_tag("adapter_source", "released")
        print(f"xl_lora_{kind}: the released adapter {spec} "
              f"({record['source'].get('revision', 'local')}), not trained")
    distributed.wait_for_everyone()


@stage_entry(distributed=True)
def main(params, kind: AdapterKind) -> None:
    out = f"models/adapters/xl_lora_{kind}"
    if params.generator.xl_lora.released is not None:
        return released(params, kind, getattr(params.generator.xl_lora.released, kind), out)

    from bootstrap_embeddings.generator.adapter_stage import describe, train_adapter_stage

    rows = read_rows(DATA / f"{kind}.jsonl", PromptRow, written_by="xl_lora_data")
    record = train_adapter_stage(
        params, f"xl_lora_adapter_{kind}", out, rows, completion_only=True
    )
    print(describe(f"xl_lora_{kind}", record))


if __name__ == "__main__":
    main()
