"""The sentence embedder: pooling, contrastive training on triplets, saving with a card.

Training is supervised SimCSE as the paper runs it: multiple-negatives ranking
(InfoNCE over in-batch positives plus each anchor's hard negative) at temperature
0.05, done with sentence-transformers' trainer rather than SimCSE's own loop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

from bootstrap_embeddings.errors import UserError


POOLINGS = ("mean", "avg_first_last")
COLUMNS = ("anchor", "positive", "negative")  # MNRL reads them in this order


def pooling_modules(transformer, pooling: str) -> list:
    """Sentence-transformers modules that turn `transformer`'s token states into one vector.

    `avg_first_last` is the paper's pooler (SimCSE's): the mean over tokens of
    (hidden_states[1] + hidden_states[-1]) / 2, i.e. the outputs of the first and the
    last transformer layer (index 0 is the embedding layer, which SimCSE skips; so does
    the paper's simcse_train.py). It is built from library modules, as the paper's
    evaluation_mteb.py does: WeightedLayerPooling with weights 1/2 on the first and last
    layer and 0 elsewhere, then masked mean pooling. Library modules reload with a plain
    `SentenceTransformer(path)`; a class of our own would need `trust_remote_code=True`
    in sentence-transformers >= 6, and the saved model would need this package.
    """
    import torch
    from sentence_transformers.sentence_transformer.modules import Pooling, WeightedLayerPooling

    if pooling not in POOLINGS:
        raise UserError(f"embedder.pooling: got {pooling!r}; allowed: {', '.join(POOLINGS)}")
    dim = transformer.get_embedding_dimension()
    config = transformer.model.config
    # The Transformer module passes hidden_states on as `all_layer_embeddings` only when
    # the model's config asks for them; the flag is saved with the config.
    config.output_hidden_states = pooling == "avg_first_last"
    if pooling == "mean":
        return [Pooling(dim, pooling_mode="mean")]
    layers = config.num_hidden_layers
    weights = torch.zeros(layers)
    weights[0] = weights[-1] = 0.5
    first_last = WeightedLayerPooling(
        dim, num_hidden_layers=layers, layer_start=1,
        layer_weights=torch.nn.Parameter(weights, requires_grad=False),
    )
    return [first_last, Pooling(dim, pooling_mode="mean")]


def build_model(base: str | Path, pooling: str, revision: str | None = None):
    """The base embedder with the chosen pooling in place of its own.

    `base` is what `SentenceTransformer` loads: a sentence-transformers directory, a
    plain transformers encoder (wrapped with mean pooling) or a hub id (with
    `revision`); stages pass `base_models.resolve_embedder_path(...)`. Modules after
    the pooling (e.g. Normalize) are kept.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Pooling,
        Transformer,
        WeightedLayerPooling,
    )

    from bootstrap_embeddings.base_models import load_sentence_transformer

    loaded = load_sentence_transformer(base, revision=revision)
    modules = list(loaded)
    if not isinstance(modules[0], Transformer):
        raise UserError(
            f"{base}: its first module is {type(modules[0]).__name__}, not a Transformer")
    after = [m for m in modules[1:] if not isinstance(m, (Pooling, WeightedLayerPooling))]
    model = SentenceTransformer(
        modules=[modules[0], *pooling_modules(modules[0], pooling), *after],
        similarity_fn_name=loaded.similarity_fn_name,
        prompts=loaded.prompts,
    )
    model.max_seq_length = loaded.max_seq_length
    return model


def triplet_dataset(triplets: Sequence[dict]):
    """A datasets.Dataset with exactly the columns anchor, positive[, negative] (in that order).

    Rows without a negative (the `parallel` baseline's real pairs) give a two-column
    dataset: MNRL then uses in-batch negatives only. Mixing the two is an error.
    """
    from datasets import Dataset

    has_negative = {t.get("negative") is not None for t in triplets}
    if len(has_negative) > 1:
        raise ValueError("some rows have a negative and some do not")
    columns = COLUMNS if has_negative == {True} else COLUMNS[:2]
    return Dataset.from_dict({c: [t[c] for t in triplets] for c in columns})


def make_loss(model, scale: float):
    """Supervised SimCSE: MNRL with in-batch and hard negatives, scale = 1 / temperature.

    Under torchrun the embeddings are gathered from every process, so each anchor is
    scored against the whole global batch, as in one process.
    """
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from bootstrap_embeddings.distributed import is_distributed

    return MultipleNegativesRankingLoss(model, scale=scale,
                                        gather_across_devices=is_distributed())


