"""Evaluation with mteb 2.x.

Two kinds of tasks, both run through `mteb.evaluate`:

- local tasks built from the held-out UDHR split (`data/prepared/<lang>/eval.jsonl`,
  rows `{id, text, english}`): bitext mining and cross-lingual retrieval between the
  target language and English, each in both directions. They are real mteb tasks
  (subclasses of mteb's abstract tasks with a `TaskMetadata`) whose `load_data`
  builds the dataset from the rows, so nothing touches the network.
- mteb's own tasks by name (`eval.mteb_tasks`, paper scale), from mteb's registry,
  restricted to the subsets in the target language or between it and English.

This module imports mteb at the top (its task classes are subclassed here): import it
from the evaluate stage and tests only, not from light code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import mteb
from datasets import Dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.languages import dominant_script

log = logging.getLogger(__name__)

SPLIT = "test"
ENGLISH = "eng-Latn"
# Unicode names ideographs "CJK UNIFIED IDEOGRAPH-..."; every other script we meet is
# named as in mteb's ISO 15924 table.
_UNICODE_TO_ISO15924 = {"CJK": "Hani"}
# Task types whose evaluators pass no prompt type: both sides get the query prefix, as
# e5 prescribes for symmetric tasks. STS and pair classification tasks can declare a
# prompt type per side (asymmetric variants); those sides get the matching prefix.
_SYMMETRIC_TASK_TYPES = (
    "BitextMining", "Classification", "Clustering", "STS", "PairClassification",
)
_PER_SIDE_TASK_TYPES = ("STS", "PairClassification")


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


# --- the held-out split ----------------------------------------------------------


def clean_pairs(rows: list[dict], language: str) -> list[dict]:
    """Check the eval rows and drop repeated texts.

    Bitext mining and retrieval both assume that each text has exactly one right
    counterpart; a paragraph that occurs twice would count a correct match as an error.
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


def _metadata(name: str, language: str, pairs: list[dict], **fields: Any) -> TaskMetadata:
    """The TaskMetadata of a local task: two subsets, target -> English and English -> target.

    The dataset "path" names no hub repository (load_data never goes there); the
    "revision" is a hash of the rows, so a result file says which split it scored.
    """
    tag = language_script(language, [p["text"] for p in pairs])
    digest = hashlib.sha256(json.dumps(pairs, sort_keys=True).encode()).hexdigest()[:12]
    return TaskMetadata(
        name=name,
        reference="https://github.com/wooorm/udhr",
        dataset={"path": f"local/udhr-held-out-{language}", "revision": digest},
        category="t2t",
        modalities=["text"],
        eval_splits=[SPLIT],
        eval_langs={f"{language}-eng": [tag, ENGLISH], f"eng-{language}": [ENGLISH, tag]},
        domains=["Legal", "Written"],
        license="not specified",
        annotations_creators="human-annotated",
        sample_creation="human-translated",
        dialect=[],
        bibtex_citation="",
        **fields,
    )


class _HeldOutTask:
    """A task on one language's held-out UDHR pairs, in both directions.

    mteb reads a task's metadata from its class (it drops instance-level metadata when
    it unloads a dataset), so `for_language` makes a subclass per language.
    """

    language: str
    pairs: list[dict]
    task_type: str
    main_score: str
    what: str

    @classmethod
    def for_language(cls, language: str, pairs: list[dict]):
        metadata = _metadata(
            cls.__name__, language, pairs, type=cls.task_type, main_score=cls.main_score,
            description=(
                f"{cls.what} between {language} and English on held-out articles of the "
                "Universal Declaration of Human Rights (aligned paragraphs), in both directions."
            ),
        )
        attrs = {"metadata": metadata, "language": language, "pairs": pairs}
        return type(cls.__name__, (cls,), attrs)()


class UDHRBitextMining(_HeldOutTask, AbsTaskBitextMining):
    """Find each sentence's translation among all the other side's sentences."""

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


class UDHRRetrieval(_HeldOutTask, AbsTaskRetrieval):
    """Queries in one language, the corpus in the other; the one relevant document is the
    query's translation."""

    task_type, main_score, what = "Retrieval", "ndcg_at_10", "Cross-lingual retrieval"

    def directions(self) -> dict[str, tuple[str, str]]:
        """hf subset -> (query field, document field) of the eval rows."""
        return {f"{self.language}-eng": ("text", "english"),
                f"eng-{self.language}": ("english", "text")}

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


