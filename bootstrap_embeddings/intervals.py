"""95% confidence intervals of scores from per-item scores: a bootstrap over evaluation items.

A score here is a weighted sum of means over groups of items: `main_score` of one
language is the mean of its local tasks, i.e. per held-out source (UDHR, CLDR) the
mean over its items of the item's mean over that source's tasks, weighted by the
source's share of the tasks; over several languages, each language's groups weigh
1 / (number of languages). The bootstrap resamples the items of every group
independently (scipy.stats.bootstrap with several samples, paired=False), so a
source with 24 items and one with 1,700 each keep their size.

Differences between two strategies are paired: the per-item difference on the same
items (the same ids), resampled as above. Several seeds of one strategy are first
averaged item by item; their spread over seeds is reported apart (sd over seeds),
since three seeds are too few to resample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 9_999
SEED = 0  # the resampling is seeded, so a report is reproducible


@dataclass(frozen=True)
class Group:
    """Items whose mean enters a score with `weight`."""

    name: str  # e.g. "hau/udhr"
    weight: float
    ids: tuple[str, ...]
    values: np.ndarray


def _check_main_tasks(items: dict) -> list[str] | None:
    tasks = items.get("main_score_tasks") or []
    if not tasks or any(t not in items["tasks"] for t in tasks):
        return None  # a registry task (no per-item scores) is in main_score
    return tasks


def task_groups(items: dict, tasks: list[str] | None = None, prefix: str = "") -> list[Group] | None:
    """The groups of the mean over `tasks` (default: those main_score averages) in one
    language's per-item file (metrics/items/<lang>.json); None if a task has no items."""
    tasks = tasks or _check_main_tasks(items)
    if tasks is None or any(t not in items["tasks"] for t in tasks):
        return None
    by_source: dict[str, list[dict]] = {}
    for task in tasks:
        by_source.setdefault(items["tasks"][task]["source"], []).append(items["tasks"][task])
    groups = []
    for source, entries in by_source.items():
        ids = tuple(entries[0]["ids"])
        if any(tuple(e["ids"]) != ids for e in entries):
            raise ValueError(f"{prefix}{source}: tasks of one source scored different items")
        values = np.mean([np.asarray(e["scores"], dtype=float) for e in entries], axis=0)
        groups.append(Group(f"{prefix}{source}", len(entries) / len(tasks), ids, values))
    return groups


def _aligned(runs: list[list[Group]]) -> bool:
    first = runs[0]
    return all(len(r) == len(first) and all(
        (g.name, g.weight, g.ids) == (h.name, h.weight, h.ids) for g, h in zip(r, first))
        for r in runs)


def mean_over_runs(runs: list[list[Group]]) -> list[Group] | None:
    """Item-by-item mean over runs (seeds) that scored the same items; None if they did not."""
    if not runs or not _aligned(runs):
        return None
    return [Group(g.name, g.weight, g.ids, np.mean([r[i].values for r in runs], axis=0))
            for i, g in enumerate(runs[0])]


def across_languages(per_language: list[list[Group]]) -> list[Group]:
    """The groups of the mean over languages: each language's weights divided by their number."""
    n = len(per_language)
    return [Group(g.name, g.weight / n, g.ids, g.values) for groups in per_language for g in groups]


def difference(a: list[Group], b: list[Group]) -> list[Group] | None:
    """Per-item a - b; None unless both scored the same items with the same weights."""
    if not _aligned([a, b]):
        return None
    return [Group(g.name, g.weight, g.ids, g.values - h.values) for g, h in zip(a, b)]


def point(groups: list[Group]) -> float:
    return float(sum(g.weight * g.values.mean() for g in groups))


def interval(groups: list[Group], confidence: float = CONFIDENCE,
             n_resamples: int = N_RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """The percentile bootstrap interval of `point(groups)`, items resampled per group."""
    from scipy.stats import bootstrap

    if all(np.ptp(g.values) == 0 for g in groups):
        value = point(groups)  # nothing varies (e.g. a strategy against itself)
        return value, value
    weights = [g.weight for g in groups]

    def statistic(*samples, axis=-1):
        return sum(w * s.mean(axis=axis) for w, s in zip(weights, samples))

    result = bootstrap(
        tuple(g.values for g in groups), statistic, n_resamples=n_resamples,
        confidence_level=confidence, method="percentile", paired=False, vectorized=True,
        batch=1000,  # resamples at a time: bounds memory on groups of thousands of items
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def excludes_zero(bounds: tuple[float, float] | None) -> bool:
    return bounds is not None and (bounds[0] > 0 or bounds[1] < 0)
