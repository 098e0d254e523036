"""The JSONL files that pass between stages, as typed rows, and the one reader that checks them.

Every stage reads its JSONL inputs through `read_rows(path, RowType, written_by=...)`:
a torn line, a missing or wrong-typed field, or an empty file where rows are needed
is a one-line UserError naming the file, the line and the field, before the stage
writes anything. The row types are the formats of docs/ARCHITECTURE.md; a row may
carry more fields than its type names (provenance), which are passed on untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from bootstrap_embeddings.errors import UserError

# A text a stage works on: a string with something in it
Text = Annotated[str, StringConstraints(min_length=1)]


class Row(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class TextRow(Row):
    text: Text


class AdapterTextRow(TextRow):
    """monolingual.jsonl, eng_monolingual.jsonl: a language adapter's text in one language,
    running text, or with `prompt` an instruction that `text` answers (Aya)."""

    prompt: Text | None = None


class AnchorRow(TextRow):
    """anchors.jsonl: the target-language premises the generator writes from."""

    id: str


class PairRow(AnchorRow):
    """train_pairs.jsonl, eval.jsonl: aligned (X, English) segments."""

    english: Text


class XlParallelRow(PairRow):
    """xl_parallel.jsonl: pairs in XL-LoRA's premise languages."""

    language: str


class XlNliRow(XlParallelRow):
    """xl_nli.jsonl: a premise in an XL-LoRA language and an English hypothesis of `relation`."""

    relation: Literal["pos", "neg"]


class StsRow(Row):
    """dev_sts.jsonl: a sentence pair of an STS dev set and its gold score."""

    id: str
    sentence1: Text
    sentence2: Text
    score: float | int


class NliRow(Row):
    """nli.jsonl: English NLI triplets."""

    anchor: Text
    positive: Text
    negative: Text
    relation: str | None = None


class PromptRow(Row):
    """data/xl_lora/{pos,neg}.jsonl: an un-templated prompt and the answer to train on."""

    prompt_text: Text
    completion: Text


class TripletRow(Row):
    """data/generated/<lang>/triplets.jsonl, data/triplets/<lang>/triplets.jsonl.

    Texts may be blank here: the filter stage's `empty` filter removes and counts them.
    `negative` is None for pairs (the `parallel` baseline).
    """

    id: str
    anchor: str
    positive: str
    negative: str | None
    strategy: str
    language: str


def _problem(err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    if first["type"] == "missing":
        return f"field {field!r} is missing"
    return f"field {field!r}: {first['msg'].lower()} (got {first['input']!r:.60})"


def read_rows(path: str | Path, row_type: type[Row], *, written_by: str,
              allow_empty: bool = False) -> list[dict]:
    """The rows of a JSONL file, each checked against `row_type`.

    `written_by` names the stage that writes the file, for the message when it is
    missing or empty. Blank lines are skipped; a file without rows is an error
    unless `allow_empty` (e.g. the `base` strategy's empty triplets).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; run the {written_by} stage first")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{number}: not a JSON line ({err.msg}); the file is "
                                f"damaged: re-run the {written_by} stage") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{number}: expected a JSON object, got "
                                f"{type(obj).__name__}")
            try:
                row_type.model_validate(obj)
            except ValidationError as err:
                raise UserError(f"{path}:{number}: {_problem(err)}") from None
            rows.append(obj)
    if not rows and not allow_empty:
        raise UserError(f"{path}: no rows; re-run the {written_by} stage (see its log)")
    return rows
