"""What every adapter stage does around the trainer: resolve the base generator, log the
run to MLflow, train, and say in one line what came out (the stages `task_adapter`,
`language_adapter`, `language_adapter_eng` and `xl_lora_adapter` call it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bootstrap_embeddings.generator.adapters import train_lora_adapter
from bootstrap_embeddings.tracking import tracked_run


def describe(name: str, record: dict) -> str:
    """One line for a stage to print at the end of training."""
    return (
        f"{name}: {record['steps']} steps on {record['rows']} rows in {record['wall_time_s']} s "
        f"({record['s_per_step']} s/step, {record['quantization']}), "
        f"final loss {record['losses'][-1]['loss']:.3f}"
    )


def train_adapter_stage(
    params,
    stage: str,
    out_dir: str | Path,
    rows: Sequence[dict],
    *,
    completion_only: bool,
    language: str | None = None,
) -> dict:
    """What every adapter stage does: train on `rows` from the base generator, log to MLflow.

    The run records the LoRA and training params, the loss at every step, and the
    wall time and quantization actually used.
    """
    from bootstrap_embeddings.base_models import (
        BASE_GENERATOR,
        model_revision,
        resolve_generator_path,
    )

    gen = params.generator
    from bootstrap_embeddings.tracking import project_root

    base = resolve_generator_path(BASE_GENERATOR)
    # outside DVC's outputs, in the user's project also under `dvc exp run`
    checkpoints = project_root() / ".cache" / stage / (language or "all")
    with tracked_run(params, stage, language) as run:
        run.log_params({f"generator.lora.{k}": v for k, v in gen.lora.model_dump().items()})
        run.log_params({f"generator.training.{k}": v for k, v in gen.training.model_dump().items()})
        run.log_params({
            "generator.quantization": gen.quantization,
            "adapter": Path(out_dir).name,
            "rows": len(rows),
            "completion_only": completion_only,
        })
        record = train_lora_adapter(
            base,
            rows,
            out_dir,
            lora=gen.lora,
            training=gen.training,
            quantization=gen.quantization,
            seed=params.seed,
            completion_only=completion_only,
            revision=model_revision(BASE_GENERATOR),
            on_step=lambda step, loss: run.log_metric("loss", loss, step=step),
            checkpoint_dir=checkpoints,
        )
        run.set_tag("quantization_used", record["quantization"])
        run.log_metrics({
            "wall_time_s": record["wall_time_s"],
            "s_per_step": record["s_per_step"],
            "final_loss": record["losses"][-1]["loss"],
            "tokens": record["tokens"],
        })
    return record
