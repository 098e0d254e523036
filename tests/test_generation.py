"""Batched, resumable triplet generation with the tiny Gemma and tiny LoRA adapters."""

import json

import pytest
from conftest import make_lora

from bootstrap_embeddings.config import GenerationParams
from bootstrap_embeddings.generator import generation, resume
from bootstrap_embeddings.generator.generation import generate_triplets
from bootstrap_embeddings.generator.resume import BatchLog, run_fingerprint
from bootstrap_embeddings.strategies import build_recipe
from bootstrap_embeddings.strategies.icl import choose_shots

ANCHORS = [{"id": f"a{i}", "text": f"Sentence number {i} is here."} for i in range(5)]
GEN = GenerationParams(max_new_tokens=6, do_sample=True, temperature=0.8, top_p=0.95, batch_size=2)


# tiny matmuls: one torch thread (conftest)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def adapters(tiny_generator, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {
        kind: str(make_lora(tiny_generator, root / f"xl_lora_{kind}", seed))
        for kind, seed in (("pos", 1), ("neg", 2))
    }


def xl_recipe(adapters):
    return {
        "strategy": "xl_lora", "language": "hau", "adapters": adapters, "prompt_language": "English"
    }


def run(tiny_generator, recipe, partial, gen=GEN, anchors=ANCHORS):
    return generate_triplets(tiny_generator, recipe, anchors, "hau", gen, "none", 0,
                             BatchLog(partial))


def test_one_row_per_unique_anchor_with_provenance(tiny_generator, adapters, tmp_path):
    anchors = ANCHORS + [{"id": "dup", "text": ANCHORS[0]["text"]}]
    rows, stats = run(tiny_generator, xl_recipe(adapters), tmp_path / "p.jsonl", anchors=anchors)
    assert stats["unique_anchors"] == len(ANCHORS)
    assert len(rows) + stats["dropped_empty"] + stats["dropped_echo"] == len(ANCHORS)
    assert len(rows) >= 3
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert row["anchor"] in {a["text"] for a in ANCHORS}
        assert row["positive"] and row["negative"]
        assert (row["strategy"], row["language"]) == ("xl_lora", "hau")
        assert (row["adapter_pos"], row["adapter_neg"]) == (adapters["pos"], adapters["neg"])
        assert row["generator"] == str(tiny_generator)
    assert stats["prompts"] == 2 * len(ANCHORS)
    assert stats["generated_tokens"] > 0 and stats["merged_adapter"] is True


