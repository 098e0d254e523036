"""LoRA adapter training on the tiny Gemma: masking, the loss shortcut, every quantization mode."""

from __future__ import annotations

import json

import pytest

from bootstrap_embeddings.config import AdapterTraining, LoraParams
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.generator.adapter_rows import IGNORE, collate, encode_rows
from bootstrap_embeddings.generator.adapters import causal_lm_loss, train_lora_adapter

LORA = LoraParams(r=8, alpha=16, dropout=0.0, target_modules="all-linear")
ROWS = [{"prompt_text": f"Premise: the cat {i} sat.", "completion": "A cat sat."}
        for i in range(16)]


def _training(**overrides) -> AdapterTraining:
    base = dict(max_steps=8, lr=2e-2, warmup_ratio=0.0, batch_size=8, grad_accum=1,
                max_grad_norm=1.0, max_length=128, max_examples=100)
    return AdapterTraining(**(base | overrides))


@pytest.fixture
def tokenizer(tiny_generator):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_generator)


def test_completion_only_labels_ignore_the_prompt(tokenizer):
    from bootstrap_embeddings.generator.prompts import chat_wrap, format_completion

    def ids_of(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    row = ROWS[0]
    (ex,) = encode_rows(tokenizer, [row], max_length=128, completion_only=True)
    prompt = ids_of(chat_wrap(tokenizer, row["prompt_text"]))
    answer = ids_of(format_completion(tokenizer, row["completion"]))
    # the prompt ids are exactly what generation feeds the model
    assert ex["input_ids"] == prompt + answer
    assert ex["labels"] == [IGNORE] * len(prompt) + answer
    learnt = tokenizer.decode([t for t in ex["labels"] if t != IGNORE])
    assert learnt.strip().startswith(row["completion"])


def test_text_rows_train_on_every_token_and_are_cut(tokenizer):
    (ex,) = encode_rows(tokenizer, [{"text": "x" * 50}], max_length=20, completion_only=False)
    assert len(ex["input_ids"]) == 20 and ex["labels"] == ex["input_ids"]


def test_rows_too_long_are_dropped_and_none_left_is_an_error(tokenizer):
    rows = ROWS[:2] + [{"prompt_text": "p" * 300, "completion": "c"}]
    assert len(encode_rows(tokenizer, rows, max_length=128, completion_only=True)) == 2
    with pytest.raises(UserError, match="max_length"):
        encode_rows(tokenizer, rows[2:], max_length=128, completion_only=True)
    with pytest.raises(UserError, match="completion_only"):
        encode_rows(tokenizer, [{"text": "abc"}], max_length=128, completion_only=True)


def test_loss_at_labelled_positions_equals_the_full_logits_loss(tiny_generator, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_generator)
    rows = ROWS[:4] + [{"prompt_text": "a", "completion": "bb"}]  # ragged: padding matters
    ids, mask, labels = collate(encode_rows(tokenizer, rows, 128, True), tokenizer.pad_token_id)
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        ours = causal_lm_loss(model, ids, mask, labels)
    torch.testing.assert_close(ours, full)


@pytest.mark.parametrize("quantization", ["none", "4bit", "8bit"])
def test_loss_falls_and_adapter_reloads(tiny_generator, tmp_path, quantization):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "adapter"
    record = train_lora_adapter(
        tiny_generator, ROWS, out, lora=LORA, training=_training(), quantization=quantization,
        seed=0, completion_only=True, progress=False,
    )
    losses = [r["loss"] for r in record["losses"]]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert record["quantization"] == quantization
    assert json.loads((out / "training.json").read_text())["losses"] == record["losses"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_generator), out)
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_same_seed_same_adapter(tiny_generator, tmp_path):
    text = [{"text": f"line {i} of some text"} for i in range(8)]
    kwargs = dict(lora=LORA, training=_training(max_steps=2), quantization="none",
                  completion_only=False, progress=False, seed=3)
    a = train_lora_adapter(tiny_generator, text, tmp_path / "a", **kwargs)
    b = train_lora_adapter(tiny_generator, text, tmp_path / "b", **kwargs)
    assert a["losses"] == b["losses"]
    weights = "adapter_model.safetensors"
    assert (tmp_path / "a" / weights).read_bytes() == (tmp_path / "b" / weights).read_bytes()
    # another seed: another LoRA initialisation and batch order
    c = train_lora_adapter(tiny_generator, text, tmp_path / "c", **{**kwargs, "seed": 4})
    assert (tmp_path / "c" / weights).read_bytes() != (tmp_path / "a" / weights).read_bytes()
    assert c["losses"] != a["losses"]


