"""Choose the consistency filter's thresholds on labelled data that no evaluation uses.

Two calibration sets, both built by `consistency.calibration_sets` from real pairs
(right triplets, and planted-wrong ones whose positive is another sentence's):
- cross-lingual, as XL-LoRA writes: the XL-LoRA premise languages' UDHR sentences
  with their English translations (data/prepared/shared/xl_parallel.jsonl; the
  target languages are excluded from it, and the held-out articles from everything);
- monolingual, as ICL and composition write: English NLI premises with their
  entailments (data/prepared/shared/nli.jsonl).
For each, it scores both sets with the encoder (the base embedder), prints the share of
right / wrong triplets each threshold keeps, and the threshold with the best balanced
accuracy: for min_similarity on cos(anchor, positive), for min_margin on
cos(anchor, positive) - cos(anchor, negative). Writes reports/consistency_calibration.md.

    python -m scripts.calibrate_consistency [--nli-sample 400]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

from bootstrap_embeddings import base_models
from bootstrap_embeddings.config import load_params
from bootstrap_embeddings.consistency import (
    best_threshold,
    calibration_sets,
    load_encoder,
    near_copy,
    score_rows,
    sentence_transformer_encoders,
)
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_file, read_jsonl

SIMILARITIES = tuple(round(x, 2) for x in np.arange(0.60, 0.99, 0.02))
MAX_SIMILARITIES = tuple(round(x, 3) for x in np.arange(0.90, 1.0001, 0.005))
MARGINS = tuple(round(x, 2) for x in np.arange(-0.10, 0.31, 0.02))


def _sweep(right: list[float], wrong: list[float], thresholds, upper: bool = False,
           wrong_name: str = "wrong") -> list[str]:
    lines = [f"| threshold | right kept | {wrong_name} kept |", "| ---: | ---: | ---: |"]
    for t in thresholds:
        def kept(values):
            return np.mean([(v <= t) if upper else (v >= t) for v in values])
        lines.append(f"| {t:.3g} | {kept(right):.0%} | {kept(wrong):.0%} |")
    return lines


def calibrate(name: str, pairs: list[dict], encoders, seed: int) -> tuple[list[str], dict]:
    right, wrong = calibration_sets(pairs, seed)
    s_right = score_rows(right, *encoders)
    s_wrong = score_rows(wrong, *encoders)
    pos_r, pos_w = [s.positive for s in s_right], [s.positive for s in s_wrong]
    mar_r, mar_w = [s.margin for s in s_right], [s.margin for s in s_wrong]
    sim, sim_acc = best_threshold(pos_r, pos_w, SIMILARITIES)
    margin, margin_acc = best_threshold(mar_r, mar_w, MARGINS)
    both = np.mean([(p >= sim and m >= margin) for p, m in zip(pos_r, mar_r)])
    both_w = np.mean([(p >= sim and m >= margin) for p, m in zip(pos_w, mar_w)])
    # near-copies: the right triplet's anchor with one word dropped, as its positive
    rng = random.Random(seed)
    copies = [{**r, "positive": near_copy(r["anchor"], rng)} for r in right]
    pos_c = [s.positive for s in score_rows(copies, *encoders)]
    top, top_acc = best_threshold(pos_r, pos_c, MAX_SIMILARITIES, upper=True)
    best = {"set": name, "n_right": len(right), "n_wrong": len(wrong),
            "min_similarity": float(sim), "similarity_balanced_accuracy": round(float(sim_acc), 4),
            "min_margin": float(margin), "margin_balanced_accuracy": round(float(margin_acc), 4),
            "right_kept_by_both": round(float(both), 4),
            "wrong_kept_by_both": round(float(both_w), 4),
            "max_similarity": float(top), "near_copy_balanced_accuracy": round(float(top_acc), 4)}
    lines = [f"## {name}", "",
             f"{len(right)} right and {len(wrong)} planted-wrong triplets. Mean cos(anchor, "
             f"positive): right {np.mean(pos_r):.3f}, wrong {np.mean(pos_w):.3f}.", "",
             f"Best min_similarity {sim:.2f} (balanced accuracy {sim_acc:.3f}); best "
             f"min_margin {margin:.2f} (balanced accuracy {margin_acc:.3f}). Both together "
             f"keep {both:.0%} of the right triplets and {both_w:.0%} of the wrong ones.", "",
             "### min_similarity", "", *_sweep(pos_r, pos_w, SIMILARITIES), "",
             "### min_margin", "", *_sweep(mar_r, mar_w, MARGINS), "",
             "### max_similarity (near-copies)", "",
             f"Planted near-copies: each right triplet's anchor with one word dropped, as the "
             f"positive. Mean cos(anchor, near-copy) {np.mean(pos_c):.3f}. Best max_similarity "
             f"{top:.3g} (balanced accuracy {top_acc:.3f}).", "",
             *_sweep(pos_r, pos_c, MAX_SIMILARITIES, upper=True, wrong_name="near-copy"), ""]
    return lines, best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nli-sample", type=int, default=400,
                        help="NLI triplets to calibrate the monolingual thresholds on")
    parser.add_argument("--out", type=Path, default=Path("reports/consistency_calibration.md"))
    args = parser.parse_args(argv)
    try:
        params = load_params()
        shared = Path("data/prepared/shared")
        for name in ("xl_parallel.jsonl", "nli.jsonl"):
            if not (shared / name).is_file():
                raise UserError(f"{shared / name}: missing; run `dvc repro prepare_shared`")
        path = base_models.resolve_embedder_path(base_models.BASE_EMBEDDER)
        model = load_encoder("base")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    encoders = sentence_transformer_encoders(model, params.embedder.query_prefix,
                                             params.embedder.passage_prefix, 64)
    cross = read_jsonl(shared / "xl_parallel.jsonl")
    nli = read_jsonl(shared / "nli.jsonl")
    nli = random.Random(params.seed).sample(nli, min(args.nli_sample, len(nli)))
    mono = [{"text": r["anchor"], "english": r["positive"], "language": "eng"} for r in nli]

    lines = ["# Consistency filter calibration", "",
             f"Encoder: {path}. Produced by `python -m scripts.calibrate_consistency`.", ""]
    results = []
    for name, pairs in (("cross-lingual (XL-LoRA premise languages -> English)", cross),
                        ("monolingual (English NLI premise -> entailment)", mono)):
        section, best = calibrate(name, pairs, encoders, params.seed)
        lines += section
        results.append(best)
        print(best)
    with atomic_file(args.out) as fh:
        fh.write("\n".join(lines))
    print(f"{args.out}: written")


if __name__ == "__main__":
    main()
