"""Run a stage module and SIGKILL the process itself at a chosen point (kill-9 tests).

    python tests/kill_at.py POINT N -m stages.<module> ARGS...

POINT names where the process kills itself, on the N-th time it gets there in this process:

- `load`: right after the base model is loaded (the adapter or embedder stage)
- `step`: at an optimiser step, before it is applied
- `save`: half-way through writing a file with torch.save (the adapter's resumable state)
- `checkpoint`: inside the trainer's checkpoint save, after the weights and the optimiser
  state, before trainer_state.json (the embedder)
- `output`: while the stage writes its output, in the temporary folder (a torn file)
- `swapped`: just after the output was renamed into place, before the stage's clean-up

The kill is a real SIGKILL of this process (no exception, no clean-up runs); the patch
only chooses the moment, so that the tests hit each point every time.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys


def _kill() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _nth(n: int):
    count = 0

    def due() -> bool:
        nonlocal count
        count += 1
        return count == n

    return due


def arm(point: str, n: int) -> None:
    due = _nth(n)
    if point == "load":
        from bootstrap_embeddings import embedder
        from bootstrap_embeddings.generator import loading

        for module, name in ((loading, "load_generator"), (embedder, "build_model")):
            real = getattr(module, name)

            def loaded(*args, _real=real, **kwargs):
                result = _real(*args, **kwargs)
                if due():
                    _kill()
                return result

            setattr(module, name, loaded)
    elif point == "step":
        import torch

        real_step = torch.optim.AdamW.step

        def step(self, *args, **kwargs):
            if due():
                _kill()
            return real_step(self, *args, **kwargs)

        torch.optim.AdamW.step = step
    elif point == "save":
        import io

        import torch

        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            if not due():
                return real_save(obj, f, *args, **kwargs)
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            with open(f, "wb") as fh:
                fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            _kill()

        torch.save = save
    elif point == "checkpoint":
        from transformers import Trainer

        real_rng = Trainer._save_rng_state

        def save_rng_state(self, *args, **kwargs):
            if due():
                _kill()
            return real_rng(self, *args, **kwargs)

        Trainer._save_rng_state = save_rng_state
    elif point == "output":
        from bootstrap_embeddings import embedder
        from bootstrap_embeddings.generator import adapters

        real_json, real_check = adapters.write_json, embedder.check_saved_model

        def torn_json(path, obj):  # the adapter's training.json, after its weights
            if not due():
                return real_json(path, obj)
            with open(path, "w") as fh:
                fh.write('{"steps": ')
            _kill()

        def check_saved_model(path, *args, **kwargs):  # the embedder, after model.save
            if not due():
                return real_check(path, *args, **kwargs)
            with open(os.path.join(path, "training.json"), "w") as fh:
                fh.write('{"steps": ')
            _kill()

        adapters.write_json = torn_json
        embedder.check_saved_model = check_saved_model
    elif point == "swapped":
        from bootstrap_embeddings import files

        real_swap = files._swap_into_place

        def swap(new, path):
            real_swap(new, path)
            if "models" in os.fspath(path).split(os.sep) and due():
                _kill()

        files._swap_into_place = swap
    else:
        raise SystemExit(f"unknown kill point {point!r}")


if __name__ == "__main__":
    point, n, flag, module, *args = sys.argv[1:]
    assert flag == "-m"
    arm(point, int(n))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
