"""Adapter training rows as token ids and labels, and their batches.

Rows are either

- `{"prompt_text", "completion"}` (task and XL-LoRA adapters): the un-templated prompt
  (`prompts.nli_prompt(...)`) and the answer. The input is built exactly as generation
  builds it, `chat_wrap(tokenizer, prompt_text)`, followed by
  `format_completion(tokenizer, completion)`; with `completion_only` the loss is on the
  completion only.
- `{"text"}` (language adapters on running text): causal LM on every token.

A language adapter trained on instructions (`language_adapter_rows`) has
prompt+completion rows and the loss on every token, as the paper's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bootstrap_embeddings.errors import UserError

log = logging.getLogger(__name__)

IGNORE = -100  # label of a position without loss (the cross-entropy ignore_index)


def language_adapter_rows(rows: Sequence[dict], language: str) -> list[dict]:
    """A language adapter's rows ({text} or {prompt, text}) as adapter rows: an instruction
    becomes the paper's prompt asking for an answer in the language, its text the answer."""
    from bootstrap_embeddings.generator.prompts import language_adapter_prompt
    from bootstrap_embeddings.languages import language_name

    name = language_name(language)
    return [{"prompt_text": language_adapter_prompt(r["prompt"], name), "completion": r["text"]}
            if r.get("prompt") else {"text": r["text"]} for r in rows]


def _row_kind(row: dict) -> str:
    if {"prompt_text", "completion"} <= row.keys():
        return "completion"
    if "text" in row:
        return "text"
    raise UserError(
        f"adapter training data: rows need prompt_text+completion or text, got keys {sorted(row)}"
    )


def encode_rows(
    tokenizer, rows: Sequence[dict], max_length: int, completion_only: bool
) -> list[dict]:
    """Token ids and labels per row; labels are IGNORE where no loss is wanted.

    Prompt and completion are tokenized separately and concatenated, so the prompt's
    ids are exactly the ids generation feeds the model. A prompt+completion row longer
    than `max_length` is dropped, not cut: a cut completion would teach the adapter
    never to end its answer. Plain text rows are cut to `max_length`.
    """
    from bootstrap_embeddings.generator.prompts import chat_wrap, format_completion

    if not rows:
        raise UserError("adapter training data: no rows")
    kinds = [_row_kind(row) for row in rows]
    if completion_only and "text" in kinds:
        raise UserError(
            "adapter training data: completion_only needs {prompt_text, completion} rows"
        )

    def ids_of(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    encoded, too_long = [], 0
    for row, kind in zip(rows, kinds):
        if kind == "completion":
            prompt = ids_of(chat_wrap(tokenizer, row["prompt_text"]))
            answer = ids_of(format_completion(tokenizer, row["completion"]))
            if len(prompt) + len(answer) > max_length:
                too_long += 1
                continue
            ids = prompt + answer
            labels = ([IGNORE] * len(prompt) + answer) if completion_only else list(ids)
        else:
            ids = (tokenizer(row["text"])["input_ids"] + [tokenizer.eos_token_id])[:max_length]
            labels = list(ids)
        if len(ids) > 1:
            encoded.append({"input_ids": ids, "labels": labels})
    if too_long:
        log.warning(
            "dropped %d of %d rows longer than training.max_length=%d",
            too_long, len(rows), max_length,
        )
    if not encoded:
        raise UserError(
            f"generator.training.max_length: {max_length} tokens fit none of the "
            f"{len(rows)} rows; raise it"
        )
    return encoded


def collate(batch: list[dict], pad_id: int):
    """Right-pad a batch (training has no reason to pad left) into tensors."""
    import torch

    width = max(len(ex["input_ids"]) for ex in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ex in enumerate(batch):
        n = len(ex["input_ids"])
        ids[i, :n] = torch.tensor(ex["input_ids"])
        labels[i, :n] = torch.tensor(ex["labels"])
        mask[i, :n] = 1
    return ids, mask, labels
