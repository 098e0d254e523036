"""The evaluation's tasks: mteb custom tasks on the held-out pairs, and mteb's own by name.

Local tasks, one class each (the class name is the mteb task name), built from a
language's held-out rows `{id, text, english}`:

- `UDHRBitextMining`, `UDHRRetrieval`: held-out UDHR articles (data/prepared/<lang>/eval.jsonl);
- `CLDRBitextMining`, `CLDRRetrieval`: CLDR emoji short names outside the dev part
  (data/prepared/<lang>/eval_cldr.jsonl, see data/cldr.py).

Each runs in both directions (target -> English, English -> target). They are real
mteb tasks (subclasses of mteb's abstract tasks with a `TaskMetadata`) whose
`load_data` builds the dataset from the rows, so nothing touches the network. While
mteb scores them they also keep each item's score (`item_scores`), computed by the
same metric code from the same embeddings, for the confidence intervals.

mteb's registry tasks (`eval.mteb_tasks`, paper scale) are cut down to the subsets in
the target language or between it and English.

This module imports mteb at the top (its task classes are subclassed here): import it
from the evaluate stage and tests only, not from light code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import mteb
from datasets import Dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.evaluation.sources import CLDR, UDHR, HeldOutSource, sources
from bootstrap_embeddings.languages import dominant_script

log = logging.getLogger(__name__)

SPLIT = "test"
ENGLISH = "eng-Latn"
# Unicode names ideographs "CJK UNIFIED IDEOGRAPH-..."; every other script we meet is
# named as in mteb's ISO 15924 table.
_UNICODE_TO_ISO15924 = {"CJK": "Hani"}


# --- languages -------------------------------------------------------------------


def iso15924(script_name: str) -> str | None:
    """ISO 15924 code of a Unicode script name ("LATIN" -> "Latn"), from mteb's script table."""
    from mteb.languages import ISO_TO_SCRIPT

    if script_name in _UNICODE_TO_ISO15924:
        return _UNICODE_TO_ISO15924[script_name]
    wanted = script_name.lower()
    # An exact name first ("Latin" -> Latn, not "Latin (Fraktur variant)" -> Latf),
    # then the name before its parenthesis ("Devanagari (Nagari)" -> Deva).
    for strip in (False, True):
        for code, name in ISO_TO_SCRIPT.items():
            if (name.split(" (")[0] if strip else name).lower() == wanted:
                return code
    return None


def language_script(language: str, texts: list[str]) -> str:
    """mteb's language tag ("hau-Latn"): the ISO 639-3 code and the texts' dominant script."""
    from mteb.languages import check_language_code

    name = dominant_script(" ".join(texts))
    code = iso15924(name) if name else None
    if code is None:
        raise UserError(
            f"eval rows for {language}: no ISO 15924 code for their script {name!r}"
        )
    tag = f"{language}-{code}"
    try:
        check_language_code(tag)
    except ValueError as err:
        raise UserError(f"eval rows for {language}: mteb rejects {tag!r} ({err})") from None
    return tag


# --- the held-out rows -----------------------------------------------------------


