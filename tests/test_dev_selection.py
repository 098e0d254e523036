"""Checkpoint selection on a dev set (embedder.dev): scored every N steps and after the last,
the best checkpoint is the model kept; the STS dev source; params."""

from __future__ import annotations

import pytest
from test_embedder import WORDS, _train_cfg, base_dir, toy_triplets  # noqa: F401 - base_dir: a fixture

from bootstrap_embeddings import embedder
from bootstrap_embeddings.config import DevSelection, Source
from bootstrap_embeddings.errors import UserError

DEV_PAIRS = [{"id": str(i), "text": w, "english": f"{w} {w}"} for i, w in enumerate(WORDS)]
# graded pairs, scored against what training teaches (a word is most like itself
# repeated): the further training goes, the worse the dev score, so the best checkpoint
# is an early one and not the last
DEV_STS = [{"id": f"{i}{k}", "sentence1": w, "sentence2": other, "score": score}
           for i, w in enumerate(WORDS)
           for k, (other, score) in enumerate([(f"{w} {w}", 0.0), (f"{w[:3]} x", 0.5),
                                               (WORDS[(i + 3) % len(WORDS)], 1.0)])]


def _with_dev(params, every):
    cfg = _train_cfg(params, epochs=5, prefixes=False)
    return cfg.model_copy(update={"dev": DevSelection(every=every)})


def test_the_best_dev_checkpoint_is_the_model_kept(params, base_dir, tmp_path):
    cfg = _with_dev(params, every=4)
    model = embedder.build_model(base_dir, "mean")
    dev = embedder.dev_evaluator(DEV_STS, cfg)
    record = embedder.train_embedder(model, toy_triplets(), cfg, seed=0, out_dir=tmp_path / "t",
                                     checkpoints=True, dev=dev)
    steps = record["steps"]
    assert steps % 4  # so the last step is not on the every-4 grid
    curve = record["dev_curve"]
    # every 4 steps, and after the last one
    assert [p["step"] for p in curve] == [*range(4, steps, 4), steps]
    best = max(curve, key=lambda p: p["score"])  # the first of equal scores, as the trainer
    assert record["best_step"] == best["step"] < steps
    assert curve[-1]["score"] < best["score"]  # the last model is not the one kept
    # the model in memory is the best checkpoint's: it scores the best score again
    again = embedder.dev_evaluator(DEV_STS, cfg)(model)
    assert again[dev.primary_metric] == pytest.approx(best["score"], abs=1e-6)


def test_without_a_dev_set_nothing_is_evaluated(params, base_dir, tmp_path):
    cfg = _train_cfg(params, epochs=1, prefixes=False)
    model = embedder.build_model(base_dir, "mean")
    record = embedder.train_embedder(model, toy_triplets(), cfg, seed=0, out_dir=tmp_path / "t")
    assert record["dev_curve"] == [] and record["best_step"] is None


def test_sts_rows_score_spearman_and_pairs_score_translation(params):
    cfg = params.embedder
    sts = [{"id": "0", "sentence1": "a b", "sentence2": "a b", "score": 1.0},
           {"id": "1", "sentence1": "a b", "sentence2": "c d", "score": 0.0}]
    assert embedder.dev_evaluator(sts, cfg).primary_metric == "spearman_cosine"
    assert embedder.dev_evaluator(DEV_PAIRS, cfg).primary_metric == "mean_accuracy"
    with pytest.raises(UserError, match="no rows"):
        embedder.dev_evaluator([], cfg)


def test_sts_languages_need_an_sts_source():
    with pytest.raises(ValueError, match="needs sts"):
        DevSelection(every=5, sts_languages=["hau"])
    with pytest.raises(ValueError, match="hf or file"):
        DevSelection(every=5, sts=Source(kind="udhr"), sts_languages=["hau"])


def test_the_sts_dev_set_is_read_with_the_columns_mapped(tmp_path):
    from bootstrap_embeddings.data.sts import sts_rows

    path = tmp_path / "hau.csv"
    path.write_text("sentence1,sentence2,label\nIna kwana,Ina kwana lafiya,0.8\n"
                    "Ruwa,Gida,0.1\n,empty,0.5\n")
    source = Source(kind="file", path=str(tmp_path / "{lang}.csv"),
                    columns={"score": "label"})
    rows = sts_rows(source, "hau")
    assert [r["score"] for r in rows] == [0.8, 0.1]  # the row with an empty side dropped
    assert rows[0] == {"id": "hau:sts:0", "sentence1": "Ina kwana",
                       "sentence2": "Ina kwana lafiya", "score": 0.8}
    with pytest.raises(UserError, match="column"):
        sts_rows(Source(kind="file", path=str(path)), "hau")  # no score column


def test_the_stage_writes_the_dev_curve_and_names_the_kept_step(tmp_path, monkeypatch, params,
                                                                 base_dir):
    from test_embedder import _setup_stage

    from bootstrap_embeddings.files import read_json, write_jsonl
    from stages import train_embedder as stage

    _setup_stage(tmp_path, monkeypatch, base_dir, toy_triplets())
    write_jsonl(tmp_path / "data/prepared/hau/dev.jsonl", DEV_PAIRS)  # CLDR-shaped dev pairs
    params = params.model_copy(update={"strategy": "icl", "languages": ["hau"],
                                       "embedder": _with_dev(params, every=2)})
    stage.main.__wrapped__(params, "hau")
    curve = read_json(tmp_path / "metrics/dev/hau.json")
    training = read_json(tmp_path / "models/embedders/hau/training.json")
    assert curve and curve == training["dev_curve"] and set(curve[0]) == {"step", "score"}
    assert training["best_step"] == max(curve, key=lambda p: p["score"])["step"]
    assert f"Checkpoint: step {training['best_step']} of" in (
        tmp_path / "models/embedders/hau/README.md").read_text()
    # without embedder.dev the curve is empty
    stage.main.__wrapped__(params.model_copy(update={"embedder": _train_cfg(
        params, epochs=1).model_copy(update={"dev": None})}), "hau")
    assert read_json(tmp_path / "metrics/dev/hau.json") == []
