"""CLDR emoji annotations: short names aligned with English, the second held-out evaluation.

npm `cldr-annotations-full` holds `package/annotations/<locale>/annotations.json`:
per emoji a short name (`tts`, one phrase) and keywords (`default`, a few words). Every
locale names the same emojis, so the emoji aligns a locale's short name with the
English one: "launin fata mai haske" (ha) <-> "light skin tone" (en).

Only short names are used. Keywords are not: they are sets of single words that many
emojis share ("fuska" / "face" tag dozens), so a keyword has no one right counterpart
on the other side, which bitext mining and retrieval assume.

The emojis are split once, by a hash of the emoji, into an evaluation part and a small
dev part (`DEV_SHARE`): the same split for every language, seed and experiment, so no
dev emoji is ever evaluated, and no language's evaluation items are another's dev
items. The split is a constant, not a param: changing it would change what every
score means.

Held out from everything that trains, generates or calibrates: only data/prepare.py
reads CLDR text through this module (it writes eval_cldr.jsonl and dev.jsonl, and its
leak guard drops any training row that repeats a short name); evaluation/sources.py
takes a file name from it. tests/test_data_cldr.py checks that nothing else imports it.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from functools import lru_cache
from pathlib import Path

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.npm_sources import tarball_name

PACKAGE = "cldr-annotations-full@48.2.0"
ARCHIVE = Path("data/sources") / tarball_name(PACKAGE)
ENGLISH_LOCALE = "en"
# Share of the emojis in the dev part (disjoint from the evaluation part).
DEV_SHARE = 0.15
EVAL_FILE, DEV_FILE = "eval_cldr.jsonl", "dev.jsonl"

_ANNOTATIONS = "package/annotations/"


def locale_for(language: str) -> str:
    """The CLDR locale of an ISO 639-3 code: its ISO 639-1 code where one exists (hau -> ha),
    else the code itself (fil), as CLDR names its locales."""
    import pycountry

    entry = pycountry.languages.get(alpha_3=language)
    return getattr(entry, "alpha_2", None) or language


def emoji_id(emoji: str) -> str:
    """A row id that is plain ASCII: the emoji's code points in hex ("cldr:1f44d-1f3fb")."""
    return "cldr:" + "-".join(f"{ord(c):x}" for c in emoji)


def is_dev(emoji: str) -> bool:
    """Whether the emoji is in the dev part: the first 8 bytes of its sha256 as a fraction."""
    digest = hashlib.sha256(emoji.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < DEV_SHARE


class Annotations:
    """The short names of every locale in one cldr-annotations-full tarball."""

    def __init__(self, archive: str | Path) -> None:
        self.archive = Path(archive)
        if not self.archive.is_file():
            raise UserError(f"{self.archive}: no such file; run `dvc repro sources` first")
        with tarfile.open(self.archive) as tar:
            self.locales = {
                name.removeprefix(_ANNOTATIONS).split("/")[0]
                for name in tar.getnames()
                if name.startswith(_ANNOTATIONS) and name.endswith("/annotations.json")
            }

    @lru_cache(maxsize=None)
    def short_names(self, locale: str) -> dict[str, str]:
        """{emoji: short name} of one locale (emojis without a short name left out)."""
        with tarfile.open(self.archive) as tar:
            member = tar.extractfile(f"{_ANNOTATIONS}{locale}/annotations.json")
            data = json.load(member)
        entries = data["annotations"]["annotations"]
        return {emoji: e["tts"][0].strip() for emoji, e in entries.items()
                if e.get("tts") and e["tts"][0].strip()}

    def _missing(self, language: str, locale: str) -> UserError:
        import pycountry

        # Point at a locale of the same language name, e.g. swh "Swahili (individual
        # language)" -> sw "Swahili (macrolanguage)".
        name = pycountry.languages.get(alpha_3=language)
        first = name.name.split(" (")[0] if name else None
        near = sorted(loc for loc in self.locales if first and "-" not in loc
                      and (other := pycountry.languages.get(alpha_2=loc) if len(loc) == 2
                           else pycountry.languages.get(alpha_3=loc))
                      and other.name.split(" (")[0] == first)
        hint = f"; it has {', '.join(near)} ({first})" if near else ""
        return UserError(
            f"languages: {language!r} has no CLDR annotations (locale {locale!r} is not in "
            f"{self.archive.name}){hint}; drop the cldr_* tasks from eval.local_tasks "
            "to evaluate it on the UDHR only"
        )

    def pairs(self, language: str) -> list[dict]:
        """{id, text, english, emoji} for every emoji with a short name in both languages,
        in the English file's order."""
        locale = locale_for(language)
        if locale not in self.locales:
            raise self._missing(language, locale)
        target = self.short_names(locale)
        english = self.short_names(ENGLISH_LOCALE)
        return [{"id": emoji_id(e), "text": target[e], "english": name, "emoji": e}
                for e, name in english.items() if e in target]


def split(pairs: list[dict]) -> tuple[list[dict], list[dict]]:
    """(evaluation rows, dev rows), both {id, text, english}, split by `is_dev`."""
    evaluation, dev = [], []
    for pair in pairs:
        row = {k: pair[k] for k in ("id", "text", "english")}
        (dev if is_dev(pair["emoji"]) else evaluation).append(row)
    return evaluation, dev


def held_out_texts(languages: list[str], archive: str | Path = ARCHIVE) -> list[str]:
    """Every English short name and those of the languages CLDR has: what the prepare
    stages' leak guard keeps out of anything trained or generated from (a WordNet usage
    example reads "concentric circles", an emoji's English short name)."""
    annotations = open_annotations(archive)
    texts = list(annotations.short_names(ENGLISH_LOCALE).values())
    for language in languages:
        if locale_for(language) in annotations.locales:
            texts += annotations.short_names(locale_for(language)).values()
    return texts


@lru_cache(maxsize=4)
def open_annotations(archive: str | Path = ARCHIVE) -> Annotations:
    return Annotations(archive)


def prepared_files(
    language: str, required: bool, archive: str | Path = ARCHIVE
) -> dict[str, list[dict]]:
    """The prepare stage's CLDR files of a language: {eval_cldr.jsonl: rows, dev.jsonl: rows}.

    A language CLDR lacks is an error if `required` (a cldr task is to be run), else
    both files are empty (they are DVC deps of later stages, so they always exist).
    """
    annotations = open_annotations(archive)
    if not required and locale_for(language) not in annotations.locales:
        return {EVAL_FILE: [], DEV_FILE: []}
    evaluation, dev = split(annotations.pairs(language))
    return {EVAL_FILE: evaluation, DEV_FILE: dev}
