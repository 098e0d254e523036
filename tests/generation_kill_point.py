"""Run a stage module and SIGKILL the process at a chosen point of generation.

    python tests/generation_kill_point.py POINT -m stages.generate hau

POINT is one of
- `load`: once the generator has loaded, before any batch;
- `append:N`: in the middle of writing the N-th batch record of this run to the
  partial file (half the line on disk, flushed: a torn line);
- `output:NAME`: inside the output's temporary folder, right after NAME was written
  there (the other files not yet, the folder not yet in place);
- `replaced`: right after the output folder was swapped into place, before the
  partial file is deleted and the run is logged.

The kill is a real SIGKILL of this process (no `finally`, no atexit), sent by the
process to itself at that point, so the point is exact. Used by the kill tests.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
from pathlib import Path


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(point: str) -> None:
    from bootstrap_embeddings import files
    from bootstrap_embeddings.generator import loading, resume

    if point == "load":
        real_load = loading.load_generator

        def load_then_die(*args, **kwargs):
            real_load(*args, **kwargs)
            die()

        loading.load_generator = load_then_die
    elif point.startswith("append:"):
        n, seen = int(point.split(":", 1)[1]), {"batches": 0}
        real_append = resume._append

        def append(fh, record):
            if "key" not in record:
                seen["batches"] += 1
                if seen["batches"] == n:
                    line = json.dumps(record, ensure_ascii=False) + "\n"
                    fh.write(line[: len(line) // 2])
                    fh.flush()
                    os.fsync(fh.fileno())
                    die()
            real_append(fh, record)

        resume._append = append
    elif point.startswith("output:"):
        name = point.split(":", 1)[1]
        for writer in ("write_jsonl", "write_json"):
            real = getattr(files, writer)

            def write_then_die(path, *args, _real=real, **kwargs):
                _real(path, *args, **kwargs)
                if Path(path).name == name:
                    die()

            setattr(files, writer, write_then_die)
    elif point == "replaced":
        real_swap = files._swap_into_place

        def swap_then_die(*args, **kwargs):
            real_swap(*args, **kwargs)
            die()

        files._swap_into_place = swap_then_die
    else:
        raise SystemExit(f"unknown kill point {point!r}")


if __name__ == "__main__":
    point, flag, module, *args = sys.argv[1:]
    assert flag == "-m"
    install(point)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
