"""Stage `train_embedder <lang>`: contrastive training of the embedder on the language's triplets.

The `base` strategy trains nothing: it saves the base embedder (with the chosen
pooling) as the untrained baseline. Every other strategy trains on
data/triplets/<lang> (the filtered generated triplets, or English NLI for `english`).
Under torchrun (or BOOTSTRAP_NPROC) the processes train data-parallel; the main one saves.
"""

import random
import shutil
from pathlib import Path

from bootstrap_embeddings import base_models, embedder, strategies
from bootstrap_embeddings.cli import TargetLanguage, stage_entry
from bootstrap_embeddings.distributed import is_main_process
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_dir, claim_folder, read_json, write_json
from bootstrap_embeddings.rows import PairRow, StsRow, TripletRow, read_rows
from bootstrap_embeddings.filters import summarise_card
from bootstrap_embeddings.tracking import project_root, tracked_run

BASE_EMBEDDER = base_models.BASE_EMBEDDER
N_PROBE = 8  # texts embedded before and after training to check the saved weights


def _read_triplets(strategy: str, triplets_dir: Path, limit: int | None, seed: int) -> list[dict]:
    if not strategies.get(strategy).trains:
        return []
    path = triplets_dir / "triplets.jsonl"
    triplets = read_rows(path, TripletRow, written_by=f"filter@{triplets_dir.name}",
                         allow_empty=True)
    if not triplets:
        raise UserError(f"{path}: no triplets to train on for strategy {strategy!r}; "
                        f"see {triplets_dir / 'card.md'}")
    if limit is not None and len(triplets) > limit:
        triplets = random.Random(seed).sample(triplets, limit)
    return triplets


def _dev_rows(params, language: str) -> list[dict]:
    """The rows checkpoints are chosen on (embedder.dev): the STS dev set where the
    language has one, else the CLDR dev pairs; none without embedder.dev."""
    dev = params.embedder.dev
    if dev is None or not strategies.get(params.strategy).trains:
        return []
    prepared = Path("data/prepared") / language
    if dev.on_sts(language):
        return read_rows(prepared / "dev_sts.jsonl", StsRow, written_by=f"prepare@{language}")
    return read_rows(prepared / "dev.jsonl", PairRow, written_by=f"prepare@{language}")


def _checkpoint_folder(language: str, key: str) -> Path:
    """.cache/train_embedder/<language>/<key>, claimed, after removing the other keys'
    folders there that no live run holds (other params, triplets or code: they can never
    resume; a concurrent queued experiment's is left alone)."""
    root = project_root() / ".cache" / "train_embedder" / language
    if is_main_process():
        return claim_folder(root, key, "checkpoints")
    return root / key


def _base_info(params, language: str) -> dict:
    """What the card says about the base model, from base_embedder's source.json."""
    source = read_json(BASE_EMBEDDER / base_models.SOURCE_FILE)
    model_id = source.get("base_model") or source.get("model_id")
    spec = f"embedder.model {params.embedder.model}"
    return {"base_model": f"{model_id} ({spec})" if model_id else spec,
            "base_model_id": model_id, "base_path": str(BASE_EMBEDDER),
            "strategy": params.strategy, "language": language,
            "pooling": pooling_of(params)}


def pooling_of(params) -> str:
    """`embedder.pooling`, or `embedder.base_pooling` for a strategy that trains nothing."""
    cfg = params.embedder
    untrained = not strategies.get(params.strategy).trains
    return cfg.base_pooling if untrained and cfg.base_pooling is not None else cfg.pooling


