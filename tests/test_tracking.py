"""MLflow lands in one sqlite database at the project root, also from DVC's temp copies."""

from bootstrap_embeddings import tracking


def test_project_root_resolves_past_dvc_experiment_copies(tmp_path):
    copy = tmp_path / "proj" / ".dvc" / "tmp" / "exps" / "tmpabc123"
    copy.mkdir(parents=True)
    assert tracking.project_root(copy) == tmp_path / "proj"
    assert tracking.project_root(tmp_path / "proj") == tmp_path / "proj"


def test_tracking_uri_is_absolute_sqlite_and_overridable(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere.db")
    assert tracking.tracking_uri() == "sqlite:////elsewhere.db"


def test_tracked_run_tags_experiment_strategy_language(monkeypatch, tmp_path, params):
    import mlflow

    db = tmp_path / "t.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("DVC_EXP_NAME", "brave-newt")
    with tracking.tracked_run(params, "evaluate", "hau") as run:
        run.log_metric("score", 0.5)
    found = mlflow.search_runs(
        experiment_names=[params.tracking.experiment], output_format="list"
    )
    assert len(found) == 1
    tags = found[0].data.tags
    assert tags["dvc_experiment"] == "brave-newt"
    assert tags["strategy"] == params.strategy
    assert tags["language"] == "hau"
    assert tags["stage"] == "evaluate"
    assert found[0].data.metrics["score"] == 0.5
