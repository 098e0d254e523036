"""The comparison across experiments: rows from `dvc exp show --json`, seeds, variants,
intervals and differences, cost, the export and the rebuild from it."""

from __future__ import annotations

import copy
import json
import logging
import statistics

import numpy as np
import pytest

from bootstrap_embeddings import comparison, experiments
from bootstrap_embeddings.errors import UserError

PNG = b"\x89PNG\r\n\x1a\n"

# `dvc exp show --json --all-commits` captured from a throwaway DVC repo (scores rounded,
# deps/outs/meta dropped): the workspace after a failed `dvc exp run` (its hau metrics
# gone, its params ahead of its metrics), a commit with a queued experiment, an older
# commit with three experiments, and the first commit, which has no metrics.
EXP_SHOW = r"""
[
 {"rev": "workspace", "name": null, "data": {"rev": "workspace", "timestamp": null, "params": {"params.yaml": {"data": {"strategy": "icl", "languages": ["hau", "afr"], "seed": 99}}}, "metrics": {"metrics/eval/hau.json": {"error": {"type": "FileNotFoundError", "msg": "[Errno 2] No such file or directory: 'metrics/eval/hau.json'"}}, "metrics/eval/afr.json": {"data": {"afr": {"UDHRBitextMining": 0.423, "UDHRRetrieval": 0.0354, "main_score": 0.2292}}}}}, "error": null, "experiments": null},
 {"rev": "5753a43", "name": "master", "data": {"rev": "5753a43", "timestamp": "2026-11-24T22:35:10", "params": {"params.yaml": {"data": {"strategy": "icl", "languages": ["hau", "afr"], "seed": 1}}}, "metrics": {"metrics/eval/hau.json": {"data": {"hau": {"UDHRBitextMining": 0.8939, "UDHRRetrieval": 0.0925, "main_score": 0.4932}}}, "metrics/eval/afr.json": {"data": {"afr": {"UDHRBitextMining": 0.423, "UDHRRetrieval": 0.0354, "main_score": 0.2292}}}}}, "error": null, "experiments": [
  {"revs": [{"rev": "73dd5fa", "name": "dizzy-hour", "data": {"rev": "73dd5fa", "timestamp": "2026-11-24T22:35:34", "params": {"params.yaml": {"data": {"strategy": "english", "languages": ["hau", "afr"], "seed": 98}}}, "metrics": {"metrics/eval/hau.json": {"data": {"hau": {"UDHRBitextMining": 0.3558, "UDHRRetrieval": 0.9667, "main_score": 0.6613}}}, "metrics/eval/afr.json": {"data": {"afr": {"UDHRBitextMining": 0.5338, "UDHRRetrieval": 0.357, "main_score": 0.4454}}}}}, "error": null, "experiments": null}], "executor": null, "name": "dizzy-hour"}
 ]},
 {"rev": "9b565f1", "name": null, "data": {"rev": "9b565f1", "timestamp": "2026-11-24T22:34:23", "params": {"params.yaml": {"data": {"strategy": "xl_lora", "languages": ["hau", "afr"], "seed": 0}}}, "metrics": {"metrics/eval/hau.json": {"data": {"hau": {"UDHRBitextMining": 0.2725, "UDHRRetrieval": 0.7526, "main_score": 0.5126}}}, "metrics/eval/afr.json": {"data": {"afr": {"UDHRBitextMining": 0.6088, "UDHRRetrieval": 0.5923, "main_score": 0.6005}}}}}, "error": null, "experiments": [
  {"revs": [{"rev": "ae108a2", "name": "felon-weka", "data": {"rev": "ae108a2", "timestamp": "2026-11-24T22:34:44", "params": {"params.yaml": {"data": {"strategy": "base", "languages": ["hau", "afr"], "seed": 1}}}, "metrics": {"metrics/eval/hau.json": {"data": {"hau": {"UDHRBitextMining": 0.4336, "UDHRRetrieval": 0.649, "main_score": 0.5413}}}, "metrics/eval/afr.json": {"data": {"afr": {"UDHRBitextMining": 0.3146, "UDHRRetrieval": 0.2978, "main_score": 0.3062}}}}}, "error": null, "experiments": null}], "executor": null, "name": "felon-weka"},
  {"revs": [{"rev": "040f8e6", "name": "mothy-food", "data": {"rev": "040f8e6", "timestamp": "2026-11-24T22:34:37", "params": {"params.yaml": {"data": {"strategy": "icl", "languages": ["hau", "afr"], "seed": 0}}}, "metrics": {"metrics/eval/hau.json": {"data": {"hau": {"UDHRBitextMining": 0.1056, "UDHRRetrieval": 0.7456, "main_score": 0.4256}}}, "metrics/eval/afr.json": {"data": {"afr": {"UDHRBitextMining": 0.1862, "UDHRRetrieval": 0.3289, "main_score": 0.2576}}}}}, "error": null, "experiments": null}], "executor": null, "name": "mothy-food"},
  {"revs": [{"rev": "35f75bb", "name": "manly-hoot", "data": {"rev": "35f75bb", "timestamp": "2026-11-24T22:34:29", "params": {"params.yaml": {"data": {"strategy": "base", "languages": ["hau", "afr"], "seed": 0}}}, "metrics": {"metrics/eval/hau.json": {"data": {"hau": {"UDHRBitextMining": 0.7003, "UDHRRetrieval": 0.5007, "main_score": 0.6005}}}, "metrics/eval/afr.json": {"data": {"afr": {"UDHRBitextMining": 0.6767, "UDHRRetrieval": 0.93, "main_score": 0.8034}}}}}, "error": null, "experiments": null}], "executor": null, "name": "manly-hoot"}
 ]},
 {"rev": "6ebd55d", "name": null, "data": {"rev": "6ebd55d", "timestamp": "2026-11-24T22:34:19", "params": {"params.yaml": {"data": {"strategy": "xl_lora", "languages": ["hau", "afr"], "seed": 0}}}, "metrics": {"metrics/eval/hau.json": {"error": {"type": "FileNotFoundError", "msg": "[Errno 2] No such file or directory: 'metrics/eval/hau.json'"}}, "metrics/eval/afr.json": {"error": {"type": "FileNotFoundError", "msg": "[Errno 2] No such file or directory: 'metrics/eval/afr.json'"}}}}, "error": null, "experiments": null}
]
"""

