"""Load the generator LM in a quantization mode that works on this machine.

The paper loads Gemma-3-27B in bitsandbytes 4-bit NF4 (double quantisation, bf16
compute) for adapter training (QLoRA) and generation alike. On a CUDA machine that
is what `auto` picks. On a CPU, bitsandbytes 4-bit runs but dequantises every weight
on every matmul: LoRA training on gemma-3-270m took 53-82 s per step against 38 s
unquantized (batch 8 x ~76 tokens, a shared 2-core AVX2 machine), and a 270M model
fits in memory in full precision, so `auto` picks `none` there. `4bit` and `8bit`
stay available on a CPU (both train; tests/test_adapters.py).
"""

from __future__ import annotations

import logging

from bootstrap_embeddings.errors import UserError, checkpoint_errors

log = logging.getLogger(__name__)

QUANTIZATIONS = ("auto", "4bit", "8bit", "none")
_DTYPES = ("float32", "bfloat16", "float16")


def _has_bitsandbytes() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_quantization(requested: str) -> str:
    """Turn `auto` into a concrete mode (`4bit`, `8bit` or `none`) and check the others."""
    import torch

    if requested not in QUANTIZATIONS:
        allowed = ", ".join(QUANTIZATIONS)
        raise UserError(f"generator.quantization: got {requested!r}; allowed: {allowed}")
    cuda = torch.cuda.is_available()
    if requested == "auto":
        if cuda and _has_bitsandbytes():
            chosen, why = "4bit", "CUDA and bitsandbytes are available (the paper's QLoRA setup)"
        elif cuda:
            chosen, why = "none", "CUDA is available but bitsandbytes is not installed"
        else:
            chosen, why = "none", (
                "no CUDA device: on a CPU 4-bit weights are dequantised at every matmul, "
                "which saves memory but costs time"
            )
        log.info("generator.quantization=auto -> %s (%s)", chosen, why)
        return chosen
    if requested in ("4bit", "8bit") and not _has_bitsandbytes():
        raise UserError(
            f"generator.quantization: {requested} needs bitsandbytes; install it or use 'none'"
        )
    log.info("generator.quantization=%s", requested)
    return requested


def native_bf16() -> bool:
    """Whether bf16 matmuls run natively here (a CUDA GPU that has them, or AVX512-BF16 / AMX).

    A CPU without them emulates bf16 tens of times slower than fp32 (measured on an
    AVX2 EPYC: 0.7 vs 26 GFLOP/s), so bf16 is only a speed-up where this is True.
    """
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _torch_dtype(dtype: str | None):
    import torch

    if dtype is None:
        # Weights in fp32 on a CPU (training autocasts to bf16 where that is native);
        # bf16 on a GPU, the paper's dtype.
        return torch.bfloat16 if torch.cuda.is_available() and native_bf16() else torch.float32
    if dtype not in _DTYPES:
        raise UserError(f"dtype: got {dtype!r}; allowed: {', '.join(_DTYPES)}")
    return getattr(torch, dtype)


def _quantization_config(quantization: str):
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if native_bf16() else torch.float32,
        )
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


class _DropInt8CastNotice(logging.Filter):
    """bitsandbytes logs "MatMul8bitLt: inputs will be cast ... to float16" at every int8
    matmul of a non-fp16 input (on a CPU: every layer, every step). The cast is expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "inputs will be cast" not in record.getMessage()


_INT8_CAST_FILTER = _DropInt8CastNotice()


def disable_cpu_repacking(model) -> int:
    """Keep bitsandbytes from repacking 4-bit weights for CPU inference; returns how many layers.

    On CPUs with avx512_bf16 the first no-grad forward of a `Linear4bit` rewrites its
    weight into a packed layout that `matmul_4bit` has no backward for: LoRA training
    after any generate() then silently gets zero gradients. Training must never see it.
    """
    import bitsandbytes as bnb

    n = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n


def load_tokenizer(path: str, revision: str | None = None):
    """The generator's tokenizer, padding on the left (batched generation appends on the right)
    and always with a pad token."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: no generator checkpoint there ({first})") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_generator(
    path: str,
    quantization: str,
    for_training: bool,
    dtype: str | None = None,
    revision: str | None = None,
):
    """Load a causal LM and its tokenizer from a local checkpoint or a hub id (at `revision`).

    Returns (model, tokenizer, quantization actually used). The tokenizer pads on the
    left (batched generation appends to the right end) and always has a pad token.
    With `for_training` the base weights are frozen and, for quantized models, peft's
    `prepare_model_for_kbit_training` readies them for QLoRA; LoRA layers are added by
    the caller.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from bootstrap_embeddings.distributed import local_device

    used = resolve_quantization(quantization)
    kwargs = {"dtype": _torch_dtype(dtype), "revision": revision}
    # Under torchrun each process holds a whole copy of the model on its own GPU.
    gpu = {"": local_device()} if torch.cuda.is_available() else None
    if used != "none":
        kwargs["quantization_config"] = _quantization_config(used)
        kwargs["device_map"] = gpu or {"": "cpu"}
    elif gpu:
        kwargs["device_map"] = gpu

    tokenizer = load_tokenizer(path, revision)
    with checkpoint_errors(path, "generator checkpoint"):
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)

    if used == "8bit":
        logging.getLogger("bitsandbytes.autograd._functions").addFilter(_INT8_CAST_FILTER)
    if used == "4bit" and for_training:
        # Only training needs it: inference keeps the faster packed CPU path.
        disable_cpu_repacking(model)
    if for_training:
        if used != "none":
            from peft import prepare_model_for_kbit_training

            # Gradient checkpointing trades compute for memory: worth it on a GPU with a
            # large model, pure loss on a CPU with a small one.
            # Non-reentrant checkpointing: the reentrant kind breaks DDP, which must look
            # for unused parameters (adapters.train_lora_adapter).
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=torch.cuda.is_available(),
                gradient_checkpointing_kwargs={"use_reentrant": False},
            )
        else:
            model.requires_grad_(False)
        model.train()
    else:
        model.eval()
    log.info("loaded generator %s (quantization=%s, dtype=%s)", path, used, kwargs["dtype"])
    return model, tokenizer, used
