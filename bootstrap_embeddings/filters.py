"""Quality filters on generated triplets, and the card that says what each one removed.

The filters are a table (`FILTERS`): each entry has a name, a one-line description
and a pure function from the rows to a keep-mask. They run in table order, each on
what the previous ones kept, so every removed row is charged to exactly one filter.
The last entry, `consistency`, scores each surviving triplet with an encoder
(consistency.py); it is off unless params.yaml switches it on, and applies only to
generated triplets.

Only the generated fields (positive, negative) are checked for length and script:
the anchors are the prepared data the generator was given, not its output. The
`parallel` baseline's rows are real (X, English) pairs with no negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bootstrap_embeddings import strategies
from bootstrap_embeddings.consistency import ConsistencyCheck
from bootstrap_embeddings.languages import dominant_script, language_name
from bootstrap_embeddings.text import normalise

FIELDS = ("anchor", "positive", "negative")
GENERATED = ("positive", "negative")

ENGLISH_SCRIPT = "LATIN"


@dataclass(frozen=True)
class FilterContext:
    """What the filters need to know beyond the rows themselves."""

    min_chars: int
    max_chars: int
    # expected Unicode script of the generated fields; None: no script check
    expected_script: str | None
    # the fields every row must have, and those of them the generator wrote
    fields: tuple[str, ...] = FIELDS
    generated: tuple[str, ...] = GENERATED
    # the encoder-scored check; None when switched off or not a generative strategy
    consistency: ConsistencyCheck | None = None


KeepMask = Callable[[Sequence[dict], FilterContext], list[bool]]


@dataclass(frozen=True)
class Filter:
    name: str
    description: str
    keep: KeepMask


def row_filter(predicate: Callable[[dict, FilterContext], bool]) -> KeepMask:
    """Lift a per-row predicate to a keep-mask over all rows."""

    def keep(rows: Sequence[dict], ctx: FilterContext) -> list[bool]:
        return [predicate(row, ctx) for row in rows]

    return keep


def _no_empty_field(row: dict, ctx: FilterContext) -> bool:
    return all(isinstance(row.get(f), str) and row[f].strip() for f in ctx.fields)


def _not_copy_of_anchor(row: dict, ctx: FilterContext) -> bool:
    anchor = normalise(row["anchor"])
    return all(normalise(row[f]) != anchor for f in ctx.generated)


def _positive_differs_from_negative(row: dict, ctx: FilterContext) -> bool:
    if "negative" not in ctx.fields:
        return True
    return normalise(row["positive"]) != normalise(row["negative"])


def _length_in_bounds(row: dict, ctx: FilterContext) -> bool:
    return all(ctx.min_chars <= len(row[f].strip()) <= ctx.max_chars for f in ctx.generated)


def _first_occurrence(rows: Sequence[dict], ctx: FilterContext) -> list[bool]:
    seen: set[tuple[str, ...]] = set()
    keep = []
    for row in rows:
        key = tuple(normalise(row[f]) for f in ctx.fields)
        keep.append(key not in seen)
        seen.add(key)
    return keep


def _expected_script(row: dict, ctx: FilterContext) -> bool:
    if ctx.expected_script is None:
        return True
    return all(dominant_script(row[f]) == ctx.expected_script for f in ctx.generated)


def _consistent(rows: Sequence[dict], ctx: FilterContext) -> list[bool]:
    if ctx.consistency is None:
        return [True] * len(rows)
    return ctx.consistency.keep(rows)


FILTERS: tuple[Filter, ...] = (
    Filter("empty", "a field is missing or blank", row_filter(_no_empty_field)),
    Filter("copy_of_anchor", "the positive or negative repeats the anchor",
           row_filter(_not_copy_of_anchor)),
    Filter("positive_equals_negative", "the positive and negative are the same text",
           row_filter(_positive_differs_from_negative)),
    Filter("length", "the positive or negative is shorter than min_chars or longer than max_chars",
           row_filter(_length_in_bounds)),
    Filter("duplicate", "the same (anchor, positive, negative) was kept earlier",
           _first_occurrence),
    Filter("script", "the positive or negative is not mostly in the expected script",
           row_filter(_expected_script)),
    Filter("consistency", "the encoder finds the positive too far from the anchor, or not "
           "closer than the negative by the margin (filters.consistency)", _consistent),
)


def expected_output_script(strategy: str, anchors: Sequence[str]) -> str | None:
    """The script the generated fields should be written in, or None when unknown.

    English for the strategies whose positives and negatives are English whatever the
    target (XL-LoRA's cross-lingual triplets, the English and parallel baselines); else
    the target language's, read off the anchors.
    """
    if strategies.get(strategy).output_language == "english":
        return ENGLISH_SCRIPT
    return dominant_script(" ".join(anchors))


def make_context(rows: Sequence[dict], strategy: str, filter_params,
                 consistency: ConsistencyCheck | None = None) -> FilterContext:
    """The context for `params.filters` (FilterParams) and the rows of one language.

    `consistency` is the encoder check the filter stage built when
    filters.consistency.enabled; it is dropped for strategies that train on real data.
    """
    script = None
    if filter_params.script_check:
        anchors = [r["anchor"] for r in rows if isinstance(r.get("anchor"), str)]
        script = expected_output_script(strategy, anchors)
    spec = strategies.get(strategy)
    return FilterContext(
        filter_params.min_chars, filter_params.max_chars, script,
        fields=FIELDS if spec.has_negative else ("anchor", "positive"),
        generated=GENERATED if spec.has_negative else ("positive",),
        consistency=consistency if spec.generates else None,
    )


@dataclass
class FilterReport:
    n_in: int
    kept: list[dict]
    # filter name -> the rows it removed, in table order
    removed: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.removed.items()}


def apply_filters(
    rows: Sequence[dict], ctx: FilterContext, filters: Sequence[Filter] = FILTERS
) -> FilterReport:
    """Run the filters in order; each sees only what the previous ones kept."""
    kept = list(rows)
    removed: dict[str, list[dict]] = {}
    for f in filters:
        mask = f.keep(kept, ctx)
        if len(mask) != len(kept):
            raise ValueError(
                f"filter {f.name!r} returned {len(mask)} decisions for {len(kept)} rows")
        removed[f.name] = [r for r, k in zip(kept, mask) if not k]
        kept = [r for r, k in zip(kept, mask) if k]
    return FilterReport(n_in=len(rows), kept=kept, removed=removed)


def provenance(rows: Sequence[dict]) -> dict[str, list[str]]:
    """The distinct generators and adapters the rows name (normally one of each)."""
    return {
        key: sorted({str(r[key]) for r in rows if r.get(key) is not None})
        for key in ("generator", "adapter_pos", "adapter_neg")
    }


def filter_stats(report: FilterReport, strategy: str, language: str, ctx: FilterContext,
                 rows: Sequence[dict]) -> dict:
    """The machine-readable summary written next to the card (filter_stats.json)."""
    return {
        "strategy": strategy,
        "language": language,
        "n_in": report.n_in,
        "n_out": len(report.kept),
        "removed": report.counts,
        "expected_script": ctx.expected_script,
        "min_chars": ctx.min_chars,
        "max_chars": ctx.max_chars,
        "provenance": provenance(rows),
        # scores and per-threshold counts; None when the check did not run
        "consistency": ctx.consistency.summary() if ctx.consistency is not None else None,
    }


def _md_cell(text) -> str:
    return "-" if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def _triplet_table(rows: Sequence[dict]) -> list[str]:
    lines = ["| anchor | positive | negative |", "| --- | --- | --- |"]
    lines += [f"| {_md_cell(r.get('anchor', ''))} | {_md_cell(r.get('positive', ''))} "
              f"| {_md_cell(r.get('negative', ''))} |" for r in rows]
    return lines


def render_card(report: FilterReport, stats: dict, filters: Sequence[Filter] = FILTERS,
                n_examples: int = 3) -> str:
    """The triplet card (markdown): provenance, counts, what each filter removed, examples."""
    strategy, language = stats["strategy"], stats["language"]
    try:
        lang_name = f"{language_name(language)} ({language})"
    except KeyError:
        lang_name = language
    prov = stats["provenance"]
    lines = [
        f"# Triplets: {lang_name}, strategy `{strategy}`",
        "",
        f"- Strategy: `{strategy}`",
        f"- Language: {lang_name}",
        f"- Generator: {', '.join(prov['generator']) or '-'}",
        f"- Positive adapter: {', '.join(prov['adapter_pos']) or '-'}",
        f"- Negative adapter: {', '.join(prov['adapter_neg']) or '-'}",
        "- Expected script of positives and negatives: "
        f"{stats['expected_script'] or 'not checked'}",
        f"- Triplets in: {stats['n_in']}; kept: {stats['n_out']}",
        "",
    ]
    if report.n_in == 0:
        lines += ["No triplets were generated for this strategy "
                  "(the `base` strategy trains nothing), so there is nothing to filter.", ""]
        return "\n".join(lines)

    lines += ["## Filters", "",
              "Applied in this order; each sees only the rows the previous ones kept.", "",
              "| filter | removes | removed |", "| --- | --- | --- |"]
    lines += [f"| {f.name} | {f.description} | {stats['removed'][f.name]} |" for f in filters]
    lines += _consistency_section(stats.get("consistency"))
    lines += ["", "## Examples kept", ""]
    lines += _triplet_table(report.kept[:n_examples]) if report.kept else ["(none kept)"]
    lines += ["", "## Examples removed", ""]
    for f in filters:
        if report.removed[f.name]:
            lines += [f"### {f.name}", "", *_triplet_table(report.removed[f.name][:1]), ""]
    return "\n".join(lines).rstrip() + "\n"


def _consistency_section(summary: dict | None) -> list[str]:
    """What each consistency threshold would keep, of the triplets the check scored."""
    if not summary:
        return ["", "Consistency filter: off (filters.consistency.enabled)."]
    margins = sorted({c["min_margin"] for c in summary["threshold_counts"]})
    sims = sorted({c["min_similarity"] for c in summary["threshold_counts"]})
    kept = {(c["min_similarity"], c["min_margin"]): c["kept"] for c in summary["threshold_counts"]}
    lines = ["", "## Consistency filter", "",
             f"Scored {summary['n_scored']} triplets: mean cos(anchor, positive) "
             f"{summary['mean_positive_similarity']}, mean margin over the negative "
             f"{summary['mean_margin']}. Applied: min_similarity {summary['min_similarity']}, "
             f"max_similarity {summary.get('max_similarity', 1.0)} (near-copies of the "
             f"anchor above it), min_margin {summary['min_margin']}, round trip "
             + (f"min {summary['min_round_trip_similarity']} (mean cos(anchor, answer) "
                f"{summary['mean_round_trip_similarity']})"
                if summary.get("min_round_trip_similarity") is not None else "off")
             + ". Removed for: " + ", ".join(f"{k} {v}" for k, v in summary["removed_by"].items())
             + ".", "",
             "Triplets each threshold pair would keep, with the applied max_similarity and "
             "before any round trip (rows: min_similarity, columns: min_margin):", "",
             "| min_similarity | " + " | ".join(f"{m:g}" for m in margins) + " |",
             "| --- |" + " --- |" * len(margins)]
    lines += [f"| {t:g} | " + " | ".join(str(kept[(t, m)]) for m in margins) + " |"
              for t in sims]
    return lines


def summarise_card(stats: dict) -> str:
    """One line from filter_stats.json, for the embedder's model card."""
    removed = ", ".join(f"{k} {v}" for k, v in stats["removed"].items() if v) or "nothing"
    return (f"{stats['n_out']} of {stats['n_in']} triplets kept by the filters "
            f"(strategy {stats['strategy']}, removed: {removed})")