def _data_parallel(batch_size: int, n_triplets: int) -> tuple[int, dict]:
    """Steps per epoch, and the trainer arguments that make several processes act as one.

    `batch_size` stays the global batch: accelerate splits each batch the sampler
    draws (the same batches as in one process) between the processes. Every batch
    must then be full, or the processes would gather embeddings of different sizes,
    so each epoch drops its incomplete last batch (different triplets every epoch).
    """
    from bootstrap_embeddings.distributed import is_distributed, num_processes

    if not is_distributed():
        return math.ceil(n_triplets / batch_size), {}
    import torch

    processes = num_processes()
    if batch_size % processes:
        raise UserError(f"embedder.training.batch_size: {batch_size} does not split evenly "
                        f"over {processes} processes; use a multiple of {processes}")
    if n_triplets < batch_size:
        raise UserError(f"embedder.training.batch_size: {batch_size} is more than the "
                        f"{n_triplets} triplets, and over several processes every batch "
                        "must be full; lower it")
    cpu = not torch.cuda.is_available()
    return n_triplets // batch_size, {
        "accelerator_config": {"split_batches": True},
        "dataloader_drop_last": True,
        "use_cpu": cpu,
        "ddp_backend": "gloo" if cpu else None,
    }


def _freeze_layer_weights(model) -> None:
    # avg_first_last is parameter-free; a reloaded WeightedLayerPooling makes its weights
    # trainable again, so freeze them before any training.
    from sentence_transformers.sentence_transformer.modules import WeightedLayerPooling

    for module in model:
        if isinstance(module, WeightedLayerPooling):
            module.layer_weights.requires_grad_(False)


