"""Stage `evaluate <lang>`: the language's embedder on its held-out split and named mteb tasks."""

import time
from pathlib import Path

from bootstrap_embeddings.cli import TargetLanguage, stage_entry
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_dir, write_json
from bootstrap_embeddings.rows import PairRow, read_rows
from bootstrap_embeddings.tracking import tracked_run


@stage_entry
def main(params, language: TargetLanguage) -> None:
    model_dir = Path("models/embedders") / language
    eval_file = Path("data/prepared") / language / "eval.jsonl"
    if not (model_dir / "modules.json").is_file():
        raise UserError(f"{model_dir}: no sentence-transformers model; "
                        "run the train_embedder stage first")
    rows = read_rows(eval_file, PairRow, written_by=f"prepare@{language}")

    from bootstrap_embeddings import evaluation  # imports mteb: after the cheap checks

    with tracked_run(params, "evaluate", language) as run:
        start = time.perf_counter()
        with atomic_dir(Path("results/mteb") / language) as out:
            scores = evaluation.evaluate(model_dir, language, rows, params, out)
        seconds = time.perf_counter() - start
        run.log_params({"eval.local_tasks": params.eval.local_tasks,
                        "eval.mteb_tasks": params.eval.mteb_tasks,
                        "embedder.query_prefix": params.embedder.query_prefix,
                        "embedder.passage_prefix": params.embedder.passage_prefix})
        run.log_metrics({**scores, "eval_seconds": seconds})
    write_json(Path("metrics/eval") / f"{language}.json", {language: scores})
    listed = ", ".join(f"{task} {score:.4f}" for task, score in scores.items())
    print(f"{language}: {listed} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
