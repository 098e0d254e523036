"""One training step of the project's trainers against what a user would write by hand.

Not a test: a measurement, run by hand (or from benchmarks.speed):

    .venv/bin/python -m benchmarks.training_speed [--quick] [--runs N]

- Adapter: one optimiser step (forward, backward, clipping, AdamW) of the project's
  LoRA loop (`adapters._loss_module`: logits only where a label is) against
  `transformers.Trainer.training_step` on a plain peft model (the model's own loss over
  full logits) and the same AdamW step, on the same batch (the project's collated
  tensors) and the same LoRA weights; completion-only rows (task adapters) and
  all-token rows (language adapters), at generator.training's batch size and max_length.
- Embedder: `embedder.train_embedder` (the stage's trainer) against a plain
  `SentenceTransformerTrainer` with MultipleNegativesRankingLoss on the same triplets,
  batch size, learning rate and seed; seconds per step.

The two paths run alternately (ABAB...), several runs each, and the median is
compared: the machine is shared and noisy. Before timing, the losses of the two paths
on the same inputs are checked to agree within float noise. Prints, among the figures,
the lines `adapter ratio: X` and `embedder ratio: X` (X = plain time / project time;
the adapter's ratio is the smaller of its two row kinds).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

PREMISES = [
    "All human beings are born free and equal in dignity and rights.",
    "Everyone has the right to life, liberty and the security of person.",
    "No one shall be held in slavery or servitude; slavery shall be prohibited.",
    "Everyone has the right to freedom of movement within the borders of each state.",
    "A man in a red jacket is riding a bicycle down a busy street in the city.",
    "Two children are playing football on the beach while their parents watch.",
    "The old woman sold vegetables at the market every morning before sunrise.",
    "Heavy rain flooded the roads, so the school was closed for the whole week.",
]
ANSWERS = ["A person is moving.", "Nobody is outside.", "People are enjoying the day.",
           "The market was empty.", "Someone rides a bike.", "The roads were dry."]


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _rows(completion: bool, n: int) -> list[dict]:
    from bootstrap_embeddings.generator.prompts import nli_prompt

    if completion:
        return [{"prompt_text": nli_prompt(PREMISES[i % len(PREMISES)],
                                           ("entailment", "contradiction")[i % 2], "English"),
                 "completion": ANSWERS[i % len(ANSWERS)]} for i in range(n)]
    # language-adapter rows: paragraphs of varied length, cut at max_length
    return [{"text": " ".join(PREMISES[(i + k) % len(PREMISES)] for k in range(2 + i % 5))}
            for i in range(n)]


def _median_pair(step_a, step_b, runs: int) -> tuple[float, float]:
    a, b = [], []
    for _ in range(runs):
        for fn, out in ((step_a, a), (step_b, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def measure_adapter(runs: int = 3, base: str = "models/base/generator") -> dict:
    """{kind: {project_s, plain_s, ratio, loss_project, loss_plain, tokens}} for both row kinds."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from bootstrap_embeddings.config import load_params
    from bootstrap_embeddings.generator.adapter_rows import collate, encode_rows
    from bootstrap_embeddings.generator.adapters import _loss_module
    from bootstrap_embeddings.generator.loading import load_generator

    params = load_params()
    lora, training = params.generator.lora, params.generator.training
    model, tokenizer, _ = load_generator(base, "none", for_training=True)
    model = get_peft_model(model, LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, bias="none", task_type="CAUSAL_LM"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    start_weights = [p.detach().clone() for p in trainable]

    def reset() -> None:
        with torch.no_grad():
            for p, w in zip(trainable, start_weights):
                p.copy_(w)
        model.zero_grad(set_to_none=True)

    project_loss = _loss_module(model)
    project_opt = torch.optim.AdamW(trainable, lr=training.lr, weight_decay=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=training.batch_size,
                                 learning_rate=training.lr, weight_decay=0.0,
                                 max_grad_norm=training.max_grad_norm, report_to="none",
                                 use_cpu=not torch.cuda.is_available(), save_strategy="no")
        trainer = Trainer(model=model, args=args)
        trainer.create_optimizer_and_scheduler(num_training_steps=1)
        # set per step by Trainer's own loop, which this calls past: one batch per step
        trainer.current_gradient_accumulation_steps = 1
        results = {}
        for kind in ("completion_only", "all_tokens"):
            completion = kind == "completion_only"
            examples = encode_rows(tokenizer, _rows(completion, training.batch_size),
                                   training.max_length, completion_only=completion)
            ids, mask, labels = collate(examples, tokenizer.pad_token_id)
            inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}

            model.eval()  # no dropout: both losses from the same function of the weights
            with torch.no_grad():
                loss_project = project_loss(ids, mask, labels).item()
                loss_plain = model(**inputs).loss.item()
            model.train()

            def project_step() -> None:
                reset()
                project_loss(ids, mask, labels).backward()
                torch.nn.utils.clip_grad_norm_(trainable, training.max_grad_norm)
                project_opt.step()
                project_opt.zero_grad(set_to_none=True)

            def plain_step() -> None:
                reset()
                trainer.training_step(trainer.model, dict(inputs))
                torch.nn.utils.clip_grad_norm_(trainable, training.max_grad_norm)
                trainer.optimizer.step()
                trainer.lr_scheduler.step()
                trainer.model.zero_grad(set_to_none=True)

            project_step()  # warm-up: allocations, kernels
            plain_step()
            project_s, plain_s = _median_pair(project_step, plain_step, runs)
            results[kind] = {"project_s": project_s, "plain_s": plain_s,
                             "ratio": plain_s / project_s, "loss_project": loss_project,
                             "loss_plain": loss_plain, "tokens": int(mask.sum()),
                             "shape": list(ids.shape)}
    return results


