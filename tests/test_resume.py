"""The partial-file protocol of resumable generation (generator/resume.py), without a model."""

import json

import pytest

from bootstrap_embeddings.generator import resume
from bootstrap_embeddings.generator.resume import BatchLog, resumable_run

EXPECTED = {("entailment", 0): ["a", "b"], ("entailment", 1): ["c"]}


def record(batch, ids):
    return {"relation": "entailment", "batch": batch, "ids": ids, "raw": ["x"] * len(ids)}


def test_finished_batches_are_read_back_and_a_torn_line_is_cut(tmp_path):
    log = BatchLog(tmp_path / "run.jsonl")
    assert log.finished(EXPECTED, "k") == {}
    with log.appending("k") as append:
        append(record(0, ["a", "b"]))
    with open(log.path, "a") as fh:  # a crash in the middle of the next write
        fh.write(json.dumps(record(1, ["c"]))[:15])
    done = log.finished(EXPECTED, "k")
    assert list(done) == [("entailment", 0)]
    assert log.path.read_text().endswith("\n")  # the torn line is gone from disk too
    with log.appending("k") as append:  # the header is written once
        append(record(1, ["c"]))
    assert [json.loads(line) for line in log.path.read_text().splitlines()][0] == {"key": "k"}
    assert set(log.finished(EXPECTED, "k")) == set(EXPECTED)


def test_a_batch_with_other_ids_is_not_taken(tmp_path):
    log = BatchLog(tmp_path / "run.jsonl")
    with log.appending("k") as append:
        append(record(0, ["a", "z"]))  # the anchors changed under the same batch number
    assert log.finished(EXPECTED, "k") == {}


def test_a_file_under_another_key_is_removed_and_the_run_starts_afresh(tmp_path, caplog):
    log = BatchLog(tmp_path / "run.jsonl")
    with log.appending("old") as append:
        append(record(0, ["a", "b"]))
    assert log.finished(EXPECTED, "new") == {}
    assert not log.path.exists() and "starting afresh" in caplog.text


def test_every_shard_counts_and_discard_removes_them_all(tmp_path):
    log = BatchLog(tmp_path / "run.jsonl")
    header = json.dumps({"key": "k"})
    (tmp_path / "run.rank0.jsonl").write_text(f"{header}\n{json.dumps(record(0, ['a', 'b']))}\n")
    (tmp_path / "run.rank1.jsonl").write_text(f"{header}\n{json.dumps(record(1, ['c']))}\n")
    (tmp_path / "other.jsonl").write_text(header + "\n")
    assert set(log.finished(EXPECTED, "k")) == set(EXPECTED)
    log.discard()
    assert [p.name for p in tmp_path.iterdir()] == ["other.jsonl"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(resume, "run_fingerprint", lambda *args: "f" * 24)
    return tmp_path


def test_resumable_run_deletes_the_batches_only_when_its_block_ends_without_error(project):
    def run(fail: bool):
        with resumable_run("generate", "model", {}, [], None, "none", 0) as log:
            with log.appending("k") as append:
                append(record(0, ["a", "b"]))
            if fail:
                raise RuntimeError("crash while writing the output")
        return log

    with pytest.raises(RuntimeError):
        run(fail=True)
    kept = project / ".cache" / "generate" / ("f" * 24 + ".jsonl")
    assert kept.is_file()  # the rerun resumes from it
    log = run(fail=False)
    assert log.path == kept and not kept.exists()
