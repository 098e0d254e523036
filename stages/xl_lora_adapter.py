"""Stage `xl_lora_adapter pos|neg`: XL-LoRA's adapter, a premise in any language ->
an English entailment (pos) or contradiction (neg), trained on data/xl_lora/<kind>.jsonl
(loss on the answer only)."""

from pathlib import Path

from bootstrap_embeddings.cli import AdapterKind, stage_entry
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import read_jsonl

DATA = Path("data/xl_lora")


@stage_entry(distributed=True)
def main(params, kind: AdapterKind) -> None:
    from bootstrap_embeddings.generator.adapters import describe, train_adapter_stage

    source = DATA / f"{kind}.jsonl"
    if not source.is_file():
        raise UserError(f"{source}: no such file; run the xl_lora_data stage first")
    out = f"models/adapters/xl_lora_{kind}"
    record = train_adapter_stage(
        params, f"xl_lora_adapter_{kind}", out, read_jsonl(source), completion_only=True
    )
    print(describe(f"xl_lora_{kind}", record))


if __name__ == "__main__":
    main()
