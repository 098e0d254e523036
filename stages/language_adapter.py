"""Stage `language_adapter <lang>`: a LoRA that writes one language, loss on every token.

A row with a `prompt` (the paper: an Aya instruction) is trained as the paper's chat
prompt "Given the following text, generate a relevant answer in {language} language"
and the row's text as the answer; a row without one (the UDHR's paragraphs) as plain
running text. `eng` is the English adapter that composition subtracts; it reads the
shared English text. Every other language reads its prepared text.
"""

from pathlib import Path

from bootstrap_embeddings.cli import AdapterLanguage, stage_entry
from bootstrap_embeddings.rows import AdapterTextRow, read_rows

ENGLISH_TEXT = Path("data/prepared/shared/eng_monolingual.jsonl")


def monolingual_file(language: str) -> Path:
    if language == "eng":
        return ENGLISH_TEXT
    return Path("data/prepared") / language / "monolingual.jsonl"


@stage_entry(distributed=True)
def main(params, language: AdapterLanguage) -> None:
    from bootstrap_embeddings.generator.adapter_rows import language_adapter_rows
    from bootstrap_embeddings.generator.adapter_stage import describe, train_adapter_stage

    stage = "prepare_shared" if language == "eng" else f"prepare@{language}"
    rows = read_rows(monolingual_file(language), AdapterTextRow, written_by=stage)
    out = f"models/adapters/language_{language}"
    record = train_adapter_stage(
        params, "language_adapter", out, language_adapter_rows(rows, language),
        completion_only=False, language=language,
    )
    print(describe(f"language_{language}", record))


if __name__ == "__main__":
    main()
