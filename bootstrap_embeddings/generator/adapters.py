"""LoRA adapter training for every adapter kind: task, language and XL-LoRA.

One loop trains them all, on rows encoded by `adapter_rows` (prompt + completion with
the loss on the completion, or plain text), resumable through `adapter_state`.

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
from bootstrap_embeddings.generator.adapter_rows import IGNORE, collate, encode_rows
from bootstrap_embeddings.generator.adapter_state import TrainingState, resume_key, set_rng_state

log = logging.getLogger(__name__)

TRAINING_JSON = "training.json"


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
    max_steps = training.steps(len(examples))  # after encoding: rows too long are dropped
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
    warmup = math.ceil(training.warmup_ratio * max_steps)
    scheduler = get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup)
    amp = autocast_dtype()
    device = next(p.device for p in trainable)
    batches = _batches(len(examples), training.batch_size, seed, process, processes)
    saved, state = None, None
    if checkpoint_dir is not None and training.checkpoint_every:
        saved = TrainingState(checkpoint_dir, resume_key(
            base_path, examples, lora=lora, training=training, quantization=used, seed=seed,
            completion_only=completion_only, revision=revision, processes=processes))
        saved.open()
        state = saved.load(max_steps)
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
        max_steps, training.batch_size, training.grad_accum, processes, used, amp,
    )
    model.train()
    if state is not None:  # last, so that nothing draws from the restored generators first
        set_rng_state(state["rng"][process])
    start = time.perf_counter()
    bar = tqdm(range(done + 1, max_steps + 1), desc="adapter", unit="step",
               initial=done, total=max_steps,
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
        if saved is not None and step % training.checkpoint_every == 0 \
                and step < max_steps:
            saved.save(step, model, optimizer, scheduler, losses, tokens,
                       wall_before + time.perf_counter() - start)
    wall = wall_before + time.perf_counter() - start
    tokens = int(accelerator.reduce(torch.tensor(tokens, device=device), "sum"))
    if processes > 1:
        _check_replicas_agree(trainable)

    record = {
        "steps": max_steps,
        "rows": len(examples),
        "completion_only": completion_only,
        "quantization": used,
        "autocast": str(amp).removeprefix("torch.") if amp else "none",
        "processes": processes,
        "tokens": tokens,
        "wall_time_s": round(wall, 2),
        "s_per_step": round(wall / max_steps, 3),
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
                 out_dir, wall, wall / max_steps)
        if saved is not None:
            saved.remove()
    distributed.wait_for_everyone()  # the adapter exists on return, in every process
    return record
