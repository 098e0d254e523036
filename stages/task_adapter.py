"""Stage `task_adapter pos|neg`: the English task adapter that writes entailments (pos)
or contradictions (neg) from a premise, trained on the English NLI triplets.

Rows are the paper's prompt for the anchor (in English) -> the positive or the
negative; the loss is on the answer only. At most training.max_examples rows are used.
"""

from pathlib import Path

from bootstrap_embeddings.cli import AdapterKind, stage_entry
from bootstrap_embeddings.rows import NliRow, read_rows

NLI = Path("data/prepared/shared/nli.jsonl")
KINDS = {"pos": ("entailment", "positive"), "neg": ("contradiction", "negative")}


@stage_entry(distributed=True)
def main(params, kind: AdapterKind) -> None:
    from bootstrap_embeddings.generator.adapter_stage import describe, train_adapter_stage
    from bootstrap_embeddings.generator.prompts import nli_prompt
    from bootstrap_embeddings.languages import language_name

    relation, column = KINDS[kind]
    english = language_name("eng")
    rows = [
        {"prompt_text": nli_prompt(r["anchor"], relation, english), "completion": r[column]}
        for r in read_rows(NLI, NliRow, written_by="prepare_shared")
    ]
    out = f"models/adapters/task_{kind}"
    record = train_adapter_stage(params, f"task_adapter_{kind}", out, rows, completion_only=True)
    print(describe(f"task_{kind}", record))


if __name__ == "__main__":
    main()
