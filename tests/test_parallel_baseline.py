"""The `parallel` baseline: the language's real (X, English) pairs, through the real stages."""

from __future__ import annotations

import json

import pytest

from bootstrap_embeddings import embedder, filters
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import read_jsonl
from bootstrap_embeddings.strategies import build_recipe

PAIRS = [{"id": f"a{i:02d}", "text": t, "english": e} for i, (t, e) in enumerate([
    ("Kowane mutum na da hakkin rayuwa.", "Everyone has the right to life."),
    ("Kowa na da hakkin ilimi.", "Everyone has the right to education."),
    ("Ba za a azabtar da kowa ba.", "No one shall be subjected to torture."),
    ("Kowa na da hakkin aiki.", "Everyone has the right to work."),
])]


@pytest.fixture
def project(tmp_path, monkeypatch):
    prepared = tmp_path / "data/prepared/hau"
    prepared.mkdir(parents=True)
    (prepared / "train_pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def test_recipe_names_the_pairs_and_their_hash(project):
    recipe = build_recipe("parallel", "hau")
    assert recipe["strategy"] == "parallel" and "adapters" not in recipe
    assert recipe["triplets"] == "data/prepared/hau/train_pairs.jsonl"
    before = recipe["triplets_sha256"]
    with open("data/prepared/hau/train_pairs.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "x", "text": "Sabuwar.", "english": "New."}) + "\n")
    assert build_recipe("parallel", "hau")["triplets_sha256"] != before  # generate re-runs
    with pytest.raises(UserError, match="data/prepared/afr/train_pairs.jsonl: missing"):
        build_recipe("parallel", "afr")


def test_generate_and_filter_stages_pass_the_pairs_on(project, params):
    from stages import filter as filter_stage
    from stages import generate, generator_setup

    params = params.model_copy(update={"strategy": "parallel", "languages": ["hau"]})
    # a consistency filter switched on does not touch real data
    cf = params.filters.consistency.model_copy(update={"enabled": True, "encoder": "/nowhere"})
    params = params.model_copy(update={"filters": params.filters.model_copy(
        update={"consistency": cf})})
    generator_setup.main.__wrapped__(params, "parallel", "hau")
    generate.main.__wrapped__(params, "hau")
    rows = read_jsonl("data/generated/hau/triplets.jsonl")
    assert [(r["anchor"], r["positive"], r["negative"]) for r in rows] == [
        (p["text"], p["english"], None) for p in PAIRS]
    assert {r["strategy"] for r in rows} == {"parallel"}

    filter_stage.main.__wrapped__(params, "hau")
    kept = read_jsonl("data/triplets/hau/triplets.jsonl")
    assert kept == rows  # English positives in Latin script, no negative needed
    stats = json.loads(open("data/triplets/hau/filter_stats.json").read())
    assert stats["consistency"] is None and stats["expected_script"] == "LATIN"


def test_pairs_without_negatives_filter_on_their_two_fields(params):
    rows = [{"anchor": "Kowa na da hakkin aiki.", "positive": "Everyone may work.",
             "negative": None},
            {"anchor": "Kowa na da hakkin aiki.", "positive": "", "negative": None}]
    ctx = filters.make_context(rows, "parallel", params.filters)
    report = filters.apply_filters(rows, ctx)
    assert report.kept == rows[:1] and report.counts["empty"] == 1
    # the same rows as generated triplets: a missing negative is an empty field
    report = filters.apply_filters(rows, filters.make_context(rows, "xl_lora", params.filters))
    assert report.kept == []


def test_pairs_train_with_in_batch_negatives(tiny_encoder, params, tmp_path):
    pairs = [{"anchor": f"{w} {w}", "positive": w, "negative": None}
             for w in ["apple", "river", "stone", "cloud", "music", "green", "bread", "tiger"]]
    assert embedder.triplet_dataset(pairs).column_names == ["anchor", "positive"]
    with pytest.raises(ValueError, match="some rows have a negative"):
        embedder.triplet_dataset([*pairs, {"anchor": "a", "positive": "b", "negative": "c"}])
    training = params.embedder.training.model_copy(
        update={"epochs": 2, "batch_size": 4, "lr": 1e-3, "warmup_ratio": 0.0})
    cfg = params.embedder.model_copy(update={"training": training})
    model = embedder.build_model(tiny_encoder, "mean")
    record = embedder.train_embedder(model, pairs, cfg, seed=0, out_dir=tmp_path / "scratch")
    assert record["steps"] == 4 and record["n_triplets"] == 8
