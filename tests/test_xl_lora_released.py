"""Strategy xl_lora_released: the paper's released triplets (data.released_triplets) read, not generated."""

from __future__ import annotations

import pytest

from bootstrap_embeddings import strategies
from bootstrap_embeddings.config import Source, load_params
from bootstrap_embeddings.errors import UserError
from conftest import REPO
from rehearsal import standins


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Source:
    """The profile's source, pointed at a local folder with the hub repo's files."""
    folder = tmp_path_factory.mktemp("released") / "mbasoz" / "xllora-datasets"
    standins.xllora_datasets(folder, rows=5)
    profile = load_params(REPO / "profiles" / "paper.yaml").data.released_triplets
    return profile.model_copy(update={"name": str(folder)})


def test_the_recipe_names_the_language_file_and_its_digest(source):
    recipe = strategies.build_recipe("xl_lora_released", "hau", released_triplets=source)
    assert recipe["source"]["path"] == "xllora-hausa.csv"
    assert recipe["triplets"] == 5 and len(recipe["triplets_sha256"]) == 64
    other = strategies.build_recipe("xl_lora_released", "mar", released_triplets=source)
    assert other["source"]["path"] == "xllora-marathi.csv"
    assert other["triplets_sha256"] != recipe["triplets_sha256"]


def test_rows_are_the_released_triplets_as_they_are(source, params):
    recipe = strategies.build_recipe("xl_lora_released", "hau", released_triplets=source)
    spec = strategies.get("xl_lora_released")
    with spec.make_rows(params, "hau", recipe) as (rows, stats):
        assert stats["triplets"] == 5
    for i, row in enumerate(rows):
        assert (row["anchor"], row["positive"], row["negative"]) == (
            standins.sentence("hau", i, "xllora"), standins.english(i, "xllora+"),
            standins.english(i, "xllora-"))
        assert (row["strategy"], row["language"], row["id"]) == ("xl_lora_released", "hau", str(i))
    assert spec.output_language == "english" and spec.has_negative and spec.trains


def test_released_data_that_changed_after_setup_stop_the_generate_stage(source, params):
    recipe = strategies.build_recipe("xl_lora_released", "hau", released_triplets=source)
    recipe["triplets_sha256"] = "0" * 64
    with pytest.raises(UserError, match=r"^data\.released_triplets: the released triplets of hau "
                                        r"changed since the setup stage"):
        with strategies.get("xl_lora_released").make_rows(params, "hau", recipe):
            pass


def test_unset_source_and_a_language_without_a_file_are_one_line_errors(source, params):
    # unset (the embedded default): the setup stage succeeds, so a bare `dvc repro`, which
    # builds every strategy's setup stage, runs through; the strategy itself stops
    recipe = strategies.build_recipe("xl_lora_released", "hau", released_triplets=None)
    assert recipe["source"] is None and recipe["triplets"] == 0
    with pytest.raises(UserError, match=r"^data\.released_triplets: null; strategy "):
        with strategies.get("xl_lora_released").make_rows(params, "hau", recipe):
            pass
    with pytest.raises(UserError, match=r"^data\.released_triplets\.name: cannot load"):
        strategies.build_recipe("xl_lora_released", "yor", released_triplets=source)


def test_the_setup_stage_writes_the_recipe(source, params, tmp_path, monkeypatch):
    import json

    from stages import generator_setup

    monkeypatch.chdir(tmp_path)
    params = params.model_copy(update={
        "strategy": "xl_lora_released",
        "data": params.data.model_copy(update={"released_triplets": source})})
    generator_setup.main.__wrapped__(params, "xl_lora_released", "hau")
    recipe = json.loads((tmp_path / "models/generators/xl_lora_released/hau/recipe.json").read_text())
    assert (recipe["strategy"], recipe["language"], recipe["triplets"]) == ("xl_lora_released", "hau", 5)


def test_a_language_the_paper_released_no_triplets_for_is_an_error_at_load(params):
    from bootstrap_embeddings.data.source_languages import check_source_languages

    released = load_params(REPO / "profiles" / "paper.yaml").data.released_triplets
    params = params.model_copy(update={
        "strategy": "xl_lora_released", "languages": ["hau", "yor"],
        "data": params.data.model_copy(update={"released_triplets": released})})
    with pytest.raises(UserError, match=r"^languages: mbasoz/xllora-datasets \(data\.released_"
                                        r"triplets\) has no 'yor'; nearest it has: kor"):
        check_source_languages(params)