# eval.local_tasks entry -> its task class (the class name is the mteb task name)
LOCAL_TASKS = {"bitext": UDHRBitextMining, "retrieval": UDHRRetrieval}


def local_tasks(language: str, eval_rows: list[dict], kinds: list[str]) -> list:
    """The custom tasks named in eval.local_tasks, on this language's held-out rows."""
    if not kinds:
        return []
    if language == "eng":
        raise UserError("params.yaml: languages: 'eng' is the other side of every local task, "
                        "not a target language")
    pairs = clean_pairs(eval_rows, language)
    return [LOCAL_TASKS[kind].for_language(language, pairs) for kind in kinds]


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


# --- the model -------------------------------------------------------------------


def model_prompts(query_prefix: str, passage_prefix: str) -> dict[str, str]:
    """mteb's prompt table for a SentenceTransformer, from the embedder's prefixes.

    mteb passes the resolved prompt to encode_query / encode_document / encode
    explicitly, which overrides whatever `prompts` the checkpoint saved: each text gets
    its prefix exactly once. Retrieval queries get the query prefix and documents the
    passage prefix; tasks that encode both sides alike get the query prefix.
    """
    prompts = {"query": query_prefix, "document": passage_prefix}
    prompts |= {task_type: query_prefix for task_type in _SYMMETRIC_TASK_TYPES}
    for task_type in _PER_SIDE_TASK_TYPES:
        prompts |= {f"{task_type}-query": query_prefix, f"{task_type}-document": passage_prefix}
    return prompts


def encoder(model_path: str | Path, params, language: str):
    """The checkpoint wrapped for mteb, with the prefixes and a name for its result files."""
    from mteb.models import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path))  # a Path object raised TypeError
    prompts = model_prompts(params.embedder.query_prefix, params.embedder.passage_prefix)
    with warnings.catch_warnings():
        # mteb warns that these prompts replace the checkpoint's saved ones: that is the point
        warnings.filterwarnings("ignore", message="Model prompts specified", category=UserWarning)
        wrapped = SentenceTransformerEncoderWrapper(model, model_prompts=prompts)
    wrapped.mteb_model_meta = wrapped.mteb_model_meta.model_copy(update={
        "name": f"bootstrap-embeddings/{params.strategy}-{language}",
        "revision": f"seed-{params.seed}",
    })
    return wrapped


# --- running ---------------------------------------------------------------------


def summarize(results, local_names: list[str]) -> dict[str, float]:
    """{task: its main score (mean over subsets and splits), "main_score": x}.

    x is the mean over the local tasks, which every language has; with no local task,
    the mean over the mteb tasks.
    """
    scores = {r.task_name: float(r.get_score()) for r in results.task_results}
    missing = [n for n in local_names if n not in scores]
    if missing:
        raise RuntimeError(f"mteb returned no result for {missing}")
    averaged = local_names or list(scores)
    scores["main_score"] = sum(scores[n] for n in averaged) / len(averaged)
    return scores


def evaluate(
    model_path: str | Path, language: str, eval_rows: list[dict], params, results_dir: str | Path
) -> dict[str, float]:
    """Run the local and the named mteb tasks; mteb's result files go under `results_dir`.

    The cache is `results_dir` and every task is re-run ("always"): mteb's default cache
    (~/.cache/mteb) skips tasks it has results for, so a retrained checkpoint under the
    same name would silently keep its old scores.
    """
    local = local_tasks(language, eval_rows, params.eval.local_tasks)
    tasks = local + registry_tasks(params.eval.mteb_tasks, language)
    if not tasks:
        raise UserError(
            f"params.yaml: eval: no task to run for {language} (local_tasks is empty and no "
            "mteb_tasks entry has a subset in this language)"
        )
    results = mteb.evaluate(
        encoder(model_path, params, language),
        tasks,
        cache=mteb.ResultCache(str(results_dir)),
        overwrite_strategy="always",
        encode_kwargs={"batch_size": params.eval.batch_size},
    )
    return summarize(results, [t.metadata.name for t in local])