def _project(tmp_path, tiny_generator, monkeypatch, **training):
    """A project folder: the tiny generator as models/base/generator, a small params.yaml."""
    import shutil

    import yaml

    from conftest import REPO

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["generator"]["quantization"] = "none"
    raw["generator"]["training"].update(max_steps=2, batch_size=4, max_length=400, **training)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    base = tmp_path / "models/base/generator"
    shutil.copytree(tiny_generator, base)
    (base / "source.json").write_text(json.dumps({"kind": "local", "spec": str(tiny_generator)}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")


def test_task_adapter_stage_trains_and_logs(tiny_generator, tmp_path, monkeypatch):
    import sys

    import mlflow

    from bootstrap_embeddings.files import write_jsonl
    from stages import task_adapter

    _project(tmp_path, tiny_generator, monkeypatch, max_examples=3)
    triplet = {"positive": "a dog moved", "negative": "a dog sat still", "relation": "x"}
    nli = [{"anchor": f"a dog {i} ran", **triplet} for i in range(5)]
    write_jsonl(tmp_path / "data/prepared/shared/nli.jsonl", nli)
    monkeypatch.setattr(sys, "argv", ["task_adapter", "neg"])
    task_adapter.main()

    record = json.loads((tmp_path / "models/adapters/task_neg/training.json").read_text())
    assert record["rows"] == 3 and record["steps"] == 2 and record["completion_only"]
    (run,) = mlflow.search_runs(experiment_names=["bootstrap-embeddings"], output_format="list")
    assert run.data.tags["stage"] == "task_adapter_neg"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2]


def test_adapter_stage_rejects_unknown_kind(tiny_generator, tmp_path, monkeypatch, capsys):
    import sys

    from stages import xl_lora_adapter

    _project(tmp_path, tiny_generator, monkeypatch)
    monkeypatch.setattr(sys, "argv", ["xl_lora_adapter", "both"])
    with pytest.raises(SystemExit) as exit_:
        xl_lora_adapter.main()
    assert exit_.value.code == 2 and "'both' is not pos or neg" in capsys.readouterr().err


def test_language_adapter_instructions_train_in_the_paper_prompt_on_every_token(tokenizer):
    from bootstrap_embeddings.generator.adapter_rows import language_adapter_rows
    from bootstrap_embeddings.generator.prompts import chat_wrap, format_completion

    rows = language_adapter_rows([{"prompt": "Menene sunanka?", "text": "Sunana Musa."},
                                  {"text": "Kowane mutum yana da hakki."}], "hau")
    assert rows[0] == {"prompt_text": "Given the following text, generate a relevant answer "
                                      "in Hausa language\nMenene sunanka?",
                       "completion": "Sunana Musa."}
    assert rows[1] == {"text": "Kowane mutum yana da hakki."}
    instruction, text = encode_rows(tokenizer, rows, max_length=128, completion_only=False)
    wrapped = chat_wrap(tokenizer, rows[0]["prompt_text"]) + format_completion(
        tokenizer, rows[0]["completion"])
    assert instruction["input_ids"] == tokenizer(wrapped, add_special_tokens=False)["input_ids"]
    assert instruction["labels"] == instruction["input_ids"]  # loss on every token
    assert text["labels"] == text["input_ids"]
