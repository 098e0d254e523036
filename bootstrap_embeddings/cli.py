"""What every stage entry point shares: params loading and the one-line error contract."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable

from bootstrap_embeddings.errors import UserError


def stage_entry(fn: Callable[..., None] | None = None, *, distributed: bool = False):
    """Wrap a stage's `main(params, *argv)` so bad input exits 2 with one line on stderr.

    Usage in stages/<name>.py:

        @stage_entry                      # or @stage_entry(distributed=True)
        def main(params, language): ...

        if __name__ == "__main__":
            main()

    `distributed=True`: the stage may run in several processes (torchrun, or
    BOOTSTRAP_NPROC; see `bootstrap_embeddings.distributed`) and writes its outputs
    from the main process only. The other processes' stdout is dropped, so the
    summary line is printed once. Any other stage refuses to start under torchrun.
    """
    if fn is None:
        return functools.partial(stage_entry, distributed=distributed)

    @functools.wraps(fn)
    def run() -> None:
        from bootstrap_embeddings import distributed as dist

        rank = f" [process {os.environ.get('RANK', '?')}]" if dist.is_distributed() else ""
        logging.basicConfig(level=logging.INFO,
                            format=f"%(asctime)s{rank} %(name)s: %(message)s")
        from bootstrap_embeddings.config import load_params

        try:
            if not distributed and dist.is_distributed():
                raise UserError(f"{sys.argv[0]}: this stage runs in one process; "
                                "start it with `python -m`, not torchrun")
            if distributed:
                dist.relaunch_if_requested(sys.argv[1:])
                if not dist.is_main_process():
                    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
            params = load_params()
            fn(params, *sys.argv[1:])
            dist.finish()
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return run
