"""Adapter training resumes from its saved state: the same adapter as an uninterrupted run."""

from __future__ import annotations

import pytest

from bootstrap_embeddings.config import AdapterTraining, LoraParams
from bootstrap_embeddings.generator.adapter_state import STATE_DIR, STATE_FILE
from bootstrap_embeddings.generator.adapters import train_lora_adapter

# dropout and a warm-up, so that the RNG state and the schedule have to be restored too
LORA = LoraParams(r=4, alpha=8, dropout=0.1, target_modules="all-linear")
ROWS = [{"prompt_text": f"Premise: the cat {i} sat.", "completion": f"A cat {i % 3} sat."}
        for i in range(10)]
TRAINING = AdapterTraining(max_steps=6, lr=2e-2, warmup_ratio=0.3, batch_size=4, grad_accum=2,
                           max_grad_norm=1.0, max_length=128, max_examples=100,
                           checkpoint_every=2)
KW = dict(lora=LORA, training=TRAINING, quantization="none", seed=5, completion_only=True,
          progress=False)


class Killed(Exception):
    pass


def _tensors(folder):
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def _assert_same(a, b):
    import torch

    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def test_resumed_run_gives_the_uninterrupted_adapter(tiny_generator, tmp_path):
    reference = train_lora_adapter(tiny_generator, ROWS, tmp_path / "ref", **KW)
    cache = tmp_path / "cache"

    def stop_at(n):
        def on_step(step, loss):
            if step == n:
                raise Killed
        return on_step

    for stop in (3, 5):  # after the states of step 2, then of step 4 (a resume resumed)
        with pytest.raises(Killed):
            train_lora_adapter(tiny_generator, ROWS, tmp_path / "out", checkpoint_dir=cache,
                               on_step=stop_at(stop), **KW)
        (key,) = cache.iterdir()
        assert (key / STATE_DIR / STATE_FILE).is_file()
        assert not (tmp_path / "out").exists()
    steps = []
    resumed = train_lora_adapter(tiny_generator, ROWS, tmp_path / "out", checkpoint_dir=cache,
                                 on_step=lambda step, loss: steps.append(step), **KW)
    assert steps == [5, 6]  # it went on from the state of step 4
    assert resumed["losses"] == reference["losses"]
    _assert_same(tmp_path / "ref", tmp_path / "out")
    assert list(cache.iterdir()) == []  # the state is gone once the adapter is saved


def test_a_state_of_other_params_is_not_resumed_and_is_removed(tiny_generator, tmp_path):
    cache = tmp_path / "cache"

    def stop(step, loss):
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        train_lora_adapter(tiny_generator, ROWS, tmp_path / "a", checkpoint_dir=cache,
                           on_step=stop, **KW)
    (old,) = cache.iterdir()
    steps = []
    other = KW | {"seed": 6}
    train_lora_adapter(tiny_generator, ROWS, tmp_path / "b", checkpoint_dir=cache,
                       on_step=lambda step, loss: steps.append(step), **other)
    assert steps == list(range(1, 7)) and not old.exists()
    train_lora_adapter(tiny_generator, ROWS, tmp_path / "c", **other)
    _assert_same(tmp_path / "b", tmp_path / "c")


def test_a_damaged_state_is_ignored(tiny_generator, tmp_path):
    cache = tmp_path / "cache"

    def stop(step, loss):
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        train_lora_adapter(tiny_generator, ROWS, tmp_path / "a", checkpoint_dir=cache,
                           on_step=stop, **KW)
    (key,) = cache.iterdir()
    state = key / STATE_DIR / STATE_FILE
    state.write_bytes(state.read_bytes()[:100])
    steps = []
    train_lora_adapter(tiny_generator, ROWS, tmp_path / "a", checkpoint_dir=cache,
                       on_step=lambda step, loss: steps.append(step), **KW)
    assert steps == list(range(1, 7))
    train_lora_adapter(tiny_generator, ROWS, tmp_path / "ref", **KW)
    _assert_same(tmp_path / "a", tmp_path / "ref")