# --- several experiments ---------------------------------------------------------


def _by_key(rows: list[dict]) -> dict[tuple, tuple]:
    return {(r["strategy"], r["language"], r["seed"]): (r["main_score"], r["experiment"])
            for r in rows}


def test_rows_from_dvc_exp_show():
    data = json.loads(EXP_SHOW)
    assert _by_key(experiments.rows_from_exp_show(data)) == {
        ("english", "hau", 98): (0.6613, "dizzy-hour"),
        ("english", "afr", 98): (0.4454, "dizzy-hour"),
        ("icl", "hau", 1): (0.4932, "master"), ("icl", "afr", 1): (0.2292, "master"),
        ("base", "hau", 1): (0.5413, "felon-weka"), ("base", "afr", 1): (0.3062, "felon-weka"),
        ("icl", "hau", 0): (0.4256, "mothy-food"), ("icl", "afr", 0): (0.2576, "mothy-food"),
        ("base", "hau", 0): (0.6005, "manly-hoot"), ("base", "afr", 0): (0.8034, "manly-hoot"),
        ("xl_lora", "hau", 0): (0.5126, "9b565f1"), ("xl_lora", "afr", 0): (0.6005, "9b565f1"),
    }
    # the workspace only on request; its missing hau metrics (an error entry) give no row
    with_workspace = experiments.rows_from_exp_show(data, include_workspace=True)
    workspace = [r for r in with_workspace if r["experiment"] == "workspace"]
    assert [(r["strategy"], r["language"], r["seed"], r["main_score"], r["rev"])
            for r in workspace] == [("icl", "afr", 99, 0.2292, "workspace")]
    assert workspace[0]["scores"] == {"UDHRBitextMining": 0.423, "UDHRRetrieval": 0.0354,
                                      "main_score": 0.2292}


def test_experiments_only_leaves_out_the_commits_own_results():
    data = experiments.experiments_only(json.loads(EXP_SHOW))
    assert _by_key(experiments.rows_from_exp_show(data)) == {
        ("english", "hau", 98): (0.6613, "dizzy-hour"),
        ("english", "afr", 98): (0.4454, "dizzy-hour"),
        ("base", "hau", 1): (0.5413, "felon-weka"), ("base", "afr", 1): (0.3062, "felon-weka"),
        ("icl", "hau", 0): (0.4256, "mothy-food"), ("icl", "afr", 0): (0.2576, "mothy-food"),
        ("base", "hau", 0): (0.6005, "manly-hoot"), ("base", "afr", 0): (0.8034, "manly-hoot"),
    }


