"""profiles/paper_mmbert.yaml: the paper profile with its second encoder, mmBERT; the base pooling."""

from __future__ import annotations

import pytest
import yaml

from bootstrap_embeddings.config import load_params
from conftest import REPO
from rehearsal import standins
from test_rehearsal_override import leaves

PAPER = REPO / "profiles" / "paper.yaml"
MMBERT = REPO / "profiles" / "paper_mmbert.yaml"
# what "the encoder" is: the keys an encoder swap may change
ENCODER_KEYS = {"embedder.model", "embedder.pooling", "embedder.base_pooling",
                "embedder.query_prefix", "embedder.passage_prefix"}


def _differences() -> dict[str, tuple]:
    paper, mmbert = (leaves(yaml.safe_load(p.read_text())) for p in (PAPER, MMBERT))
    return {k: (paper.get(k), mmbert.get(k)) for k in paper.keys() | mmbert.keys()
            if paper.get(k) != mmbert.get(k)}


def test_the_mmbert_profile_differs_from_the_paper_profile_only_in_the_encoder():
    differences = _differences()
    assert set(differences) <= ENCODER_KEYS, sorted(set(differences) - ENCODER_KEYS)
    assert differences["embedder.model"] == ("FacebookAI/xlm-roberta-base", "jhu-clsp/mmBERT-base")
    # the official code pools both encoders alike: avg_first_last trained, mean untouched
    params = load_params(MMBERT)
    assert (params.embedder.pooling, params.embedder.base_pooling) == ("avg_first_last", "mean")


def test_the_mmbert_stand_in_is_a_modernbert_that_the_embedder_stages_load(tmp_path):
    from bootstrap_embeddings import embedder
    from bootstrap_embeddings.base_models import materialize_embedder

    params = load_params(MMBERT)
    build = standins.MODELS[params.embedder.model]
    local = build(standins.standin_path(tmp_path, params.embedder.model))
    base = tmp_path / "models/base/embedder"
    materialize_embedder(str(local), base)  # the base_embedder stage, on the stand-in's path
    for pooling in (params.embedder.pooling, params.embedder.base_pooling):
        model = embedder.build_model(base, pooling)
        assert type(model[0].auto_model).__name__ == "ModernBertModel"
        vectors = model.encode(["कखग गक", "abc def", "abc def"])
        assert vectors.shape == (3, 32)
        assert (vectors[1] == vectors[2]).all() and not (vectors[0] == vectors[1]).all()


@pytest.mark.parametrize(("strategy", "base_pooling", "expected"), [
    ("base", "mean", "mean"),                 # untouched: base_pooling
    ("xl_lora", "mean", "avg_first_last"),    # trained: pooling
    ("base", None, "avg_first_last"),         # no base_pooling: pooling
])
def test_the_untouched_encoder_is_pooled_with_base_pooling(params, strategy, base_pooling,
                                                          expected):
    from stages.train_embedder import pooling_of

    cfg = params.embedder.model_copy(update={"pooling": "avg_first_last",
                                             "base_pooling": base_pooling})
    assert pooling_of(params.model_copy(update={"strategy": strategy, "embedder": cfg})) == expected
