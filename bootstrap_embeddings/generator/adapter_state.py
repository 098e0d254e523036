"""The adapter loop's resumable state: saved every `checkpoint_every` steps, resumed from.

Written by hand: the loop is our own (see adapters.py), so transformers' Trainer
checkpointing does not apply; what is saved is the same set of things (LoRA weights,
optimiser, scheduler, every process's RNG state, the losses so far), atomically, under
`<checkpoint_dir>/<resume_key>/state/state.pt`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from bootstrap_embeddings import distributed
from bootstrap_embeddings.config import AdapterTraining, LoraParams

log = logging.getLogger(__name__)

STATE_DIR, STATE_FILE = "state", "state.pt"  # the resumable state, inside the key's folder
_STATE_FORMAT = 1
# The code whose change can change the adapter: the rows' encoding, the loop, this.
_CODE_FILES = ("adapter_rows.py", "adapters.py", "adapter_state.py")


def resume_key(base_path, examples: Sequence[dict], *, lora: LoraParams,
               training: AdapterTraining, quantization: str, seed: int,
               completion_only: bool, revision: str | None, processes: int) -> str:
    """A key for everything that shapes the adapter: the base model, the encoded rows
    (prompt text and templating included), the params (not `checkpoint_every`), the
    seed, the process count and the training code."""
    from bootstrap_embeddings.digests import model_digest

    rows = hashlib.sha256()
    for ex in examples:
        rows.update(json.dumps([ex["input_ids"], ex["labels"]]).encode() + b"\n")
    code = hashlib.sha256()
    for name in _CODE_FILES:
        code.update(Path(__file__).with_name(name).read_bytes())
    payload = {
        "format": _STATE_FORMAT,
        "model": model_digest(base_path), "revision": revision,
        "rows": rows.hexdigest(),
        "lora": lora.model_dump(),
        "training": training.model_dump(exclude={"checkpoint_every"}),
        "quantization": quantization, "seed": seed, "completion_only": completion_only,
        "processes": processes,
        "code": code.hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _rng_state() -> dict:
    import random

    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Put this process's random generators back where a saved state had them."""
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class TrainingState:
    """One training run's resumable state, in `checkpoint_dir/key/`."""

    def __init__(self, checkpoint_dir, key: str) -> None:
        self.root, self.key = Path(checkpoint_dir), key
        self.folder = self.root / key

    def open(self) -> None:
        """Claim this key's folder; remove the states of other keys that no live run holds
        (changed params, data or code: they can never resume) and any leftover temporary
        of this one. Collective under torchrun."""
        from bootstrap_embeddings.files import claim_folder, remove_stale_temporaries

        if distributed.is_main_process():
            claim_folder(self.root, self.key, "resumable state")
            remove_stale_temporaries(self.folder / STATE_DIR)
        distributed.wait_for_everyone()

    def load(self, max_steps: int) -> dict | None:
        """The saved state, or None if there is none or it is unusable (then: start afresh)."""
        import torch

        path = self.folder / STATE_DIR / STATE_FILE
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            if state["key"] != self.key or not 0 < state["step"] <= max_steps:
                raise ValueError("it belongs to another run")
        except Exception as err:  # noqa: BLE001 - any unreadable state means: start afresh
            log.warning("ignoring the resumable state %s (%s); training starts afresh", path, err)
            return None
        log.info("resuming from %s: %d of %d steps done", self.folder, state["step"], max_steps)
        return state

    def save(self, step: int, model, optimizer, scheduler, losses, tokens: int,
             wall: float) -> None:
        """Save the state after `step` (the main process writes; every process's RNG state)."""
        import torch
        from accelerate.utils import gather_object

        from bootstrap_embeddings.files import atomic_dir

        several = distributed.num_processes() > 1
        rngs = gather_object([_rng_state()]) if several else [_rng_state()]
        counts = gather_object([tokens]) if several else [tokens]
        if distributed.is_main_process():
            weights = {n: p.detach().cpu().clone() for n, p in model.named_parameters()
                       if p.requires_grad}
            with atomic_dir(self.folder / STATE_DIR) as tmp:
                torch.save({
                    "key": self.key, "step": step, "weights": weights,
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": rngs, "losses": list(losses), "tokens": counts, "wall_time_s": wall,
                }, tmp / STATE_FILE)
        distributed.wait_for_everyone()

    def remove(self) -> None:
        """The adapter is whole: nothing to resume (main process)."""
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)
