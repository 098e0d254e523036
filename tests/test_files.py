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


# --- kill -9 at every step of a replace -----------------------------------------

# A writer that replaces `out` (holding old.txt) with new.txt and SIGKILLs itself at
# the Nth call of one of the functions the replace goes through.
_WRITER = """
import os, signal, sys
from pathlib import Path
from bootstrap_embeddings import files

target, nth, exchange = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
if not exchange:
    files._exchange = lambda a, b: False  # the two-rename fallback
calls = {"n": 0}
def killing(fn):
    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)
    return wrapped
files.os.replace = killing(os.replace)
files._remove = killing(files._remove)
files._exchange = killing(files._exchange)
files.shutil.rmtree = killing(files.shutil.rmtree)
with files.atomic_dir(target) as tmp:
    (tmp / "new.txt").write_text("new")
    (tmp / "more.txt").write_text("more")
"""


def _state(out) -> str:
    names = sorted(p.name for p in out.iterdir()) if out.is_dir() else None
    return {None: "missing", ("old.txt",): "old", ("more.txt", "new.txt"): "new"}.get(
        tuple(names) if names else None, f"torn {names}")


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_a_replace_killed_at_any_step_leaves_old_or_new_whole(tmp_path, exchange):
    import signal
    import subprocess
    import sys

    from bootstrap_embeddings.files import remove_stale_temporaries
    from conftest import REPO

    seen = set()
    for nth in range(1, 8):
        root = tmp_path / f"kill{nth}"
        out = root / "out"
        out.mkdir(parents=True)
        (out / "old.txt").write_text("old")
        done = subprocess.run([sys.executable, "-c", _WRITER, str(out), str(nth),
                               "1" if exchange else "0"], env={"PYTHONPATH": str(REPO)},
                              capture_output=True, text=True)
        killed = done.returncode == -signal.SIGKILL
        assert killed or done.returncode == 0, done.stderr
        remove_stale_temporaries(out)  # what the next writer of `out` does first
        state = _state(out)
        assert state in ("old", "new"), (nth, state)
        assert [p.name for p in root.iterdir()] == ["out"], "a temporary was left behind"
        seen.add(state if killed else "finished")
    assert {"old", "new", "finished"} <= seen  # kills before and after the switch, then none


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    out = tmp_path / "out"
    (tmp_path / ".out.tmp-abc").mkdir()
    (tmp_path / ".out.tmp-abc" / "weights.bin").write_bytes(b"x" * 10)
    (tmp_path / ".out.json.tmp-1").write_text("{")   # another output's: left alone
    (tmp_path / ".outer.tmp-x").mkdir()             # another output's: left alone
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.json.tmp-1", ".outer.tmp-x", "out"]


def test_a_failed_writer_leaves_no_folder_it_created(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "results" / "mteb" / "hau"):
            raise RuntimeError("the model did not load")
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "metrics" / "eval" / "hau.json") as fh:
            fh.write("{")
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_a_claim_removes_abandoned_states_but_not_a_live_runs(tmp_path):
    """Resumable states of other keys are removed, unless a live process holds one (a
    concurrent queued experiment); a dead holder's lock is gone (the kernel drops it)."""
    import subprocess
    import sys

    from bootstrap_embeddings.files import claim_folder

    root = tmp_path / "train_embedder" / "hau"
    (root / "abandoned" / "checkpoint-2").mkdir(parents=True)  # a killed run's, no lock
    holder = ("import sys, time; from bootstrap_embeddings.files import claim_folder; "
              "claim_folder(sys.argv[1], sys.argv[2], 'checkpoints'); print('held', flush=True); "
              "time.sleep(60)")
    live = subprocess.Popen([sys.executable, "-c", holder, str(root), "live"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout.readline().strip() == "held"
        dead = subprocess.run([sys.executable, "-c", holder.replace("time.sleep(60)", "0"),
                               str(root), "dead"], capture_output=True, text=True)
        assert dead.returncode == 0 and (root / "dead" / ".lock").is_file()
        # the dead run's claim removed the abandoned folder, and left the live one's
        assert sorted(p.name for p in root.iterdir()) == ["dead", "live"]

        mine = claim_folder(root, "mine", "checkpoints")
        assert mine == root / "mine" and mine.is_dir()
        assert sorted(p.name for p in root.iterdir()) == ["live", "mine"]
    finally:
        live.kill()
        live.wait()
    # the live run has died: its folder goes; so does this process's earlier claim (runs
    # in one process follow each other)
    claim_folder(root, "later", "checkpoints")
    assert sorted(p.name for p in root.iterdir()) == ["later"]
