"""CLDR emoji short names: alignment with English, locales, the dev split, and that
nothing but the prepare stage reads them."""

from __future__ import annotations

import ast
import io
import json
import tarfile
from pathlib import Path

import pytest

from bootstrap_embeddings.data import cldr
from bootstrap_embeddings.errors import UserError

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / cldr.ARCHIVE

ANNOTATIONS = {
    "en": {"👍": ("thumbs up", ["hand", "up"]), "🔥": ("fire", ["flame"]),
           "⭕": ("hollow red circle", ["circle"]), "🐝": ("honeybee", ["bee"])},
    "ha": {"👍": ("babban yatsa sama", ["hannu"]), "🔥": ("wuta", ["harshen wuta"]),
           "🐝": ("kudan zuma", ["zuma"]), "🦄": ("dokin kaho", ["doki"])},  # no English
    "ha-NE": {"👍": ("yatsa sama", ["hannu"])},
    "sw": {"🔥": ("moto", ["moto"])},
    "xh": {"⭕": ("isangqa esibomvu", ["isangqa"]), "🐝": ("inyosi", [])},
}


def _tarball(path: Path, locales: dict) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for locale, entries in locales.items():
            data = {"annotations": {"identity": {"language": locale}, "annotations": {
                emoji: {"default": keywords, "tts": [name]}
                for emoji, (name, keywords) in entries.items()}}}
            blob = json.dumps(data, ensure_ascii=False).encode()
            info = tarfile.TarInfo(f"package/annotations/{locale}/annotations.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


@pytest.fixture
def archive(tmp_path):
    return _tarball(tmp_path / "cldr.tgz", ANNOTATIONS)


def test_short_names_align_with_english_through_the_emoji(archive):
    pairs = cldr.Annotations(archive).pairs("hau")  # ISO 639-3 -> CLDR locale ha
    assert [(p["text"], p["english"]) for p in pairs] == [
        ("babban yatsa sama", "thumbs up"), ("wuta", "fire"), ("kudan zuma", "honeybee")]
    assert pairs[0]["id"] == "cldr:1f44d" and pairs[0]["emoji"] == "👍"
    # keywords are not used: no keyword appears in any row
    keywords = {k for entries in ANNOTATIONS.values() for _, ks in entries.values() for k in ks}
    assert not keywords & {p[f] for p in pairs for f in ("text", "english")}
    assert [p["text"] for p in cldr.Annotations(archive).pairs("xho")] == [
        "isangqa esibomvu", "inyosi"]


def test_locales_from_iso_639_3():
    assert [cldr.locale_for(c) for c in ("hau", "xho", "zul", "kor", "fil")] == [
        "ha", "xh", "zu", "ko", "fil"]


def test_a_language_cldr_lacks_is_a_one_line_error(archive):
    with pytest.raises(UserError) as err:
        cldr.Annotations(archive).pairs("swh")  # Swahili (individual language); CLDR has sw
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("languages: 'swh' has no CLDR annotations")
    assert "it has sw (Swahili)" in message and "eval.local_tasks" in message
    # not needed (no cldr task): empty files, no error
    assert cldr.prepared_files("swh", required=False, archive=archive) == {
        cldr.EVAL_FILE: [], cldr.DEV_FILE: []}
    with pytest.raises(UserError, match="no such file"):
        cldr.Annotations(archive.parent / "missing.tgz")


def test_the_dev_split_is_a_fixed_disjoint_share_of_the_emojis():
    emojis = [chr(0x1F300 + i) + chr(0x1F3FB + i % 5) for i in range(4000)]
    dev = [e for e in emojis if cldr.is_dev(e)]
    assert 0.12 < len(dev) / len(emojis) < 0.18
    assert dev == [e for e in emojis if cldr.is_dev(e)]  # no state, no seed
    pairs = [{"id": cldr.emoji_id(e), "text": f"x{i}", "english": f"e{i}", "emoji": e}
             for i, e in enumerate(emojis)]
    evaluation, dev_rows = cldr.split(pairs)
    assert len(evaluation) + len(dev_rows) == len(pairs)
    assert not {r["id"] for r in evaluation} & {r["id"] for r in dev_rows}
    assert all(set(r) == {"id", "text", "english"} for r in evaluation + dev_rows)


def test_held_out_texts_cover_english_and_the_targets(archive):
    texts = set(cldr.held_out_texts(["hau", "swh"], archive))  # swh: no locale, no error
    assert {"thumbs up", "hollow red circle", "wuta", "dokin kaho"} <= texts
    assert "moto" not in texts


@pytest.mark.skipif(not REAL.is_file(), reason="data/sources not fetched (dvc repro sources)")
def test_the_real_annotations():
    annotations = cldr.Annotations(REAL)
    for language, n in {"hau": 1964, "xho": 1263, "afr": 1966, "mar": 1965}.items():
        pairs = annotations.pairs(language)
        assert len(pairs) == n, language
        evaluation, dev = cldr.split(pairs)
        assert 0.12 < len(dev) / n < 0.18, language
    # the same emojis are dev in every language
    dev_ids = [{r["id"] for r in cldr.split(annotations.pairs(lang))[1]} for lang in ("hau", "afr")]
    shared = {p["id"] for p in annotations.pairs("hau")} & {p["id"] for p in annotations.pairs("afr")}
    assert dev_ids[0] & shared == dev_ids[1] & shared


# Modules allowed to import bootstrap_embeddings.data.cldr: the prepare stage's library
# (reads CLDR text) and the evaluation's source table (a file name).
CLDR_READERS = {"bootstrap_embeddings/data/prepare.py", "bootstrap_embeddings/evaluation/sources.py"}


def _imports_cldr(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any("cldr" in a.name for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (
                "cldr" in (node.module or "") or any(a.name == "cldr" for a in node.names)):
            return True
    return False


def test_nothing_else_reads_cldr():
    """No other module reads CLDR text. (The dev part, dev.jsonl, is read by dev-set
    checkpoint selection, which is what it is for; the evaluation part by no stage but
    evaluate.)"""
    files = [p for folder in ("bootstrap_embeddings", "stages", "scripts", "benchmarks")
             for p in (REPO / folder).rglob("*.py")]
    readers = {str(p.relative_to(REPO)) for p in files if _imports_cldr(p)}
    assert readers == CLDR_READERS