def min_greedy_margin(model_path, adapter, recipe, anchors=ANCHORS, gen=GEN) -> float:
    """The smallest top-1 minus top-2 logit gap over a greedy run of the merged model."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bootstrap_embeddings.generator.prompts import chat_wrap

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_path), adapter)
    texts = [chat_wrap(tokenizer, generation.recipe_prompt(recipe, a["text"], "entailment", "hau"))
             for a in anchors]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = model.merge_and_unload().generate(
            **enc, max_new_tokens=gen.max_new_tokens, do_sample=False, output_logits=True,
            return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id)
    return min(float((top[:, 0] - top[:, 1]).min())
               for top in (step.topk(2).values for step in out.logits))


def test_merged_and_unmerged_adapters_write_the_same_text(peaked_generator, tmp_path):
    # A peaked model: on the default tiny model the top two logits can lie within
    # float noise of each other, and merged and unmerged weights then pick differently.
    root = tmp_path / "adapters"
    adapters = {kind: str(make_lora(peaked_generator, root / kind, seed))
                for kind, seed in (("pos", 1), ("neg", 2))}
    recipe = xl_recipe(adapters)
    # the comparison means something: every greedy choice wins by far more than the
    # ~1e-6 by which merged and unmerged logits differ
    assert min_greedy_margin(peaked_generator, adapters["pos"], recipe) > 1e-3
    greedy = GEN.model_copy(update={"do_sample": False, "merge_adapter": True})
    merged, _ = run(peaked_generator, recipe, tmp_path / "m.jsonl", greedy)
    unmerged_params = greedy.model_copy(update={"merge_adapter": False})
    unmerged, stats = run(peaked_generator, recipe, tmp_path / "u.jsonl", unmerged_params)
    assert stats["merged_adapter"] is False
    assert len(merged) >= 3 and merged == unmerged
    # ... and the adapters matter: without them the same prompts give other text
    plain, _ = run(peaked_generator, {**recipe, "adapters": None}, tmp_path / "n.jsonl", greedy)
    assert [r["positive"] for r in plain] != [r["positive"] for r in merged]


def test_icl_recipe_shots_reach_the_prompt(tmp_path):
    nli = tmp_path / "nli.jsonl"
    nli.write_text(
        "".join(
            json.dumps({"anchor": f"P{i}.", "positive": f"E{i}.", "negative": f"C{i}."}) + "\n"
            for i in range(10)
        )
    )
    recipe = build_recipe("icl", "hau", nli_path=nli, shots=3, seed=7)
    assert len(recipe["shots"]) == 3 and recipe["adapters"] is None
    assert recipe == build_recipe("icl", "hau", nli_path=nli, shots=3, seed=7)  # seeded
    prompt = generation.recipe_prompt(recipe, "Target.", "contradiction", "hau")
    assert prompt.count("Premise:") == 4 and "(in Hausa)" in prompt
    for shot in recipe["shots"]:
        assert f"Answer: {shot['contradiction']}" in prompt and shot["entailment"] not in prompt
    with pytest.raises(Exception, match="shots"):
        choose_shots([{"anchor": "a", "positive": "b", "negative": "c"}], 2, 0, "hau")


def test_xl_lora_recipe_hash_follows_the_adapter_weights(adapters, tmp_path, tiny_generator):
    import shutil
    from pathlib import Path

    root = tmp_path / "adapters"
    for kind in ("pos", "neg"):
        shutil.copytree(adapters[kind], root / f"xl_lora_{kind}")
    before = build_recipe("xl_lora", "hau", adapters_dir=root)
    assert before["prompt_language"] == "English"
    make_lora(tiny_generator, root / "xl_lora_neg", seed=3)
    after = build_recipe("xl_lora", "hau", adapters_dir=root)
    assert before["adapter_sha256"]["pos"] == after["adapter_sha256"]["pos"]
    assert before["adapter_sha256"]["neg"] != after["adapter_sha256"]["neg"]
    assert Path(after["adapters"]["neg"]) == root / "xl_lora_neg"


def test_interrupted_run_resumes_without_loss_or_duplicates(
    tiny_generator, adapters, tmp_path, monkeypatch
):
    recipe = xl_recipe(adapters)
    full, _ = run(tiny_generator, recipe, tmp_path / "full.jsonl")

    partial = tmp_path / "partial.jsonl"
    real = generation._generate_batch
    calls = {"n": 0, "crash_at": 4}  # 3 batches x 2 relations: dies inside the second relation

    def counting(*args, **kwargs):
        if calls["n"] == calls["crash_at"]:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "_generate_batch", counting)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_generator, recipe, partial)
    assert len(partial.read_text().splitlines()) == 1 + 4  # the header, 4 batches
    with open(partial, "a") as fh:  # a crash in the middle of a write leaves a torn line
        fh.write('{"relation": "contradiction", "batch": 2, "ids"')

    calls.update(n=0, crash_at=None)
    resumed, stats = run(tiny_generator, recipe, partial)
    assert calls["n"] == 2 and stats["resumed_batches"] == 4
    assert resumed == full
    records = [json.loads(line) for line in partial.read_text().splitlines()][1:]
    assert sorted((r["relation"], r["batch"]) for r in records) == sorted(
        (rel, b) for rel in ("entailment", "contradiction") for b in range(3)
    )


def test_an_edited_prompt_text_starts_afresh_without_mixing_rows(
    tiny_generator, adapters, tmp_path, monkeypatch, caplog
):
    from bootstrap_embeddings.generator import prompts

    recipe = xl_recipe(adapters)
    partial = tmp_path / "partial.jsonl"
    real = generation._generate_batch
    calls = {"n": 0, "crash_at": 3}  # 3 batches x 2 relations: dies after 3 of 6

    def counting(*args, **kwargs):
        if calls["n"] == calls["crash_at"]:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "_generate_batch", counting)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_generator, recipe, partial)
    old_rows = partial.read_text().splitlines()
    assert len(old_rows) == 1 + 3

    # one word of the prompt changed, as an edit of prompts.py would
    monkeypatch.setattr(prompts, "_NLI_PROMPT", prompts._NLI_PROMPT.replace("expert", "master"))
    calls.update(n=0, crash_at=None)
    with caplog.at_level("WARNING", logger=generation.__name__):
        edited, stats = run(tiny_generator, recipe, partial)
    assert "starting afresh" in caplog.text and str(partial) in caplog.text
    assert calls["n"] == 6 and stats["resumed_batches"] == 0  # nothing of the old run kept
    assert not set(old_rows[1:]) & set(partial.read_text().splitlines())
    # exactly what a run that only ever saw the new prompt writes
    monkeypatch.setattr(generation, "_generate_batch", real)
    fresh, _ = run(tiny_generator, recipe, tmp_path / "fresh.jsonl")
    assert edited == fresh


def test_the_partial_key_follows_prompts_and_generator_code(tmp_path, monkeypatch):
    key = resume.prompts_key(["a prompt", "another"])
    assert key == resume.prompts_key(["a prompt", "another"])
    assert key != resume.prompts_key(["a prompt", "another."])
    assert key != resume.prompts_key(["another", "a prompt"])
    # the source files: copies give the same key, an edited copy of prompts.py another
    import shutil
    from pathlib import Path

    here = Path(resume.__file__).parent
    for name in resume._CODE_FILES:
        if (here / name).is_file():
            shutil.copy(here / name, tmp_path / name)
    monkeypatch.setattr(resume, "__file__", str(tmp_path / "resume.py"))
    assert resume.prompts_key(["a prompt", "another"]) == key  # same sources, same key
    (tmp_path / "prompts.py").write_text((here / "prompts.py").read_text() + "\n# edited\n")
    assert resume.prompts_key(["a prompt", "another"]) != key


def test_fingerprint_changes_with_what_changes_the_output(tiny_generator, adapters):
    recipe = xl_recipe(adapters)
    key = run_fingerprint(tiny_generator, recipe, ANCHORS, GEN, "none", 0)
    assert key == run_fingerprint(tiny_generator, recipe, ANCHORS, GEN, "none", 0)
    assert key != run_fingerprint(tiny_generator, recipe, ANCHORS, GEN, "none", 1)
    assert key != run_fingerprint(tiny_generator, recipe, ANCHORS[:4], GEN, "none", 0)
    assert key != run_fingerprint(
        tiny_generator, recipe, ANCHORS, GEN.model_copy(update={"batch_size": 3}), "none", 0
    )
    hausa = {**recipe, "prompt_language": "Hausa"}
    assert key != run_fingerprint(tiny_generator, hausa, ANCHORS, GEN, "none", 0)


def test_triplets_join_on_the_anchor_and_drop_empties_and_verbatim_echoes(monkeypatch):
    from bootstrap_embeddings.generator.generation import Completions

    answers = {
        "entailment": {"a0": "Pos 0.", "a1": "", "a2": ANCHORS[2]["text"], "a3": "Pos 3."},
        "contradiction": {"a0": "Neg 0.", "a1": "Neg 1.", "a2": "Neg 2.", "a3": "Neg 3."},
    }
    monkeypatch.setattr(generation, "generate_completions", lambda *a, **k: Completions(answers, {}))
    rows, stats = run("unused", {"strategy": "icl", "adapters": None}, "unused", anchors=ANCHORS[:4])
    assert [(r["id"], r["positive"], r["negative"]) for r in rows] == [
        ("a0", "Pos 0.", "Neg 0."),
        ("a3", "Pos 3.", "Neg 3."),
    ]
    assert (stats["dropped_empty"], stats["dropped_echo"]) == (1, 1)
