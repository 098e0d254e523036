"""The generation loop: KV-cached decoding where finished rows leave the batch, and
nucleus sampling over the top-k logits, exact.

Why not `model.generate`: on a CPU its nucleus sampling sorts the whole vocabulary
(262k tokens for Gemma-3) at every step for every row, which halved its throughput at
batch 32 (issue 12), and a row that has finished (end of turn, or the newline that
ends a completion-format answer) keeps costing a full row until the longest one in
the batch is done. `generate` has no option for either, so this loop calls the model
itself, with transformers' own `DynamicCache` (its `batch_select_indices` drops the
finished rows from the cache).

Sampling: the probabilities are those of `softmax(logits / temperature)` over the
whole vocabulary (one logsumexp pass); the nucleus is the shortest prefix of the
tokens by descending probability whose mass reaches `top_p` (as transformers'
TopPLogitsWarper keeps it); one uniform draw per row picks a token from the
renormalised nucleus by inverse CDF. Only the top `top_k` tokens are sorted; when
their mass falls short of `top_p` (the nucleus reaches beyond them), that row falls
back to sorting the full vocabulary. Given the same draw, the token is the one the
full-vocabulary nucleus picks, always: both paths sort the same top values the same
way, and the probabilities and cumulative sums are computed from the same numbers.

Each row's draws come from its own generator seeded from the batch seed and the
row's position, so a row's sample does not depend on which other rows are still in
the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

TOP_K = 64  # logits sorted per step before the exact fallback (Gemma-3's own top_k)


@dataclass
class Decoded:
    """A batch's new token ids per row (stop token included, no padding) and fallback count."""

    tokens: list[list[int]]
    full_sorts: int = 0  # rows x steps whose nucleus did not fit in the top k


def _nucleus_pick(sorted_probs, u, top_p: float):
    """Index into `sorted_probs` (rows, n; descending) of the token the draw `u` picks.

    The nucleus: the tokens before the first one whose cumulative mass reaches
    `top_p`, that one included (at least one token).
    """
    import torch

    cum = sorted_probs.cumsum(-1)
    # tokens whose preceding mass already reaches top_p are outside the nucleus
    size = (cum - sorted_probs < top_p).sum(-1).clamp(min=1)
    mass = cum.gather(-1, (size - 1).unsqueeze(-1)).squeeze(-1)
    target = (u * mass).unsqueeze(-1)
    index = (cum <= target).sum(-1)
    return torch.minimum(index, size - 1)


def sample_nucleus(logits, u, temperature: float, top_p: float, top_k: int | None = TOP_K):
    """Tokens (rows,) drawn from the top-p nucleus of softmax(logits / temperature) by draws `u`.

    `top_k=None` sorts the full vocabulary; otherwise only the top k, with a full sort
    for the rows whose nucleus does not fit in them. Returns (tokens, rows that fell back).
    """
    import torch

    scaled = logits.float() / temperature
    lse = torch.logsumexp(scaled, dim=-1, keepdim=True)
    if top_k is None or top_k >= scaled.shape[-1]:
        values, order = scaled.sort(dim=-1, descending=True)
        pick = _nucleus_pick((values - lse).exp(), u, top_p)
        return order.gather(-1, pick.unsqueeze(-1)).squeeze(-1), 0
    values, order = scaled.topk(top_k, dim=-1, sorted=True)
    probs = (values - lse).exp()
    pick = _nucleus_pick(probs, u, top_p)
    tokens = order.gather(-1, pick.unsqueeze(-1)).squeeze(-1)
    # The nucleus lies inside the top k iff their mass reaches top_p (the (k+1)-th token
    # then has top_p before it, so is out); otherwise that row sorts everything.
    short = probs.cumsum(-1)[:, -1] < top_p
    if short.any():
        rows = short.nonzero().squeeze(-1)
        full, _ = sample_nucleus(logits[rows], u[rows], temperature, top_p, top_k=None)
        tokens[rows] = full
    return tokens, int(short.sum())


_NEWLINE_IDS: dict[tuple, frozenset] = {}


def stop_token_ids(tokenizer, newline: bool) -> set[int]:
    """Token ids that end a row: the tokenizer's end-of-sequence id, and with `newline` every
    token whose text ends in a newline (what `stop_strings=["\\n"]` stops on in `generate`)."""
    ids = {tokenizer.eos_token_id} if isinstance(tokenizer.eos_token_id, int) else set()
    if newline:
        key = (tokenizer.name_or_path, len(tokenizer))
        if key not in _NEWLINE_IDS:  # one pass over the vocabulary, once per tokenizer
            texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
            _NEWLINE_IDS[key] = frozenset(i for i, t in enumerate(texts) if t.endswith("\n"))
        ids |= _NEWLINE_IDS[key]
    return ids


