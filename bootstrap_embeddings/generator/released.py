"""Published LoRA adapters as an adapter source: fetched and checked, not trained.

`generator.xl_lora.released` names the paper's XL-LoRA adapters
(`mbasoz/lora-gemma327b-xllora-pos` / `-neg`) or local PEFT adapter directories. The
`xl_lora_adapter` stage then writes them to `models/adapters/xl_lora_<kind>` as the
trained ones would be (PEFT `save_pretrained` files + training.json), so every later
stage reads them the same way.

Before writing, the adapter is loaded with `PeftModel.from_pretrained` onto the base
generator's architecture built on the meta device (accelerate's `init_empty_weights`:
no base weights are read, so this is seconds even for Gemma-3-27B): an adapter
made for another model is a one-line error here (a module it targets is missing, or
a shape differs), not a traceback in the generate stage.
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

from bootstrap_embeddings.errors import UserError

ADAPTER_CONFIG = "adapter_config.json"
# what a PEFT adapter repo holds (the hub repo may hold more: checkpoints, logs)
ADAPTER_FILES = (ADAPTER_CONFIG, "adapter_model.safetensors", "adapter_model.bin", "README.md")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _first_lines(err: BaseException, n: int = 2) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return " ".join(lines[:n]) or type(err).__name__


def fetch_adapter(spec: str, key: str) -> tuple[Path, dict]:
    """The local directory of the adapter `spec` (a path, or a hub id downloaded to the hub
    cache), and where it came from: {kind: local, path} or {kind: hub, adapter_id, revision}."""
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{key}: {spec} is a file; expected a PEFT adapter directory")
        info = {"kind": "local", "path": str(path.resolve())}
    elif _HUB_ID.match(spec):
        from huggingface_hub import snapshot_download

        try:
            path = Path(snapshot_download(spec, allow_patterns=list(ADAPTER_FILES)))
        # offline, no network, unknown or gated id: all mean this id cannot be used now
        except Exception as err:  # noqa: BLE001
            raise UserError(f"{key}: {spec!r} is not a local directory, and the hub cannot "
                            f"give it ({type(err).__name__}: {_first_lines(err, 1)})") from None
        info = {"kind": "hub", "adapter_id": spec, "revision": path.name}  # snapshots/<revision>
    else:
        raise UserError(f"{key}: {spec}: no such directory (nor an owner/name hub id)")
    if not (path / ADAPTER_CONFIG).is_file():
        raise UserError(f"{key}: {spec}: no {ADAPTER_CONFIG}; not a PEFT adapter")
    if not any((path / f).is_file() for f in ADAPTER_FILES[1:3]):
        raise UserError(f"{key}: {spec}: no adapter_model.safetensors (or .bin)")
    return path, info


def check_fits(adapter_dir: Path, base: str, revision: str | None, key: str) -> None:
    """A UserError unless the adapter loads onto the base generator's architecture."""
    from accelerate import init_empty_weights
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(base, revision=revision)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    try:
        with warnings.catch_warnings():
            # every tensor warns that copying into a meta parameter is a no-op: the point here
            warnings.simplefilter("ignore")
            peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    except (RuntimeError, ValueError, KeyError) as err:  # a shape differs, no module matches
        raise UserError(f"{key}: the adapter does not fit the base generator {base} "
                        f"({_first_lines(err)})") from None
    # peft only warns about weights that match no module (and leaves the modules it made
    # for them at their initial values): compare the weight names both ways
    from peft import get_peft_model_state_dict

    wanted = set(get_peft_model_state_dict(peft_model))
    saved = set(_saved_keys(adapter_dir))
    for names, what in ((saved - wanted, "a weight of the adapter matches no module of"),
                        (wanted - saved, "the adapter has no weight for a module it targets in")):
        if names:
            raise UserError(f"{key}: the adapter does not fit the base generator {base} "
                            f"({what} it: {sorted(names)[0]}; {len(names)} in all)")


def _saved_keys(adapter_dir: Path) -> list[str]:
    safetensors = adapter_dir / "adapter_model.safetensors"
    if safetensors.is_file():
        from safetensors import safe_open

        with safe_open(str(safetensors), framework="pt") as fh:
            return list(fh.keys())
    import torch

    return list(torch.load(adapter_dir / "adapter_model.bin", map_location="meta",
                           weights_only=True))


def materialise_adapter(spec: str, out_dir: str | Path, base: str, revision: str | None,
                        key: str) -> dict:
    """Fetch the adapter `spec`, check it fits `base`, write its files and training.json to
    `out_dir` (atomically). Returns the training.json record (nothing trained: 0 steps)."""
    from bootstrap_embeddings.files import atomic_dir, write_json
    from bootstrap_embeddings.generator.adapters import TRAINING_JSON
    from bootstrap_embeddings.digests import content_digest

    path, info = fetch_adapter(spec, key)
    check_fits(path, base, revision, key)
    record = {"released": spec, "source": info, "base": base, "steps": 0, "wall_time_s": 0.0}
    with atomic_dir(out_dir) as tmp:
        for name in ADAPTER_FILES:
            if (path / name).is_file():
                shutil.copyfile(path / name, Path(tmp) / name)
        record["adapter_sha256"] = content_digest(tmp)
        write_json(Path(tmp) / TRAINING_JSON, record)
    return record