def measure_embedder(runs: int = 3, steps: int = 3, base: str = "models/base/embedder") -> dict:
    """Seconds per step of the project's embedder trainer and of a plain ST trainer."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from bootstrap_embeddings import base_models, embedder
    from bootstrap_embeddings.config import load_params

    params = load_params()
    cfg = params.embedder
    batch = cfg.training.batch_size
    triplets = [{"anchor": PREMISES[i % 8] + f" ({i})",
                 "positive": ANSWERS[i % 6] + f" ({i})",
                 "negative": ANSWERS[(i + 3) % 6] + f" [{i}]"} for i in range(batch * steps)]
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"epochs": 1, "max_triplets": None})})
    path = base_models.resolve_embedder_path(Path(base))
    t = cfg.training
    curves: dict[str, list] = {"project": [], "plain": []}

    def project_run() -> None:
        model = embedder.build_model(path, cfg.pooling)
        with tempfile.TemporaryDirectory() as tmp:
            record = embedder.train_embedder(model, triplets, cfg, params.seed, tmp)
        curves["project"] = [p["loss"] for p in record["loss_curve"]]

    def plain_run() -> None:
        import math

        model = embedder.build_model(path, cfg.pooling)
        prompts = {"anchor": cfg.query_prefix, "positive": cfg.passage_prefix,
                   "negative": cfg.passage_prefix}
        with tempfile.TemporaryDirectory() as tmp:
            args = SentenceTransformerTrainingArguments(
                output_dir=tmp, num_train_epochs=1, per_device_train_batch_size=batch,
                learning_rate=t.lr, warmup_steps=math.floor(t.warmup_ratio * steps),
                seed=params.seed, data_seed=params.seed,
                batch_sampler=BatchSamplers.NO_DUPLICATES,
                prompts={c: p for c, p in prompts.items() if p} or None,
                logging_steps=1, save_strategy="no", report_to="none")
            model.max_seq_length = t.max_length
            trainer = SentenceTransformerTrainer(
                model=model, args=args, train_dataset=embedder.triplet_dataset(triplets),
                loss=MultipleNegativesRankingLoss(model, scale=cfg.loss_scale))
            trainer.train()
            curves["plain"] = [e["loss"] for e in trainer.state.log_history if "loss" in e]

    project_s, plain_s = _median_pair(project_run, plain_run, runs)
    losses_agree = len(curves["project"]) == len(curves["plain"]) == steps and all(
        _rel(a, b) < 1e-4 for a, b in zip(curves["project"], curves["plain"]))
    return {"project_s_per_step": project_s / steps, "plain_s_per_step": plain_s / steps,
            "ratio": plain_s / project_s, "losses_agree": losses_agree,
            "loss_project": curves["project"], "loss_plain": curves["plain"],
            "batch": batch, "steps": steps}


def measure(quick: bool = False, runs: int | None = None) -> dict:
    """Both measurements; {adapter: {...}, embedder: {...}, adapter_ratio, embedder_ratio}."""
    runs = runs or (2 if quick else 4)
    adapter = measure_adapter(runs=runs)
    emb = measure_embedder(runs=runs, steps=2 if quick else 4)
    return {"adapter": adapter, "embedder": emb,
            "adapter_ratio": min(r["ratio"] for r in adapter.values()),
            "embedder_ratio": emb["ratio"]}


def report(result: dict) -> list[str]:
    lines = []
    for kind, r in result["adapter"].items():
        ok = "equal" if _rel(r["loss_project"], r["loss_plain"]) < 1e-4 else "DIFFERENT"
        lines.append(
            f"adapter {kind}: batch {r['shape'][0]} x {r['shape'][1]} ({r['tokens']} tokens): "
            f"project {r['project_s']:.2f} s/step, plain peft+Trainer {r['plain_s']:.2f} s/step, "
            f"x{r['ratio']:.2f}; loss {r['loss_project']:.6f} vs {r['loss_plain']:.6f} ({ok})")
    e = result["embedder"]
    lines.append(
        f"embedder: batch {e['batch']}, {e['steps']} steps: project "
        f"{e['project_s_per_step']:.2f} s/step, plain ST trainer {e['plain_s_per_step']:.2f} "
        f"s/step, x{e['ratio']:.2f}; losses {'equal' if e['losses_agree'] else 'DIFFERENT'} "
        f"({', '.join(f'{x:.4f}' for x in e['loss_project'])} vs "
        f"{', '.join(f'{x:.4f}' for x in e['loss_plain'])})")
    lines.append(f"adapter ratio: {result['adapter_ratio']:.2f}")
    lines.append(f"embedder ratio: {result['embedder_ratio']:.2f}")
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and steps")
    parser.add_argument("--runs", type=int, default=None, help="timed runs of each path")
    args = parser.parse_args(argv)
    result = measure(quick=args.quick, runs=args.runs)
    for line in report(result):
        print(line, flush=True)
    return result


if __name__ == "__main__":
    main()
