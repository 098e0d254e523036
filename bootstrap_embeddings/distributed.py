"""One process or several: which process this is, and the few collective steps stages take.

The stages that train or generate (adapters, XL-LoRA data, generation, the embedder)
can run in several processes, data-parallel, under torchrun:

    torchrun --nproc_per_node 8 -m stages.task_adapter pos         # 8 GPUs, NCCL
    torchrun --nproc_per_node 2 -m stages.train_embedder hau       # a CPU machine: gloo

or with BOOTSTRAP_NPROC=N in the environment, which makes such a stage relaunch itself
under torchrun (`BOOTSTRAP_NPROC=8 dvc repro` leaves dvc.yaml as it is). Every process
runs the whole stage; the main process alone writes outputs, logs to MLflow and
prints. The process group is accelerate's `PartialState`: NCCL where there are GPUs,
gloo on a CPU (where accelerate needs `cpu=True` to see a distributed launch at all).

Outside torchrun (no WORLD_SIZE, or 1) every answer here is the one-process answer,
read from the environment without importing accelerate or torch.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from bootstrap_embeddings.errors import UserError

log = logging.getLogger(__name__)

NPROC_ENV = "BOOTSTRAP_NPROC"


def num_processes() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    return num_processes() > 1


def state():
    """accelerate's PartialState (initialises the process group on first use)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def process_index() -> int:
    return state().process_index if is_distributed() else 0


def is_main_process() -> bool:
    return process_index() == 0


def local_device() -> int:
    """The GPU this process loads its model onto (torchrun sets LOCAL_RANK per process)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def wait_for_everyone() -> None:
    if is_distributed():
        state().wait_for_everyone()


def shard(items: Sequence) -> list:
    """This process's contiguous share of `items`; the first processes take one more if needed."""
    if not is_distributed():
        return list(items)
    with state().split_between_processes(list(items)) as mine:
        return list(mine)


def finish() -> None:
    """End of a stage: every process waits for the main one's writes, then leaves the group."""
    if is_distributed():
        state().wait_for_everyone()
        state().destroy_process_group()


def requested_processes() -> int:
    raw = os.environ.get(NPROC_ENV, "").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise UserError(f"{NPROC_ENV}={raw!r}: expected a number of processes, 1 or more")
    return int(raw)


def relaunch_command(module: str, args: Sequence[str], nproc: int) -> list[str]:
    """torchrun on this machine; --standalone picks a free port, so parallel jobs never clash."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", "-m", module, *args]


def relaunch_if_requested(args: Sequence[str]) -> None:
    """Replace this process by `torchrun -m <this stage> args` when BOOTSTRAP_NPROC asks for it.

    A process that torchrun started (LOCAL_RANK is set) never relaunches.
    """
    nproc = requested_processes()
    if nproc == 1 or "LOCAL_RANK" in os.environ:
        return
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None:
        raise UserError(f"{NPROC_ENV}={nproc}: start the stage as `python -m stages.<name>` "
                        "so that it can relaunch itself under torchrun")
    command = relaunch_command(spec.name, args, nproc)
    log.info("%s=%d: relaunching as %s", NPROC_ENV, nproc, " ".join(command))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
