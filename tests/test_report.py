"""The report stage: one experiment's scores with intervals, its cost, DVC metrics, plots."""

from __future__ import annotations

import csv
import sys

import pytest

from bootstrap_embeddings import cost, report
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import read_json, write_json

PNG = b"\x89PNG\r\n\x1a\n"

SCORES = {
    "hau": {"UDHRBitextMining": 0.4, "UDHRRetrieval": 0.6, "main_score": 0.5},
    "afr": {"UDHRBitextMining": 0.7, "UDHRRetrieval": 0.9, "main_score": 0.8},
}


def _items(scores: dict[str, float], n: int = 8) -> dict:
    """Per-item scores whose means are the task scores (half the items a bit above)."""
    ids = [f"a{i}p1" for i in range(n)]
    return {"language": "x", "main_score_tasks": [t for t in scores if t != "main_score"],
            "tasks": {t: {"source": "udhr", "ids": ids,
                          "scores": [v + (0.1 if i % 2 else -0.1) for i in range(n)]}
                      for t, v in scores.items() if t != "main_score"}}


ITEMS = {language: _items(s) for language, s in SCORES.items()}
COST = {"per_language": {"hau": {"generated_tokens": 2323.0, "generation_s": 522.0,
                                 "embedder_training_s": 20.0}},
        "total": {"generated_tokens": 3100, "generation_s": 762.0, "adapter_training_s": 900.0,
                  "embedder_training_s": 20.0, "total_s": 1682.0},
        "adapters": ["task_neg", "task_pos", "xl_lora_neg", "xl_lora_pos"]}


def test_read_eval_metrics_takes_the_current_languages(tmp_path):
    for language, scores in SCORES.items():
        write_json(tmp_path / f"{language}.json", {language: scores})
    # left over from an experiment with other languages
    write_json(tmp_path / "deu.json", {"deu": {"main_score": 0.1}})
    assert report.read_eval_metrics(tmp_path, ["hau", "afr"]) == SCORES
    with pytest.raises(UserError, match="yor.json: no such file"):
        report.read_eval_metrics(tmp_path, ["yor"])
    write_json(tmp_path / "tel.json", {"hau": {"main_score": 0.3}})
    with pytest.raises(UserError, match="tel.json: expected"):
        report.read_eval_metrics(tmp_path, ["tel"])


def test_summary_repeats_no_number():
    """metrics/eval/<lang>.json has each language's scores; the summary adds only the
    cost and, with several languages, their mean."""
    assert report.summary(SCORES, COST) == {"cost": COST["total"],
                                            "all": {"main_score": pytest.approx(0.65)}}
    one = report.summary({"hau": SCORES["hau"]}, COST)
    assert one == {"cost": COST["total"]}  # "all" would repeat hau.main_score
    unknown = {**COST, "total": {**COST["total"], "embedder_training_s": None, "total_s": None}}
    assert "total_s" not in report.summary(SCORES, unknown)["cost"]


def test_intervals_and_markdown():
    bounds = report.score_intervals(SCORES, ITEMS)
    low, high = bounds["hau"]["main_score"]
    assert low < 0.5 < high
    assert bounds["all"]["main_score"][0] < 0.65 < bounds["all"]["main_score"][1]
    md = report.render_report(SCORES, bounds, COST, "xl_lora", 3)
    assert "Strategy `xl_lora`, seed 3" in md
    assert "| language | UDHRBitextMining | UDHRRetrieval | main_score |" in md
    assert f"| hau | 0.4000{report.fmt_interval(bounds['hau']['UDHRBitextMining'])} |" in md
    assert "| all | 0.5500 | 0.7500 | 0.6500 [" in md
    assert "| hau | 2,323 | 8.7 min | 20 s |" in md
    assert "adapter training 15.0 min (adapters: task_neg, task_pos, xl_lora_neg, xl_lora_pos)" in md
    # a registry task has no per-item scores: no interval, and none for a main score over it
    paper = {"hau": {**SCORES["hau"], "SemRel24STS": 0.3}}
    items = {"hau": dict(ITEMS["hau"], main_score_tasks=["SemRel24STS"])}
    bounds = report.score_intervals(paper, items)
    assert bounds["hau"]["SemRel24STS"] is None and bounds["hau"]["main_score"] is None
    assert bounds["hau"]["UDHRRetrieval"] is not None
    assert "mteb registry tasks" in report.render_report(paper, bounds, COST, "icl", 0, "mteb")


