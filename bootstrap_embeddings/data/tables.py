"""Tables of text from any `Source`: hub datasets, local files, and the embedded UDHR / WordNet.

`load_table` reads a `hf` or `file` source into rows with our field names; the
`nli_triplets`, `anchor_texts`, `monolingual_texts` and `parallel_pairs` functions are
what `prepare` calls, and dispatch on the source's kind. In a source's `name`,
`config`, `path` and `filter` values, `{lang}` stands for the language being loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bootstrap_embeddings.config import DataParams, Source
from bootstrap_embeddings.data.udhr import ENGLISH, align, open_udhr, split_sentences
from bootstrap_embeddings.data.wordnet_nli import build_nli_triplets
from bootstrap_embeddings.errors import UserError

# the loader `datasets` uses for each file extension
_FILE_BUILDERS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def _fill(value: str | None, lang: str | None) -> str | None:
    return value.replace("{lang}", lang) if value is not None and lang is not None else value


def load_table(
    source: Source,
    fields: Sequence[str],
    key: str,
    lang: str | None = None,
    optional: Sequence[str] = (),
) -> list[dict]:
    """Rows of a `hf` or `file` source as dicts of our `fields` (+ any `optional` present).

    `source.columns` maps our field names to the source's columns (a field without an
    entry is read from the column of its own name); `source.filter` keeps rows whose
    column equals the value; `source.max_rows` keeps the first rows after filtering.
    Rows with an empty required field are dropped. `key` (e.g. "data.nli") names the
    source in error messages.
    """
    dataset = _load_dataset(source, key, lang)
    filters = {column: _fill(value, lang) for column, value in source.filter.items()}
    missing = [c for c in filters if c not in dataset.column_names]
    wanted = {f: source.columns.get(f, f) for f in fields}
    missing += [c for c in wanted.values() if c not in dataset.column_names]
    if missing:
        raise UserError(
            f"{key}: column(s) {', '.join(sorted(set(missing)))} not in the source; it has "
            f"{', '.join(dataset.column_names)} (map our fields with {key}.columns)"
        )
    if filters:
        wants = list(filters.values())
        dataset = dataset.filter(
            lambda *cols: [[str(v) for v in row] == wants for row in zip(*cols)],
            input_columns=list(filters),
            batched=True,
        )
    extra = {f: source.columns.get(f, f) for f in optional}
    extra = {f: c for f, c in extra.items() if c in dataset.column_names}
    dataset = dataset.select_columns(sorted({*wanted.values(), *extra.values()}))
    rows = []
    for record in dataset:
        row = {f: "" if record[c] is None else str(record[c]).strip() for f, c in wanted.items()}
        if all(row.values()):
            row |= {f: record[c] for f, c in extra.items() if record[c] is not None}
            rows.append(row)
            if source.max_rows is not None and len(rows) >= source.max_rows:
                break
    return rows


def _load_dataset(source: Source, key: str, lang: str | None):
    """A `datasets.Dataset` for one split of the source."""
    import datasets
    from datasets.exceptions import DatasetsError

    path = _fill(source.path, lang)
    try:
        if source.kind == "file":
            file = Path(path)
            builder = _FILE_BUILDERS.get(file.suffix.lower())
            if builder is None:
                raise UserError(
                    f"{key}.path: {path}: unknown file type; use {', '.join(_FILE_BUILDERS)}"
                )
            if not file.is_file():
                raise UserError(f"{key}.path: {path} does not exist")
            return datasets.load_dataset(builder, data_files=str(file), split="train")
        if source.kind == "hf":
            return datasets.load_dataset(
                _fill(source.name, lang),
                _fill(source.config, lang),
                split=source.split or "train",
                **({"data_files": path} if path else {}),
            )
    except (FileNotFoundError, ValueError, ConnectionError, DatasetsError) as err:
        where = f"{key}.path" if source.kind == "file" else f"{key}.name"
        message = f"{where}: cannot load {path or source.name!r}: {err}"
        raise UserError(message.splitlines()[0]) from None
    raise ValueError(f"load_table reads hf and file sources, not {source.kind!r}")


def _wrong_kind(source: Source, key: str, gives: str, embedded: str = "udhr") -> UserError:
    return UserError(
        f"{key}.kind: a {source.kind!r} source gives no {gives}; use {embedded}, hf or file"
    )


def _cap(rows: list[dict], source: Source) -> list[dict]:
    return rows[: source.max_rows] if source.max_rows is not None else rows


def nli_triplets(source: Source, data: DataParams, seed: int, key: str = "data.nli") -> list[dict]:
    """{anchor, positive, negative, relation} English NLI triplets."""
    if source.kind == "wordnet":
        return build_nli_triplets(data.wordnet_archive, seed, source.max_rows)
    if source.kind == "udhr":
        raise _wrong_kind(source, key, "NLI triplets", embedded="wordnet")
    rows = load_table(source, ("anchor", "positive", "negative"), key, optional=("relation",))
    return [{"relation": "nli"} | row for row in rows]  # a real NLI set: no lexical relation


def anchor_texts(
    source: Source,
    data: DataParams,
    lang: str,
    held_out: set[int],
    key: str = "data.anchors",
    language_key: str = "languages",
) -> list[dict]:
    """{id, text} target-language sentences; UDHR ones come from outside `held_out` articles."""
    if source.kind == "udhr":
        declaration, _ = open_udhr(data.udhr_archive).choose(lang, data.udhr_variants, language_key)
        rows = [
            {"id": f"a{article:02d}p{p:02d}s{s:02d}", "text": sentence}
            for article, p, text in declaration.paragraphs(exclude_articles=held_out)
            for s, sentence in enumerate(split_sentences(text))
        ]
        return _cap(rows, source)
    if source.kind == "wordnet":
        raise _wrong_kind(source, key, "target-language text")
    rows = load_table(source, ("text",), key, lang, optional=("id",))
    return [{"id": str(row.get("id", i)), "text": row["text"]} for i, row in enumerate(rows)]


def monolingual_texts(
    source: Source,
    data: DataParams,
    lang: str,
    held_out: set[int],
    key: str = "data.monolingual",
    language_key: str = "languages",
) -> list[dict]:
    """{text} rows of running text in `lang` (UDHR: paragraphs outside `held_out`)."""
    if source.kind == "udhr":
        archive = open_udhr(data.udhr_archive)
        declaration = (
            archive.english
            if lang == ENGLISH
            else archive.choose(lang, data.udhr_variants, language_key)[0]
        )
        rows = [{"text": t} for _, _, t in declaration.paragraphs(exclude_articles=held_out)]
        return _cap(rows, source)
    if source.kind == "wordnet":
        raise _wrong_kind(source, key, "running text")
    return load_table(source, ("text",), key, lang)


def parallel_pairs(
    source: Source,
    data: DataParams,
    lang: str,
    held_out: set[int],
    key: str = "data.parallel",
    language_key: str = "languages",
) -> list[dict]:
    """{id, text, english} pairs of `lang` and English (UDHR: aligned, outside `held_out`)."""
    if source.kind == "udhr":
        archive = open_udhr(data.udhr_archive)
        declaration, _ = archive.choose(lang, data.udhr_variants, language_key)
        segments = align(archive.english, declaration, exclude_articles=held_out)
        return _cap([{"id": s.id, "text": s.text, "english": s.english} for s in segments], source)
    if source.kind == "wordnet":
        raise _wrong_kind(source, key, "parallel text")
    rows = load_table(source, ("text", "english"), key, lang, optional=("id",))
    return [
        {"id": str(row.get("id", i)), "text": row["text"], "english": row["english"]}
        for i, row in enumerate(rows)
    ]
