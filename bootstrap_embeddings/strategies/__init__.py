"""The strategies: how each one gets the rows the embedder trains on.

One module per strategy in this package, each defining `STRATEGY = Strategy(...)`;
they are found by listing the package, so adding a strategy is one module here plus
its setup stage in dvc.yaml (README, "Adding a strategy"). Everything else asks this
registry: the allowed values of `strategy` in params.yaml, which rows a strategy
makes and in which language, whether the generator wrote them (so the consistency
filter applies), and where its recipe comes from.

A strategy's recipe (`models/generators/<strategy>/<lang>/recipe.json`) is the generate
stage's only strategy-specific input, so DVC re-runs generation exactly when it
changes: it names adapters by path and content hash, ICL's shots, or the real data
file and its hash.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bootstrap_embeddings.errors import UserError

if TYPE_CHECKING:
    from bootstrap_embeddings.config import Params

RECIPE_FILE = "recipe.json"
GENERATORS = Path("models/generators")


@dataclass(frozen=True)
class RecipeInputs:
    """Where a recipe builder finds what it names (tests point these at their own files)."""

    nli_path: Path = Path("data/prepared/shared/nli.jsonl")
    prepared_dir: Path = Path("data/prepared")
    adapters_dir: Path = Path("models/adapters")
    shots: int = 0
    seed: int = 0
    # data.released_triplets (a config.Source), for the strategy that reads them
    released_triplets: object | None = None


# `with make_rows(params, language, recipe) as (rows, stats): <write them>`. A context
# manager, so that a strategy that generates keeps its resumable state (partial files)
# until the block that writes the output has finished, and deletes it only then.
MakeRows = Callable[["Params", str, dict], AbstractContextManager[tuple[list[dict], dict]]]


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    # position in tables: baselines first, then the strategies the generator writes for
    order: int
    # the generator writes (part of) the rows: the consistency filter applies to them
    generates: bool
    # the language of the positives and negatives: the target's, or English
    output_language: Literal["target", "english"]
    # rows carry a hard negative; without one MNRL uses in-batch negatives only
    has_negative: bool
    # the embedder is finetuned (False: the untouched encoder is evaluated)
    trains: bool
    # the dvc.yaml stage that writes models/generators/<name>/<lang>
    setup_stage: str
    # the generate stage: this strategy's training rows for a language
    make_rows: MakeRows
    # the recipe written by `setup_stage`; None where that stage builds it itself (compose)
    build_recipe: Callable[[str, RecipeInputs], dict] | None = None


@cache
def registry() -> dict[str, Strategy]:
    """Every strategy module of this package, by name, in table order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue  # helpers shared by several strategies
        module = importlib.import_module(f"{__name__}.{info.name}")
        strategy = getattr(module, "STRATEGY", None)
        if not isinstance(strategy, Strategy) or strategy.name != info.name:
            raise RuntimeError(f"{module.__file__}: needs STRATEGY = Strategy(name={info.name!r}, ...)")
        found.append(strategy)
    return {s.name: s for s in sorted(found, key=lambda s: (s.order, s.name))}


def names() -> tuple[str, ...]:
    return tuple(registry())


def get(name: str) -> Strategy:
    try:
        return registry()[name]
    except KeyError:
        raise UserError(f"strategy: got {name!r}; allowed: {', '.join(names())}") from None


def recipe_dir(strategy: str, language: str) -> Path:
    return GENERATORS / strategy / language


def build_recipe(strategy: str, language: str, **inputs) -> dict:
    """The recipe of a strategy whose setup stage is `generator_setup` (inputs: RecipeInputs)."""
    spec = get(strategy)
    if spec.build_recipe is None:
        raise UserError(f"strategy {strategy!r}: its recipe is written by the "
                        f"{spec.setup_stage} stage, not by generator_setup")
    recipe = {"strategy": strategy, "language": language}
    return recipe | spec.build_recipe(language, RecipeInputs(**inputs))


def read_recipe(strategy: str, language: str) -> dict:
    """The recipe the setup stage wrote, checked to be this strategy's."""
    from bootstrap_embeddings.files import read_json

    path = recipe_dir(strategy, language) / RECIPE_FILE
    if not path.is_file():
        raise UserError(f"{path}: missing; run the {get(strategy).setup_stage} stage of "
                        f"this strategy first (dvc repro)")
    recipe = read_json(path)
    if recipe.get("strategy") != strategy:
        raise UserError(f"{path}: a recipe of strategy {recipe.get('strategy')!r}, "
                        f"params.yaml says {strategy!r}")
    return recipe
