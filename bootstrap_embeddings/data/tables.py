"""Tables of text from any `Source`: hub datasets, local files, and the embedded UDHR / WordNet.

`load_table` reads a `hf` or `file` source into rows with our field names;
`nli_triplets` (English, shared) and `LanguageTables` (one language's anchors, running
text, pairs and held-out split) are what `prepare` calls, and dispatch on the source's
kind, one reader per source kind and role. In a source's `name`,
`config`, `path` and `filter` values, `{lang}` stands for the language being loaded
and `{language}` for its English name (`languages.fill_language`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bootstrap_embeddings.config import DataParams, Source
from bootstrap_embeddings.data.udhr import (
    ENGLISH,
    Declaration,
    align,
    open_udhr,
    split_sentences,
)
from bootstrap_embeddings.data.wordnet_nli import build_nli_triplets
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.languages import fill_language

# the loader `datasets` uses for each file extension
_FILE_BUILDERS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


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
    filters = {column: fill_language(value, lang) for column, value in source.filter.items()}
    missing = [c for c in filters if c not in dataset.column_names]
    wanted = {f: source.columns.get(f, f) for f in fields}
    missing += [c for c in wanted.values() if c not in dataset.column_names]
    # an optional field mapped by name must be there: a misspelt column is not "absent"
    missing += [c for f, c in source.columns.items()
                if f in optional and c not in dataset.column_names]
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
        if len(dataset) == 0:  # else an empty table surfaces stages later, as "no triplets"
            wanted_rows = ", ".join(f"{c} == {v!r}" for c, v in filters.items())
            raise UserError(f"{key}.filter: no row of the source has {wanted_rows}")
    extra = {f: source.columns.get(f, f) for f in optional}
    extra = {f: c for f, c in extra.items() if c in dataset.column_names}
    dataset = dataset.select_columns(sorted({*wanted.values(), *extra.values()}))
    rows = []
    for record in dataset:
        row = {f: "" if record[c] is None else str(record[c]).strip() for f, c in wanted.items()}
        if all(row.values()):
            for f, c in extra.items():
                value = record[c].strip() if isinstance(record[c], str) else record[c]
                if value not in (None, ""):
                    row[f] = value
            rows.append(row)
            if source.max_rows is not None and len(rows) >= source.max_rows:
                break
    return rows


def _load_dataset(source: Source, key: str, lang: str | None):
    """A `datasets.Dataset` for one split of the source."""
    import datasets
    from datasets.exceptions import DatasetsError

    path = fill_language(source.path, lang)
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
                fill_language(source.name, lang),
                fill_language(source.config, lang),
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


@dataclass(frozen=True)
class LanguageTables:
    """One language's text in each role (anchors, running text, pairs with English), read
    from the role's source, resolved once: the UDHR declaration of the language is chosen
    once (`data.udhr_variants`, else `UdhrArchive.choose`'s rule) and every UDHR role
    reads that one. UDHR rows come from outside the `held_out` articles.

    `language_key` names the params key the language came from, for error messages
    (`languages`, or `data.xl_lora_languages` for XL-LoRA's premise languages).
    """

    data: DataParams
    language: str
    held_out: frozenset[int]
    language_key: str = "languages"

    @cached_property
    def udhr_choice(self) -> tuple[Declaration, str]:
        """The declaration read for this language, and why it was chosen."""
        archive = open_udhr(self.data.udhr_archive)
        if self.language == ENGLISH:
            return archive.english, "English is the other side of every pair"
        return archive.choose(self.language, self.data.udhr_variants, self.language_key)

    @property
    def declaration(self) -> Declaration:
        return self.udhr_choice[0]

    def anchors(self, key: str = "data.anchors") -> list[dict]:
        """{id, text} sentences in the language, to generate from."""
        source = self.data.anchors
        if source.kind == "udhr":
            rows = [
                {"id": f"a{article:02d}p{p:02d}s{s:02d}", "text": sentence}
                for article, p, text in self.declaration.paragraphs(exclude_articles=self.held_out)
                for s, sentence in enumerate(split_sentences(text))
            ]
            return _cap(rows, source)
        if source.kind == "wordnet":
            raise _wrong_kind(source, key, "target-language text")
        rows = load_table(source, ("text",), key, self.language, optional=("id",))
        return [{"id": str(row.get("id", i)), "text": row["text"]} for i, row in enumerate(rows)]

    def monolingual(self, key: str = "data.monolingual") -> list[dict]:
        """The language adapter's rows in the language: {text} running text (UDHR:
        paragraphs), or {prompt, text} instructions and answers where the source maps a
        `prompt` column (Aya: inputs, targets)."""
        return self._adapter_text(self.data.monolingual, key)

    def monolingual_top_up(self, key: str = "data.monolingual_top_up") -> list[dict]:
        """More rows of the same kind, from the top-up source (Aya Collection)."""
        return self._adapter_text(self.data.monolingual_top_up, key)

    def _adapter_text(self, source: Source, key: str) -> list[dict]:
        if source.kind == "udhr":
            paragraphs = self.declaration.paragraphs(exclude_articles=self.held_out)
            return _cap([{"text": t} for _, _, t in paragraphs], source)
        if source.kind == "wordnet":
            raise _wrong_kind(source, key, "running text")
        return load_table(source, ("text",), key, self.language, optional=("prompt",))

    def parallel(self, key: str = "data.parallel") -> list[dict]:
        """{id, text, english} pairs of the language and English (UDHR: aligned segments)."""
        source = self.data.parallel
        if source.kind == "udhr":
            english = open_udhr(self.data.udhr_archive).english
            segments = align(english, self.declaration, exclude_articles=self.held_out)
            return _cap([{"id": s.id, "text": s.text, "english": s.english} for s in segments],
                        source)
        if source.kind == "wordnet":
            raise _wrong_kind(source, key, "parallel text")
        rows = load_table(source, ("text", "english"), key, self.language, optional=("id",))
        return [
            {"id": str(row.get("id", i)), "text": row["text"], "english": row["english"]}
            for i, row in enumerate(rows)
        ]

    def held_out_pairs(self) -> list[dict]:
        """{id, text, english} aligned segments of the held-out articles: the evaluation split."""
        english = open_udhr(self.data.udhr_archive).english
        segments = align(english, self.declaration, only_articles=set(self.held_out))
        return [{"id": s.id, "text": s.text, "english": s.english} for s in segments]

    def udhr_info(self) -> dict:
        declaration, why = self.udhr_choice
        return {"declaration": declaration.info.code, "name": declaration.info.name,
                "chosen_by": why}
