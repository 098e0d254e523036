"""The GPU check: the project's CUDA code paths on tiny models, offline, in a few minutes.

Run it on the GPU machine before a paper-scale run (one CUDA GPU, no internet needed):

    python -m scripts.gpu_check --require-cuda

Each check prints one line, PASS / FAIL / SKIP, and the exit status is 1 if any
check failed. The models are the rehearsal's stand-ins (tests/rehearsal/standins.py:
a multimodal Gemma-3 with a chat template, an XLM-R encoder), built from configs:

- cuda: a CUDA device, and whether it computes bf16 natively;
- generation: `generation.generate_completions` through a merged LoRA, in the dtype
  the project's loader picks (bf16 on such a GPU);
- generation-4bit: the same through an unmerged LoRA on a bitsandbytes NF4 base (the
  profile's setup);
- lora-step: two optimiser steps of `adapters.train_lora_adapter` (QLoRA: 4-bit where
  bitsandbytes is installed), and the LoRA B matrices moved (gradients flowed);
- embedder-step: `embedder.train_embedder` (MNRL with hard negatives, avg_first_last);
- nccl-group: a one-process NCCL group (torch.distributed, world size 1), all-reduce
  and barrier.

Without CUDA (a CPU machine, or this script's own test) the CUDA-only assertions and
the NCCL group are skipped with a SKIP line; `--require-cuda` makes that a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

# offline, whatever the machine's settings: every model here is built from a config
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

BUDGET_S = 480  # 8 minutes, all checks together


class Skip(Exception):
    """The check does not apply here; the message says why."""


class Context:
    """What the checks share: a scratch folder and the tiny models, built once."""

    def __init__(self, scratch: Path, require_cuda: bool) -> None:
        import torch

        self.scratch, self.require_cuda = scratch, require_cuda
        self.cuda = torch.cuda.is_available()
        self._built: dict[str, Path] = {}

    def model(self, name: str) -> Path:
        from tests.rehearsal import standins

        if name not in self._built:
            path = self.scratch / name
            if name == "generator":
                standins.gemma3_it(path)
            elif name == "adapter":
                standins.released_adapter(self.model("generator"), path, seed=1)
            elif name == "encoder":
                standins.xlm_roberta_base(path)
            self._built[name] = path
        return self._built[name]

    def cuda_only(self, what: str) -> None:
        if not self.cuda:
            raise Skip(f"no CUDA device; {what} runs on a GPU only")


def _bitsandbytes() -> bool:
    from bootstrap_embeddings.generator.loading import _has_bitsandbytes

    return _has_bitsandbytes()


# --------------------------------------------------------------------------- checks


def check_cuda(ctx: Context) -> str:
    import torch

    if not ctx.cuda:
        message = "no CUDA device (the checks below run on the CPU; nccl-group is skipped)"
        if ctx.require_cuda:
            raise RuntimeError(message)
        raise Skip(message)
    from bootstrap_embeddings.generator.loading import native_bf16

    name = torch.cuda.get_device_name(0)
    memory = torch.cuda.get_device_properties(0).total_memory / 2**30
    return (f"{name}, {memory:.0f} GiB, {torch.cuda.device_count()} device(s), "
            f"bf16 {'native' if native_bf16() else 'NOT native'}, torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}")


def _generate(ctx: Context, quantization: str, merge: bool) -> str:
    from bootstrap_embeddings.config import GenerationParams
    from bootstrap_embeddings.generator.generation import generate_completions
    from bootstrap_embeddings.generator.prompts import nli_prompt
    from bootstrap_embeddings.generator.resume import BatchLog

    items = [{"id": f"a{i}", "text": f"The river is wide and slow number {i}."} for i in range(6)]
    gen = GenerationParams(max_new_tokens=16, do_sample=True, batch_size=4, merge_adapter=merge)
    adapter = str(ctx.model("adapter"))
    result = generate_completions(
        ctx.model("generator"), items, lambda text, rel: nli_prompt(text, rel, "English"),
        {"entailment": adapter, "contradiction": None}, gen, quantization, 0,
        BatchLog(ctx.scratch / f"partial-{quantization}.jsonl"))
    stats = result.stats
    if stats["generated_tokens"] <= 0:
        raise RuntimeError(f"no token generated ({stats})")
    if set(result.texts) != {"entailment", "contradiction"}:
        raise RuntimeError(f"answers for {sorted(result.texts)}")
    return (f"{stats['generated_tokens']} tokens, {stats['tokens_per_second']} tokens/s, "
            f"quantization {stats['quantization']}, merged adapter {stats['merged_adapter']}")


def check_generation(ctx: Context) -> str:
    import torch

    from bootstrap_embeddings.generator.loading import load_generator, native_bf16

    model, _, _ = load_generator(str(ctx.model("generator")), "none", for_training=False)
    dtype, device = next(model.parameters()).dtype, next(model.parameters()).device
    del model
    if ctx.cuda:
        wanted = torch.bfloat16 if native_bf16() else torch.float32
        if dtype != wanted or device.type != "cuda":
            raise RuntimeError(f"the generator loaded as {dtype} on {device}; expected {wanted} on cuda")
    where = f"{str(dtype).removeprefix('torch.')} on {device}"
    return f"{where}; " + _generate(ctx, "none", merge=True)


def check_generation_4bit(ctx: Context) -> str:
    if not _bitsandbytes():
        raise Skip("bitsandbytes is not installed (the profile's 4-bit generation needs it)")
    return _generate(ctx, "4bit", merge=True)  # the project does not merge into 4-bit weights


def check_lora_step(ctx: Context) -> str:
    import torch
    from safetensors.torch import load_file

    from bootstrap_embeddings.config import AdapterTraining, LoraParams
    from bootstrap_embeddings.generator.adapters import train_lora_adapter
    from bootstrap_embeddings.generator.prompts import nli_prompt

    quantization = "4bit" if _bitsandbytes() else "none"
    rows = [{"prompt_text": nli_prompt(f"A man plays a guitar on stage {i}.", "entailment",
                                       "English"),
             "completion": f"A person makes music {i}."} for i in range(8)]
    out = ctx.scratch / "lora"
    record = train_lora_adapter(
        ctx.model("generator"), rows, out,
        lora=LoraParams(r=8, alpha=16, dropout=0.05, target_modules="all-linear"),
        training=AdapterTraining(max_steps=2, lr=1e-3, warmup_ratio=0.0, batch_size=4,
                                 grad_accum=2, max_grad_norm=0.3, max_length=512,
                                 max_examples=100),
        quantization=quantization, seed=0, completion_only=True, progress=False)
    losses = [p["loss"] for p in record["losses"]]
    if not all(math.isfinite(x) for x in losses):
        raise RuntimeError(f"losses {losses}")
    if record["quantization"] != quantization:
        raise RuntimeError(f"trained with quantization {record['quantization']}, asked {quantization}")
    weights = load_file(str(out / "adapter_model.safetensors"))
    b_matrices = {k: v for k, v in weights.items() if "lora_B" in k}
    moved = [k for k, v in b_matrices.items() if torch.count_nonzero(v)]
    # B starts at zero: still zero means no gradient reached the adapter (the vision
    # tower's, which text never reaches, stay zero)
    if not any("language_model" in k for k in moved):
        raise RuntimeError("the text decoder's LoRA B matrices are still zero: no gradient flowed")
    note = "" if quantization == "4bit" else " (bitsandbytes is not installed: trained unquantized)"
    return (f"{quantization}, autocast {record['autocast']}, losses {[round(x, 3) for x in losses]}, "
            f"{len(moved)} of {len(b_matrices)} LoRA B matrices moved, "
            f"{record['s_per_step']} s/step{note}")


def check_embedder_step(ctx: Context) -> str:
    from bootstrap_embeddings import embedder
    from bootstrap_embeddings.config import EmbedderParams, EmbedderTraining

    model = embedder.build_model(ctx.model("encoder"), "avg_first_last")
    triplets = [{"anchor": f"anchor sentence {i}", "positive": f"positive sentence {i}",
                 "negative": f"negative sentence {i}"} for i in range(16)]
    cfg = EmbedderParams(model="stand-in", pooling="avg_first_last", loss_scale=20.0,
                         training=EmbedderTraining(epochs=1, batch_size=8, lr=5e-5,
                                                   max_length=32, warmup_ratio=0.0))
    record = embedder.train_embedder(model, triplets, cfg, 0, ctx.scratch / "embedder")
    losses = [p["loss"] for p in record["loss_curve"]]
    if record["steps"] < 1 or not all(math.isfinite(x) for x in losses):
        raise RuntimeError(f"{record['steps']} steps, losses {losses}")
    device = model.device.type
    if ctx.cuda and device != "cuda":
        raise RuntimeError(f"the embedder trained on {device}, not on the GPU")
    return f"{record['steps']} steps on {device}, losses {[round(x, 3) for x in losses]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_nccl_group(ctx: Context) -> str:
    ctx.cuda_only("NCCL")
    import torch
    import torch.distributed as dist

    if not dist.is_nccl_available():
        raise RuntimeError("this torch build has no NCCL")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=torch.device("cuda", 0))
    try:
        tensor = torch.arange(4.0, device="cuda")
        dist.all_reduce(tensor)
        dist.barrier()
        if tensor.tolist() != [0.0, 1.0, 2.0, 3.0]:
            raise RuntimeError(f"all_reduce over one process changed the tensor: {tensor.tolist()}")
        version = ".".join(map(str, torch.cuda.nccl.version()))
    finally:
        dist.destroy_process_group()
    return f"backend nccl {version}, world size 1, all_reduce and barrier"


CHECKS: tuple[tuple[str, Callable[[Context], str]], ...] = (
    ("cuda", check_cuda),
    ("generation", check_generation),
    ("generation-4bit", check_generation_4bit),
    ("lora-step", check_lora_step),
    ("embedder-step", check_embedder_step),
    ("nccl-group", check_nccl_group),
)


# --------------------------------------------------------------------------- running


def _over_budget(signum, frame):
    raise TimeoutError(f"over the {BUDGET_S} s budget")


def run_checks(require_cuda: bool, budget_s: int = BUDGET_S) -> int:
    """Run every check, one line each; the number of failures."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    failures = 0
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _over_budget)
    signal.alarm(budget_s)
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
            ctx = Context(Path(scratch), require_cuda)
            for name, check in CHECKS:
                began = time.perf_counter()
                try:
                    # the libraries' own prints (trainer logs) go to stderr with the tracebacks
                    with contextlib.redirect_stdout(sys.stderr):
                        detail = check(ctx)
                    status = "PASS"
                except Skip as why:
                    status, detail = "SKIP", str(why)
                except Exception as err:  # noqa: BLE001 - any failure is this check's FAIL
                    traceback.print_exc(file=sys.stderr)
                    status, detail = "FAIL", f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                    failures += 1
                print(f"{status} {name}: {detail} ({time.perf_counter() - began:.1f} s)", flush=True)
                if isinstance(detail, str) and detail.startswith("TimeoutError"):
                    break
    finally:
        signal.alarm(0)
    verdict = "FAIL" if failures else "PASS"
    print(f"{verdict} gpu-check: {failures} failure(s) in {time.perf_counter() - start:.0f} s",
          flush=True)
    return failures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--require-cuda", action="store_true",
                        help="fail (rather than skip) when no CUDA device is visible")
    args = parser.parse_args(argv)
    sys.exit(1 if run_checks(args.require_cuda) else 0)


if __name__ == "__main__":
    main()
