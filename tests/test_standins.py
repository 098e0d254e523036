"""The rehearsal's stand-ins have the real things' shape, loaded the way the pipeline loads them."""

from __future__ import annotations

import pytest

from bootstrap_embeddings.config import load_params
from bootstrap_embeddings.data.tables import load_table, nli_triplets
from conftest import REPO
from rehearsal import standins

PROFILE = REPO / "profiles" / "paper.yaml"


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    for hub_id, write in standins.DATASETS.items():
        write(standins.standin_path(root, hub_id))
    return root


def _local(source, root, hub_id):
    return source.model_copy(update={"name": str(standins.standin_path(root, hub_id))})


def test_profile_sources_read_from_the_stand_ins(datasets_root):
    params = load_params(PROFILE)
    data = params.data
    nli = nli_triplets(_local(data.nli, datasets_root, data.nli.name), data, 0)
    # sent0 / sent1 / hard_neg through the profile's column map; wiki1m's lines are not read
    assert nli and all(set(row) == {"anchor", "positive", "negative", "relation"} for row in nli)
    assert not any(row["anchor"] == row["positive"] for row in nli)
    for key in ("anchors", "monolingual"):
        source = getattr(data, key)
        for language in (*params.languages, "eng"):
            rows = load_table(_local(source, datasets_root, source.name), ("text",),
                              f"data.{key}", language)
            assert rows, (key, language)


def test_aya_rows_are_in_each_language_script(datasets_root):
    from bootstrap_embeddings.languages import dominant_script

    params = load_params(PROFILE)
    source = _local(params.data.anchors, datasets_root, params.data.anchors.name)
    expected = {"hin": "DEVANAGARI", "mar": "DEVANAGARI", "kor": "HANGUL", "tel": "TELUGU",
                "hau": "LATIN"}
    for language, script in expected.items():
        rows = load_table(source, ("text",), "data.anchors", language)
        assert dominant_script(rows[0]["text"]) == script


def test_hub_layouts(datasets_root):
    import datasets

    def local(hub_id):
        return str(standins.standin_path(datasets_root, hub_id))

    xnli = datasets.load_dataset(local("facebook/xnli"), "hi", split="validation")
    assert xnli.column_names == ["premise", "hypothesis", "label"]
    assert xnli.features["label"].names == ["entailment", "neutral", "contradiction"]
    every = datasets.load_dataset(local("facebook/xnli"), "all_languages", split="test")
    assert set(every[0]["premise"]) == set(standins.XNLI_CONFIGS)
    # row i is the same pair in every language
    en = datasets.load_dataset(local("facebook/xnli"), "en", split="test")
    assert every[0]["premise"]["en"] == en[0]["premise"]
    assert datasets.get_dataset_config_names(local("facebook/xnli")) == [
        *standins.XNLI_CONFIGS, "all_languages"]

    semrel = datasets.load_dataset(local("SemRel/SemRel2024"), "hau", split="dev")
    assert semrel.column_names == ["sentence1", "sentence2", "label"]
    assert all(0.0 <= x <= 1.0 for x in semrel["label"])
    with pytest.raises(ValueError):  # no train split where the card has none
        datasets.load_dataset(local("SemRel/SemRel2024"), "afr", split="train")

    collection = datasets.load_dataset(local("CohereLabs/aya_collection_language_split"),
                                       "hausa", split="validation")
    assert {"inputs", "targets", "task_type"} <= set(collection.column_names)
    triplets = datasets.load_dataset(local("mbasoz/xllora-datasets"),
                                     data_files="xllora-hausa.csv", split="train")
    assert triplets.column_names == ["sent0", "sent1", "hard_neg"]


def test_mteb_tasks_load_the_stand_in_datasets_by_their_hub_id(tmp_path, monkeypatch):
    """The profile's mteb tasks, mteb's own classes, load from <cwd>/mteb/<repo>."""
    from bootstrap_embeddings.evaluation.tasks import registry_tasks

    standins.mteb_datasets(tmp_path, languages=("hin", "kor"), rows=4)
    monkeypatch.chdir(tmp_path)
    params = load_params(PROFILE)
    loaded = {}
    for language in ("hin", "kor"):
        for task in registry_tasks(params.eval.mteb_tasks, language):
            task.load_data()
            loaded.setdefault(language, []).append(task.metadata.name)
    assert loaded == {
        "hin": ["SemRel24STS", "MIRACLRetrievalHardNegatives", "IndicQARetrieval",
                "BelebeleRetrieval"],
        "kor": ["STS17", "MIRACLRetrievalHardNegatives", "BelebeleRetrieval"],
    }


@pytest.mark.integration
def test_models_have_the_real_classes(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bootstrap_embeddings import embedder
    from bootstrap_embeddings.generator.prompts import chat_wrap, format_completion

    path = standins.gemma3_it(tmp_path / "gemma")
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    assert model.model.vision_tower is not None
    wrapped = chat_wrap(tokenizer, "Premise: x")
    assert wrapped == "<bos><start_of_turn>user\nPremise: x<end_of_turn>\n<start_of_turn>model\n"
    assert format_completion(tokenizer, "y") == "y<end_of_turn>"
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert model.generation_config.eos_token_id == [tokenizer.eos_token_id, end_of_turn]
    with torch.no_grad():
        model(**tokenizer(["नमस्ते hello"], return_tensors="pt"))

    for build, architecture, first in ((standins.xlm_roberta_base, "XLMRobertaModel", "<s>"),
                                       (standins.mmbert_base, "ModernBertModel", "<bos>")):
        encoder = embedder.build_model(build(tmp_path / architecture), "avg_first_last")
        assert type(encoder[0].model).__name__ == architecture
        assert encoder.tokenizer.convert_ids_to_tokens(encoder.tokenizer("ab")["input_ids"])[0] == first
        assert encoder.encode(["कखग", "abc"]).shape == (2, 32)