def clean_pairs(rows: list[dict], language: str) -> list[dict]:
    """Check the eval rows and drop repeated texts.

    Bitext mining and retrieval both assume that each text has exactly one right
    counterpart; a text that occurs twice would count a correct match as an error.
    """
    seen_id, seen_text, seen_english, pairs = set(), set(), set(), []
    for i, row in enumerate(rows):
        for key in ("id", "text", "english"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise UserError(f"eval rows for {language}: row {i} has no {key!r} string")
        if row["id"] in seen_id:
            raise UserError(f"eval rows for {language}: row {i} repeats the id {row['id']!r}")
        seen_id.add(row["id"])
        if row["text"] in seen_text or row["english"] in seen_english:
            continue
        seen_text.add(row["text"])
        seen_english.add(row["english"])
        pairs.append({"id": row["id"], "text": row["text"], "english": row["english"]})
    if len(pairs) < 2:
        raise UserError(
            f"eval rows for {language}: {len(pairs)} distinct pair(s); evaluation needs at least 2"
        )
    if len(pairs) < len(rows):
        log.info("%s: dropped %d eval rows with a repeated text", language, len(rows) - len(pairs))
    return pairs


def _metadata(task: type, language: str, pairs: list[dict]) -> TaskMetadata:
    """The TaskMetadata of a local task: two subsets, target -> English and English -> target.

    The dataset "path" names no hub repository (load_data never goes there); the
    "revision" is a hash of the rows, so a result file says which items it scored.
    """
    source = task.source
    tag = language_script(language, [p["text"] for p in pairs])
    digest = hashlib.sha256(json.dumps(pairs, sort_keys=True).encode()).hexdigest()[:12]
    return TaskMetadata(
        name=task.__name__,
        type=task.task_type,
        main_score=task.main_score,
        description=(f"{task.what} between {language} and English on {source.what}, "
                     "in both directions."),
        reference=source.reference,
        dataset={"path": f"local/{source.name}-held-out-{language}", "revision": digest},
        category="t2t",
        modalities=["text"],
        eval_splits=[SPLIT],
        eval_langs={f"{language}-eng": [tag, ENGLISH], f"eng-{language}": [ENGLISH, tag]},
        domains=list(source.domains),
        license="not specified",
        annotations_creators="human-annotated",
        sample_creation=source.sample_creation,
        dialect=[],
        bibtex_citation="",
    )


class _HeldOutTask:
    """A task on one language's held-out pairs, in both directions.

    mteb reads a task's metadata from its class (it drops instance-level metadata when
    it unloads a dataset), so `for_language` makes a subclass per language.

    `item_scores` fills while mteb evaluates: {direction: {item id: score}}, the
    per-item terms whose mean over items is mteb's score for that direction.
    """

    source: HeldOutSource
    language: str
    pairs: list[dict]
    task_type: str
    main_score: str
    what: str

    @classmethod
    def for_language(cls, language: str, pairs: list[dict]):
        attrs = {"metadata": _metadata(cls, language, pairs), "language": language,
                 "pairs": pairs}
        task = type(cls.__name__, (cls,), attrs)()
        task.item_scores = {}
        return task

    def directions(self) -> dict[str, tuple[str, str]]:
        """hf subset -> (query field, document field) of the eval rows."""
        return {f"{self.language}-eng": ("text", "english"),
                f"eng-{self.language}": ("english", "text")}


class _HeldOutBitextMining(_HeldOutTask, AbsTaskBitextMining):
    """Find each text's translation among all the other side's texts.

    mteb's score is sklearn's support-weighted F1 over the gold labels (one per item),
    i.e. the mean over items of the F1 of the item's label: 2 / (1 + c) if the item's
    query found it and c queries in all chose it, else 0. `item_scores` holds those
    per-label F1s, from sklearn's `f1_score(average=None)` on the same predictions.
    """

    task_type, main_score, what = "BitextMining", "f1", "Bitext mining"
    # One table with a column per language, as mteb's Flores task has: each side is
    # encoded once and mined in both directions (the subsets name the column pairs).
    parallel_subsets = True

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        # row i's gold match is row i, in either direction
        self.dataset = {SPLIT: Dataset.from_dict({
            self.language: [p["text"] for p in self.pairs],
            "eng": [p["english"] for p in self.pairs],
        })}
        self.data_loaded = True

    def _evaluate_subset(self, *args: Any, **kwargs: Any):
        self._per_item: list[list[float]] = []
        scores = super()._evaluate_subset(*args, **kwargs)
        # mteb calls _compute_metrics once per direction, in the loop that fills
        # `scores`: the i-th call belongs to the i-th key
        ids = [p["id"] for p in self.pairs]
        for direction, values in zip(scores, self._per_item, strict=True):
            self.item_scores[direction] = dict(zip(ids, values, strict=True))
        return scores

    def _compute_metrics(self, nearest_neighbors, gold):
        from sklearn.metrics import f1_score

        labels = [g[1] for g in gold]
        predictions = [x["corpus_id"] for x in nearest_neighbors]
        per_label = f1_score(labels, predictions, labels=labels, average=None, zero_division=0)
        self._per_item.append([float(v) for v in per_label])
        return super()._compute_metrics(nearest_neighbors, gold)


class _HeldOutRetrieval(_HeldOutTask, AbsTaskRetrieval):
    """Queries in one language, the corpus in the other; the one relevant document is the
    query's translation. `item_scores`: each query's nDCG@10 as pytrec_eval scored it
    for mteb (its `task_specific_scores` hook receives the per-query scores)."""

    task_type, main_score, what = "Retrieval", "ndcg_at_10", "Cross-lingual retrieval"

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        ids = [p["id"] for p in self.pairs]
        self.dataset = {
            subset: {SPLIT: RetrievalSplitData(
                queries=Dataset.from_dict({"id": [f"q-{i}" for i in ids],
                                           "text": [p[q] for p in self.pairs]}),
                corpus=Dataset.from_dict({"id": [f"d-{i}" for i in ids],
                                          "text": [p[d] for p in self.pairs]}),
                relevant_docs={f"q-{i}": {f"d-{i}": 1} for i in ids},  # its translation only
                top_ranked=None,
            )}
            for subset, (q, d) in self.directions().items()
        }
        self.data_loaded = True

    def task_specific_scores(self, scores, qrels, results, hf_split, hf_subset) -> dict:
        self.item_scores[hf_subset] = {
            qid.removeprefix("q-"): float(s["ndcg_cut_10"]) for qid, s in scores.items()
        }
        return {}


class UDHRBitextMining(_HeldOutBitextMining):
    source = UDHR


class UDHRRetrieval(_HeldOutRetrieval):
    source = UDHR


class CLDRBitextMining(_HeldOutBitextMining):
    source = CLDR


class CLDRRetrieval(_HeldOutRetrieval):
    source = CLDR


# eval.local_tasks entry -> its task class (sources.TASK_SOURCES names their sources)
LOCAL_TASKS = {
    "bitext": UDHRBitextMining, "retrieval": UDHRRetrieval,
    "cldr_bitext": CLDRBitextMining, "cldr_retrieval": CLDRRetrieval,
}


def local_tasks(language: str, rows_by_source: dict[str, list[dict]], kinds: list[str]) -> list:
    """The custom tasks named in eval.local_tasks, on this language's held-out rows
    ({source name: rows})."""
    if not kinds:
        return []
    if language == "eng":
        raise UserError("params.yaml: languages: 'eng' is the other side of every local task, "
                        "not a target language")
    kinds = list(dict.fromkeys(kinds))  # a task named twice runs once
    pairs = {source.name: clean_pairs(rows_by_source[source.name], language)
             for source in sources(kinds)}
    return [LOCAL_TASKS[kind].for_language(language, pairs[LOCAL_TASKS[kind].source.name])
            for kind in kinds]


# --- mteb's registry -------------------------------------------------------------


def registry_tasks(names: list[str], language: str) -> list:
    """mteb tasks by name, cut down to the subsets in `language` or between it and English.

    A task with no such subset (STS17 for Hausa) is skipped with a warning: the task
    list is shared by all languages. An unknown name is the user's error.
    """
    tasks = []
    for name in names:
        try:
            task = mteb.get_task(name)
        except KeyError as err:
            hint = str(err.args[0]).removeprefix("KeyError: ")  # mteb suggests a close name
            raise UserError(
                f"params.yaml: eval.mteb_tasks: {name!r} is not an mteb task ({hint})"
            ) from None
        in_language = [
            subset
            for subset, tags in task.metadata.hf_subsets_to_langscripts.items()
            if any(tag.split("-")[0] == language for tag in tags)
        ]
        try:
            # exclusive: every language of a kept subset is the target language or English
            task.filter_languages([language, "eng"], hf_subsets=in_language,
                                  exclusive_language_filter=True)
        except ValueError:
            log.warning("eval.mteb_tasks: %s has no subset in %s; skipped", name, language)
            continue
        tasks.append(task)
    return tasks