def test_rows_from_dvc_exp_show_duplicates(caplog):
    data = json.loads(EXP_SHOW)
    same = copy.deepcopy(data[1])
    same["name"] = "again"
    assert len(experiments.rows_from_exp_show(data + [same])) == 12  # the same result listed twice
    other = copy.deepcopy(same)
    other["data"]["metrics"]["metrics/eval/hau.json"]["data"]["hau"]["main_score"] = 0.9
    with caplog.at_level(logging.WARNING):
        rows = experiments.rows_from_exp_show(data + [other])
    assert _by_key(rows)[("icl", "hau", 1)] == (0.4932, "master")
    assert "different scores" in caplog.text


def _row(strategy, language, seed, score):
    return {"strategy": strategy, "language": language, "seed": seed, "main_score": score}


HAND_ROWS = [
    _row("xl_lora", "hau", 0, 0.50), _row("xl_lora", "hau", 1, 0.60),
    _row("xl_lora", "hau", 2, 0.70),
    _row("xl_lora", "afr", 0, 0.80), _row("xl_lora", "afr", 1, 0.90),
    _row("base", "hau", 0, 0.40), _row("base", "afr", 0, 0.20),
    _row("english", "hau", 0, 0.45),
]


def test_aggregate_mean_and_sd_over_seeds():
    table = {(r["strategy"], r["language"]): r for r in comparison.aggregate_experiments(HAND_ROWS)}
    hau = table[("xl_lora", "hau")]
    assert (hau["n"], hau["seeds"]) == (3, [0, 1, 2])
    assert hau["mean"] == pytest.approx(0.6)
    assert hau["sd"] == pytest.approx(0.1)  # sample sd of 0.5, 0.6, 0.7
    afr = table[("xl_lora", "afr")]
    assert afr["mean"] == pytest.approx(0.85)
    assert afr["sd"] == pytest.approx(statistics.stdev([0.8, 0.9]))
    # all languages: per seed the mean over languages, for seeds 0 and 1 (seed 2 lacks afr)
    overall = table[("xl_lora", "all")]
    assert overall["seeds"] == [0, 1]
    assert overall["mean"] == pytest.approx((0.65 + 0.75) / 2)
    assert table[("base", "hau")]["sd"] is None  # one seed
    assert table[("base", "all")]["mean"] == pytest.approx(0.3)
    assert ("english", "all") not in table  # english has no afr result
    with pytest.raises(UserError, match="two rows"):
        comparison.aggregate_experiments(HAND_ROWS + [_row("base", "hau", 0, 0.41)])


def test_comparison_markdown_and_plot(tmp_path):
    table = comparison.aggregate_experiments(HAND_ROWS)
    md = comparison.render_comparison(table)
    assert "| strategy | afr | hau | all |" in md
    # baselines first (the first table: the main score)
    main_table = md.split("## ")[0]
    strategies = [line.split(" |")[0] for line in main_table.splitlines()
                  if line.startswith(("| base", "| english", "| xl_lora"))]
    assert strategies == ["| base", "| english", "| xl_lora"]
    assert "| english | — | 0.4500 (n=1) | — |" in md
    assert "0.6000 ± 0.1000 (n=3)" in md
    comparison.plot_comparison(table, tmp_path / "comparison.png")
    assert (tmp_path / "comparison.png").read_bytes().startswith(PNG)


def test_compare_experiments_script(tmp_path):
    from scripts import compare_experiments

    saved = tmp_path / "exp_show.json"
    saved.write_text(EXP_SHOW)
    compare_experiments.main(["--json", str(saved), "--out", str(tmp_path / "out")])
    md = (tmp_path / "out/comparison.md").read_text()
    assert "| base | 0.5548 ± 0.3516 (n=2) | 0.5709 ± 0.0419 (n=2) |" in md
    assert (tmp_path / "out/comparison.png").read_bytes().startswith(PNG)

    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps([json.loads(EXP_SHOW)[-1]]))
    with pytest.raises(SystemExit) as exit_:
        compare_experiments.main(["--json", str(empty)])
    assert exit_.value.code == 2


def _exp(name, strategy, seed, score, cf=False, kept=None):
    metrics = {"metrics/eval/hau.json": {"data": {"hau": {"main_score": score}}}}
    if kept is not None:
        metrics["metrics/filter/hau.json"] = {"data": {"language": "hau", "kept_share": kept}}
    params = {"strategy": strategy, "seed": seed, "languages": ["hau"],
              "filters": {"min_chars": 8, "consistency": {"enabled": cf}}}
    return {"rev": name * 4, "name": name,
            "data": {"params": {"params.yaml": {"data": params}}, "metrics": metrics}}


