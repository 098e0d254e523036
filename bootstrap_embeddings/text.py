"""The form in which two texts are compared: a copy with other case or punctuation is a copy."""

from __future__ import annotations

import re
import unicodedata


def _is_punct_or_space(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PZ"


def normalise(text: str) -> str:
    """Form used to compare texts: NFKC, case-folded, whitespace collapsed, end punctuation off.

    So "The cat sleeps." and "the cat  sleeps" count as the same sentence.
    """
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold())
    start, end = 0, len(text)
    while start < end and _is_punct_or_space(text[start]):
        start += 1
    while end > start and _is_punct_or_space(text[end - 1]):
        end -= 1
    return text[start:end]
