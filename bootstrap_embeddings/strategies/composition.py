"""Adapter composition (AdaMergeX): task adapter + lambda * (language(target) - language(English)).

The compose stage writes the composed adapters and this strategy's recipe
(`recipe`); generation then runs through them like XL-LoRA's.
"""

from __future__ import annotations

from pathlib import Path

from bootstrap_embeddings.strategies import Strategy
from bootstrap_embeddings.strategies._rows import generated_triplets


def recipe(language: str, out: Path, mode: str, lambda_: float) -> dict:
    """The recipe of the adapters composed into `out`/{pos,neg}."""
    return {"strategy": "composition", "language": language,
            "adapters": {kind: str(out / kind) for kind in ("pos", "neg")},
            "shots": [], "mode": mode, "lambda": lambda_}


STRATEGY = Strategy(
    name="composition",
    description="task adapter + lambda * (language adapter(target) - language adapter(English)), "
                "LoRA arithmetic (AdaMergeX)",
    order=11,
    generates=True,
    output_language="target",
    has_negative=True,
    trains=True,
    setup_stage="compose",
    make_rows=generated_triplets,
)