def test_runs_differing_only_in_seed_are_aggregated_and_other_params_make_variants():
    exps = [_exp("a", "xl_lora", 0, 0.50, kept=1.0), _exp("b", "xl_lora", 1, 0.60, kept=0.9),
            _exp("c", "xl_lora", 0, 0.70, cf=True, kept=0.5),
            _exp("d", "xl_lora", 1, 0.80, cf=True, kept=0.7),
            _exp("e", "base", 0, 0.40), _exp("f", "base", 1, 0.40)]
    running = {"executor": {"state": "running"}, "name": "g",
               "revs": [_exp("g", "xl_lora", 2, 0.99)]}  # params of seed 2, stale metrics
    data = [{"rev": "baseline", "experiments": [{"revs": [e]} for e in exps] + [running]}]
    rows = experiments.rows_from_exp_show(data)
    assert "g" not in {r["experiment"] for r in rows}
    labels = {r["experiment"]: r["strategy"] for r in rows}
    assert labels == {"a": "xl_lora (filters.consistency.enabled=false)",
                      "b": "xl_lora (filters.consistency.enabled=false)",
                      "c": "xl_lora (filters.consistency.enabled=true)",
                      "d": "xl_lora (filters.consistency.enabled=true)",
                      "e": "base", "f": "base"}  # base's runs differ only in seed
    table = {r["strategy"]: r for r in comparison.aggregate_experiments(rows)}
    on = table["xl_lora (filters.consistency.enabled=true)"]
    assert (on["n"], on["mean"], on["kept_share"]) == (2, pytest.approx(0.75), pytest.approx(0.6))
    assert table["base"]["sd"] == 0.0 and table["base"]["kept_share"] is None
    md = comparison.render_comparison(comparison.aggregate_experiments(rows))
    assert "0.7500 ± 0.0707 (n=2, kept 60%)" in md
    # baselines before the generative strategies, variants of one strategy together
    order = [line.split(" |")[0][2:] for line in md.splitlines() if line.startswith("| ")][2:]
    assert order[0] == "base" and order[1].startswith("xl_lora")


# --- intervals, differences, cost ------------------------------------------------

UDHR_IDS = [f"a{i}p1" for i in range(12)]
CLDR_IDS = [f"cldr:{i}" for i in range(60)]


def _items(level: float, seed: int) -> dict:
    """Per-item scores around `level` (seeded noise), two tasks per source."""
    rng = np.random.default_rng(seed)
    tasks = {}
    for name, source, ids in [("UDHRBitextMining", "udhr", UDHR_IDS),
                              ("UDHRRetrieval", "udhr", UDHR_IDS),
                              ("CLDRBitextMining", "cldr", CLDR_IDS),
                              ("CLDRRetrieval", "cldr", CLDR_IDS)]:
        scores = np.clip(level + rng.normal(0, 0.15, len(ids)), 0, 1)
        tasks[name] = {"source": source, "ids": ids, "scores": [round(float(v), 6) for v in scores]}
    return {"language": "hau", "main_score_tasks": list(tasks), "tasks": tasks}


def _item_row(strategy, language, seed, level, cost=None):
    items = _items(level, seed + 100 * len(strategy))
    scores = {t: float(np.mean(e["scores"])) for t, e in items["tasks"].items()}
    scores["main_score"] = float(np.mean(list(scores.values())))
    return {"strategy": strategy, "language": language, "seed": seed,
            "main_score": scores["main_score"], "scores": scores, "items": items,
            "experiment": f"{strategy}-s{seed}", "cost": cost}


COSTS = {"base": {"generated_tokens": 0, "generation_s": 1.0, "adapter_training_s": 0.0,
                  "embedder_training_s": 0.0, "total_s": 1.0},
         "icl": {"generated_tokens": 2000, "generation_s": 600.0, "adapter_training_s": 0.0,
                 "embedder_training_s": 20.0, "total_s": 620.0}}
ITEM_ROWS = ([_item_row("base", lang, 0, 0.5, COSTS["base"]) for lang in ("hau", "xho")]
             + [_item_row("parallel", lang, s, 0.8) for lang in ("hau", "xho") for s in (0, 1)]
             + [_item_row("icl", lang, s, 0.52, COSTS["icl"]) for lang in ("hau", "xho")
                for s in (0, 1)])


