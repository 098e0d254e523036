"""Stage `evaluate <lang>`: the language's embedder on its held-out pairs and named mteb tasks.

Writes metrics/eval/<lang>.json (DVC metrics: each task's score and main_score) and
metrics/items/<lang>.json (each held-out item's score per local task, for the
confidence intervals of the report and of scripts/compare_experiments.py).
"""

import json
import time
from pathlib import Path

from bootstrap_embeddings.cli import TargetLanguage, stage_entry
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.evaluation.sources import sources
from bootstrap_embeddings.files import atomic_dir, atomic_file, write_json
from bootstrap_embeddings.rows import PairRow, read_rows
from bootstrap_embeddings.tracking import tracked_run


@stage_entry
def main(params, language: TargetLanguage) -> None:
    model_dir = Path("models/embedders") / language
    if not (model_dir / "modules.json").is_file():
        raise UserError(f"{model_dir}: no sentence-transformers model; "
                        "run the train_embedder stage first")
    rows = {source.name: read_rows(Path("data/prepared") / language / source.file, PairRow,
                                   written_by=f"prepare@{language}")
            for source in sources(params.eval.local_tasks)}

    from bootstrap_embeddings.evaluation.run import evaluate  # imports mteb: after the checks

    with tracked_run(params, "evaluate", language) as run:
        start = time.perf_counter()
        with atomic_dir(Path("results/mteb") / language) as out:
            scores, items = evaluate(model_dir, language, rows, params, out)
        seconds = time.perf_counter() - start
        run.log_params({"eval.local_tasks": params.eval.local_tasks,
                        "eval.mteb_tasks": params.eval.mteb_tasks,
                        "eval.main_score": params.eval.main_score,
                        "embedder.query_prefix": params.embedder.query_prefix,
                        "embedder.passage_prefix": params.embedder.passage_prefix})
        run.log_metrics({**scores, "eval_seconds": seconds})
    write_json(Path("metrics/eval") / f"{language}.json", {language: scores})
    with atomic_file(Path("metrics/items") / f"{language}.json") as fh:
        json.dump(items, fh, ensure_ascii=False, separators=(",", ":"))  # ~50 kB a language
    listed = ", ".join(f"{task} {score:.4f}" for task, score in scores.items())
    print(f"{language}: {listed} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
