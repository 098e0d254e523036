"""The paper's NLI prompts, ICL prompts, and the text format around them.

Adapter training and generation build their inputs with the same two functions,
`nli_prompt` and `chat_wrap`, so a LoRA sees at inference exactly the prompt text it
was trained on. An instruction-tuned generator (Gemma-3-27B-it) gets its chat
template; a base model (the embedded gemma-3-270m, whose GGUF ships no template)
gets a completion format: the prompt, then an answer cue. Every wrapped prompt
already holds the BOS token, so it is tokenized with `add_special_tokens=False`.
"""

from __future__ import annotations

import re

RELATIONS = ("entailment", "contradiction")
# XL-LoRA's adapters are trained to answer in English, with "English" named in the
# prompt (the official generation script passes --language English).
XL_LORA_PROMPT_LANGUAGE = "English"

# The paper's prompt (two per anchor: one per relation). The official code words it
# slightly differently for training and for generation (line breaks, "of the
# premise"); we use one text for both, so an adapter is prompted as it was trained.
_NLI_PROMPT = (
    "You are an expert at natural language inference. Given a premise, you should return "
    "{article} {relation} sentence example (in {language}) to the premise. Return only the "
    "{relation} sentence example without any preamble or explanation. Premise: {premise}"
)
_ARTICLE = {"entailment": "an", "contradiction": "a"}

# The paper's language-adapter prompt around an Aya instruction (the official code's
# lora_training.py; its triple-quoted string's indentation left out). The answer,
# in the language, is the completion; the loss is on every token.
_LANGUAGE_ADAPTER_PROMPT = "Given the following text, generate a relevant answer in {language} language\n{text}"

# Base-model format: the answer follows this cue on the same line. ICL examples use
# the same cue, so a few-shot prompt reads as one consistent pattern to a base model.
ANSWER_CUE = "Answer:"

# Stand-in answer used to read the template's end-of-turn text (see format_completion).
_PLACEHOLDER = "\x00ANSWER\x00"


def _check_relation(relation: str) -> None:
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")


def nli_prompt(premise: str, relation: str, language_name: str) -> str:
    """The paper's prompt asking for an entailment or contradiction of `premise` in a language."""
    _check_relation(relation)
    return _NLI_PROMPT.format(
        article=_ARTICLE[relation], relation=relation, language=language_name, premise=premise
    )


def language_adapter_prompt(instruction: str, language_name: str) -> str:
    """The paper's prompt asking for an answer to `instruction` in a language."""
    return _LANGUAGE_ADAPTER_PROMPT.format(language=language_name, text=instruction)


def icl_prompt(premise: str, relation: str, language_name: str, shots: list[dict]) -> str:
    """The paper's prompt preceded by k worked examples ({premise, hypothesis} dicts).

    The examples come from the English NLI data (no target-language NLI ships with the
    embedded default), so the instruction's "(in {language})" is what asks for
    target-language output; the examples show the task, not the language.
    """
    _check_relation(relation)
    if not shots:
        return nli_prompt(premise, relation, language_name)
    examples = "\n\n".join(
        f"Premise: {s['premise']}\n{ANSWER_CUE} {s['hypothesis']}" for s in shots
    )
    head, _ = nli_prompt(premise, relation, language_name).rsplit(" Premise: ", 1)
    return f"{head}\n\nExamples:\n\n{examples}\n\nPremise: {premise}"


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_wrap(tokenizer, prompt: str) -> str:
    """The full model input for one prompt, BOS included.

    With a chat template: one user turn and the opening of the model's turn.
    Without: "<bos>{prompt}\\nAnswer:" and the model continues after the cue.
    """
    if has_chat_template(tokenizer):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    else:
        text = f"{prompt}\n{ANSWER_CUE}"
    bos = tokenizer.bos_token or ""
    return text if text.startswith(bos) else bos + text


def format_completion(tokenizer, answer: str) -> str:
    """What follows `chat_wrap(tokenizer, prompt)` in a training example whose answer is `answer`.

    `chat_wrap(...) + format_completion(...)` is the whole training text, ending where
    generation should stop: the template's end of turn (read off the template itself,
    by rendering a conversation with a placeholder answer), or " answer<eos>" in the
    completion format (a space after the cue, as a tokenizer sees "Answer: text").
    """
    answer = answer.strip()
    if not has_chat_template(tokenizer):
        return f" {answer}{tokenizer.eos_token or ''}"
    user = [{"role": "user", "content": "x"}]
    prefix = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        user + [{"role": "assistant", "content": _PLACEHOLDER}], tokenize=False
    )
    if not full.startswith(prefix):
        raise ValueError(
            "the chat template renders the model turn differently from its generation prompt"
        )
    return full[len(prefix):].rstrip().replace(_PLACEHOLDER, answer)


# Scaffolding a model echoes at the start of a line: "Answer:", "Entailment sentence:", ...
_LABEL = re.compile(
    r"^\s*(?:answer|hypothesis|entailment|contradiction|sentence|example|output)"
    r"(?:\s+sentence)?(?:\s+example)?\s*[:：]\s*",
    re.IGNORECASE,
)
# A line that restates a premise (the prompt's or a new example's) is not an answer.
_PREMISE = re.compile(r"^\s*premise\s*[:：]", re.IGNORECASE)
_QUOTES = "\"'“”‘’«»„`*"


def clean_generation(text: str) -> str:
    """The answer sentence alone: the first line that holds one, labels and quotes removed.

    A model often echoes "Premise:" / "Answer:" or wraps the sentence in quotes or
    markdown bold; once an answer line is found, what follows is a new example, not
    the answer. Returns "" when nothing is left (callers drop those).
    """
    for line in text.splitlines():
        if _PREMISE.match(line):
            continue
        while True:
            stripped = _LABEL.sub("", line, count=1).strip().strip(_QUOTES).strip()
            if stripped == line:
                break
            line = stripped
        if line:
            return line
    return ""
