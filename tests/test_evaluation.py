"""mteb evaluation: the custom held-out tasks, prefixes, mteb's registry, the evaluate stage."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from bootstrap_embeddings import evaluation
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import read_json, write_jsonl

ROWS = [
    {"id": id_, "text": text, "english": english}
    for id_, text, english in [
        ("a2-1", "Kowane mutum yana da hakkin rayuwa", "Everyone has the right to life"),
        ("a5-1", "Ba za a azabtar da kowa ba", "No one shall be subjected to torture"),
        ("a8-1", "Kowa na da hakkin samun magani", "Everyone has the right to a remedy"),
        ("a11-1", "Kowa ba shi da laifi sai an tabbatar", "Everyone is presumed innocent"),
        ("a14-1", "Kowa na iya neman mafaka", "Everyone may seek asylum"),
    ]
]


def _st_model(encoder_dir, out, **kwargs):
    """The tiny encoder as a SentenceTransformer with mean pooling, saved to `out`."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    transformer = Transformer(str(encoder_dir), max_seq_length=64)
    model = SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")], **kwargs
    )
    model.save(str(out))
    return out


@pytest.fixture(scope="module")
def st_model(tiny_encoder, tmp_path_factory):
    return _st_model(tiny_encoder, tmp_path_factory.mktemp("st_model"))


def _saved_score(results_dir, task: str) -> float:
    """The main score in mteb's result file, averaged over the subsets as mteb does."""
    saved = json.loads(next(results_dir.rglob(f"{task}.json")).read_text())
    return float(np.mean([s["main_score"] for s in saved["scores"]["test"]]))


def _with(params, **embedder):
    return params.model_copy(update={"embedder": params.embedder.model_copy(update=embedder)})


# --- languages and rows ----------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text", "tag"),
    [("hau", "Kowane mutum", "hau-Latn"), ("hin", "सभी मनुष्यों को", "hin-Deva"),
     ("kor", "모든 인간은", "kor-Hang"), ("tel", "ప్రతి మనిషి", "tel-Telu"),
     ("rus", "Все люди", "rus-Cyrl"), ("arb", "يولد جميع الناس", "arb-Arab")],
)
def test_language_script_from_the_texts(language, text, tag):
    assert evaluation.language_script(language, [text]) == tag


def test_language_script_needs_letters():
    with pytest.raises(UserError, match="hau"):
        evaluation.language_script("hau", ["12 34", "--"])


def test_clean_pairs_drops_repeats_and_checks_rows():
    rows = ROWS + [{"id": "dup", "text": ROWS[0]["text"], "english": "Something else"}]
    assert [p["id"] for p in evaluation.clean_pairs(rows, "hau")] == [r["id"] for r in ROWS]
    with pytest.raises(UserError, match="row 1 has no 'english'"):
        evaluation.clean_pairs([ROWS[0], {"id": "x", "text": "y"}], "hau")
    with pytest.raises(UserError, match="at least 2"):
        evaluation.clean_pairs(ROWS[:1], "hau")


# --- the local tasks -------------------------------------------------------------


def test_local_tasks_are_mteb_tasks_in_both_directions():
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining

    bitext, retrieval = evaluation.local_tasks("hau", ROWS, ["bitext", "retrieval"])
    assert isinstance(bitext, AbsTaskBitextMining) and isinstance(retrieval, AbsTaskRetrieval)
    assert (bitext.metadata.name, bitext.metadata.main_score) == ("UDHRBitextMining", "f1")
    assert (retrieval.metadata.name, retrieval.metadata.main_score) == (
        "UDHRRetrieval", "ndcg_at_10")
    for task in (bitext, retrieval):
        assert task.metadata.eval_langs == {"hau-eng": ["hau-Latn", "eng-Latn"],
                                            "eng-hau": ["eng-Latn", "hau-Latn"]}
        assert task.metadata.eval_splits == ["test"]
        task.load_data()

    # bitext: one parallel table, mined along the subsets' column pairs
    assert bitext.parallel_subsets and sorted(bitext.hf_subsets) == ["eng-hau", "hau-eng"]
    assert bitext.dataset["test"]["hau"] == [r["text"] for r in ROWS]
    assert bitext.dataset["test"]["eng"] == [r["english"] for r in ROWS]

    eng_hau = retrieval.dataset["eng-hau"]["test"]
    assert eng_hau["queries"]["text"] == [r["english"] for r in ROWS]
    assert eng_hau["corpus"]["text"] == [r["text"] for r in ROWS]
    assert eng_hau["relevant_docs"] == {f"q-{r['id']}": {f"d-{r['id']}": 1} for r in ROWS}

    # the dataset revision identifies the rows
    other = evaluation.local_tasks("hau", ROWS[:4], ["bitext"])[0]
    assert other.metadata.dataset["revision"] != bitext.metadata.dataset["revision"]


