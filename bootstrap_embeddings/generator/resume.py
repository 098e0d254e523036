"""Resumable generation runs: every finished batch on disk, so a crash loses at most one.

A run's batches are appended (flush + fsync) to a partial JSONL file under
`.cache/<kind>/`, named by a fingerprint of the run's inputs (model, adapters, recipe,
items, generation params, seed, dtype). Its first line is a header holding a second
key, over what shapes the output besides those: every prompt text the run asks, and the
source of the code that builds prompts, decodes and cleans answers (`code_digest`).
A rerun with the same inputs skips the batches already there; other inputs mean
another file; a header key that differs (a prompt or the code was edited since) means
the file is stale: it is removed, the run says so and starts afresh.

Under torchrun each process appends to its own shard (`<fingerprint>.rank<i>.jsonl`)
and every process reads all of them back, so a rerun resumes from every process's
file, whatever the number of processes.

Callers use `resumable_run`: the files live as long as its block, and are deleted when
the block ends without an error, i.e. after the caller has written its output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from bootstrap_embeddings import distributed
from bootstrap_embeddings.digests import content_digest, model_digest, sha256_file

log = logging.getLogger(__name__)

# Bump when the partial-file format or the sampling scheme changes.
_FORMAT = 2  # 2: batches by token length, decoding.decode's sampling
# The code whose text shapes a run's output besides its inputs: the prompts and answer
# cleaning, batching and seeding, the decoding loop, merged or switched adapters.
_CODE_FILES = ("prompts.py", "generation.py", "decoding.py", "adapted.py")


def code_digest(names=_CODE_FILES) -> str:
    """sha256 over the source of the generator modules that build prompts, decode and clean."""
    h = hashlib.sha256()
    for name in names:
        path = Path(__file__).with_name(name)
        if path.is_file():
            h.update(name.encode() + b"\0")
            sha256_file(path, h)
    return h.hexdigest()


def prompts_key(prompts: Sequence[str]) -> str:
    """The partial file's header key: the run's prompt texts, the code, the format."""
    h = hashlib.sha256(f"{_FORMAT}\0{code_digest()}\0".encode())
    for text in prompts:
        h.update(text.encode("utf-8") + b"\0")
    return h.hexdigest()[:24]


def run_fingerprint(base_path, recipe: dict, items: list[dict], gen, quantization: str,
                    seed: int) -> str:
    """A key for a generation run's inputs (names its partial file).

    The prompt texts and the code are checked against the file's header
    (`prompts_key`) when the batches are read: the fingerprint is computed before the
    prompts exist, by callers that only know the recipe.
    """
    from bootstrap_embeddings.generator.adapted import generation_dtype
    from bootstrap_embeddings.generator.loading import resolve_quantization

    used = resolve_quantization(quantization)
    adapters = recipe.get("adapters") or {}
    payload = {
        "format": _FORMAT,
        "model": model_digest(base_path),
        "adapters": {k: content_digest(adapters[k]) for k in ("pos", "neg") if adapters.get(k)},
        "recipe": recipe,
        "items": [[it["id"], it["text"]] for it in items],
        "generation": gen.model_dump(),
        "quantization": used,
        "dtype": generation_dtype(used),
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _read_records(path: Path) -> list[dict]:
    """A file's records; a torn last line (crash mid-write) is cut off, on disk too."""
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with open(path, "r+b") as fh:
            fh.truncate(len(data))
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _append(fh, record: dict) -> None:
    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


class BatchLog:
    """The finished batches of one run: a partial file, and under torchrun one shard per process.

    A batch record is {relation, batch, ids, ...}; it counts as done only when its ids
    are the ones the run expects for that (relation, batch).
    """

    def __init__(self, path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"BatchLog({str(self.path)!r})"

    def _shard(self, process: int) -> Path:
        return self.path.with_name(f"{self.path.stem}.rank{process}{self.path.suffix}")

    def files(self) -> list[Path]:
        """The one-process file and every process's shard, those that exist."""
        shards = sorted(self.path.parent.glob(f"{self.path.stem}.rank*{self.path.suffix}"))
        return [f for f in [self.path, *shards] if f.exists()]

    def _read(self, expected: dict, key: str) -> tuple[dict, list[Path]]:
        done, stale = {}, []
        for f in self.files():
            records = _read_records(f)
            if not records:
                continue
            if records[0].get("key") != key:  # another header, or none (older format)
                stale.append(f)
                continue
            for rec in records[1:]:
                if expected.get((rec["relation"], rec["batch"])) == rec["ids"]:
                    done[(rec["relation"], rec["batch"])] = rec
        return done, stale

    def finished(self, expected: dict, key: str) -> dict:
        """The batches already done, keyed (relation, batch); stale files are removed.

        Collective under torchrun: every process reads (and cuts torn lines) before
        anyone appends.
        """
        done, stale = self._read(expected, key)
        distributed.wait_for_everyone()
        if stale:
            log.warning("%s: written with other prompt texts or generator code (key %s, now "
                        "%s): removed, starting afresh", ", ".join(map(str, stale)),
                        _read_records(stale[0])[0].get("key"), key)
            if distributed.is_main_process():
                for f in stale:
                    f.unlink(missing_ok=True)
            distributed.wait_for_everyone()  # gone before anyone opens its file
        if done:
            log.info("resuming from %s: %d of %d batches done", self.path, len(done),
                     len(expected))
        return done

    def gathered(self, expected: dict, key: str) -> dict:
        """Every process's batches, once every process has written its share (torchrun)."""
        distributed.wait_for_everyone()
        done, _ = self._read(expected, key)
        distributed.wait_for_everyone()  # read by all before the main process may delete
        return done

    @contextlib.contextmanager
    def appending(self, key: str):
        """This process's file open for appending, headed by `key`; yields `append(record)`."""
        own = (self._shard(distributed.process_index()) if distributed.is_distributed()
               else self.path)
        own.parent.mkdir(parents=True, exist_ok=True)
        with open(own, "a", encoding="utf-8") as fh:
            if fh.tell() == 0:
                _append(fh, {"key": key})
            yield lambda record: _append(fh, record)

    def discard(self) -> None:
        """Delete the run's files (the one-process file and every shard)."""
        for f in self.files():
            f.unlink(missing_ok=True)


def partial_path(fingerprint: str, kind: str) -> Path:
    """Where an unfinished run keeps its batches: the user's project root, also under `dvc exp`."""
    from bootstrap_embeddings.tracking import project_root

    return project_root() / ".cache" / kind / f"{fingerprint}.jsonl"


@contextlib.contextmanager
def resumable_run(kind: str, base_path, recipe: dict, items: list[dict], gen,
                  quantization: str, seed: int) -> Iterator[BatchLog]:
    """The BatchLog of a run's inputs, under .cache/<kind>/; kept if the block raises.

    Write the run's output inside the block: the batches are deleted (by the main
    process, which writes the output) only once it has ended without an error.
    """
    batches = BatchLog(partial_path(
        run_fingerprint(base_path, recipe, items, gen, quantization, seed), kind))
    yield batches
    if distributed.is_main_process():
        batches.discard()
