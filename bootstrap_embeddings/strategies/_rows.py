"""Row makers shared by several strategies: generated triplets, or real rows from a file.

Each is a context manager yielding (rows, stats) (see `Strategy.make_rows`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from bootstrap_embeddings.errors import UserError


def require(path: str | Path, stage: str) -> Path:
    if not Path(path).is_file():
        raise UserError(f"{path}: missing; run `dvc repro {stage}` first")
    return Path(path)


def with_provenance(rows: list[dict], strategy: str, language: str) -> list[dict]:
    """Rows in the triplet format with their provenance (real rows: no generator wrote them)."""
    return [{"id": r["id"], "anchor": r["anchor"], "positive": r["positive"],
             "negative": r.get("negative"), "strategy": strategy, "language": language,
             "generator": None, "adapter_pos": None, "adapter_neg": None} for r in rows]


@contextlib.contextmanager
def real_rows(rows: list[dict], strategy: str, language: str) -> Iterator[tuple[list[dict], dict]]:
    yield with_provenance(rows, strategy, language), {
        "prompts": 0, "generated_tokens": 0, "triplets": len(rows)}


def real_rows_from(read: Callable[[dict], list[dict]]):
    """make_rows of a strategy that trains on a real file: `read(recipe)` gives its rows."""

    def make_rows(params, language: str, recipe: dict):
        return real_rows(read(recipe), recipe["strategy"], language)

    return make_rows


@contextlib.contextmanager
def generated_triplets(params, language: str, recipe: dict) -> Iterator[tuple[list[dict], dict]]:
    """The generator's triplets from the language's anchors, through the recipe's adapters.

    The batches are kept in a partial file (resumable after a crash) until the block
    that writes the output has finished.
    """
    from bootstrap_embeddings.base_models import (
        BASE_GENERATOR,
        generator_name,
        resolve_generator_path,
    )
    from bootstrap_embeddings.generator.generation import generate_triplets
    from bootstrap_embeddings.generator.resume import resumable_run
    from bootstrap_embeddings.rows import AnchorRow, read_rows

    anchors = read_rows(Path("data/prepared") / language / "anchors.jsonl", AnchorRow,
                        written_by=f"prepare@{language}")
    base = resolve_generator_path(BASE_GENERATOR)
    gen, quant, seed = params.generator.generation, params.generator.quantization, params.seed
    with resumable_run("generate", base, recipe, anchors, gen, quant, seed) as batches:
        yield generate_triplets(base, recipe, anchors, language, gen, quant, seed, batches,
                                generator_name=generator_name(BASE_GENERATOR))
