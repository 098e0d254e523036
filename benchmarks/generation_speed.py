"""The project's generation path against plain `model.generate`, on the pipeline's own prompts.

Not a test: a measurement (issue 12), run by hand or from benchmarks/speed.py:

    .venv/bin/python -m benchmarks.generation_speed [--quick] [--runs 2] [--prompts 64]

Prompts: the default language's anchors (params.yaml `languages[0]`, from
data/prepared/<lang>/anchors.jsonl; `python -m stages.prepare <lang>` writes it) in the
default strategy's prompt (its prompt language and ICL shots), the entailment relation,
wrapped as the pipeline wraps them. Model: models/base/generator with the strategy's
trained adapter merged in when it exists (a merged adapter costs what the base costs),
else the base model. Sampling: params.yaml's `generator.generation` (temperature,
top_p, max_new_tokens, batch size) for both paths.

- plain: `model.generate(do_sample=True, temperature, top_p, stop_strings=["\\n"])`
  at batch 32 over the prompts in file order: what a user would write by hand.
- project: `generation.length_order` + `generation._generate_batch` at the configured
  batch size, the code `generate_completions` runs (decoding.decode: finished rows
  leave the batch, top-k nucleus, batches by length).

Measured here (2-core dev machine, shared, `--quick`): generation ratio 1.4 (3.6 against
5.1 new tokens/s; 207 s against 132 s on the same 32 prompts); greedy identical 4/4.

The two run side by side, alternating (ABBA), so a shared machine's load drift hits
both alike; the figure per path is its median over runs. New tokens are the tokens each
row wrote up to its stop (padding after it is not counted), the same count for both.
Greedy outputs of the two paths are compared on the first prompts as a correctness check
(a speed-up that changed results would not be one). The last line is
`generation ratio: X`, project new tokens/s over plain new tokens/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

CEILING = 190.0  # tokens/s: fp32 compute ceiling of gemma-3-270m on the 2-core dev machine
FALLBACK_PREMISES = [
    "All human beings are born free and equal in dignity and rights.",
    "Everyone has the right to life, liberty and the security of person.",
    "No one shall be held in slavery or servitude.",
    "Everyone has the right to freedom of movement within the borders of each state.",
]


def pipeline_prompts(params, n: int, strategy: str) -> tuple[list[str], str]:
    """Up to `n` unwrapped prompts of `strategy` on the default language's anchors."""
    from bootstrap_embeddings.files import read_jsonl
    from bootstrap_embeddings.generator.generation import recipe_prompt
    from bootstrap_embeddings.generator.prompts import XL_LORA_PROMPT_LANGUAGE
    from bootstrap_embeddings.strategies import build_recipe

    language = params.languages[0]
    path = Path("data/prepared") / language / "anchors.jsonl"
    texts = [r["text"] for r in read_jsonl(path)] if path.is_file() else FALLBACK_PREMISES
    source = str(path) if path.is_file() else "fallback premises (no data/prepared)"
    recipe = {"strategy": strategy}
    if strategy == "xl_lora":
        recipe["prompt_language"] = XL_LORA_PROMPT_LANGUAGE
    elif strategy == "icl":
        recipe = build_recipe("icl", language, nli_path=Path("data/prepared/shared/nli.jsonl"),
                              shots=params.generator.icl.shots, seed=params.seed)
    texts = [texts[i % len(texts)] for i in range(n)]
    return [recipe_prompt(recipe, t, "entailment", language) for t in texts], source


def _plain(model, tokenizer, texts, gen, do_sample, batch_size=32):
    """`model.generate` by hand, batch 32, file order; returns (seconds, prompt tokens, rows)."""
    import torch

    rows, prompt_tokens, seconds = [], 0, 0.0
    eos = tokenizer.eos_token_id
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True,
                        add_special_tokens=False)
        kwargs = dict(temperature=gen.temperature, top_p=gen.top_p) if do_sample else {}
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=gen.max_new_tokens, do_sample=do_sample,
                                 stop_strings=["\n"], tokenizer=tokenizer,
                                 pad_token_id=tokenizer.pad_token_id, **kwargs)
        seconds += time.perf_counter() - start
        prompt_tokens += int(enc["attention_mask"].sum())
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            # up to and with the stop token: the padding generate adds after it is not output
            while row and row[-1] == tokenizer.pad_token_id and tokenizer.pad_token_id != eos:
                row.pop()
            rows.append(row)
    return seconds, prompt_tokens, rows