def _write(path, data):
    write_json(path, data)
    return path


def test_experiment_cost_from_the_stages_records(tmp_path):
    for lang, (tokens, seconds, train) in {"hau": (2323, 522.0, 20.0),
                                           "xho": (1800, 400.0, 15.5)}.items():
        _write(tmp_path / f"data/generated/{lang}/stats.json",
               {"generated_tokens": tokens, "wall_seconds": seconds})
        _write(tmp_path / f"models/embedders/{lang}/training.json", {"train_runtime_s": train})
    for name, seconds in {"task_pos": 100.0, "task_neg": 110.0, "language_hau": 200.0,
                          "language_xho": 210.0, "language_eng": 150.0}.items():
        _write(tmp_path / f"models/adapters/{name}/training.json", {"wall_time_s": seconds})

    composition = cost.experiment_cost("composition", ["hau", "xho"], tmp_path)
    assert composition["adapters"] == ["language_eng", "language_hau", "language_xho",
                                       "task_neg", "task_pos"]  # shared ones once
    assert composition["total"] == {"generated_tokens": 4123, "generation_s": 922.0,
                                    "adapter_training_s": 770.0, "embedder_training_s": 35.5,
                                    "total_s": 1727.5}
    icl = cost.experiment_cost("icl", ["hau"], tmp_path)["total"]
    assert (icl["adapter_training_s"], icl["total_s"]) == (0.0, 542.0)
    # xl_lora: its adapters were not trained here, so their time is unknown, not zero
    xl = cost.experiment_cost("xl_lora", ["hau"], tmp_path)["total"]
    assert xl["adapter_training_s"] is None and xl["total_s"] is None
    assert xl["generated_tokens"] is None  # nor XL-LoRA's data-generation run
    # base trains nothing
    base = cost.experiment_cost("base", ["hau"], tmp_path / "empty")["per_language"]["hau"]
    assert base["embedder_training_s"] == 0.0 and base["generation_s"] is None


def test_report_stage_writes_markdown_metrics_csv_and_png(tmp_path, monkeypatch):
    from conftest import REPO
    from stages import report as stage

    params = (REPO / "params.yaml").read_text().replace("languages: [hau]", "languages: [hau, afr]")
    assert "languages: [hau, afr]" in params
    (tmp_path / "params.yaml").write_text(params.replace("strategy: xl_lora", "strategy: icl"))
    for language, scores in SCORES.items():
        write_json(tmp_path / "metrics/eval" / f"{language}.json", {language: scores})
        write_json(tmp_path / "metrics/items" / f"{language}.json", ITEMS[language])
        write_json(tmp_path / f"data/generated/{language}/stats.json",
                   {"generated_tokens": 1000, "wall_seconds": 60.0})
        write_json(tmp_path / f"models/embedders/{language}/training.json",
                   {"train_runtime_s": 10.0})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["report"])

    stage.main()

    reports = tmp_path / "reports"
    assert "| afr | 0.7000 [" in (reports / "report.md").read_text()
    assert read_json(reports / "summary.json") == {
        "all": {"main_score": pytest.approx(0.65)},
        "cost": {"generated_tokens": 2000, "generation_s": 120.0, "adapter_training_s": 0.0,
                 "embedder_training_s": 20.0, "total_s": 140.0}}
    with open(reports / "scores.csv", newline="") as fh:
        assert list(csv.DictReader(fh)) == [
            {"language": "hau", "strategy": "icl", "main_score": "0.5"},
            {"language": "afr", "strategy": "icl", "main_score": "0.8"},
        ]
    assert (reports / "figures/scores.png").read_bytes().startswith(PNG)