MIN_PREFIX = 8  # shared prompt tokens worth a pass of their own


def shared_prefix(input_ids, mask) -> int:
    """How many leading real tokens every row of a left-padded batch has in common,
    leaving each row at least one token of its own (the step that yields its first logits)."""
    import torch

    lengths = mask.sum(-1)
    shortest = int(lengths.min())
    width = input_ids.shape[1]
    # row r's real tokens start at width - lengths[r]; gather the first `shortest` of each
    starts = width - lengths
    index = starts.unsqueeze(-1) + torch.arange(shortest, device=input_ids.device)
    heads = input_ids.gather(1, index)
    same = (heads == heads[:1]).all(0)
    common = int(same.long().cumprod(0).sum())
    return min(common, shortest - 1)


def _prefill_prefix(model, cache, input_ids, mask, prefix: int):
    """Run the prompt prefix shared by all rows once, copy its KV cache to every row, and
    return the rest of the batch (left-padded) to prefill after it: (ids, mask, positions).

    The cache then holds [prefix][padding][row's own tokens]: the padding is masked out
    and positions continue from the prefix, so every row sees what its full prompt gives
    (a prompt's instruction and ICL shots are the same for the whole batch). transformers'
    `generate` has no shared-prefix reuse for a batch; its DynamicCache does the copy.
    """
    import torch

    lengths = mask.sum(-1)
    width = input_ids.shape[1]
    first = int(width - lengths[0])
    head = input_ids[:1, first:first + prefix]
    model(input_ids=head, attention_mask=torch.ones_like(head),
          position_ids=torch.arange(prefix, device=head.device).unsqueeze(0),
          past_key_values=cache, use_cache=True, logits_to_keep=1)
    cache.batch_repeat_interleave(input_ids.shape[0])
    rest = lengths - prefix
    suffix_width = int(rest.max())
    cols = torch.arange(suffix_width, device=input_ids.device)
    suffix_mask = (cols.unsqueeze(0) >= (suffix_width - rest).unsqueeze(-1)).long()
    # the rows' own tokens are the last `rest` of each row, already right-aligned
    suffix_ids = input_ids[:, width - suffix_width:].masked_fill(suffix_mask == 0,
                                                                input_ids[0, 0].item())
    suffix_pos = prefix + (suffix_mask.cumsum(-1) - 1).clamp(min=0)
    full_mask = torch.cat([mask.new_ones((mask.shape[0], prefix)), suffix_mask], dim=-1)
    return suffix_ids, full_mask, suffix_pos


def decode(model, input_ids, attention_mask, *, max_new_tokens: int, stop_ids: set[int],
           do_sample: bool, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
           top_k: int | None = TOP_K) -> Decoded:
    """New tokens for a left-padded batch, each row stopping at its first stop token.

    Greedy when not `do_sample`: the same tokens as `model.generate(do_sample=False)`.
    """
    import torch
    from transformers import DynamicCache

    device = input_ids.device
    rows = input_ids.shape[0]
    generators = []
    if do_sample:
        for row in range(rows):
            g = torch.Generator(device="cpu")
            g.manual_seed(seed * 1_000_003 + row)
            generators.append(g)
    stop = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
    out: list[list[int]] = [[] for _ in range(rows)]
    active = torch.arange(rows, device=device)  # original row of each batch position
    mask = attention_mask.long()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    step_ids, step_pos = input_ids, positions
    full_sorts = 0
    with torch.inference_mode():
        prefix = shared_prefix(input_ids, mask) if rows > 1 else 0
        if prefix >= MIN_PREFIX:
            step_ids, mask, step_pos = _prefill_prefix(model, cache, input_ids, mask, prefix)
        for step in range(max_new_tokens):
            logits = model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos,
                           past_key_values=cache, use_cache=True, logits_to_keep=1
                           ).logits[:, -1]
            if do_sample:
                u = torch.stack([torch.rand((), generator=generators[r]) for r in active.tolist()])
                tokens, fell_back = sample_nucleus(logits, u.to(device), temperature, top_p, top_k)
                full_sorts += fell_back
            else:
                tokens = logits.argmax(-1)
            for r, t in zip(active.tolist(), tokens.tolist()):
                out[r].append(t)
            if step == max_new_tokens - 1:
                break
            keep = ~torch.isin(tokens, stop)
            next_pos = mask.sum(-1, keepdim=True)  # = last position + 1
            if not bool(keep.all()):
                if not bool(keep.any()):
                    break
                index = keep.nonzero().squeeze(-1)
                cache.batch_select_indices(index)
                active, tokens, mask, next_pos = active[index], tokens[index], mask[index], next_pos[index]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            step_ids, step_pos = tokens.unsqueeze(-1), next_pos
    return Decoded(out, full_sorts)
