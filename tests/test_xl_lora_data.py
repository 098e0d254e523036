"""XL-LoRA training rows: X premise -> English hypothesis written by the English task adapters."""

import json

import pytest

from bootstrap_embeddings.config import GenerationParams
from bootstrap_embeddings.filters import normalise
from bootstrap_embeddings.generator.prompts import nli_prompt
from bootstrap_embeddings.generator.resume import BatchLog
from bootstrap_embeddings.generator.xl_lora import task_recipe, xl_lora_rows
from test_generation import make_lora

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PARALLEL = [
    {"id": i, "language": i[:3], "text": text, "english": english}
    for i, text, english in [
        ("deu-1", "Alle Menschen sind frei.", "All people are free."),
        ("fra-1", "Tous les êtres sont libres.", "All people are free."),
        ("deu-2", "Jeder hat das Recht.", "Everyone has the right."),
    ]
]
GEN = GenerationParams(max_new_tokens=6, do_sample=True, temperature=0.8, batch_size=4)


@pytest.fixture(scope="module")
def task_adapters(tiny_generator, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    for kind, seed in (("pos", 1), ("neg", 2)):
        make_lora(tiny_generator, root / f"task_{kind}", seed)
    return root


def test_rows_pair_the_x_side_with_english_answers(tiny_generator, task_adapters, tmp_path):
    from bootstrap_embeddings.generator.adapter_rows import encode_rows
    from transformers import AutoTokenizer

    partial = tmp_path / "partial.jsonl"
    recipe = task_recipe(task_adapters)
    rows, stats = xl_lora_rows(tiny_generator, PARALLEL, recipe, GEN, "none", 0,
                               BatchLog(partial))

    # one generation per unique English sentence and relation, not per pair
    assert stats["unique_english"] == 2 and stats["prompts"] == 4
    header, *records = [json.loads(line) for line in partial.read_text().splitlines()]
    assert set(header) == {"key"} and sorted(len(r["ids"]) for r in records) == [2, 2]

    for kind, relation in (("pos", "entailment"), ("neg", "contradiction")):
        assert len(rows[kind]) + stats["dropped"][kind] == len(PARALLEL)
        assert rows[kind], "the tiny adapters wrote nothing usable"
        by_id = {p["id"]: p for p in PARALLEL}
        for row in rows[kind]:
            pair = by_id[row["id"]]
            assert row["prompt_text"] == nli_prompt(pair["text"], relation, "English")
            assert row["completion"] and normalise(row["completion"]) != normalise(pair["english"])
            assert (row["language"], row["english"]) == (pair["language"], pair["english"])
        # both X sides of one English sentence get that sentence's one answer
        answers = {r["id"]: r["completion"] for r in rows[kind]}
        if {"deu-1", "fra-1"} <= answers.keys():
            assert answers["deu-1"] == answers["fra-1"]

    # the adapter trainer reads these rows as they are
    tokenizer = AutoTokenizer.from_pretrained(tiny_generator)
    encoded = encode_rows(tokenizer, rows["pos"], max_length=512, completion_only=True)
    assert len(encoded) == len(rows["pos"])


def test_empty_answers_and_copies_of_the_english_premise_are_dropped(monkeypatch):
    from bootstrap_embeddings.generator import xl_lora
    from bootstrap_embeddings.generator.generation import Completions

    ids = {it["text"]: it["id"] for it in xl_lora.english_sides(PARALLEL)}
    free, right = ids["All people are free."], ids["Everyone has the right."]
    answers = {
        "entailment": {free: "ALL people are free", right: "People have rights."},
        "contradiction": {free: "Nobody is free.", right: ""},
    }
    monkeypatch.setattr(xl_lora, "generate_completions", lambda *a, **k: Completions(answers, {}))
    rows, stats = xl_lora_rows(None, PARALLEL, task_recipe("adapters"), GEN, "none", 0, "unused")
    assert [(r["id"], r["completion"]) for r in rows["pos"]] == [("deu-2", "People have rights.")]
    assert [r["id"] for r in rows["neg"]] == ["deu-1", "fra-1"]
    assert stats["dropped"] == {"pos": 2, "neg": 1}
