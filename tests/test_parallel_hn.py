"""`parallel_hn`: real (X, English) pairs with a hard negative the English contradiction
task adapter writes for the English side, through the real setup, generate and filter stages."""

from __future__ import annotations

import json

import pytest
from conftest import make_lora
from test_parallel_baseline import PAIRS

from bootstrap_embeddings import strategies
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import read_jsonl


@pytest.fixture
def project(tmp_path, monkeypatch, tiny_generator):
    from bootstrap_embeddings.base_models import materialize_generator

    prepared = tmp_path / "data/prepared/hau"
    prepared.mkdir(parents=True)
    # two X sides of one English sentence: it is generated from once
    pairs = [*PAIRS, {"id": "a99", "text": "Kowa yana da hakkin rai.",
                      "english": PAIRS[0]["english"]}]
    (prepared / "train_pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    materialize_generator(str(tiny_generator), tmp_path / "models/base/generator")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def test_the_recipe_needs_the_contradiction_adapter_and_hashes_it(project, tiny_generator):
    with pytest.raises(UserError, match="models/adapters/task_neg: no adapter there"):
        strategies.build_recipe("parallel_hn", "hau")
    make_lora(tiny_generator, project / "models/adapters/task_neg", seed=2)
    recipe = strategies.build_recipe("parallel_hn", "hau")
    assert recipe["adapters"] == {"neg": "models/adapters/task_neg"}
    assert recipe["triplets"] == "data/prepared/hau/train_pairs.jsonl"
    make_lora(tiny_generator, project / "models/adapters/task_neg", seed=3)
    assert strategies.build_recipe("parallel_hn", "hau")["adapter_sha256"] != recipe["adapter_sha256"]


def test_real_anchor_and_positive_generated_negative_through_the_stages(project, params,
                                                                        tiny_generator):
    from stages import filter as filter_stage
    from stages import generate, generator_setup

    make_lora(tiny_generator, project / "models/adapters/task_neg", seed=2)
    gen = params.generator.generation.model_copy(update={"max_new_tokens": 8, "batch_size": 2})
    params = params.model_copy(update={
        "strategy": "parallel_hn", "languages": ["hau"],
        "generator": params.generator.model_copy(update={"generation": gen}),
        # the tiny generator writes character soup: keep whatever it writes
        "filters": params.filters.model_copy(update={"min_chars": 1, "script_check": False})})
    generator_setup.main.__wrapped__(params, "parallel_hn", "hau")
    generate.main.__wrapped__(params, "hau")
    rows = read_jsonl("data/generated/hau/triplets.jsonl")
    stats = json.loads(open("data/generated/hau/stats.json").read())
    assert stats["unique_english"] == len(PAIRS) and stats["prompts"] == len(PAIRS)
    assert len(rows) + sum(stats["dropped"].values()) == len(PAIRS) + 1
    by_id = {p["id"]: p for p in read_jsonl("data/prepared/hau/train_pairs.jsonl")}
    for row in rows:
        pair = by_id[row["id"]]
        assert (row["anchor"], row["positive"]) == (pair["text"], pair["english"])
        assert row["negative"] and row["negative"] != row["positive"]
        assert row["adapter_neg"] == "models/adapters/task_neg"
    same_english = [r["negative"] for r in rows if r["positive"] == PAIRS[0]["english"]]
    assert len(set(same_english)) <= 1  # one generation per English sentence
    assert not list((project / ".cache").rglob("*.jsonl"))  # the partial file is gone

    filter_stage.main.__wrapped__(params, "hau")
    kept = read_jsonl("data/triplets/hau/triplets.jsonl")
    assert kept and {r["strategy"] for r in kept} == {"parallel_hn"}
    assert json.loads(open("data/triplets/hau/filter_stats.json").read())["n_in"] == len(rows)


def test_the_consistency_filter_applies_to_its_generated_negatives(params):
    from bootstrap_embeddings import filters

    spec = strategies.get("parallel_hn")
    assert spec.generates and spec.has_negative and spec.output_language == "english"
    ctx = filters.make_context([], "parallel_hn", params.filters, consistency=object())
    assert ctx.consistency is not None and ctx.expected_script == "LATIN"
