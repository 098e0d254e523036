"""The generation loop (generator/decoding.py) against transformers' own generate and warpers."""

import pytest

from bootstrap_embeddings.generator import decoding
from bootstrap_embeddings.generator.prompts import chat_wrap, nli_prompt

# Premises of different lengths: left padding, and prompts longer than the tiny
# model's 64-token sliding window.
PREMISES = ["Short one.", "A somewhat longer premise sentence than the first.", "Mid length.",
            "Another premise, long enough to need the left padding of the others: " * 2]


# tiny matmuls: one torch thread (conftest)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("prompts", ["shared_prefix", "distinct"])
def test_greedy_decoding_equals_generate_token_for_token(peaked_generator, prompts):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(peaked_generator)
    model = AutoModelForCausalLM.from_pretrained(peaked_generator).eval()
    if prompts == "shared_prefix":  # the instruction: a pass of its own, its cache copied
        texts = [chat_wrap(tokenizer, nli_prompt(p, r, "English"))
                 for p in PREMISES for r in ("entailment", "contradiction")]
    else:
        texts = [f"<bos>{p}" for p in PREMISES] + ["<bos>" + PREMISES[0] * 8]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    prefix = decoding.shared_prefix(enc["input_ids"], enc["attention_mask"])
    assert (prefix >= decoding.MIN_PREFIX) == (prompts == "shared_prefix")
    n = 8
    with torch.inference_mode():
        free = model.generate(**enc, max_new_tokens=n, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id)[:, enc["input_ids"].shape[1]:]
    # a stop token that ends some rows early and not others, so rows leave the batch
    stop = free[0, 1].item()
    stops = {tokenizer.eos_token_id, stop}
    with torch.inference_mode():
        ref = model.generate(**enc, max_new_tokens=n, do_sample=False, eos_token_id=sorted(stops),
                             pad_token_id=tokenizer.pad_token_id)[:, enc["input_ids"].shape[1]:]
    expected = []
    for row in ref.tolist():
        ends = [i for i, t in enumerate(row) if t in stops]
        expected.append(row[: ends[0] + 1] if ends else row)
    lengths = {len(row) for row in expected}
    assert min(lengths) < n and max(lengths) == n  # the loop prunes and keeps going

    got = decoding.decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=n,
                          stop_ids=stops, do_sample=False)
    assert got.tokens == expected


def test_shared_prefix_of_a_left_padded_batch():
    import torch

    ids = torch.tensor([[0, 0, 5, 6, 7, 8], [5, 6, 7, 9, 9, 9], [0, 5, 6, 7, 8, 1]])
    mask = (ids != 0).long()
    assert decoding.shared_prefix(ids, mask) == 3
    assert decoding.shared_prefix(ids[:1].repeat(2, 1), mask[:1].repeat(2, 1)) == 3  # 1 left own


def test_top_k_nucleus_is_the_full_vocabulary_nucleus_on_the_same_draws():
    import torch

    torch.manual_seed(0)
    rows, vocab = 64, 1000
    logits = torch.randn(rows, vocab) * torch.linspace(0.2, 12.0, rows).unsqueeze(-1)  # flat..peaked
    for temperature, top_p in ((0.7, 0.95), (1.0, 0.5), (1.3, 0.99)):
        for _ in range(5):
            u = torch.rand(rows)
            full, zero = decoding.sample_nucleus(logits, u, temperature, top_p, top_k=None)
            fast, fell_back = decoding.sample_nucleus(logits, u, temperature, top_p, top_k=16)
            assert zero == 0 and torch.equal(full, fast)
            assert 0 < fell_back < rows  # both the top-k path and the fallback were taken


def test_the_nucleus_is_the_one_transformers_keeps():
    """Every token a draw can pick is in TopPLogitsWarper's nucleus, and every one of those
    is picked by some draw."""
    import torch
    from transformers.generation.logits_process import TopPLogitsWarper

    torch.manual_seed(1)
    logits = torch.randn(8, 50) * 3
    kept = TopPLogitsWarper(0.9)(None, logits / 0.7) > float("-inf")
    draws = torch.linspace(0, 1, 20001)[:-1]
    for row in range(logits.shape[0]):
        picked, _ = decoding.sample_nucleus(logits[row].expand(len(draws), -1), draws, 0.7, 0.9,
                                            top_k=None)
        assert set(picked.tolist()) == set(kept[row].nonzero().squeeze(-1).tolist())


def test_stop_ids_hold_the_newline_tokens(tiny_generator):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_generator)
    assert decoding.stop_token_ids(tokenizer, newline=False) == {tokenizer.eos_token_id}
    # the character vocabulary has no newline: only the end of sequence stops a row
    assert decoding.stop_token_ids(tokenizer, newline=True) == {tokenizer.eos_token_id}
