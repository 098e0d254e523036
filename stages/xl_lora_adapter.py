"""Stage `xl_lora_adapter pos|neg`: XL-LoRA's adapter, a premise in any language ->
an English entailment (pos) or contradiction (neg), trained on data/xl_lora/<kind>.jsonl
(loss on the answer only)."""

from pathlib import Path

from bootstrap_embeddings.cli import AdapterKind, stage_entry
from bootstrap_embeddings.rows import PromptRow, read_rows

DATA = Path("data/xl_lora")


@stage_entry(distributed=True)
def main(params, kind: AdapterKind) -> None:
    from bootstrap_embeddings.generator.adapters import describe, train_adapter_stage

    rows = read_rows(DATA / f"{kind}.jsonl", PromptRow, written_by="xl_lora_data")
    out = f"models/adapters/xl_lora_{kind}"
    record = train_adapter_stage(
        params, f"xl_lora_adapter_{kind}", out, rows, completion_only=True
    )
    print(describe(f"xl_lora_{kind}", record))


if __name__ == "__main__":
    main()
