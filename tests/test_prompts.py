"""The paper's prompts, the two input formats around them, and answer cleaning."""

import pytest

from bootstrap_embeddings.generator.prompts import (
    chat_wrap,
    clean_generation,
    format_completion,
    icl_prompt,
    nli_prompt,
)

# Gemma-3-it's template, reduced to what a user/model exchange renders.
GEMMA_LIKE_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "<start_of_turn>{{ role }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@pytest.fixture
def tokenizer(tiny_generator):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_generator)


@pytest.fixture
def chat_tokenizer(tiny_generator):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_generator)
    tok.chat_template = GEMMA_LIKE_TEMPLATE
    return tok


def test_nli_prompts_are_the_papers():
    assert nli_prompt("The sky is blue.", "entailment", "Hausa") == (
        "You are an expert at natural language inference. Given a premise, you should return "
        "an entailment sentence example (in Hausa) to the premise. Return only the entailment "
        "sentence example without any preamble or explanation. Premise: The sky is blue."
    )
    neg = nli_prompt("The sky is blue.", "contradiction", "English")
    assert "return a contradiction sentence example (in English)" in neg
    assert "Return only the contradiction sentence example" in neg
    with pytest.raises(ValueError):
        nli_prompt("x", "neutral", "English")


def test_completion_format_without_chat_template(tokenizer):
    text = chat_wrap(tokenizer, nli_prompt("A man sleeps.", "entailment", "English"))
    assert text.startswith(tokenizer.bos_token) and text.count(tokenizer.bos_token) == 1
    assert text.endswith("Premise: A man sleeps.\nAnswer:")
    completion = format_completion(tokenizer, " A person rests. ")
    assert completion == " A person rests." + tokenizer.eos_token


def test_chat_template_is_used_when_present(chat_tokenizer):
    tok = chat_tokenizer
    text = chat_wrap(tok, "Say hi.")
    turns = "<start_of_turn>user\nSay hi.<end_of_turn>\n<start_of_turn>model\n"
    assert text == tok.bos_token + turns
    # training text = wrapped prompt + completion = the template's own rendering of the exchange
    exchange = [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi."}]
    full = tok.apply_chat_template(exchange, tokenize=False)
    assert text + format_completion(tok, "Hi.") == full.rstrip()


def test_icl_prompt_holds_the_shots_and_asks_for_the_target_language():
    shots = [{"premise": f"Premise {i}.", "hypothesis": f"Hypothesis {i}."} for i in range(3)]
    text = icl_prompt("Target premise.", "contradiction", "Hausa", shots)
    assert text.count("Premise:") == 4
    assert all(f"Answer: Hypothesis {i}." in text for i in range(3))
    assert "a contradiction sentence example (in Hausa)" in text
    assert text.endswith("Premise: Target premise.")
    assert icl_prompt("P.", "entailment", "Hausa", []) == nli_prompt("P.", "entailment", "Hausa")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (" A woman is outside.\nPremise: next example", "A woman is outside."),
        ('Entailment sentence: "A dog runs."', "A dog runs."),
        ("\n\n**Answer:** Mutum yana barci.", "Mutum yana barci."),
        ("Premise: echoed premise\nAnswer: the answer", "the answer"),
        ("Answer:", ""),
        ("  \n ", ""),
    ],
)
def test_clean_generation(raw, clean):
    assert clean_generation(raw) == clean
