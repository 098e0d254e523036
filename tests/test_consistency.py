"""The consistency filter drops planted wrong triplets and keeps right ones.

The encoder is a tiny model built from a config: a static word-embedding
SentenceTransformer whose Hausa words share the vectors of their English translations
(an aligned bilingual lexicon), so a word-by-word translation is provably close to its
anchor and an unrelated sentence is not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bootstrap_embeddings import consistency
from bootstrap_embeddings.consistency import ConsistencyCheck, Scores

LEXICON = {  # hausa -> english
    "mutum": "person", "yana": "has", "hakkin": "right", "rayuwa": "life",
    "ilimi": "education", "aure": "marriage", "aiki": "work", "addini": "religion",
}
FILLER = ["the", "to", "and", "a", "everyone", "nobody", "sing", "dance", "cold", "blue"]


def make_aligned_encoder(path, dim: int = 32, seed: int = 0):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    english = sorted({*LEXICON.values(), *FILLER})
    words = ["[UNK]", "[PAD]", *english, *sorted(LEXICON)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    rng = np.random.default_rng(seed)
    vectors = {w: rng.standard_normal(dim) for w in english}
    weights = np.stack([vectors.get(LEXICON.get(w, w), np.zeros(dim)) for w in words])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    model = SentenceTransformer(modules=[StaticEmbedding(fast, embedding_weights=weights)])
    model.save(str(path))
    return path


def translate(hausa: str) -> str:
    return " ".join(LEXICON[w] for w in hausa.split())


ANCHORS = ["mutum yana hakkin rayuwa", "mutum yana hakkin ilimi", "aure", "aiki addini",
           "mutum yana aiki"]
UNRELATED = ["everyone sing and dance", "the cold blue", "nobody to sing", "a blue dance",
             "cold and blue"]


def planted(strategy: str = "xl_lora") -> tuple[list[dict], list[dict]]:
    """Right triplets (positive = the anchor's translation) and wrong ones (positive unrelated)."""
    def row(i, anchor, positive, negative, kind):
        return {"id": f"{kind}{i}", "anchor": anchor, "positive": positive, "negative": negative,
                "strategy": strategy, "language": "hau", "generator": "g",
                "adapter_pos": None, "adapter_neg": None}

    right = [row(i, a, translate(a), UNRELATED[i], "right") for i, a in enumerate(ANCHORS)]
    wrong = [row(i, a, UNRELATED[i], UNRELATED[(i + 1) % 5], "wrong")
             for i, a in enumerate(ANCHORS)]
    return right, wrong


@pytest.fixture(scope="module")
def aligned_encoder(tmp_path_factory):
    return make_aligned_encoder(tmp_path_factory.mktemp("aligned_encoder"))


def test_passes_applies_similarity_and_margin():
    assert consistency.passes(Scores(0.9, 0.5), 0.86, 0.0)
    assert not consistency.passes(Scores(0.85, 0.5), 0.86, 0.0)  # too far from the anchor
    assert not consistency.passes(Scores(0.9, 0.95), 0.86, 0.0)  # the negative is closer
    assert consistency.passes(Scores(0.9, 0.91), 0.86, -0.02)  # within a negative margin
    assert consistency.passes(Scores(0.9, None), 0.86, 0.5)  # a pair: no margin to check


def test_a_near_copy_of_the_anchor_is_refused_above_max_similarity():
    assert consistency.failure(Scores(0.99, 0.5), 0.86, 0.0, max_similarity=0.97) == "near_copy"
    assert consistency.failure(Scores(0.96, 0.5), 0.86, 0.0, max_similarity=0.97) is None
    assert consistency.passes(Scores(0.99, 0.5), 0.86, 0.0)  # no upper cut unless asked


def test_near_copies_for_calibration_drop_one_word():
    import random

    copy = consistency.near_copy("Kowane mutum yana da hakkin rayuwa", random.Random(0))
    assert len(copy.split()) == 5 and set(copy.split()) < set("Kowane mutum yana da hakkin rayuwa".split())
    assert consistency.near_copy("Two words", random.Random(0)) == "Two words"


def test_an_upper_cut_is_calibrated_the_other_way_round():
    right, copies = [0.90, 0.93, 0.95], [0.99, 0.995, 0.94]
    # 0.98, 0.955 and 0.95 all keep every right positive and drop two of three
    # near-copies: the loosest of them wins
    assert consistency.best_threshold(right, copies, [0.95, 0.955, 0.98, 1.0], upper=True) == (
        0.98, pytest.approx(5 / 6))
    # a tie goes to the looser (higher) cut
    assert consistency.best_threshold([0.5], [0.99], [0.6, 0.9], upper=True)[0] == 0.9


def test_calibration_sets_plant_the_right_answer_in_the_negative_slot():
    pairs = [{"text": f"x{i}", "english": f"e{i}", "language": lang}
             for lang in ("deu", "swh") for i in range(4)]
    right, wrong = consistency.calibration_sets(pairs, seed=0)
    assert len(right) == len(wrong) == 8
    for r, w in zip(right, wrong):
        assert r["positive"] == "e" + r["anchor"][1:] and r["negative"] != r["positive"]
        assert (w["positive"], w["negative"]) == (r["negative"], r["positive"])
    # the unrelated sentence comes from the same language's pairs
    texts = {p["english"]: p["language"] for p in pairs}
    assert all(r["language"] == "deu" for r in right[:4])
    assert all(texts[r["negative"]] in {"deu", "swh"} for r in right)


def test_best_threshold_maximises_balanced_accuracy_and_prefers_keeping_data():
    right, wrong = [0.9, 0.92, 0.95, 0.88], [0.7, 0.8, 0.86]
    # 0.85: keeps a wrong one; 0.9: drops a right one; 0.88 separates them
    assert consistency.best_threshold(right, wrong, [0.6, 0.85, 0.88, 0.9]) == (0.88, 1.0)
    # a tie between two cuts goes to the looser one
    assert consistency.best_threshold([0.9], [0.1], [0.2, 0.5, 0.8])[0] == 0.2


def test_check_with_the_tiny_aligned_encoder_drops_wrong_and_keeps_right(aligned_encoder):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(aligned_encoder))
    encoders = consistency.sentence_transformer_encoders(model, "", "", batch_size=4)
    right, wrong = planted()
    check = ConsistencyCheck(0.86, -0.02, *encoders)
    keep = check.keep(right + wrong)
    assert keep == [True] * len(right) + [False] * len(wrong)
    assert all(s.positive == pytest.approx(1.0, abs=1e-5) for s in check.scores[:len(right)])
    summary = check.summary()
    assert summary["n_scored"] == 10
    counts = {(c["min_similarity"], c["min_margin"]): c["kept"] for c in summary["threshold_counts"]}
    assert counts[(0.95, 0.1)] == len(right)


