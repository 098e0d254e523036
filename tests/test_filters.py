"""Triplet filters: each drops what it should, counts it, and the card says so."""

from __future__ import annotations

import json

import pytest

from bootstrap_embeddings import filters
from bootstrap_embeddings.consistency import ConsistencyCheck
from bootstrap_embeddings.errors import UserError

HAU = "Kowane mutum yana da hakkin rayuwa"  # Hausa, Latin script
HIN = "प्रत्येक व्यक्ति को जीवन का अधिकार है"  # Hindi, Devanagari


def triplet(anchor=HAU, positive="Everyone may live.", negative="Nobody may live.", **extra):
    return {"id": "a01", "anchor": anchor, "positive": positive, "negative": negative,
            "strategy": "xl_lora",
            "language": "hau", "generator": "models/base/generator",
            "adapter_pos": "models/adapters/xl_lora_pos",
            "adapter_neg": "models/adapters/xl_lora_neg",
            **extra}


# A stand-in multilingual encoder: Hausa words mapped to English through a tiny
# dictionary, then a bag of words; cosine = shared words. So a translation is close to
# its anchor and an unrelated sentence is not.
HAU_TO_ENG = {"kowane": "everyone", "rayuwa": "live"}


def _bag_of_words(texts):
    import re
    import zlib

    import numpy as np

    vecs = np.full((len(texts), 256), 1e-9)
    for i, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            vecs[i, zlib.crc32(HAU_TO_ENG.get(word, word).encode()) % 256] += 1
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


CHECK = ConsistencyCheck(min_similarity=0.4, min_margin=0.0,
                         encode_anchor=_bag_of_words, encode_other=_bag_of_words)
CTX = filters.FilterContext(min_chars=8, max_chars=60, expected_script="LATIN")
CTX_CHECKED = filters.FilterContext(min_chars=8, max_chars=60, expected_script="LATIN",
                                    consistency=CHECK)

# one row per filter, that this filter (and no earlier one) must remove
BAD = {
    "empty": triplet(positive="   "),
    "copy_of_anchor": triplet(negative=HAU.upper() + "."),
    "positive_equals_negative": triplet(positive="Everyone lives.", negative="everyone lives"),
    "length": triplet(negative="No."),
    "duplicate": triplet(),  # same as the good row below, up to case and end punctuation
    "script": triplet(positive="हर कोई जीवित रह सकता है"),
    # the negative is the anchor's paraphrase, the positive is not: fails the margin
    "consistency": triplet(positive="Everyone may hum.", negative="everyone may live, yana"),
}


def test_each_filter_removes_its_row_and_counts_it():
    good = triplet(positive="everyone may live")
    report = filters.apply_filters([good, *BAD.values()], CTX_CHECKED)
    assert report.n_in == len(BAD) + 1
    assert report.kept == [good]
    assert report.counts == {name: 1 for name in BAD}
    for name, row in BAD.items():
        assert report.removed[name] == [row], name


def test_filters_are_a_table_in_the_documented_order():
    assert [f.name for f in filters.FILTERS] == list(BAD)
    assert all(f.description for f in filters.FILTERS)


def test_a_new_filter_is_one_more_table_entry():
    nli = filters.Filter("nli", "the positive does not mention living",
                         filters.row_filter(lambda row, ctx: "live" in row["positive"]))
    rows = [triplet(), triplet(positive="Everyone may sing.")]
    report = filters.apply_filters(rows, CTX, [*filters.FILTERS, nli])
    assert report.kept == rows[:1]
    assert report.counts["nli"] == 1


def test_filters_do_not_modify_their_input():
    rows = [triplet(), triplet()]
    snapshot = json.dumps(rows)
    filters.apply_filters(rows, CTX)
    assert json.dumps(rows) == snapshot


def test_length_bounds_apply_to_generated_fields_only():
    long_anchor = triplet(anchor="A very long premise " * 10)
    assert filters.apply_filters([long_anchor], CTX).kept == [long_anchor]
    too_long = triplet(positive="x" * 61)
    assert filters.apply_filters([too_long], CTX).counts["length"] == 1


def test_normalise_ignores_case_spacing_and_end_punctuation_but_keeps_marks():
    assert filters.normalise("  The cat\tsleeps. ") == filters.normalise("the cat sleeps")
    # Devanagari vowel signs are marks, not punctuation: they must survive
    assert filters.normalise("जीवन का") == "जीवन का"
    assert filters.normalise("जीवन का।") == "जीवन का"


@pytest.mark.parametrize(
    ("strategy", "anchors", "expected"),
    [
        ("xl_lora", [HIN, HIN], "LATIN"),  # English hypotheses by design, whatever the anchors
        ("english", ["A man sleeps."], "LATIN"),
        ("icl", [HIN, HIN, "UDHR"], "DEVANAGARI"),  # read off the anchors
        ("composition", [HAU, HAU], "LATIN"),
    ],
)
def test_expected_script_per_strategy(strategy, anchors, expected):
    assert filters.expected_output_script(strategy, anchors) == expected


