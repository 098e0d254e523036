"""LoRA adapter training for every adapter kind: task, language and XL-LoRA.

One loop trains them all. Rows are either

- `{"prompt_text", "completion"}` (task and XL-LoRA adapters): the un-templated prompt
  (`prompts.nli_prompt(...)`) and the answer. The input is built exactly as generation
  builds it, `chat_wrap(tokenizer, prompt_text)`, followed by
  `format_completion(tokenizer, completion)`; the loss is on the completion only.
- `{"text"}` (language adapters): causal LM on every token.

The paper trains with TRL's SFTTrainer. We write the loop out because the one change
that matters on a CPU is not available there: gemma-3's LM head projects onto a
262k-token vocabulary and costs most of a forward pass, so the logits are computed
only at the positions that carry a loss (for completion-only rows a few tokens out of
a hundred), not over the whole sequence. Measured on gemma-3-270m (task rows, batch
8 x ~76 tokens, fp32, a shared 2-core CPU): 118 -> 38 s per step, peak memory 5.5 ->
3.8 GB. bf16 autocast is used only where bf16 is native (see `autocast_dtype`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bootstrap_embeddings.config import AdapterTraining, LoraParams
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_dir, write_json

log = logging.getLogger(__name__)

IGNORE = -100  # label of a position without loss (the cross-entropy ignore_index)
TRAINING_JSON = "training.json"
STATE_DIR, STATE_FILE = "state", "state.pt"  # the resumable state, inside the key's folder
_STATE_FORMAT = 1


def _row_kind(rows: Sequence[dict]) -> str:
    if not rows:
        raise UserError("adapter training data: no rows")
    keys = set(rows[0])
    if {"prompt_text", "completion"} <= keys:
        return "completion"
    if "text" in keys:
        return "text"
    raise UserError(
        f"adapter training data: rows need prompt_text+completion or text, got keys {sorted(keys)}"
    )


def encode_rows(
    tokenizer, rows: Sequence[dict], max_length: int, completion_only: bool
) -> list[dict]:
    """Token ids and labels per row; labels are IGNORE where no loss is wanted.

    Prompt and completion are tokenized separately and concatenated, so the prompt's
    ids are exactly the ids generation feeds the model. A prompt+completion row longer
    than `max_length` is dropped, not cut: a cut completion would teach the adapter
    never to end its answer. Plain text rows are cut to `max_length`.
    """
    from bootstrap_embeddings.generator.prompts import chat_wrap, format_completion

    kind = _row_kind(rows)
    if completion_only and kind != "completion":
        raise UserError(
            "adapter training data: completion_only needs {prompt_text, completion} rows"
        )

    def ids_of(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    encoded, too_long = [], 0
    for row in rows:
        if kind == "completion":
            prompt = ids_of(chat_wrap(tokenizer, row["prompt_text"]))
            answer = ids_of(format_completion(tokenizer, row["completion"]))
            if len(prompt) + len(answer) > max_length:
                too_long += 1
                continue
            ids = prompt + answer
            labels = ([IGNORE] * len(prompt) + answer) if completion_only else list(ids)
        else:
            ids = (tokenizer(row["text"])["input_ids"] + [tokenizer.eos_token_id])[:max_length]
            labels = list(ids)
        if len(ids) > 1:
            encoded.append({"input_ids": ids, "labels": labels})
    if too_long:
        log.warning(
            "dropped %d of %d rows longer than training.max_length=%d",
            too_long, len(rows), max_length,
        )
    if not encoded:
        raise UserError(
            f"generator.training.max_length: {max_length} tokens fit none of the "
            f"{len(rows)} rows; raise it"
        )
    return encoded


def collate(batch: list[dict], pad_id: int):
    """Right-pad a batch (training has no reason to pad left) into tensors."""
    import torch

    width = max(len(ex["input_ids"]) for ex in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ex in enumerate(batch):
        n = len(ex["input_ids"])
        ids[i, :n] = torch.tensor(ex["input_ids"])
        labels[i, :n] = torch.tensor(ex["labels"])
        mask[i, :n] = 1
    return ids, mask, labels


def causal_lm_loss(causal_lm, input_ids, attention_mask, labels):
    """Mean next-token cross-entropy over labelled positions, with logits only there.

    `causal_lm` is a transformers causal LM (LoRA layers injected by peft live inside
    its decoder). Equivalent to `causal_lm(..., labels=labels).loss`, without
    materialising [batch, length, vocab] logits.
    """
    import torch.nn.functional as F

    decoder, lm_head = causal_lm.get_decoder(), causal_lm.get_output_embeddings()
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = lm_head(hidden[:, :-1][keep])
    softcap = getattr(causal_lm.config.get_text_config(), "final_logit_softcapping", None)
    if softcap:  # Gemma-2 style logit capping, as the model's own forward applies it
        logits = softcap * (logits / softcap).tanh()
    return F.cross_entropy(logits.float(), targets[keep])


def autocast_dtype():
    """bf16 autocast where the hardware computes bf16 natively, else None (plain fp32)."""
    import torch

    from bootstrap_embeddings.generator.loading import native_bf16

    return torch.bfloat16 if native_bf16() else None


def _batches(n_rows: int, batch_size: int, seed: int, process: int = 0, processes: int = 1):
    """Endless shuffled mini-batches of row indices, reshuffled every epoch: this process's share.

    Every process draws the same global batches (same seed) and takes every
    `processes`-th row of each, from row `process` on; so the global batch is
    `batch_size` however many processes share it. An epoch's short last batch is
    topped up from the epoch's first rows to a multiple of `processes` (as torch's
    DistributedSampler pads), so that no process is left without rows.
    """
    import itertools

    import torch

    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n_rows, generator=gen).tolist()
        for start in range(0, n_rows, batch_size):
            batch = order[start : start + batch_size]
            batch += itertools.islice(itertools.cycle(order), -len(batch) % processes)
            yield batch[process::processes]


def _loss_module(peft_model):
    """`causal_lm_loss` as a module: DDP synchronises only gradients that flow through
    the forward of the module it wraps."""
    import torch

    class CausalLMLoss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = peft_model

        def forward(self, input_ids, attention_mask, labels):
            return causal_lm_loss(self.model.get_base_model(), input_ids, attention_mask, labels)

    return CausalLMLoss()


def _check_replicas_agree(trainable) -> None:
    """Log the sha256 of this process's adapter weights; raise if another process's differ.

    After data-parallel training every replica must hold the same weights: a
    difference means gradients were not synchronised.
    """
    import hashlib

    from accelerate.utils import gather_object

    from bootstrap_embeddings.distributed import process_index

    h = hashlib.sha256()
    for p in trainable:
        h.update(p.detach().float().cpu().numpy().tobytes())
    digest = h.hexdigest()
    log.info("process %d: adapter weights sha256 %s", process_index(), digest)
    digests = gather_object([digest])
    if len(set(digests)) > 1:
        raise RuntimeError(f"processes ended with different adapter weights {digests}: "
                           "gradients were not synchronised")


# --------------------------------------------------------------------------- resume
#
# Written by hand: the loop is our own (see the module docstring), so transformers'
# Trainer checkpointing does not apply; what it saves is the same set of things.


def resume_key(base_path, examples: Sequence[dict], *, lora: LoraParams,
               training: AdapterTraining, quantization: str, seed: int,
               completion_only: bool, revision: str | None, processes: int) -> str:
    """A key for everything that shapes the adapter: the base model, the encoded rows
    (prompt text and templating included), the params (not `checkpoint_every`), the
    seed, the process count and this module's code."""
    import hashlib
    import json

    from bootstrap_embeddings.digests import model_digest

    rows = hashlib.sha256()
    for ex in examples:
        rows.update(json.dumps([ex["input_ids"], ex["labels"]]).encode() + b"\n")
    payload = {
        "format": _STATE_FORMAT,
        "model": model_digest(base_path), "revision": revision,
        "rows": rows.hexdigest(),
        "lora": lora.model_dump(),
        "training": training.model_dump(exclude={"checkpoint_every"}),
        "quantization": quantization, "seed": seed, "completion_only": completion_only,
        "processes": processes,
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _open_key_folder(root: Path, key: str) -> Path:
    """`root/key`, after removing states of other keys under `root` (changed params,
    data or code: they can never resume) and saying so."""
    import shutil

    from bootstrap_embeddings.files import remove_stale_temporaries

    if root.is_dir():
        for other in root.iterdir():
            if other.name != key and not other.name.startswith("."):
                log.info("removing the resumable state %s: its params, data or code differ "
                         "from this run's; training starts afresh", other)
                shutil.rmtree(other, ignore_errors=True)
    folder = root / key
    remove_stale_temporaries(folder / STATE_DIR)
    return folder


def _rng_state() -> dict:
    import random

    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _load_state(folder: Path, key: str, max_steps: int) -> dict | None:
    """The saved state under `folder`, or None if there is none or it is unusable."""
    import torch

    path = folder / STATE_DIR / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["key"] != key or not 0 < state["step"] <= max_steps:
            raise ValueError("it belongs to another run")
    except Exception as err:  # noqa: BLE001 - any unreadable state means: start afresh
        log.warning("ignoring the resumable state %s (%s); training starts afresh", path, err)
        return None
    return state


def _save_state(folder: Path, state: dict) -> None:
    import torch

    from bootstrap_embeddings.files import atomic_dir

    with atomic_dir(folder / STATE_DIR) as tmp:
        torch.save(state, tmp / STATE_FILE)


def train_lora_adapter(
    base_path: str | Path,
    rows: Sequence[dict],
    out_dir: str | Path,
    *,
    lora: LoraParams,
    training: AdapterTraining,
    quantization: str,
    seed: int,
    completion_only: bool,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
    revision: str | None = None,
    checkpoint_dir: str | Path | None = None,
) -> dict:
    """Train one LoRA adapter on `rows` and save it (peft format + training.json) to `out_dir`.

    Optimiser: AdamW, lr constant after a linear warm-up (as the paper), gradients
    clipped to `training.max_grad_norm`. `on_step(step, loss)` is called after every
    optimiser step (the stages log to MLflow through it). `revision` pins a hub
    checkpoint (paper scale). Returns the record also written to `out_dir/training.json`.

    Under torchrun the processes train data-parallel (accelerate's DDP: gradients
    are averaged over processes at every optimiser step). `training.batch_size` is
    the global batch: each process takes batch_size / processes rows of it, so the
    hyperparameters mean the same on one CPU and on eight GPUs. Only the main process
    saves; the record's losses are the mean over processes.

    With `checkpoint_dir` and `training.checkpoint_every` > 0, a resumable state is
    saved every `checkpoint_every` steps to `checkpoint_dir/<resume_key>/` (atomically),
    a run resumes from it, and it is removed once the adapter is saved. A resumed run
    gives the same adapter as an uninterrupted one (bit for bit, one process).
    """
    import contextlib

    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm
    from transformers import get_constant_schedule_with_warmup, set_seed

    from bootstrap_embeddings import distributed
    from bootstrap_embeddings.generator.loading import load_generator

    processes, process = distributed.num_processes(), distributed.process_index()
    if training.batch_size % processes:
        raise UserError(f"generator.training.batch_size: {training.batch_size} does not split "
                        f"evenly over {processes} processes; use a multiple of {processes}")
    set_seed(seed)  # python random, numpy, torch
    model, tokenizer, used = load_generator(
        str(base_path), quantization, for_training=True, revision=revision
    )
    examples = encode_rows(
        tokenizer, rows[: training.max_examples], training.max_length, completion_only
    )
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    if processes > 1:
        set_seed(seed + process)  # the same LoRA initialisation, but dropout masks of their own
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=training.lr, weight_decay=0.0)
    warmup = math.ceil(training.warmup_ratio * training.max_steps)
    scheduler = get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup)
    amp = autocast_dtype()
    device = next(p.device for p in trainable)
    batches = _batches(len(examples), training.batch_size, seed, process, processes)
    folder, state = None, None
    if checkpoint_dir is not None and training.checkpoint_every:
        key = resume_key(base_path, examples, lora=lora, training=training, quantization=used,
                         seed=seed, completion_only=completion_only, revision=revision,
                         processes=processes)
        folder = Path(checkpoint_dir) / key
        if distributed.is_main_process():
            _open_key_folder(Path(checkpoint_dir), key)
        distributed.wait_for_everyone()
        state = _load_state(folder, key, training.max_steps)
    done, losses, tokens, wall_before = 0, [], 0, 0.0
    if state is not None:
        named = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in state["weights"].items():
                named[name].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        done, losses = state["step"], state["losses"]
        tokens, wall_before = state["tokens"][process], state["wall_time_s"]
        for _ in range(done * training.grad_accum):  # the batch order's position
            next(batches)
        log.info("resuming from %s: %d of %d steps done", folder, done, training.max_steps)
    # Finding unused parameters: Gemma-3-27B-it is multimodal, and its vision tower's
    # LoRA layers get no gradient from text. Placement is load_generator's.
    accelerator = Accelerator(
        cpu=device.type == "cpu", device_placement=False,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    loss_of = accelerator.prepare(_loss_module(model))  # wrapped in DDP under torchrun

    log.info(
        "training LoRA r=%d on %d rows (%s) for %d steps, batch %d x %d over %d process(es), "
        "quantization=%s, autocast=%s",
        lora.r, len(examples), "completion only" if completion_only else "all tokens",
        training.max_steps, training.batch_size, training.grad_accum, processes, used, amp,
    )
    model.train()
    if state is not None:  # last, so that nothing draws from the restored generators first
        _set_rng_state(state["rng"][process])
    start = time.perf_counter()
    bar = tqdm(range(done + 1, training.max_steps + 1), desc="adapter", unit="step",
               initial=done, total=training.max_steps,
               disable=not progress or not distributed.is_main_process())
    for step in bar:
        step_loss = 0.0
        for micro in range(training.grad_accum):
            batch = collate([examples[i] for i in next(batches)], tokenizer.pad_token_id)
            ids, mask, labels = (t.to(device) for t in batch)
            last = micro == training.grad_accum - 1  # gradients are all-reduced once a step
            with contextlib.nullcontext() if last else accelerator.no_sync(loss_of):
                with torch.autocast(device.type, dtype=amp or torch.float32,
                                    enabled=amp is not None):
                    loss = loss_of(ids, mask, labels) / training.grad_accum
                loss.backward()
            step_loss += loss.item()
            tokens += int(mask.sum())
        # the mean over processes (one process: the value itself, bit for bit)
        step_loss = accelerator.reduce(
            torch.tensor(step_loss, dtype=torch.float64, device=device), "mean").item()
        torch.nn.utils.clip_grad_norm_(trainable, training.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append({"step": step, "loss": step_loss})
        bar.set_postfix(loss=f"{step_loss:.3f}")
        if on_step is not None:
            on_step(step, step_loss)
        if folder is not None and step % training.checkpoint_every == 0 \
                and step < training.max_steps:
            _checkpoint(folder, key, step, model, optimizer, scheduler, losses, tokens,
                        wall_before + time.perf_counter() - start)
    wall = wall_before + time.perf_counter() - start
    tokens = int(accelerator.reduce(torch.tensor(tokens, device=device), "sum"))
    if processes > 1:
        _check_replicas_agree(trainable)

    record = {
        "steps": training.max_steps,
        "rows": len(examples),
        "completion_only": completion_only,
        "quantization": used,
        "autocast": str(amp).removeprefix("torch.") if amp else "none",
        "processes": processes,
        "tokens": tokens,
        "wall_time_s": round(wall, 2),
        "s_per_step": round(wall / training.max_steps, 3),
        "losses": losses,
        "lora": lora.model_dump(),
        "training": training.model_dump(),
        "seed": seed,
    }
    if distributed.is_main_process():
        with atomic_dir(out_dir) as tmp:
            model.save_pretrained(tmp)
            write_json(Path(tmp) / TRAINING_JSON, record)
        log.info("adapter saved to %s (%.1f s, %.2f s/step)",
                 out_dir, wall, wall / training.max_steps)
        if folder is not None:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)  # the adapter is whole: nothing to resume
    distributed.wait_for_everyone()  # the adapter exists on return, in every process
    return record


def _checkpoint(folder, key, step, model, optimizer, scheduler, losses, tokens, wall) -> None:
    """Save the resumable state after `step` (main process; every process's RNG state)."""
    from accelerate.utils import gather_object

    from bootstrap_embeddings import distributed

    rngs = gather_object([_rng_state()]) if distributed.num_processes() > 1 else [_rng_state()]
    counts = gather_object([tokens]) if distributed.num_processes() > 1 else [tokens]
    if distributed.is_main_process():
        weights = {n: p.detach().cpu().clone() for n, p in model.named_parameters()
                   if p.requires_grad}
        _save_state(folder, {
            "key": key, "step": step, "weights": weights,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rngs, "losses": list(losses), "tokens": counts, "wall_time_s": wall,
        })
    distributed.wait_for_everyone()