def resume_key(base, triplets: Sequence[dict], cfg, seed: int,
               dev_rows: Sequence[dict] = ()) -> str:
    """A key for everything that shapes the trained embedder (names its checkpoint folder):
    the base model, the triplets, params.embedder (not `checkpoint_every`), the dev rows
    checkpoints are chosen on, the seed, the process count and the code of this module."""
    import hashlib
    import json

    from bootstrap_embeddings.distributed import num_processes
    from bootstrap_embeddings.digests import model_digest

    payload = {
        "model": model_digest(base),
        "triplets": hashlib.sha256(json.dumps(list(triplets), sort_keys=True).encode()).hexdigest(),
        "embedder": cfg.model_dump(exclude={"training": {"checkpoint_every"}}),
        "dev": hashlib.sha256(json.dumps(list(dev_rows), sort_keys=True).encode()).hexdigest(),
        "seed": seed, "processes": num_processes(),
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def last_valid_checkpoint(out_dir: str | Path) -> str | None:
    """The trainer's newest complete checkpoint in `out_dir`, removing incomplete ones.

    The trainer writes `trainer_state.json` after the weights, optimiser and RNG
    states, so a checkpoint without a readable one was cut by a kill while saving.
    """
    import json
    import logging
    import shutil

    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    out_dir = Path(out_dir)
    found = sorted((p for p in out_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
                    if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for checkpoint in found:
        try:
            state = json.loads((checkpoint / "trainer_state.json").read_text())
            if state["global_step"] == int(checkpoint.name.split("-")[-1]):
                return str(checkpoint)
        except (OSError, ValueError, KeyError):
            pass
        logging.getLogger(__name__).warning("removing the incomplete checkpoint %s", checkpoint)
        shutil.rmtree(checkpoint, ignore_errors=True)
    return None


DEV_NAME = "dev"  # the evaluator's name: its metrics are logged as eval_dev_<metric>


def dev_evaluator(rows: Sequence[dict], cfg):
    """sentence-transformers' evaluator for the dev rows checkpoints are chosen on.

    {sentence1, sentence2, score} rows (an STS dev set): Spearman of cosine similarity
    (EmbeddingSimilarityEvaluator). {text, english} rows (CLDR dev pairs): the mean of
    both directions' translation accuracy (TranslationEvaluator). The texts carry the
    prefix training gives them (`query_prefix`; the evaluators take no prompt).
    """
    from sentence_transformers.evaluation import (
        EmbeddingSimilarityEvaluator,
        TranslationEvaluator,
    )

    if not rows:
        raise UserError("embedder.dev: the dev set has no rows")
    prefix = cfg.query_prefix
    if "score" in rows[0]:
        evaluator = EmbeddingSimilarityEvaluator(
            [prefix + r["sentence1"] for r in rows], [prefix + r["sentence2"] for r in rows],
            [float(r["score"]) for r in rows], main_similarity="cosine",
            similarity_fn_names=["cosine"], name=DEV_NAME, write_csv=False, batch_size=64)
        # the name the evaluator gives its main score once it has run (the trainer
        # needs it before: metric_for_best_model)
        evaluator.primary_metric = "spearman_cosine"
        return evaluator
    return TranslationEvaluator([prefix + r["text"] for r in rows],
                                [prefix + r["english"] for r in rows],
                                name=DEV_NAME, write_csv=False, batch_size=64)


def _evaluate_at_the_end():
    """A trainer callback: evaluate and save after the last step too (the trainer does so
    only every eval_steps), so the last model is also a candidate."""
    from transformers import TrainerCallback

    class EvaluateAtTheEnd(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_evaluate = control.should_save = True
            return control

    return EvaluateAtTheEnd()


def dev_curve(log_history: Sequence[dict], metric: str) -> list[dict]:
    """[{step, score}] of the dev evaluations in a trainer's log history."""
    return [{"step": e["step"], "score": float(e[metric])} for e in log_history if metric in e]


def train_embedder(model, triplets: Sequence[dict], cfg, seed: int, out_dir: str | Path,
                   checkpoints: bool = False, dev=None) -> dict:
    """Train `model` in place on the triplets with `cfg` (params.embedder); return the run's record.

    `out_dir` is the trainer's output folder. With `checkpoints` (and
    `training.checkpoint_every` > 0) the trainer saves a checkpoint there every
    `checkpoint_every` steps and a run resumes from the newest complete one (the
    trainer's own save_steps / resume_from_checkpoint); else nothing is saved there. The
    model's own max_seq_length is restored afterwards, so evaluation truncates the
    trained model and the untrained baseline alike. Returns {loss_curve: [{step, loss}],
    n_triplets, steps, train_runtime_s, triplets_per_s, dev_curve, best_step}.

    With `dev` (an evaluator, `dev_evaluator`) the model is scored every `cfg.dev.every`
    steps and after the last one, a checkpoint is saved at each, and the best-scoring
    one is loaded at the end (the trainer's load_best_model_at_end).
    """
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers

    if not triplets:
        raise ValueError("no triplets to train on")
    t = cfg.training
    prompts = {"anchor": cfg.query_prefix,
               "positive": cfg.passage_prefix, "negative": cfg.passage_prefix}
    steps_per_epoch, data_parallel = _data_parallel(t.batch_size, len(triplets))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir),
        num_train_epochs=t.epochs,
        per_device_train_batch_size=t.batch_size,  # the global batch (_data_parallel)
        learning_rate=t.lr,
        # Rounded down: transformers rounds a ratio up, so a one-step run (fewer
        # triplets than a batch) would spend its only step at learning rate 0.
        warmup_steps=math.floor(t.warmup_ratio * steps_per_epoch * t.epochs),
        seed=seed,
        data_seed=seed,
        # in-batch negatives: a duplicate text in a batch would be a false negative
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts={col: p for col, p in prompts.items() if p} or None,
        logging_steps=1,
        report_to="none",  # the stage logs to MLflow itself, inside its tracked run
        **_saving(cfg, checkpoints, dev),
        **data_parallel,
    )
    _freeze_layer_weights(model)
    dataset = triplet_dataset(triplets)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset,
        loss=make_loss(model, cfg.loss_scale), evaluator=dev,
        callbacks=[_evaluate_at_the_end()] if dev is not None else None,
    )
    max_seq_length = model.max_seq_length
    model.max_seq_length = t.max_length
    resume = last_valid_checkpoint(out_dir) if args.save_strategy != "no" else None
    if resume:
        logging.getLogger(__name__).info("resuming from %s", resume)
    start = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=resume)
    finally:
        model.max_seq_length = max_seq_length
    seconds = time.perf_counter() - start
    n_seen = len(dataset) * t.epochs
    # the trainer's log history: restored from the checkpoint, so also the steps before it
    points = [{"step": e["step"], "loss": float(e["loss"])}
              for e in trainer.state.log_history if "loss" in e and "step" in e]
    best = trainer.state.best_model_checkpoint
    return {
        "loss_curve": points,
        "dev_curve": dev_curve(trainer.state.log_history, args.metric_for_best_model)
        if dev is not None else [],
        "best_step": int(best.rsplit("-", 1)[-1]) if dev is not None and best else None,
        "n_triplets": len(dataset),
        "steps": result.global_step,
        "train_runtime_s": round(seconds, 2),
        "triplets_per_s": round(n_seen / seconds, 2),
    }