@stage_entry(distributed=True)
def main(params, language: TargetLanguage) -> None:
    cfg = params.embedder
    triplets_dir = Path("data/triplets") / language
    triplets = _read_triplets(params.strategy, triplets_dir, cfg.training.max_triplets, params.seed)

    base = base_models.resolve_embedder_path(BASE_EMBEDDER)  # UserError if it has not run
    info = _base_info(params, language)
    model = embedder.build_model(base, pooling_of(params),
                                 revision=base_models.model_revision(BASE_EMBEDDER))
    dev_rows = _dev_rows(params, language)
    out = Path("models/embedders") / language
    curve: list[dict] = []
    dev_curve: list[dict] = []
    with tracked_run(params, "train_embedder", language) as run:
        run.log_params({"embedder.model": cfg.model, "embedder.pooling": pooling_of(params),
                        "embedder.loss_scale": cfg.loss_scale,
                        **{f"embedder.training.{k}": v
                           for k, v in cfg.training.model_dump().items()}})
        if triplets:
            probe = [t["anchor"] for t in triplets[:N_PROBE]]
            before = embedder.probe_embeddings(model, probe)
            # the trainer's checkpoints: outside DVC's outputs, in the user's project also
            # under `dvc exp run`; a rerun after a kill resumes from the newest one
            checkpoints = _checkpoint_folder(
                language, embedder.resume_key(base, triplets, cfg, params.seed, dev_rows))
            dev = embedder.dev_evaluator(dev_rows, cfg) if dev_rows else None
            record = embedder.train_embedder(model, triplets, cfg, params.seed, checkpoints,
                                             checkpoints=True, dev=dev)
        if not is_main_process():
            return  # under torchrun: this process helped to train; the main one saves
        if not triplets:
            with atomic_dir(out) as tmp:
                embedder.save_embedder(model, tmp, info)
        else:
            curve, dev_curve = record["loss_curve"], record["dev_curve"]
            stats_file = triplets_dir / "filter_stats.json"
            info |= {
                "triplets_path": str(triplets_dir / "triplets.jsonl"),
                "n_triplets": record["n_triplets"],
                "triplet_summary": summarise_card(read_json(stats_file))
                if stats_file.is_file() else "no filter_stats.json",
                "loss_scale": cfg.loss_scale,
                "hyperparameters": {**cfg.training.model_dump(), "seed": params.seed,
                                    "query_prefix": cfg.query_prefix,
                                    "passage_prefix": cfg.passage_prefix,
                                    "batch_sampler": "no_duplicates"},
            }
            if record["best_step"] is not None:  # the card says which checkpoint was kept
                info["dev_selection"] = {"every": cfg.dev.every, "rows": len(dev_rows),
                                         "best_step": record["best_step"],
                                         "steps": record["steps"]}
            with atomic_dir(out) as tmp:
                embedder.save_embedder(model, tmp, info)
                embedder.check_saved_model(tmp, model, before, probe)
                # the run's size and wall time, for the report's cost (bootstrap_embeddings.cost)
                write_json(tmp / "training.json", {k: record[k] for k in
                           ("n_triplets", "steps", "train_runtime_s", "triplets_per_s",
                            "best_step", "dev_curve")})
            shutil.rmtree(checkpoints, ignore_errors=True)  # the embedder is whole
            for point in curve:
                run.log_metric("train_loss", point["loss"], step=point["step"])
            for point in dev_curve:
                run.log_metric("dev_score", point["score"], step=point["step"])
            if record["best_step"] is not None:
                run.log_metric("best_step", record["best_step"])
            run.log_metrics({k: record[k] for k in
                             ("n_triplets", "steps", "train_runtime_s", "triplets_per_s")})
            print(f"{language}: trained on {record['n_triplets']} triplets in "
                  f"{record['train_runtime_s']} s ({record['triplets_per_s']} triplets/s)"
                  + (f"; kept step {record['best_step']} of {record['steps']} (dev "
                     f"{max(p['score'] for p in dev_curve):.4f})"
                     if record["best_step"] is not None else ""))
    write_json(Path("metrics/train") / f"{language}.json", curve)
    write_json(Path("metrics/dev") / f"{language}.json", dev_curve)


if __name__ == "__main__":
    main()
