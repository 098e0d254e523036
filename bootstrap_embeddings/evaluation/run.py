"""Running the evaluation: the embedder wrapped for mteb, `mteb.evaluate`, the main score
and the per-item scores.

`eval.main_score` picks what `main_score` means:
- `local` (the embedded default): the mean over the local tasks (UDHR and CLDR,
  bitext mining and retrieval), which every language has;
- `mteb` (paper scale): the mean over the mteb registry tasks that the language has;
  the local tasks stay as extra columns.
"""

from __future__ import annotations

import statistics
import warnings
from pathlib import Path

import mteb

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.evaluation.tasks import local_tasks, registry_tasks

MAIN = "main_score"
# Task types whose evaluators pass no prompt type: both sides get the query prefix, as
# e5 prescribes for symmetric tasks. STS and pair classification tasks can declare a
# prompt type per side (asymmetric variants); those sides get the matching prefix.
_SYMMETRIC_TASK_TYPES = (
    "BitextMining", "Classification", "Clustering", "STS", "PairClassification",
)
_PER_SIDE_TASK_TYPES = ("STS", "PairClassification")


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


def share_encodings(model):
    """`model` with each distinct (prompt, text) encoded once, however many tasks ask for it.

    mteb encodes per task and per side: the bitext and retrieval tasks of one source
    (UDHR, CLDR) encode the same texts up to four times (two directions, queries and
    corpus), and mteb's own embedding cache is kept per task. With an explicit prompt,
    a SentenceTransformer's encode_query and encode_document are encode with that
    prompt, unless a Router module sends queries and documents through different
    modules; only then is nothing shared.
    """
    import numpy as np
    from sentence_transformers.sentence_transformer.modules import Router

    if any(isinstance(module, Router) for module in model):
        return model
    encode, cache = model.encode, {}

    def sharing(method):
        def shared(sentences, prompt=None, **kwargs):
            if prompt is None or isinstance(sentences, str):
                return method(sentences, prompt=prompt, **kwargs)  # the model's own prompt
            texts = list(sentences)
            missing = [t for t in dict.fromkeys(texts) if (prompt, t) not in cache]
            if missing:
                kwargs = {**kwargs, "convert_to_numpy": True, "convert_to_tensor": False}
                for text, vector in zip(missing, encode(missing, prompt=prompt, **kwargs)):
                    cache[(prompt, text)] = vector
            return np.stack([cache[(prompt, t)] for t in texts])
        return shared

    model.encode, model.encode_query, model.encode_document = (
        sharing(model.encode), sharing(model.encode_query), sharing(model.encode_document))
    return model


def encoder(model_path: str | Path, params, language: str):
    """The checkpoint wrapped for mteb, with the prefixes and a name for its result files."""
    from mteb.models import SentenceTransformerEncoderWrapper

    from bootstrap_embeddings.base_models import load_sentence_transformer

    model = share_encodings(load_sentence_transformer(model_path))
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


def main_score_tasks(scores: dict[str, float], local_names: list[str], mode: str,
                     language: str) -> list[str]:
    """The tasks `main_score` averages, as `eval.main_score` says (module docstring)."""
    registry = [n for n in scores if n not in local_names and n != MAIN]
    if mode == "mteb":
        if not registry:
            raise UserError(f"params.yaml: eval.main_score: 'mteb', but no eval.mteb_tasks "
                            f"entry has a subset in {language}; use 'local' or add a task")
        return registry
    return local_names or registry


def summarize(results, local_names: list[str], mode: str, language: str) -> dict[str, float]:
    """{task: its main score (mean over subsets and splits), "main_score": x}."""
    scores = {r.task_name: float(r.get_score()) for r in results.task_results}
    missing = [n for n in local_names if n not in scores]
    if missing:
        raise RuntimeError(f"mteb returned no result for {missing}")
    averaged = main_score_tasks(scores, local_names, mode, language)
    scores[MAIN] = statistics.fmean(scores[n] for n in averaged)
    return scores


def item_scores(tasks: list, main_tasks: list[str], language: str) -> dict:
    """The per-item scores of the local tasks, as the evaluate stage saves them.

    {language, main_score_tasks, tasks: {task: {source, ids, scores}}}: an item's score
    is the mean of its two directions, so a task's mteb score is the mean over its
    items. `main_score_tasks` are the tasks `main_score` averages; where one of them
    has no per-item scores (a registry task) no interval can be computed for it.
    """
    out = {}
    for task in tasks:
        directions = list(task.item_scores.values())
        ids = [p["id"] for p in task.pairs]
        if len(directions) != 2 or any(set(d) != set(ids) for d in directions):
            raise RuntimeError(f"{task.metadata.name}: per-item scores missing for a direction")
        out[task.metadata.name] = {
            "source": task.source.name, "ids": ids,
            "scores": [round(statistics.fmean(d[i] for d in directions), 6) for i in ids],
        }
    return {"language": language, "main_score_tasks": main_tasks, "tasks": out}


def evaluate(
    model_path: str | Path, language: str, rows_by_source: dict[str, list[dict]], params,
    results_dir: str | Path,
) -> tuple[dict[str, float], dict]:
    """Run the local and the named mteb tasks; mteb's result files go under `results_dir`.

    `rows_by_source`: the held-out rows of each source the local tasks read ({"udhr":
    rows, "cldr": rows}). Returns (scores, per-item scores).

    The cache is `results_dir` and every task is re-run ("always"): mteb's default cache
    (~/.cache/mteb) skips tasks it has results for, so a retrained checkpoint under the
    same name would silently keep its old scores.
    """
    cfg = params.eval
    local = local_tasks(language, rows_by_source, cfg.local_tasks)
    tasks = local + registry_tasks(cfg.mteb_tasks, language)
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
        encode_kwargs={"batch_size": cfg.batch_size},
    )
    local_names = [t.metadata.name for t in local]
    scores = summarize(results, local_names, cfg.main_score, language)
    averaged = main_score_tasks(scores, local_names, cfg.main_score, language)
    return scores, item_scores(local, averaged, language)
