"""LoRA arithmetic: adapter = TA + lambda * (LA_target - LA_english), in two modes.

- `adamergex` (the paper's, after AdaMergeX): the weighted sum is taken tensor by
  tensor, on lora_A and on lora_B separately: A = sum_i w_i A_i, B = sum_i w_i B_i.
  The resulting delta B A holds cross terms (B_TA A_LA, ...) that no single adapter
  learnt; this is what the paper does.
- `exact`: the weighted sum of the weight deltas, sum_i w_i s_i B_i A_i (s_i = alpha/r
  of adapter i), written exactly as one LoRA by stacking ranks:
  A = [w_1 s_1 A_1; w_2 s_2 A_2; ...], B = [B_1, B_2, ...], scaling 1 (alpha = r = sum r_i).

Both work on the adapters' saved state dicts, without the base model. peft's
`add_weighted_adapter` was checked against these (peft 0.21, tuners/lora/model.py):
its `cat` computes the same tensors as `exact` (tests/test_composition.py checks it),
but needs the base model loaded with every adapter injected, which would make a
cheap stage load the whole LM; its `linear` is not AdaMergeX: it scales A by
sign(w s) sqrt(|w s|) and B by sqrt(|w s|), so the B of a negatively weighted adapter
is added, not subtracted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_dir

MODES = ("adamergex", "exact")
WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"


def _load(adapter_dir: Path) -> tuple[dict, dict]:
    """(adapter_config.json as a dict, the LoRA tensors) of a plain LoRA adapter."""
    from peft.utils import load_peft_weights

    if not (adapter_dir / CONFIG_NAME).is_file():
        raise UserError(f"{adapter_dir}: not a PEFT adapter (no {CONFIG_NAME}); train it first")
    config = json.loads((adapter_dir / CONFIG_NAME).read_text())
    if config.get("peft_type") != "LORA":
        raise UserError(
            f"{adapter_dir}: peft_type {config.get('peft_type')!r}; only LoRA adapters compose"
        )
    # rsLoRA and per-module ranks or alphas change the scaling per module, DoRA adds a
    # magnitude vector, modules_to_save adds full weights: none is a plain sum of B A.
    flags = ("use_rslora", "use_dora", "rank_pattern", "alpha_pattern", "modules_to_save")
    unsupported = [key for key in flags if config.get(key)]
    if unsupported:
        raise UserError(
            f"{adapter_dir}: {', '.join(unsupported)} set; only plain LoRA adapters compose"
        )
    return config, load_peft_weights(str(adapter_dir), device="cpu")


def _pairs(weights: dict, where: Path) -> dict[str, tuple]:
    """module prefix -> (lora_A, lora_B)."""
    modules = {}
    for key in weights:
        if key.endswith(".lora_A.weight"):
            prefix = key.removesuffix(".lora_A.weight")
            b = weights.get(f"{prefix}.lora_B.weight")
            if b is None:
                raise UserError(f"{where}: {prefix} has lora_A but no lora_B")
            modules[prefix] = (weights[key], b)
    if len(modules) * 2 != len(weights):
        extra = sorted(k for k in weights if ".lora_A." not in k and ".lora_B." not in k)[:3]
        raise UserError(f"{where}: tensors other than lora_A/lora_B ({extra}); not a plain LoRA")
    return modules


def _check_compatible(dirs: list[Path], configs: list[dict], modules: list[dict], mode: str):
    first, config0 = dirs[0], configs[0]
    for d, config, mods in zip(dirs[1:], configs[1:], modules[1:]):
        if set(mods) != set(modules[0]):
            example = sorted(set(mods) ^ set(modules[0]))[:2]
            raise UserError(
                f"{d}: targets other modules than {first} (e.g. {example}); "
                "retrain them with the same lora.target_modules"
            )
        if mode == "adamergex" and (config["r"], config["lora_alpha"]) != (
            config0["r"], config0["lora_alpha"]
        ):
            raise UserError(
                f"{d}: LoRA r={config['r']}, alpha={config['lora_alpha']} differs from {first} "
                f"(r={config0['r']}, alpha={config0['lora_alpha']}); adamergex adds A and B "
                "tensors, so ranks and alphas must match (mode 'exact' allows different ones)"
            )
        base, base0 = config.get("base_model_name_or_path"), config0.get("base_model_name_or_path")
        if base != base0:
            raise UserError(f"{d}: trained on {base}, but {first} on {base0}")


def compose_adapters(
    adapter_dirs: Sequence[str | Path], weights: Sequence[float], out_dir: str | Path, mode: str
) -> dict:
    """Write the weighted combination of LoRA adapters to `out_dir` as a PEFT adapter.

    Returns a summary (mode, weights, rank of the result). Adapters must target the
    same modules; `adamergex` also needs the same rank and alpha, since it adds A and
    B matrices directly.
    """
    import torch
    from safetensors.torch import save_file

    if mode not in MODES:
        raise UserError(
            f"generator.composition.mode: got {mode!r}; allowed: {', '.join(MODES)}"
        )
    if len(adapter_dirs) != len(weights) or not adapter_dirs:
        raise ValueError("need one weight per adapter, and at least one adapter")
    dirs = [Path(d) for d in adapter_dirs]
    loaded = [_load(d) for d in dirs]
    configs = [config for config, _ in loaded]
    modules = [_pairs(tensors, d) for (_, tensors), d in zip(loaded, dirs)]
    _check_compatible(dirs, configs, modules, mode)

    scales = [config["lora_alpha"] / config["r"] for config in configs]
    composed = {}
    for prefix in modules[0]:
        a_list = [mods[prefix][0].float() for mods in modules]
        b_list = [mods[prefix][1].float() for mods in modules]
        if mode == "adamergex":
            a = sum(w * A for w, A in zip(weights, a_list))
            b = sum(w * B for w, B in zip(weights, b_list))
        else:
            a = torch.cat([w * s * A for w, s, A in zip(weights, scales, a_list)], dim=0)
            b = torch.cat(b_list, dim=1)
        dtype = modules[0][prefix][0].dtype
        composed[f"{prefix}.lora_A.weight"] = a.to(dtype).contiguous()
        composed[f"{prefix}.lora_B.weight"] = b.to(dtype).contiguous()

    out_config = dict(configs[0], inference_mode=True)
    if mode == "exact":
        rank = sum(config["r"] for config in configs)
        # alpha = r makes the scaling 1: each adapter's alpha/r is already folded into A
        out_config.update(r=rank, lora_alpha=rank)
    with atomic_dir(out_dir) as tmp:
        save_file(composed, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(out_config, indent=2, sort_keys=True) + "\n")
    return {"mode": mode, "adapters": [str(d) for d in dirs], "weights": list(weights),
            "r": out_config["r"]}


def compose_language_adapter(
    task: str | Path,
    language: str | Path,
    english: str | Path,
    lam: float,
    mode: str,
    out_dir: str | Path,
) -> dict:
    """AdaMergeX's cross-lingual transfer: task + lam * (language - english)."""
    return compose_adapters([task, language, english], [1.0, lam, -lam], out_dir, mode)
