"""mteb evaluation: the custom held-out tasks (UDHR, CLDR), their per-item scores,
prefixes, mteb's registry, the main score, the evaluate stage."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.evaluation import run, tasks
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


# CLDR-like short names (hau / English)
CLDR_ROWS = [
    {"id": f"cldr:{i}", "text": text, "english": english}
    for i, (text, english) in enumerate([
        ("babban yatsa sama", "thumbs up"), ("wuta", "fire"), ("kudan zuma", "honeybee"),
        ("fuska mai murmushi", "smiling face"), ("zuciya ja", "red heart"),
        ("tutar Najeriya", "flag: Nigeria"),
    ])
]
ROWS_BY_SOURCE = {"udhr": ROWS, "cldr": CLDR_ROWS}
ALL_LOCAL = ["bitext", "retrieval", "cldr_bitext", "cldr_retrieval"]


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
    assert tasks.language_script(language, [text]) == tag


def test_language_script_needs_letters():
    with pytest.raises(UserError, match="hau"):
        tasks.language_script("hau", ["12 34", "--"])


def test_clean_pairs_drops_repeats_and_checks_rows():
    rows = ROWS + [{"id": "dup", "text": ROWS[0]["text"], "english": "Something else"}]
    assert [p["id"] for p in tasks.clean_pairs(rows, "hau")] == [r["id"] for r in ROWS]
    with pytest.raises(UserError, match="row 1 has no 'english'"):
        tasks.clean_pairs([ROWS[0], {"id": "x", "text": "y"}], "hau")
    with pytest.raises(UserError, match="at least 2"):
        tasks.clean_pairs(ROWS[:1], "hau")


# --- the local tasks -------------------------------------------------------------


def test_local_tasks_are_mteb_tasks_in_both_directions():
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining

    bitext, retrieval = tasks.local_tasks("hau", {"udhr": ROWS}, ["bitext", "retrieval"])
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
    other = tasks.local_tasks("hau", {"udhr": ROWS[:4]}, ["bitext"])[0]
    assert other.metadata.dataset["revision"] != bitext.metadata.dataset["revision"]


def test_cldr_tasks_are_their_own_classes_on_their_own_rows():
    cldr_bitext, cldr_retrieval = tasks.local_tasks("hau", ROWS_BY_SOURCE,
                                                    ["cldr_bitext", "cldr_retrieval"])
    assert [t.metadata.name for t in (cldr_bitext, cldr_retrieval)] == [
        "CLDRBitextMining", "CLDRRetrieval"]
    assert cldr_bitext.metadata.dataset["path"] == "local/cldr-held-out-hau"
    cldr_bitext.load_data()
    assert cldr_bitext.dataset["test"]["eng"] == [r["english"] for r in CLDR_ROWS]
    # the source table and the task classes agree
    from bootstrap_embeddings.evaluation.sources import TASK_SOURCES

    assert {k: t.source for k, t in tasks.LOCAL_TASKS.items()} == TASK_SOURCES


def test_evaluate_runs_the_local_tasks(st_model, params, tmp_path):
    results = tmp_path / "results"
    scores, items = run.evaluate(st_model, "hau", ROWS_BY_SOURCE, params, results)

    names = {"UDHRBitextMining", "UDHRRetrieval", "CLDRBitextMining", "CLDRRetrieval"}
    assert set(scores) == names | {"main_score"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert scores["main_score"] == pytest.approx(np.mean([scores[n] for n in names]))
    # mteb's result files went to results_dir, one per task, with both directions
    files = {p.name: p for p in results.rglob("*.json") if p.stem in names}
    assert set(files) == {f"{n}.json" for n in names}
    for task, path in files.items():
        saved = json.loads(path.read_text())
        assert {s["hf_subset"] for s in saved["scores"]["test"]} == {"hau-eng", "eng-hau"}, task
        name = task.removesuffix(".json")
        assert _saved_score(results, name) == pytest.approx(scores[name], abs=1e-5)
    assert items["main_score_tasks"] == [
        "UDHRBitextMining", "UDHRRetrieval", "CLDRBitextMining", "CLDRRetrieval"]


def test_per_item_scores_reproduce_mtebs_scores(st_model, params, tmp_path):
    """The mean of the per-item scores is mteb's score, per direction and per task."""
    local = tasks.local_tasks("hau", ROWS_BY_SOURCE, ALL_LOCAL)
    import mteb

    results = mteb.evaluate(run.encoder(st_model, params, "hau"), local,
                            cache=mteb.ResultCache(str(tmp_path)), overwrite_strategy="always")
    by_task = {r.task_name: r for r in results.task_results}
    for task in local:
        name = task.metadata.name
        per_direction = {s["hf_subset"]: s["main_score"] for s in by_task[name].scores["test"]}
        assert set(task.item_scores) == set(per_direction), name
        for direction, score in per_direction.items():
            values = list(task.item_scores[direction].values())
            assert len(values) == len(task.pairs)
            assert np.mean(values) == pytest.approx(score, abs=1e-5), (name, direction)
    items = run.item_scores(local, [t.metadata.name for t in local], "hau")
    for name, entry in items["tasks"].items():
        assert entry["ids"] == [r["id"] for r in ROWS_BY_SOURCE[entry["source"]]]
        assert np.mean(entry["scores"]) == pytest.approx(by_task[name].get_score(), abs=1e-5)


