"""Encoder-scored consistency of triplets: is the positive really close to the anchor?

A small generator writes many wrong positives, and wrong positives are what hurts the
finetuned embedder. A multilingual encoder (by default the base embedder) scores every
triplet; a triplet is kept when

    min_similarity <= cos(anchor, positive) <= max_similarity   and
    cos(anchor, positive) - cos(anchor, negative) >= min_margin

(above max_similarity the positive is a near-copy of the anchor: a few words changed,
or the anchor left untranslated, which a similarity floor alone rewards)

For XL-LoRA the positive and negative are English and the anchor is not: the same
check is then a cross-lingual one, which is what a multilingual encoder is trained for.
The thresholds are chosen by `scripts/calibrate_consistency.py` on data that no
evaluation uses (`calibration_sets`, `best_threshold`). Optionally a round-trip check
(generator/round_trip.py) also asks the generator for the way back and compares it with
the anchor.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

# texts -> L2-normalised embeddings, one row per text
Encode = Callable[[list[str]], np.ndarray]

# Thresholds the card reports counts for, so a user can see what a stricter or looser
# setting would have kept without re-running anything.
SIMILARITY_GRID = (0.70, 0.75, 0.80, 0.85, 0.90, 0.95)
MARGIN_GRID = (-1.0, 0.0, 0.02, 0.05, 0.10)


@dataclass(frozen=True)
class Scores:
    positive: float  # cos(anchor, positive)
    negative: float | None  # cos(anchor, negative); None for (anchor, positive) pairs
    # cos(anchor, the generator's answer to the positive); None when not checked
    round_trip: float | None = None

    @property
    def margin(self) -> float | None:
        return None if self.negative is None else self.positive - self.negative


REASONS = ("similarity", "near_copy", "margin", "round_trip")


def passes(score: Scores, min_similarity: float, min_margin: float,
           max_similarity: float = 1.0) -> bool:
    """The similarity and margin test (the round trip is checked separately)."""
    return failure(score, min_similarity, min_margin, max_similarity=max_similarity) is None


def failure(score: Scores, min_similarity: float, min_margin: float,
            min_round_trip: float | None = None, max_similarity: float = 1.0) -> str | None:
    """Why a triplet fails the check (one of REASONS), or None."""
    if score.positive < min_similarity:
        return "similarity"
    # 1 means no cut: a cosine can come out a hair above 1 by rounding
    if max_similarity < 1.0 and score.positive > max_similarity:
        return "near_copy"
    if score.margin is not None and score.margin < min_margin:
        return "margin"
    if min_round_trip is not None and score.round_trip is not None \
            and score.round_trip < min_round_trip:
        return "round_trip"
    return None


def score_rows(rows: Sequence[dict], encode_anchor: Encode, encode_other: Encode) -> list[Scores]:
    """Cosine scores of each row's positive (and negative, when it has one) to its anchor.

    Anchors and hypotheses are encoded separately because an encoder may prefix them
    differently (e5's "query: " / "passage: ").
    """
    if not rows:
        return []
    anchors = encode_anchor([r["anchor"] for r in rows])
    positives = encode_other([r["positive"] for r in rows])
    with_neg = [i for i, r in enumerate(rows) if r.get("negative")]
    negatives = encode_other([rows[i]["negative"] for i in with_neg]) if with_neg else None
    sim_pos = np.einsum("ij,ij->i", anchors, positives)
    sim_neg: dict[int, float] = {}
    if negatives is not None:
        sims = np.einsum("ij,ij->i", anchors[with_neg], negatives)
        sim_neg = {i: float(s) for i, s in zip(with_neg, sims)}
    return [Scores(float(sim_pos[i]), sim_neg.get(i)) for i in range(len(rows))]


@dataclass
class ConsistencyCheck:
    """The filter's state: thresholds, the encoder, and the scores it computed (for the card)."""

    min_similarity: float
    min_margin: float
    encode_anchor: Encode
    encode_other: Encode
    max_similarity: float = 1.0
    # rows -> the generator's answer to each positive, in the anchor's language; None: off
    round_trip: Callable[[Sequence[dict]], list[str]] | None = None
    min_round_trip_similarity: float | None = None
    scores: list[Scores] = field(default_factory=list)

    def keep(self, rows: Sequence[dict]) -> list[bool]:
        self.scores = score_rows(rows, self.encode_anchor, self.encode_other)
        if self.round_trip is not None:
            # only for the triplets that pass the cheap test: generation is the costly part
            todo = [i for i, s in enumerate(self.scores)
                    if passes(s, self.min_similarity, self.min_margin, self.max_similarity)]
            if todo:
                back = self.round_trip([rows[i] for i in todo])
                anchors = self.encode_anchor([rows[i]["anchor"] for i in todo])
                answers = self.encode_anchor(back)  # the anchor's language: the anchor's prefix
                sims = np.einsum("ij,ij->i", anchors, answers)
                for i, sim in zip(todo, sims):
                    self.scores[i] = replace(self.scores[i], round_trip=float(sim))
        return [self.why_not(s) is None for s in self.scores]

    def why_not(self, score: Scores) -> str | None:
        min_rt = self.min_round_trip_similarity if self.round_trip is not None else None
        return failure(score, self.min_similarity, self.min_margin, min_rt, self.max_similarity)

    def summary(self) -> dict:
        pos = [s.positive for s in self.scores]
        margins = [s.margin for s in self.scores if s.margin is not None]
        reasons = [self.why_not(s) for s in self.scores]
        round_trip = [s.round_trip for s in self.scores if s.round_trip is not None]
        return {
            "min_similarity": self.min_similarity,
            "max_similarity": self.max_similarity,
            "min_margin": self.min_margin,
            "min_round_trip_similarity": (self.min_round_trip_similarity
                                          if self.round_trip is not None else None),
            "n_scored": len(self.scores),
            "removed_by": {k: reasons.count(k) for k in REASONS},
            "mean_positive_similarity": _mean(pos),
            "mean_margin": _mean(margins),
            "mean_round_trip_similarity": _mean(round_trip),
            "threshold_counts": threshold_counts(self.scores, self.max_similarity),
        }


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def threshold_counts(scores: Sequence[Scores], max_similarity: float = 1.0) -> list[dict]:
    """How many of the scored triplets each (min_similarity, min_margin) would keep."""
    return [
        {"min_similarity": t, "min_margin": m,
         "kept": sum(passes(s, t, m, max_similarity) for s in scores)}
        for t in SIMILARITY_GRID for m in MARGIN_GRID
    ]


def sentence_transformer_encoders(model, anchor_prefix: str, other_prefix: str,
                                  batch_size: int) -> tuple[Encode, Encode]:
    """Encode functions for a SentenceTransformer, with the embedder's prefixes."""

    def encoder(prefix: str) -> Encode:
        def encode(texts: list[str]) -> np.ndarray:
            return model.encode([prefix + t for t in texts], batch_size=batch_size,
                                normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=len(texts) > 4 * batch_size)
        return encode

    return encoder(anchor_prefix), encoder(other_prefix)


def load_encoder(spec: str):
    """The SentenceTransformer that scores triplets: "base" is the base embedder."""
    from sentence_transformers import SentenceTransformer

    from bootstrap_embeddings import base_models
    from bootstrap_embeddings.errors import UserError

    if spec == "base":
        base = base_models.BASE_EMBEDDER
        return base_models.load_sentence_transformer(base_models.resolve_embedder_path(base),
                                                     revision=base_models.model_revision(base))
    try:
        return SentenceTransformer(spec)
    except OSError as err:
        raise UserError(f"filters.consistency.encoder: cannot load {spec!r} "
                        f"({str(err).splitlines()[0]})") from None


def check_from_params(params, language: str) -> ConsistencyCheck:
    """The check params.filters.consistency describes, with the embedder's prefixes."""
    from bootstrap_embeddings import base_models

    cfg = params.filters.consistency
    encode_anchor, encode_other = sentence_transformer_encoders(
        load_encoder(cfg.encoder), params.embedder.query_prefix,
        params.embedder.passage_prefix, cfg.batch_size)
    back = None
    if cfg.round_trip:
        from bootstrap_embeddings.generator.round_trip import back_generator

        back = back_generator(base_models.resolve_generator_path(base_models.BASE_GENERATOR),
                              language, params.generator.generation,
                              params.generator.quantization, seed=0)  # greedy: no draws
    return ConsistencyCheck(cfg.min_similarity, cfg.min_margin, encode_anchor, encode_other,
                            max_similarity=cfg.max_similarity, round_trip=back,
                            min_round_trip_similarity=cfg.min_round_trip_similarity)


# --- calibration: choosing thresholds on labelled data no evaluation uses ---

def calibration_sets(pairs: Sequence[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Right and planted-wrong triplets from real (text, english) translation pairs.

    Right: (text, its translation, another sentence's translation). Wrong: the same
    with positive and negative swapped, i.e. the positive is unrelated to the anchor and
    the right answer sits in the negative slot. Pairs are drawn per language, so the
    unrelated sentence is in the same language as the real one.
    """
    by_lang: dict[str, list[dict]] = {}
    for p in pairs:
        by_lang.setdefault(p.get("language", ""), []).append(p)
    rng = random.Random(seed)
    right, wrong = [], []
    for lang in sorted(by_lang):
        group = by_lang[lang]
        if len(group) < 2:
            continue
        for i, p in enumerate(group):
            j = rng.choice([k for k in range(len(group)) if group[k]["english"] != p["english"]]
                           or [i])
            other = group[j]["english"]
            right.append({"anchor": p["text"], "positive": p["english"], "negative": other,
                          "language": lang})
            wrong.append({"anchor": p["text"], "positive": other, "negative": p["english"],
                          "language": lang})
    return right, wrong


def near_copy(text: str, rng: random.Random) -> str:
    """The text with one word dropped: a planted near-copy of an anchor (calibration)."""
    words = text.split()
    if len(words) < 3:
        return text
    del words[rng.randrange(len(words))]
    return " ".join(words)


def best_threshold(right: Sequence[float], wrong: Sequence[float],
                   candidates: Sequence[float], upper: bool = False) -> tuple[float, float]:
    """The candidate with the best balanced accuracy (mean of the two recall rates).

    A lower cut keeps values >= t; an upper cut (`upper`) keeps values <= t. Ties go to
    the loosest cut: keep more data when the evidence does not say a stricter one is better.
    """
    order = sorted(candidates, reverse=upper)
    best, best_acc = order[0], -1.0
    for t in order:
        if upper:
            kept_right = sum(v <= t for v in right) / max(len(right), 1)
            dropped_wrong = sum(v > t for v in wrong) / max(len(wrong), 1)
        else:
            kept_right = sum(v >= t for v in right) / max(len(right), 1)
            dropped_wrong = sum(v < t for v in wrong) / max(len(wrong), 1)
        acc = (kept_right + dropped_wrong) / 2
        if acc > best_acc + 1e-12:
            best, best_acc = t, acc
    return best, best_acc
