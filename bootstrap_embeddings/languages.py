"""Language names and writing scripts, from ISO 639-3 codes."""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache


@lru_cache(maxsize=None)
def language_name(code: str) -> str:
    """English name for prompts ("hau" -> "Hausa"), from pycountry's ISO 639-3 table."""
    import pycountry

    lang = pycountry.languages.get(alpha_3=code)
    if lang is None:
        raise KeyError(code)
    # pycountry names some macrolanguages with a qualifier: "Swahili (macrolanguage)"
    return lang.name.split(" (")[0]


def fill_language(value: str | None, code: str | None) -> str | None:
    """A source's `name`, `config`, `path` or `filter` value for one language: `{lang}` is
    the ISO 639-3 code, `{language}` the English name in lower case, spaces as
    underscores (how mbasoz/xllora-datasets and Aya Collection name their languages)."""
    if value is None or code is None:
        return value
    if "{language}" in value:
        value = value.replace("{language}", language_name(code).lower().replace(" ", "_"))
    return value.replace("{lang}", code)


def char_script(ch: str) -> str | None:
    """Unicode script of a letter, from the first word of its name ("LATIN", "DEVANAGARI")."""
    if not ch.isalpha():
        return None
    try:
        return unicodedata.name(ch).split(" ")[0]
    except ValueError:
        return None


def dominant_script(text: str) -> str | None:
    """The script most of a text's letters are written in; None for a text with no letters."""
    counts = Counter(s for s in map(char_script, text) if s)
    return counts.most_common(1)[0][0] if counts else None