def test_filter_stage_with_consistency_on(tmp_path, monkeypatch, params, aligned_encoder):
    """The real stage, switched on in params and pointed at the tiny encoder."""
    from stages import filter as stage

    # the stand-in encoder maps a word and its translation to one vector: a right
    # positive scores cos 1.0, so the near-copy cut is off here
    cfg = params.filters.consistency.model_copy(update={"enabled": True, "max_similarity": 1.0,
                                                        "encoder": str(aligned_encoder)})
    params = params.model_copy(update={
        "strategy": "xl_lora", "languages": ["hau"],
        "filters": params.filters.model_copy(update={"consistency": cfg, "min_chars": 2}),
        "embedder": params.embedder.model_copy(update={"query_prefix": "",
                                                       "passage_prefix": ""}),
    })
    right, wrong = planted()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    src = tmp_path / "data/generated/hau"
    src.mkdir(parents=True)
    (src / "triplets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in right + wrong))

    stage.main.__wrapped__(params, "hau")

    out = tmp_path / "data/triplets/hau"
    kept = [json.loads(line) for line in (out / "triplets.jsonl").read_text().splitlines()]
    assert [r["id"] for r in kept] == [r["id"] for r in right]
    stats = json.loads((out / "filter_stats.json").read_text())
    assert stats["removed"]["consistency"] == len(wrong)
    assert stats["consistency"]["min_similarity"] == 0.86
    card = (out / "card.md").read_text()
    assert "## Consistency filter" in card and "Scored 10 triplets" in card
    metric = json.loads((tmp_path / "metrics/filter/hau.json").read_text())
    assert metric == {"language": "hau", "n_in": 10, "n_out": 5, "kept_share": 0.5}


def test_consistency_is_not_applied_to_real_data(params, aligned_encoder):
    """`parallel` and `english` train on real pairs: the check is dropped for them."""
    from bootstrap_embeddings import filters

    check = ConsistencyCheck(0.99, 0.5, lambda t: np.ones((len(t), 2)), lambda t: np.ones((len(t), 2)))
    for strategy in ("parallel", "english"):
        ctx = filters.make_context([], strategy, params.filters, check)
        assert ctx.consistency is None
    assert filters.make_context([], "icl", params.filters, check).consistency is check


def test_round_trip_removes_triplets_whose_way_back_misses_the_anchor(aligned_encoder):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(aligned_encoder))
    encoders = consistency.sentence_transformer_encoders(model, "", "", batch_size=4)
    right, wrong = planted()
    asked = []

    def back(rows):  # a stand-in generator: finds the way back for the first two only
        asked.extend(r["id"] for r in rows)
        return [r["anchor"] if i < 2 else "nobody sing" for i, r in enumerate(rows)]

    check = ConsistencyCheck(0.86, -0.02, *encoders, round_trip=back,
                             min_round_trip_similarity=0.8)
    keep = check.keep(right + wrong)
    assert asked == [r["id"] for r in right]  # only what passed the encoder test is generated
    assert keep == [True, True, False, False, False] + [False] * len(wrong)
    summary = check.summary()
    assert summary["removed_by"] == {"similarity": 5, "near_copy": 0, "margin": 0, "round_trip": 3}
    assert summary["min_round_trip_similarity"] == 0.8


def test_back_generator_answers_every_positive_with_the_real_generator(tiny_generator, params,
                                                                       tmp_path, monkeypatch):
    from bootstrap_embeddings.generator.round_trip import back_generator

    monkeypatch.chdir(tmp_path)  # partial files go under .cache/ of the project root
    gen = params.generator.generation.model_copy(update={"max_new_tokens": 4, "batch_size": 2})
    back = back_generator(tiny_generator, "hau", gen, "none", seed=0)
    right, _ = planted()
    answers = back(right[:3])
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    assert back(right[:3]) == answers  # greedy: the same answers again
    assert not list((tmp_path / ".cache").rglob("*.jsonl"))  # no partial file left behind


def test_an_encoder_that_cannot_load_is_a_one_line_error_naming_the_key(params, tmp_path,
                                                                       monkeypatch):
    from bootstrap_embeddings.errors import UserError

    cfg = params.filters.consistency.model_copy(update={"enabled": True,
                                                        "encoder": str(tmp_path / "none")})
    params = params.model_copy(update={"filters": params.filters.model_copy(
        update={"consistency": cfg})})
    with pytest.raises(UserError, match="filters.consistency.encoder: cannot load"):
        consistency.check_from_params(params, "hau")
