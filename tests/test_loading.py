"""Generator loading: quantization modes and the CPU 4-bit repacking trap."""

from __future__ import annotations

import pytest

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.generator.loading import load_generator, resolve_quantization


def test_auto_resolves_to_a_concrete_mode():
    import torch

    chosen = resolve_quantization("auto")
    assert chosen in ("4bit", "8bit", "none")
    if not torch.cuda.is_available():
        assert chosen == "none"


def test_bad_mode_and_missing_checkpoint_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="generator.quantization"):
        resolve_quantization("3bit")
    with pytest.raises(UserError, match="no generator checkpoint"):
        load_generator(str(tmp_path / "absent"), "none", for_training=False)


@pytest.mark.parametrize("mode", ["none", "4bit"])
def test_tokenizer_pads_left_and_training_freezes_the_base(tiny_generator, mode):
    model, tokenizer, used = load_generator(str(tiny_generator), mode, for_training=True)
    assert used == mode
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    assert model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_4bit_training_after_generate_still_gets_gradients(tiny_generator):
    """The trap: on avx512_bf16 CPUs a no-grad forward repacks 4-bit weights into a
    layout without a backward, so LoRA after generate() would get zero gradients."""
    import bitsandbytes as bnb
    import torch
    from peft import LoraConfig, get_peft_model

    model, tokenizer, _ = load_generator(str(tiny_generator), "4bit", for_training=True)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and not any(m.support_avx512bf16_for_cpu for m in layers)

    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    batch = tokenizer(["hello world", "abc"], return_tensors="pt", padding=True)
    model.eval()
    with torch.no_grad():
        model.generate(**batch, max_new_tokens=3, do_sample=False)
    model.train()
    model(**batch, labels=batch["input_ids"]).loss.backward()
    # lora_B starts at zero, so lora_A's gradient is zero at step 0; lora_B's is not.
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