def test_bitext_item_scores_are_the_f1_of_each_items_label():
    """sklearn's weighted F1 with one gold label per item: the mean of 2 / (1 + c) over
    the items found (c: how many queries chose that item), 0 for the others."""
    task = tasks.local_tasks("hau", {"udhr": ROWS}, ["bitext"])[0]
    task._per_item = []
    gold = [(i, i) for i in range(5)]
    chosen = [0, 0, 2, 4, 3]  # item 0 chosen twice (once rightly), 1 never, 3 and 4 swapped
    metrics = task._compute_metrics([{"corpus_id": j, "score": 1.0} for j in chosen], gold)
    assert task._per_item == [[pytest.approx(2 / 3), 0.0, 1.0, 0.0, 0.0]]
    assert metrics["f1"] == pytest.approx(np.mean(task._per_item[0]))


def test_identical_texts_score_perfectly(st_model, params, tmp_path):
    """Text == English and the same prefix on both sides: every text finds itself."""
    rows = [{"id": r["id"], "text": r["english"], "english": r["english"]} for r in ROWS]
    params = _with(params, query_prefix="query: ", passage_prefix="query: ")
    params = params.model_copy(update={"eval": params.eval.model_copy(
        update={"local_tasks": ["bitext", "retrieval"]})})
    scores, _ = run.evaluate(st_model, "hau", {"udhr": rows}, params, tmp_path / "results")
    assert scores["UDHRBitextMining"] == pytest.approx(1.0)
    assert scores["UDHRRetrieval"] == pytest.approx(1.0)


def test_a_new_checkpoint_is_re_evaluated(st_model, tiny_encoder, params, tmp_path):
    """The same results folder and model name, other weights: the scores are recomputed."""
    from conftest import make_tiny_encoder

    results = tmp_path / "results"
    first, _ = run.evaluate(st_model, "hau", ROWS_BY_SOURCE, params, results)
    other = _st_model(make_tiny_encoder(tmp_path / "enc", seed=1), tmp_path / "other")
    second, _ = run.evaluate(other, "hau", ROWS_BY_SOURCE, params, results)
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
    wrapped = run.encoder(path, params, "hau")
    bitext, retrieval = tasks.local_tasks("hau", {"udhr": ROWS}, ["bitext", "retrieval"])
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
    hau = {t.metadata.name: t for t in tasks.registry_tasks(names, "hau")}
    # STS17 has no Hausa subset
    assert set(hau) == {"SemRel24STS", "FloresBitextMining", "BelebeleRetrieval"}
    assert hau["SemRel24STS"].hf_subsets == ["hau"]
    # bitext: only the pairs with English, not Hausa against the other 200 languages
    assert set(hau["FloresBitextMining"].hf_subsets) == {"hau_Latn-eng_Latn", "eng_Latn-hau_Latn"}
    assert set(hau["BelebeleRetrieval"].hf_subsets) == {
        "hau_Latn-hau_Latn", "hau_Latn-eng_Latn", "eng_Latn-hau_Latn"}
    kor = tasks.registry_tasks(["STS17"], "kor")
    assert [t.hf_subsets for t in kor] == [["ko-ko"]]