def test_script_check_latin_vs_devanagari(params):
    no_right = "किसी को जीने का हक नहीं"
    hindi_ok = triplet(anchor=HIN, positive="हर व्यक्ति जीवित रह सकता है", negative=no_right)
    hindi_in_latin = triplet(anchor=HIN, positive="Everyone may live.", negative=no_right)
    rows = [hindi_ok, hindi_in_latin]
    ctx = filters.make_context(rows, "icl", params.filters)
    assert ctx.expected_script == "DEVANAGARI"
    report = filters.apply_filters(rows, ctx)
    assert report.kept == [hindi_ok] and report.counts["script"] == 1
    # xl_lora expects English positives and negatives: now the Devanagari ones go
    report = filters.apply_filters(rows, filters.make_context(rows, "xl_lora", params.filters))
    assert report.kept == [] and report.counts["script"] == 2
    # switched off in params: no script filtering at all
    off = params.filters.model_copy(update={"script_check": False})
    assert filters.make_context(rows, "xl_lora", off).expected_script is None
    report = filters.apply_filters(rows, filters.make_context(rows, "xl_lora", off))
    assert report.counts["script"] == 0


def _card(rows, ctx=CTX, strategy="xl_lora"):
    report = filters.apply_filters(rows, ctx)
    stats = filters.filter_stats(report, strategy, "hau", ctx, rows)
    return report, stats, filters.render_card(report, stats)


def test_card_states_provenance_counts_and_examples():
    kept = [triplet(), *(triplet(positive=f"Everyone may live {i}.") for i in range(3))]
    report, stats, card = _card([*kept, *BAD.values()], CTX_CHECKED)
    assert "`xl_lora`" in card and "Hausa (hau)" in card
    assert "models/base/generator" in card
    assert "models/adapters/xl_lora_pos" in card and "models/adapters/xl_lora_neg" in card
    assert f"Triplets in: {len(kept) + len(BAD)}; kept: {len(kept)}" in card
    for f in filters.FILTERS:
        assert f"| {f.name} | {f.description} | 1 |" in card
        assert f"### {f.name}" in card
    # three kept examples, not four
    assert "Everyone may live 1." in card and "Everyone may live 2." not in card
    assert BAD["script"]["positive"] in card and BAD["length"]["negative"] in card
    assert stats["n_out"] == 4 and stats["removed"]["script"] == 1
    assert stats["provenance"]["generator"] == ["models/base/generator"]
    # the consistency section: what each threshold pair would have kept of the 5 scored
    assert "## Consistency filter" in card and "Scored 5 triplets" in card
    counts = {(c["min_similarity"], c["min_margin"]): c["kept"]
              for c in stats["consistency"]["threshold_counts"]}
    assert counts[(0.7, -1.0)] <= 5 and counts[(0.95, 0.1)] <= counts[(0.7, -1.0)]


def test_empty_input_gives_empty_output_and_a_card_that_says_so():
    report, stats, card = _card([], strategy="base")
    assert report.kept == [] and stats["n_in"] == 0 and stats["n_out"] == 0
    assert "nothing to filter" in card


def test_card_summary_line():
    _, stats, _ = _card([triplet(), BAD["length"]])
    assert filters.summarise_card(stats) == (
        "1 of 2 triplets kept by the filters (strategy xl_lora, removed: length 1)")


def _run_stage(tmp_path, monkeypatch, params, rows):
    from stages import filter as stage

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    src = tmp_path / "data/generated/hau"
    src.mkdir(parents=True)
    (src / "triplets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    stage.main.__wrapped__(params, "hau")
    return tmp_path / "data/triplets/hau"


def test_stage_writes_triplets_card_and_stats(tmp_path, monkeypatch, params):
    import mlflow

    params = params.model_copy(update={"strategy": "xl_lora", "languages": ["hau"]})
    out = _run_stage(tmp_path, monkeypatch, params, [triplet(), BAD["length"]])
    assert sorted(p.name for p in out.iterdir()) == [
        "card.md", "filter_stats.json", "triplets.jsonl"]
    kept = [json.loads(line) for line in (out / "triplets.jsonl").read_text().splitlines()]
    assert kept == [triplet()]
    assert json.loads((out / "filter_stats.json").read_text())["removed"]["length"] == 1
    run = mlflow.search_runs(experiment_names=[params.tracking.experiment], output_format="list")[0]
    assert run.data.metrics["triplets_out"] == 1 and run.data.metrics["removed_length"] == 1


def test_stage_rejects_rows_of_another_strategy(tmp_path, monkeypatch, params):
    params = params.model_copy(update={"strategy": "icl", "languages": ["hau"]})
    with pytest.raises(UserError, match="data/generated/hau/triplets.jsonl"):
        _run_stage(tmp_path, monkeypatch, params, [triplet()])
