"""Atomic outputs: a crash inside the writer leaves the previous output untouched."""

import pytest

from bootstrap_embeddings.files import atomic_dir, atomic_file, read_jsonl, write_jsonl


def test_atomic_dir_replaces_on_success(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
        assert not (out / "new.txt").exists()
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_dir_keeps_old_output_on_crash(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("crash")
    assert (out / "old.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_file_and_jsonl_round_trip(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"a": "ɗan-adam"}, {"a": "नमस्ते"}]
    assert write_jsonl(path, rows) == 2
    assert read_jsonl(path) == rows
    with pytest.raises(ValueError):
        with atomic_file(path) as fh:
            fh.write("partial")
            raise ValueError
    assert read_jsonl(path) == rows