def test_unknown_mteb_task_is_a_user_error():
    with pytest.raises(UserError, match=r"eval\.mteb_tasks.*'STS71'"):
        tasks.registry_tasks(["STS17", "STS71"], "kor")


# --- the main score at paper scale: the mteb tasks the language has ----------------


def _stand_in_sts():
    """A local mteb-style STS task with Hausa and French subsets, standing in for a
    registry task such as SemRel24STS (no network)."""
    from datasets import Dataset
    from mteb.abstasks.sts import AbsTaskSTS
    from mteb.abstasks.task_metadata import TaskMetadata

    class StandInSTS(AbsTaskSTS):
        metadata = TaskMetadata(
            name="StandInSTS", type="STS", main_score="cosine_spearman",
            description="A stand-in for a registry STS task.", reference=None,
            dataset={"path": "local/stand-in-sts", "revision": "0"}, category="t2t",
            modalities=["text"], eval_splits=["test"],
            eval_langs={"hau": ["hau-Latn"], "fra": ["fra-Latn"]}, domains=["Written"],
            license="not specified", annotations_creators="derived", sample_creation="found",
            dialect=[], bibtex_citation="",
        )
        min_score, max_score = 0, 5

        def load_data(self, num_proc=None, **kwargs):
            pairs = [(r["text"], ROWS[(i + k) % len(ROWS)]["text"], 5 - k)
                     for i, r in enumerate(ROWS) for k in (0, 1, 3)]
            table = Dataset.from_dict({"sentence1": [p[0] for p in pairs],
                                       "sentence2": [p[1] for p in pairs],
                                       "score": [p[2] for p in pairs]})
            self.dataset = {lang: {"test": table} for lang in ("hau", "fra")}
            self.data_loaded = True

    return StandInSTS()


@pytest.fixture
def stand_in_registry(monkeypatch):
    """mteb's registry with one more task, the stand-in, by name."""
    real = tasks.mteb.get_task
    monkeypatch.setattr(tasks.mteb, "get_task",
                        lambda name: _stand_in_sts() if name == "StandInSTS" else real(name))


def _eval_params(params, **update):
    return params.model_copy(update={"eval": params.eval.model_copy(update=update)})


def test_main_score_mteb_is_the_mean_of_the_registry_tasks(st_model, params, tmp_path,
                                                            stand_in_registry):
    assert [t.hf_subsets for t in tasks.registry_tasks(["StandInSTS"], "hau")] == [["hau"]]
    paper = _eval_params(params, mteb_tasks=["StandInSTS"], main_score="mteb")
    scores, items = run.evaluate(st_model, "hau", ROWS_BY_SOURCE, paper, tmp_path / "a")
    # the local tasks stay as extra columns; main_score is the registry task's
    assert set(scores) == {"UDHRBitextMining", "UDHRRetrieval", "CLDRBitextMining",
                           "CLDRRetrieval", "StandInSTS", "main_score"}
    assert scores["main_score"] == scores["StandInSTS"]
    assert items["main_score_tasks"] == ["StandInSTS"]  # no per-item scores: no interval
    local = _eval_params(paper, main_score="local")
    scores, _ = run.evaluate(st_model, "hau", ROWS_BY_SOURCE, local, tmp_path / "b")
    assert scores["main_score"] == pytest.approx(np.mean(
        [v for k, v in scores.items() if k not in ("StandInSTS", "main_score")]))


