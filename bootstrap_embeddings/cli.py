"""What every stage entry point shares: params loading and the one-line error contract."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

from bootstrap_embeddings.errors import UserError


def stage_entry(fn: Callable[..., None]) -> Callable[[], None]:
    """Wrap a stage's `main(params, *argv)` so bad input exits 2 with one line on stderr.

    Usage in stages/<name>.py:

        @stage_entry
        def main(params, language): ...

        if __name__ == "__main__":
            main()
    """

    @functools.wraps(fn)
    def run() -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        from bootstrap_embeddings.config import load_params

        try:
            params = load_params()
            fn(params, *sys.argv[1:])
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return run