def _saving(cfg, checkpoints: bool, dev) -> dict:
    """The trainer's save (and dev evaluation) arguments.

    Without a dev set: a resumable checkpoint every `training.checkpoint_every` steps
    (with `checkpoints`), only the newest kept. With one: evaluated and saved every
    `dev.every` steps, the best checkpoint kept beside the newest and loaded at the end.
    """
    t = cfg.training
    if dev is None:
        on = checkpoints and t.checkpoint_every
        return {"save_strategy": "steps" if on else "no", "save_steps": t.checkpoint_every or 500,
                "save_total_limit": 1}
    primary = dev.primary_metric  # prefixed with the evaluator's name at its first call
    if not primary.startswith(f"{DEV_NAME}_"):
        primary = f"{DEV_NAME}_{primary}"
    return {"eval_strategy": "steps", "eval_steps": cfg.dev.every,
            "save_strategy": "steps", "save_steps": cfg.dev.every, "save_total_limit": 1,
            "load_best_model_at_end": True, "metric_for_best_model": f"eval_{primary}",
            "greater_is_better": True}


def probe_embeddings(model, texts: Sequence[str]):
    """Embeddings of a few texts, to tell two models' weights apart."""
    return model.encode(list(texts), convert_to_tensor=True, show_progress_bar=False).cpu()


def check_saved_model(path: str | Path, trained, before, texts: Sequence[str]) -> None:
    """Fail loudly if the saved model lost its training (sentence-transformers issue 3247).

    Reloads `path`; its embeddings of `texts` must match the trained model's in memory
    and differ from `before`, the embeddings the model gave before training.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    reloaded = probe_embeddings(SentenceTransformer(str(path), device=trained.device), texts)
    if not torch.allclose(reloaded, probe_embeddings(trained, texts), atol=1e-4):
        raise RuntimeError(
            f"{path}: reloaded model does not reproduce the trained model's embeddings; "
            "the trained weights were lost")
    if torch.allclose(reloaded, before, atol=1e-6):
        raise RuntimeError(
            f"{path}: embeddings equal the base model's: training changed nothing "
            "(too few steps for the warm-up, or a zero learning rate?)")


def card_section(info: dict) -> str:
    """A markdown section for the model card: where the model comes from and how it was trained.

    `info` keys: base_model, base_path, strategy, language, pooling, optionally
    base_model_id (a hub id), and for trained models triplets_path, n_triplets,
    triplet_summary, loss_scale, hyperparameters.
    """
    lines = [
        "",
        "## Bootstrapping provenance",
        "",
        f"- Base model: {info['base_model']}, materialised in `{info['base_path']}`",
        f"- Strategy: `{info['strategy']}`",
        f"- Language: `{info['language']}`",
        f"- Pooling: `{info['pooling']}`",
    ]
    if info.get("n_triplets") is None:
        lines += ["- Training: none. This is the untrained baseline: the base embedder, "
                  "saved unchanged apart from the pooling above."]
        return "\n".join(lines) + "\n"
    scale = info["loss_scale"]
    lines += [
        f"- Training data: `{info['triplets_path']}`, {info['n_triplets']} triplets",
        f"- Triplet card: {info['triplet_summary']}",
        f"- Loss: MultipleNegativesRankingLoss with the hard negative (supervised SimCSE), "
        f"scale {scale:g} (temperature {1 / scale:g})",
        "- Hyperparameters:",
        *(f"  - `{k}`: {v!r}" for k, v in info["hyperparameters"].items()),
    ]
    if "dev_selection" in info:
        dev = info["dev_selection"]
        lines.append(f"- Checkpoint: step {dev['best_step']} of {dev['steps']}, the best on "
                     f"{dev['rows']} dev rows scored every {dev['every']} steps")
    return "\n".join(lines) + "\n"


def save_embedder(model, path: str | Path, info: dict) -> None:
    """Save in sentence-transformers format, with our provenance section in its README card."""
    card = model.model_card_data
    if info.get("base_model_id"):
        card.base_model = info["base_model_id"]  # the card links to it on the hub
    card.model_name = f"{info['strategy']} embedder for {info['language']}"
    card.language = [info["language"]]
    card.local_files_only = True
    # The trainer filled train_datasets (size, columns, loss); name the file it came from.
    for dataset in card.train_datasets:
        dataset["name"] = str(info.get("triplets_path") or dataset.get("name") or "")
    model.save(str(path))
    readme = Path(path) / "README.md"
    with open(readme, "a", encoding="utf-8") as fh:
        fh.write(card_section(info))