def test_main_score_mteb_needs_a_registry_task_in_the_language(st_model, params, tmp_path):
    paper = _eval_params(params, mteb_tasks=["STS17"], main_score="mteb")  # STS17: no Hausa
    with pytest.raises(UserError, match=r"eval\.main_score: 'mteb', but no eval\.mteb_tasks"):
        run.evaluate(st_model, "hau", ROWS_BY_SOURCE, paper, tmp_path)


def test_paper_profile_takes_main_score_from_mteb_tasks():
    from bootstrap_embeddings.config import load_params
    from conftest import REPO

    paper = load_params(REPO / "profiles/paper.yaml")
    assert paper.eval.main_score == "mteb" and paper.eval.mteb_tasks
    assert set(paper.eval.local_tasks) == set(tasks.LOCAL_TASKS)


# --- the stage -------------------------------------------------------------------


def test_evaluate_stage_writes_metrics_items_results_and_mlflow(st_model, params, tmp_path,
                                                                monkeypatch):
    import shutil

    import mlflow

    from conftest import REPO
    from stages import evaluate as stage

    shutil.copytree(st_model, tmp_path / "models/embedders/hau")
    write_jsonl(tmp_path / "data/prepared/hau/eval.jsonl", ROWS)
    write_jsonl(tmp_path / "data/prepared/hau/eval_cldr.jsonl", CLDR_ROWS)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setattr(sys, "argv", ["evaluate", "hau"])

    stage.main()

    metrics = read_json(tmp_path / "metrics/eval/hau.json")
    assert list(metrics) == ["hau"]
    assert set(metrics["hau"]) == {"UDHRBitextMining", "UDHRRetrieval", "CLDRBitextMining",
                                   "CLDRRetrieval", "main_score"}
    items = read_json(tmp_path / "metrics/items/hau.json")
    assert items["tasks"]["CLDRRetrieval"]["ids"] == [r["id"] for r in CLDR_ROWS]
    for task, entry in items["tasks"].items():
        assert np.mean(entry["scores"]) == pytest.approx(metrics["hau"][task], abs=1e-5)
    assert list((tmp_path / "results/mteb/hau").rglob("UDHRBitextMining.json"))
    assert not list((tmp_path / "results/mteb").glob(".hau.tmp-*"))
    run_ = mlflow.search_runs(experiment_names=[params.tracking.experiment], output_format="list")[0]
    assert run_.data.tags["stage"] == "evaluate" and run_.data.tags["language"] == "hau"
    assert run_.data.metrics["main_score"] == pytest.approx(metrics["hau"]["main_score"])

    monkeypatch.setattr(sys, "argv", ["evaluate", "afr"])
    with pytest.raises(SystemExit) as exit_:
        stage.main()
    assert exit_.value.code == 2
    # a missing CLDR file is a one-line error before mteb loads
    (tmp_path / "data/prepared/hau/eval_cldr.jsonl").unlink()
    monkeypatch.setattr(sys, "argv", ["evaluate", "hau"])
    with pytest.raises(SystemExit) as exit_:
        stage.main()
    assert exit_.value.code == 2


def test_each_text_is_encoded_once_across_the_tasks(st_model, params, tmp_path, monkeypatch):
    """The bitext and retrieval tasks of a source share one encoding of each text."""
    from sentence_transformers import SentenceTransformer

    encoded: list[str] = []
    original = SentenceTransformer.encode

    def counting(self, *args, **kwargs):
        texts = args[0] if args else kwargs.get("inputs", kwargs.get("sentences"))
        encoded.extend([texts] if isinstance(texts, str) else texts)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode", counting)
    scores, _ = run.evaluate(st_model, "hau", ROWS_BY_SOURCE, params, tmp_path / "results")
    texts = {r[side] for rows in ROWS_BY_SOURCE.values() for r in rows for side in ("text", "english")}
    assert len(encoded) == len(set(encoded)) == len(texts)  # once each, every prefix alike
    # and the scores are those of encoding per task
    monkeypatch.setattr(run, "share_encodings", lambda model: model)
    unshared, _ = run.evaluate(st_model, "hau", ROWS_BY_SOURCE, params, tmp_path / "again")
    assert scores == pytest.approx(unshared, abs=1e-6)
