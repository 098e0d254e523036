"""`seed` drives every random choice: each stage that draws randomness re-runs when it changes."""

from __future__ import annotations

import yaml

from conftest import REPO

# Stages whose outputs depend on random draws, and what they draw.
RANDOM_STAGES = {
    "prepare_shared": "NLI and XL-LoRA pair sampling",
    "prepare": "anchor and monolingual sampling",
    "task_adapter": "LoRA initialisation, batch order, dropout",
    "language_adapter": "LoRA initialisation, batch order, dropout",
    "language_adapter_eng": "LoRA initialisation, batch order, dropout",
    "xl_lora_data": "sampled generation",
    "xl_lora_adapter": "LoRA initialisation, batch order, dropout",
    "setup_plain": "ICL shot selection",
    "generate": "sampled generation",
    "train_embedder": "triplet sample, data order, dropout",
}


def test_every_random_stage_declares_the_seed_param():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name in RANDOM_STAGES:
        body = stages[name].get("do", stages[name])
        assert "seed" in body.get("params", []), f"{name} does not re-run when seed changes"


def test_every_stage_is_classified():
    """A new stage must be listed above (and declare `seed`) or here, as deterministic."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    deterministic = {"check_params", "base_generator", "base_embedder", "sources", "compose",
                     "setup_xl_lora", "setup_parallel_hn", "setup_xl_lora_released", "filter",
                     "evaluate", "report"}
    assert set(stages) == set(RANDOM_STAGES) | deterministic
