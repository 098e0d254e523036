"""Stage `language_adapter <lang>`: a causal-LM LoRA on monolingual text in one language.

`eng` is the English adapter that composition subtracts; it reads the shared English
text. Every other language reads its prepared monolingual text.
"""

from pathlib import Path

from bootstrap_embeddings.cli import AdapterLanguage, stage_entry
from bootstrap_embeddings.rows import TextRow, read_rows

ENGLISH_TEXT = Path("data/prepared/shared/eng_monolingual.jsonl")


def monolingual_file(language: str) -> Path:
    if language == "eng":
        return ENGLISH_TEXT
    return Path("data/prepared") / language / "monolingual.jsonl"


@stage_entry(distributed=True)
def main(params, language: AdapterLanguage) -> None:
    from bootstrap_embeddings.generator.adapter_stage import describe, train_adapter_stage

    stage = "prepare_shared" if language == "eng" else f"prepare@{language}"
    rows = [{"text": r["text"]}
            for r in read_rows(monolingual_file(language), TextRow, written_by=stage)]
    out = f"models/adapters/language_{language}"
    record = train_adapter_stage(
        params, "language_adapter", out, rows, completion_only=False, language=language
    )
    print(describe(f"language_{language}", record))


if __name__ == "__main__":
    main()
