"""Bootstrap intervals over evaluation items: groups, pairing, seeds, languages."""

from __future__ import annotations

import numpy as np
import pytest

from bootstrap_embeddings import intervals


def _items(tasks: dict[str, tuple[str, list[str], list[float]]], main=None) -> dict:
    """A metrics/items/<lang>.json payload: {task: (source, ids, scores)}."""
    return {"language": "hau", "main_score_tasks": main or list(tasks),
            "tasks": {t: {"source": s, "ids": ids, "scores": v} for t, (s, ids, v) in tasks.items()}}


UDHR_IDS, CLDR_IDS = ["a2p1", "a5p1", "a8p1"], [f"cldr:{i}" for i in range(6)]
ITEMS = _items({
    "UDHRBitextMining": ("udhr", UDHR_IDS, [1.0, 0.0, 0.5]),
    "UDHRRetrieval": ("udhr", UDHR_IDS, [1.0, 0.5, 0.5]),
    "CLDRBitextMining": ("cldr", CLDR_IDS, [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]),
    "CLDRRetrieval": ("cldr", CLDR_IDS, [0.5, 1.0, 0.2, 1.0, 0.3, 0.0]),
})


def test_main_score_groups_reproduce_the_mean_of_the_tasks():
    groups = intervals.task_groups(ITEMS)
    assert [(g.name, g.weight, len(g.ids)) for g in groups] == [("udhr", 0.5, 3), ("cldr", 0.5, 6)]
    task_means = [np.mean(t["scores"]) for t in ITEMS["tasks"].values()]
    assert intervals.point(groups) == pytest.approx(np.mean(task_means))
    # one task, and a main score over three tasks of two sources
    assert intervals.point(intervals.task_groups(ITEMS, ["CLDRRetrieval"])) == pytest.approx(0.5)
    three = intervals.task_groups(ITEMS, ["UDHRBitextMining", "CLDRBitextMining",
                                          "CLDRRetrieval"])
    assert [g.weight for g in three] == [pytest.approx(1 / 3), pytest.approx(2 / 3)]
    assert intervals.point(three) == pytest.approx(np.mean(task_means[:1] + task_means[2:]))


def test_no_groups_without_per_item_scores_of_every_main_task():
    registry = _items({"CLDRRetrieval": ("cldr", CLDR_IDS, [0.5] * 6)}, main=["SemRel24STS"])
    assert intervals.task_groups(registry) is None
    assert intervals.task_groups(ITEMS, ["SemRel24STS"]) is None


def test_interval_is_scipys_percentile_bootstrap():
    from scipy.stats import bootstrap

    values = np.random.default_rng(3).random(50)
    group = intervals.Group("x", 1.0, tuple(map(str, range(50))), values)
    expected = bootstrap((values,), np.mean, n_resamples=intervals.N_RESAMPLES,
                         method="percentile", rng=np.random.default_rng(intervals.SEED))
    assert intervals.interval([group]) == (
        pytest.approx(expected.confidence_interval.low),
        pytest.approx(expected.confidence_interval.high))


def test_interval_resamples_each_group_on_its_own():
    rng = np.random.default_rng(0)
    small = intervals.Group("udhr", 0.5, tuple(map(str, range(20))), rng.random(20))
    large = intervals.Group("cldr", 0.5, tuple(map(str, range(2000))), rng.random(2000))
    low, high = intervals.interval([small, large])
    assert low < intervals.point([small, large]) < high
    # the 20-item group dominates the width: about its own half-width halved
    s_low, s_high = intervals.interval([intervals.Group("udhr", 1.0, small.ids, small.values)])
    assert (high - low) == pytest.approx((s_high - s_low) / 2, rel=0.25)


def test_paired_difference_and_seed_mean():
    groups = intervals.task_groups(ITEMS)
    assert intervals.interval(intervals.difference(groups, groups)) == (0.0, 0.0)
    better = intervals.task_groups(_items({
        t: (e["source"], e["ids"], [min(1.0, v + 0.2) for v in e["scores"]])
        for t, e in ITEMS["tasks"].items()}))
    bounds = intervals.interval(intervals.difference(better, groups))
    assert intervals.excludes_zero(bounds) and bounds[0] > 0
    assert not intervals.excludes_zero((-0.1, 0.2)) and not intervals.excludes_zero(None)
    # seeds: the item-by-item mean
    mean = intervals.mean_over_runs([groups, better])
    assert intervals.point(mean) == pytest.approx(
        (intervals.point(groups) + intervals.point(better)) / 2)
    # other items cannot be paired
    fewer = intervals.task_groups(_items({
        t: (e["source"], e["ids"][:2], e["scores"][:2]) for t, e in ITEMS["tasks"].items()}))
    assert intervals.difference(groups, fewer) is None
    assert intervals.mean_over_runs([groups, fewer]) is None


def test_across_languages_weighs_each_language_equally():
    hau = intervals.task_groups(ITEMS)
    xho = [intervals.Group(f"xho/{g.name}", g.weight, g.ids, g.values * 0) for g in hau]
    both = intervals.across_languages([hau, xho])
    assert sum(g.weight for g in both) == pytest.approx(1.0)
    assert intervals.point(both) == pytest.approx(intervals.point(hau) / 2)