def test_intervals_and_item_paired_differences():
    table = {(r["strategy"], r["language"]): r
             for r in comparison.aggregate_experiments(ITEM_ROWS)}
    for row in table.values():
        low, high = row["ci"]
        assert low < row["mean"] < high, (row["strategy"], row["language"])
    parallel = table[("parallel", "hau")]
    value, bounds = parallel["deltas"]["base"]
    assert value == pytest.approx(parallel["mean"] - table[("base", "hau")]["mean"])
    assert bounds[0] > 0  # far apart: the interval excludes 0
    icl_vs_parallel = table[("icl", "all")]["deltas"]["parallel"]
    assert icl_vs_parallel[1][1] < 0
    assert "base" not in table[("base", "hau")]["deltas"]
    # the seed-averaged per-item mean is the mean over seeds of the scores
    assert table[("icl", "xho")]["tasks"]["CLDRRetrieval"][0] == pytest.approx(
        statistics.fmean(r["scores"]["CLDRRetrieval"] for r in ITEM_ROWS
                         if r["strategy"] == "icl" and r["language"] == "xho"))

    md = comparison.render_comparison(list(table.values()),
                                      comparison.cost_by_strategy(ITEM_ROWS))
    assert "## Difference to `base`" in md and "## Difference to `parallel`" in md
    delta_line = next(line for line in md.split("## Difference to `base`")[1].splitlines()
                      if line.startswith("| parallel"))
    assert delta_line.count(comparison.MARK) == 3  # hau, xho, all
    assert "### hau" in md and "| CLDRBitextMining |" in md
    assert "| icl | 2 | 2,000 | 10.0 min | 0 s | 20 s | 10.3 min |" in md


def test_a_row_without_items_has_no_interval():
    rows = [dict(r, items=None) if r["strategy"] == "icl" else r for r in ITEM_ROWS]
    table = {(r["strategy"], r["language"]): r for r in comparison.aggregate_experiments(rows)}
    assert table[("icl", "hau")]["ci"] is None
    assert table[("icl", "hau")]["deltas"]["base"][1] is None
    assert table[("base", "hau")]["ci"] is not None
    md = comparison.render_comparison(list(table.values()))
    assert "| icl |" in md


def test_cost_plot(tmp_path):
    table = comparison.aggregate_experiments(ITEM_ROWS)
    comparison.plot_cost(table, comparison.cost_by_strategy(ITEM_ROWS), tmp_path / "cost.png")
    assert (tmp_path / "cost.png").read_bytes().startswith(PNG)


# --- the export: the tables rebuilt without DVC experiments ------------------------


def _with_items(data):
    """EXP_SHOW's entries, each with the per-item reader's view of its revision."""
    store = {}
    for entry, _ in experiments._entries(data, include_workspace=False):
        for path in (entry["data"]["metrics"]):
            if "/eval/" in path and "data" in entry["data"]["metrics"][path]:
                language = path.split("/")[-1].removesuffix(".json")
                store[(entry["rev"], f"metrics/items/{language}.json")] = _items(0.5, len(store))
    return lambda rev, path: store.get((rev, path))


def test_export_round_trip_and_rebuild_on_a_fresh_clone(tmp_path, monkeypatch):
    from scripts import compare_experiments

    data = json.loads(EXP_SHOW)
    reader = _with_items(data)
    monkeypatch.setattr(experiments, "exp_show", lambda all_commits=False: data)
    monkeypatch.setattr(experiments, "git_reader", reader)
    export = tmp_path / "reports/experiments.json"
    compare_experiments.main(["--export", str(export), "--out", str(tmp_path / "a")])
    from_dvc = (tmp_path / "a/comparison.md").read_text()
    assert "[" in from_dvc  # intervals from the per-item scores

    # a fresh clone: dvc lists the commit only, no experiment, no per-item scores in git
    head_only = [dict(commit, experiments=None) for commit in data]
    monkeypatch.setattr(experiments, "exp_show", lambda all_commits=False: head_only)
    monkeypatch.setattr(experiments, "git_reader", lambda rev, path: None)
    compare_experiments.main(["--export", str(export), "--out", str(tmp_path / "b")])
    assert (tmp_path / "b/comparison.md").read_text() == from_dvc
    compare_experiments.main(["--from", str(export), "--out", str(tmp_path / "c")])
    assert (tmp_path / "c/comparison.md").read_text() == from_dvc

    # the export holds params and metrics, not deps or outs
    saved = json.loads(export.read_text())
    assert saved["format"] == experiments.EXPORT_FORMAT
    assert set(saved["exp_show"][1]["data"]) == {"rev", "timestamp", "params", "metrics"}
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(SystemExit) as exit_:
        compare_experiments.main(["--from", str(bad)])
    assert exit_.value.code == 2
