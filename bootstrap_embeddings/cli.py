"""What every stage entry point shares: params loading and the one-line error contract."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bootstrap_embeddings.errors import UserError


@dataclass(frozen=True)
class StageArg:
    """What a stage's positional argument may be; stages annotate `main` with these.

    `allowed(params)` lists the values, so `python -m stages.generate xho` with only
    hau in params.yaml is refused before anything is read or written.
    """

    metavar: str
    allowed: Callable[..., Sequence[str]]
    what: str


def _strategy_names(params) -> Sequence[str]:
    from bootstrap_embeddings import strategies

    return strategies.names()


TargetLanguage = StageArg("<language>", lambda params: params.languages,
                          "a language of params.yaml `languages`")
# the language adapters also have one for English, which composition subtracts
AdapterLanguage = StageArg("<language>", lambda params: [*params.languages, "eng"],
                           "a language of params.yaml `languages`, or eng")
AdapterKind = StageArg("pos|neg", lambda params: ("pos", "neg"), "pos or neg")
StrategyArg = StageArg("<strategy>", _strategy_names, "a strategy")


def check_arguments(fn: Callable, argv: Sequence[str], params, prog: str) -> list[str]:
    """The stage's arguments, checked against the StageArg annotations of `fn(params, ...)`.

    A missing, extra or unknown argument is a one-line UserError with the usage.
    """
    specs = [p.annotation for p in list(inspect.signature(fn).parameters.values())[1:]]
    if not all(isinstance(spec, StageArg) for spec in specs):
        raise TypeError(f"{fn.__module__}.{fn.__name__}: annotate every argument with a StageArg")
    usage = " ".join(["usage: python -m", prog, *(spec.metavar for spec in specs)])
    if len(argv) < len(specs):
        missing = specs[len(argv)]
        raise UserError(f"{usage}: missing {missing.metavar} ({missing.what}: "
                        f"{', '.join(missing.allowed(params))})")
    if len(argv) > len(specs):
        raise UserError(f"{usage}: unexpected argument {argv[len(specs)]!r}")
    for value, spec in zip(argv, specs):
        allowed = list(spec.allowed(params))
        if value not in allowed:
            raise UserError(f"{usage}: {value!r} is not {spec.what} ({', '.join(allowed)})")
    return list(argv)


def _check_languages(params) -> None:
    """Every source's language codes, before the stage reads anything (a UserError if one
    lacks a code); what could not be checked offline is logged."""
    from bootstrap_embeddings.data.source_languages import check_source_languages

    unchecked = check_source_languages(params)
    if unchecked:
        logging.getLogger(__name__).info("not checked offline: %s", "; ".join(unchecked))


def stage_entry(fn: Callable[..., None] | None = None, *, distributed: bool = False):
    """Wrap a stage's `main(params, *argv)` so bad input exits 2 with one line on stderr.

    Usage in stages/<name>.py:

        @stage_entry                      # or @stage_entry(distributed=True)
        def main(params, language: TargetLanguage): ...

    Arguments are checked against their `StageArg` annotations (`check_arguments`).

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
            _check_languages(params)
            prog = fn.__module__  # "__main__" under `python -m`: then the module run
            if prog == "__main__":
                prog = getattr(sys.modules["__main__"].__spec__, "name", None) or sys.argv[0]
            fn(params, *check_arguments(fn, sys.argv[1:], params, prog))
            dist.finish()
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return run
