"""Generated tokens per second of the generator, by batch size, adapter merging and dtype.

Not a test: a measurement behind two defaults of `generator.generation`, run by hand:

    .venv/bin/python -m benchmarks.generation_speed [--batch-sizes 1 8 32] \\
        [--dtypes float32 bfloat16] [--new-tokens 32] [--batches 2]

It loads the materialised generator (models/base/generator), takes a trained adapter
if one exists (else a fresh LoRA with the params.yaml shape), and builds each
configuration through `generation.AdaptedModels`, the code the pipeline runs. Every
sequence is forced to `--new-tokens` tokens, so each configuration does the same
work; prompts are the paper's prompt on real anchors when data/prepared has them.
Merged and unmerged outputs are compared under greedy decoding as a correctness
check of the merged path.

Measured on the 2-core AVX2 dev machine (shared, 1 thread, gemma-3-270m fp32, the
trained xl_lora_pos adapter, 32 new tokens x 2 batches, ABBA-interleaved), tokens/s
merged vs unmerged: batch 1: 5.7 vs 5.2; batch 8: 10.0 vs 9.2; batch 32: 11.5 vs 11.0;
greedy outputs identical. bf16 there (emulated): 1.3 tokens/s at batch 1, 4x slower
than fp32. Hence merge_adapter: true, and bf16 only where `native_bf16()`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ADAPTER_CANDIDATES = ("models/adapters/xl_lora_pos", "models/adapters/task_pos")
FALLBACK_PREMISES = [
    "All human beings are born free and equal in dignity and rights.",
    "Everyone has the right to life, liberty and the security of person.",
    "No one shall be held in slavery or servitude.",
    "Everyone has the right to freedom of movement within the borders of each state.",
]


def premises(n: int, language: str) -> list[str]:
    from bootstrap_embeddings.files import read_jsonl

    path = Path("data/prepared") / language / "anchors.jsonl"
    texts = [r["text"] for r in read_jsonl(path)] if path.is_file() else FALLBACK_PREMISES
    return [texts[i % len(texts)] for i in range(n)]


def fresh_adapter(base_path: str, out_dir: Path) -> str:
    """An untrained LoRA of the configured shape, with B made non-zero so it changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from bootstrap_embeddings.config import load_params

    lora = load_params().generator.lora
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_path),
        LoraConfig(r=lora.r, lora_alpha=lora.alpha, target_modules=lora.target_modules),
    )
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=1e-3)
    model.save_pretrained(out_dir)
    return str(out_dir)


def timed_generate(model, tokenizer, texts: list[str], new_tokens: int):
    """Greedy generation of exactly `new_tokens` per text; returns (seconds, new token ids)."""
    import torch

    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            **enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    return time.perf_counter() - start, out[:, enc["input_ids"].shape[1] :].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--dtypes", nargs="+", default=None,
                        help="default: float32, plus bfloat16 where the hardware has native bf16")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batches", type=int, default=2, help="timed batches per configuration")
    parser.add_argument("--language", default="hau")
    parser.add_argument("--adapter", default=None,
                        help="a LoRA directory (default: a trained one, else a fresh one)")
    args = parser.parse_args()

    import torch

    from bootstrap_embeddings.base_models import resolve_generator_path
    from bootstrap_embeddings.generator.generation import AdaptedModels
    from bootstrap_embeddings.generator.loading import load_generator, native_bf16
    from bootstrap_embeddings.generator.prompts import chat_wrap, nli_prompt

    dtypes = args.dtypes or ["float32"] + (["bfloat16"] if native_bf16() else [])
    base_path = resolve_generator_path(Path("models/base/generator"))
    scratch = tempfile.TemporaryDirectory(prefix="bench-adapter-")
    adapter = args.adapter or next((p for p in ADAPTER_CANDIDATES if Path(p).is_dir()), None)
    adapter = adapter or fresh_adapter(base_path, Path(scratch.name))
    base, tokenizer, _ = load_generator(base_path, "none", for_training=False)
    print(f"model {base_path}, adapter {adapter}, {torch.get_num_threads()} threads, "
          f"native bf16: {native_bf16()}, {args.new_tokens} new tokens x {args.batches} batches")
    print(f"{'dtype':>9} {'merged':>6} {'batch':>5} {'tokens/s':>9} {'s/batch':>8}")

    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        # Both paths side by side, batches interleaved, so a shared machine's load drift
        # hits them alike. Merged: a fresh copy of the fp32 weights, merged, then cast;
        # unmerged: the LoRA layers injected into `base` itself (cast in place).
        merged_models = AdaptedModels(base, {"entailment": adapter}, True, dtype)
        with merged_models.active("entailment") as merged:
            unmerged_models = AdaptedModels(base.to(dtype), {"entailment": adapter}, False)
            with unmerged_models.active("entailment") as unmerged:
                paths = {True: merged, False: unmerged}
                for model in paths.values():
                    timed_generate(model, tokenizer, [chat_wrap(tokenizer, "Hello")], 2)  # warm-up
                same = []
                for bs in args.batch_sizes:
                    texts = [chat_wrap(tokenizer, nli_prompt(p, "entailment", "English"))
                             for p in premises(bs * args.batches, args.language)]
                    seconds, outputs = {True: 0.0, False: 0.0}, {True: [], False: []}
                    for i in range(args.batches):
                        # ABBA order: neither path always runs first (warm caches, load drift)
                        for merge, model in list(paths.items())[:: 1 if i % 2 == 0 else -1]:
                            batch = texts[i * bs : (i + 1) * bs]
                            s, out = timed_generate(model, tokenizer, batch, args.new_tokens)
                            seconds[merge] += s
                            outputs[merge] += out
                    n = bs * args.batches * args.new_tokens
                    for merge in paths:
                        print(f"{dtype_name:>9} {str(merge):>6} {bs:>5} {n / seconds[merge]:>9.1f} "
                              f"{seconds[merge] / args.batches:>8.2f}", flush=True)
                    same.append(outputs[True] == outputs[False])
        del merged_models, unmerged_models, merged, unmerged, base
        base, tokenizer, _ = load_generator(base_path, "none", for_training=False)  # clean, fp32
        print(f"{dtype_name}: greedy output of merged == unmerged for batch sizes "
              f"{[bs for bs, s in zip(args.batch_sizes, same) if s]} of {args.batch_sizes}")
    scratch.cleanup()


if __name__ == "__main__":
    main()