def _project(model, tokenizer, texts, gen, do_sample, seed=0):
    """The pipeline's batches and decoding; returns (seconds, prompt tokens, rows in text order)."""
    from bootstrap_embeddings.generator import generation
    from bootstrap_embeddings.generator.decoding import decode

    items = [{"id": str(i), "text": t} for i, t in enumerate(texts)]
    ordered = generation.length_order(items, tokenizer)
    stops = generation._stop_ids(model, tokenizer)
    rows: dict[str, list[int]] = {}
    prompt_tokens, seconds = 0, 0.0
    for b in range(0, len(ordered), gen.batch_size):
        batch = ordered[b:b + gen.batch_size]
        enc = tokenizer([it["text"] for it in batch], return_tensors="pt", padding=True,
                        add_special_tokens=False)
        start = time.perf_counter()
        out = decode(model, enc["input_ids"], enc["attention_mask"],
                     max_new_tokens=gen.max_new_tokens, stop_ids=stops, do_sample=do_sample,
                     temperature=gen.temperature, top_p=gen.top_p,
                     seed=generation._batch_seed(seed, "entailment", b // gen.batch_size))
        seconds += time.perf_counter() - start
        prompt_tokens += int(enc["attention_mask"].sum())
        rows.update(zip((it["id"] for it in batch), out.tokens))
    return seconds, prompt_tokens, [rows[it["id"]] for it in items]


def measure(quick: bool = False, runs: int | None = None, prompts: int | None = None,
            greedy_prompts: int | None = None, strategy: str | None = None, echo=print) -> dict:
    """Run the comparison, printing as it goes; returns the figures (and `ratio`)."""
    import torch

    from bootstrap_embeddings.base_models import resolve_generator_path
    from bootstrap_embeddings.config import load_params
    from bootstrap_embeddings.generator.adapted import AdaptedModels
    from bootstrap_embeddings.generator.loading import load_generator
    from bootstrap_embeddings.generator.prompts import chat_wrap

    runs = runs or (1 if quick else 3)
    n = prompts or (32 if quick else 64)
    n_greedy = min(n, greedy_prompts or (4 if quick else 16))
    params = load_params()
    gen = params.generator.generation
    base_path = resolve_generator_path(Path("models/base/generator"))
    # The default strategy with its trained adapter; without one (models/adapters not
    # built) the untouched base model answers "\n" at once to the plain prompt, so ICL
    # (the base model with the paper's shots, which answers like a trained adapter) is
    # what is measured then.
    strategy = strategy or params.strategy
    adapter = Path(f"models/adapters/{strategy}_pos")
    adapter = str(adapter) if (adapter / "adapter_config.json").is_file() else None
    if adapter is None and strategy != "icl":
        echo(f"no trained adapter {strategy}_pos: measuring the icl strategy's prompts")
        strategy = "icl"
    base, tokenizer, _ = load_generator(base_path, "none", for_training=False)
    raw, source = pipeline_prompts(params, n, strategy)
    texts = [chat_wrap(tokenizer, p) for p in raw]
    echo(f"model {base_path}, adapter {adapter or 'none (base model)'}, "
         f"{torch.get_num_threads()} threads; {n} prompts from {source} "
         f"(strategy {strategy}); temperature {gen.temperature}, top_p {gen.top_p}, "
         f"max_new_tokens {gen.max_new_tokens}; plain batch 32, project batch {gen.batch_size}; "
         f"{runs} run(s) each, alternating")
    figures: dict[str, list[tuple[float, float]]] = {"plain": [], "project": []}
    counts: dict[str, list[int]] = {"plain": [], "project": []}
    with AdaptedModels(base, {"entailment": adapter}, True).active("entailment") as model:
        paths = {"plain": _plain, "project": _project}
        _project(model, tokenizer, texts[:2], gen, True)  # warm-up (allocator, vocab pass)
        for run in range(runs):
            order = list(paths.items())[:: 1 if run % 2 == 0 else -1]
            for name, fn in order:
                seconds, prompt_tokens, rows = fn(model, tokenizer, texts, gen, True)
                new = sum(len(r) for r in rows)
                figures[name].append((new / seconds, (new + prompt_tokens) / seconds))
                counts[name].append(new)
                echo(f"  run {run + 1} {name:>7}: {new} new tokens in {seconds:.1f} s: "
                     f"{new / seconds:.1f} new tokens/s, "
                     f"{(new + prompt_tokens) / seconds:.1f} prompt+new tokens/s "
                     f"({(new + prompt_tokens) / seconds / CEILING:.0%} of the {CEILING:.0f} "
                     "tokens/s fp32 ceiling)", flush=True)
        # greedy: the equality check, timed too (no sampling luck in the token counts)
        greedy_gen = gen.model_copy(update={"max_new_tokens": min(gen.max_new_tokens, 16)}
                                    ) if quick else gen
        greedy = {}
        for name, fn in paths.items():
            seconds, _, greedy[name] = fn(model, tokenizer, texts[:n_greedy], greedy_gen, False)
            new = sum(len(r) for r in greedy[name])
            echo(f"  greedy {name:>7}: {new} new tokens in {seconds:.1f} s: "
                 f"{new / seconds:.1f} new tokens/s", flush=True)
    same = sum(a == b for a, b in zip(greedy["plain"], greedy["project"]))
    result = {name: {"new_tokens_per_s": statistics.median(f[0] for f in fs),
                     "all_tokens_per_s": statistics.median(f[1] for f in fs)}
              for name, fs in figures.items()}
    result["greedy_identical"] = f"{same}/{n_greedy}"
    result["ratio"] = result["project"]["new_tokens_per_s"] / result["plain"]["new_tokens_per_s"]
    for name in paths:
        echo(f"{name:>7} (median): {result[name]['new_tokens_per_s']:.1f} new tokens/s, "
             f"{result[name]['all_tokens_per_s']:.1f} prompt+new tokens/s")
    walls = {name: statistics.median(new_count / f[0] for f, new_count in zip(fs, counts[name]))
             for name, fs in figures.items()}
    echo(f"same prompts, median wall time: plain {walls['plain']:.1f} s, project "
         f"{walls['project']:.1f} s ({walls['plain'] / walls['project']:.2f}x)")
    echo(f"greedy outputs identical (plain generate vs project): {same} of {n_greedy} prompts")
    return result


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 prompts, 1 run each; greedy check on 4, 16 tokens")
    parser.add_argument("--runs", type=int, default=None, help="runs per path (default 3)")
    parser.add_argument("--prompts", type=int, default=None, help="timed prompts (default 64)")
    parser.add_argument("--strategy", default=None, help="default: params.yaml's strategy")
    args = parser.parse_args(argv)
    result = measure(quick=args.quick, runs=args.runs, prompts=args.prompts,
                     strategy=args.strategy)
    print(f"generation ratio: {result['ratio']:.1f}")
    return result["ratio"]


if __name__ == "__main__":
    main()