def test_evaluate_runs_the_local_tasks(st_model, params, tmp_path):
    results = tmp_path / "results"
    scores = evaluation.evaluate(st_model, "hau", ROWS, params, results)

    assert set(scores) == {"UDHRBitextMining", "UDHRRetrieval", "main_score"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    mean = (scores["UDHRBitextMining"] + scores["UDHRRetrieval"]) / 2
    assert scores["main_score"] == pytest.approx(mean)
    # mteb's result files went to results_dir, one per task, with both directions
    files = {p.name: p for p in results.rglob("UDHR*.json")}
    assert set(files) == {"UDHRBitextMining.json", "UDHRRetrieval.json"}
    for task, path in files.items():
        saved = json.loads(path.read_text())
        assert {s["hf_subset"] for s in saved["scores"]["test"]} == {"hau-eng", "eng-hau"}, task
        name = task.removesuffix(".json")
        assert _saved_score(results, name) == pytest.approx(scores[name], abs=1e-5)


def test_identical_texts_score_perfectly(st_model, params, tmp_path):
    """Text == English and the same prefix on both sides: every text finds itself."""
    rows = [{"id": r["id"], "text": r["english"], "english": r["english"]} for r in ROWS]
    params = _with(params, query_prefix="query: ", passage_prefix="query: ")
    scores = evaluation.evaluate(st_model, "hau", rows, params, tmp_path / "results")
    assert scores["UDHRBitextMining"] == pytest.approx(1.0)
    assert scores["UDHRRetrieval"] == pytest.approx(1.0)


def test_a_new_checkpoint_is_re_evaluated(st_model, tiny_encoder, params, tmp_path):
    """The same results folder and model name, other weights: the scores are recomputed."""
    from conftest import make_tiny_encoder

    results = tmp_path / "results"
    first = evaluation.evaluate(st_model, "hau", ROWS, params, results)
    other = _st_model(make_tiny_encoder(tmp_path / "enc", seed=1), tmp_path / "other")
    second = evaluation.evaluate(other, "hau", ROWS, params, results)
    assert second != first
    assert _saved_score(results, "UDHRBitextMining") == pytest.approx(
        second["UDHRBitextMining"], abs=1e-5)


def test_prefixes_are_applied_exactly_once(tiny_encoder, params, tmp_path):
    """A checkpoint that saved prompts (and a default prompt) still gets each prefix once."""
    from mteb._create_dataloaders import _create_dataloader_from_texts
    from mteb.types import PromptType
    from sentence_transformers import SentenceTransformer

    path = _st_model(tiny_encoder, tmp_path / "prompted",
                     prompts={"query": "query: ", "document": "passage: "},
                     default_prompt_name="query")
    params = _with(params, query_prefix="query: ", passage_prefix="passage: ")
    wrapped = evaluation.encoder(path, params, "hau")
    bitext, retrieval = evaluation.local_tasks("hau", ROWS, ["bitext", "retrieval"])
    texts = [r["text"] for r in ROWS]

    def mteb_encode(task, prompt_type):
        return wrapped.encode(_create_dataloader_from_texts(texts, batch_size=8),
                              task_metadata=task.metadata, hf_split="test", hf_subset="hau-eng",
                              prompt_type=prompt_type, batch_size=8)

    plain = SentenceTransformer(str(path))
    def by_hand(prefix):  # prompt="" overrides the saved default prompt
        return plain.encode([prefix + t for t in texts], prompt="")

    close = np.testing.assert_allclose
    close(mteb_encode(retrieval, PromptType.query), by_hand("query: "), atol=1e-5)
    close(mteb_encode(retrieval, PromptType.document), by_hand("passage: "), atol=1e-5)
    close(mteb_encode(bitext, None), by_hand("query: "), atol=1e-5)
    assert not np.allclose(by_hand("query: "), by_hand("query: query: "), atol=1e-5)


# --- mteb's registry -------------------------------------------------------------


def test_registry_tasks_by_name_for_a_language():
    names = ["SemRel24STS", "STS17", "FloresBitextMining", "BelebeleRetrieval"]
    hau = {t.metadata.name: t for t in evaluation.registry_tasks(names, "hau")}
    # STS17 has no Hausa subset
    assert set(hau) == {"SemRel24STS", "FloresBitextMining", "BelebeleRetrieval"}
    assert hau["SemRel24STS"].hf_subsets == ["hau"]
    # bitext: only the pairs with English, not Hausa against the other 200 languages
    assert set(hau["FloresBitextMining"].hf_subsets) == {"hau_Latn-eng_Latn", "eng_Latn-hau_Latn"}
    assert set(hau["BelebeleRetrieval"].hf_subsets) == {
        "hau_Latn-hau_Latn", "hau_Latn-eng_Latn", "eng_Latn-hau_Latn"}
    kor = evaluation.registry_tasks(["STS17"], "kor")
    assert [t.hf_subsets for t in kor] == [["ko-ko"]]


def test_unknown_mteb_task_is_a_user_error():
    with pytest.raises(UserError, match=r"eval\.mteb_tasks.*'STS71'"):
        evaluation.registry_tasks(["STS17", "STS71"], "kor")


# --- the stage -------------------------------------------------------------------


def test_evaluate_stage_writes_metrics_results_and_mlflow(st_model, params, tmp_path, monkeypatch):
    import shutil

    import mlflow

    from conftest import REPO
    from stages import evaluate as stage

    shutil.copytree(st_model, tmp_path / "models/embedders/hau")
    write_jsonl(tmp_path / "data/prepared/hau/eval.jsonl", ROWS)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setattr(sys, "argv", ["evaluate", "hau"])

    stage.main()

    metrics = read_json(tmp_path / "metrics/eval/hau.json")
    assert list(metrics) == ["hau"]
    assert set(metrics["hau"]) == {"UDHRBitextMining", "UDHRRetrieval", "main_score"}
    assert list((tmp_path / "results/mteb/hau").rglob("UDHRBitextMining.json"))
    assert not list((tmp_path / "results/mteb").glob(".hau.tmp-*"))
    run = mlflow.search_runs(experiment_names=[params.tracking.experiment], output_format="list")[0]
    assert run.data.tags["stage"] == "evaluate" and run.data.tags["language"] == "hau"
    assert run.data.metrics["main_score"] == pytest.approx(metrics["hau"]["main_score"])

    monkeypatch.setattr(sys, "argv", ["evaluate", "afr"])
    with pytest.raises(SystemExit) as exit_:
        stage.main()
    assert exit_.value.code == 2
