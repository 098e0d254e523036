"""An STS dev set for checkpoint selection (`embedder.dev.sts`; the paper: SemRel 2024 dev).

SemRel 2024 (`SemRel/SemRel2024`) has one config per language and columns sentence1,
sentence2 and label (relatedness in [0, 1]); `embedder.dev.sts.columns` maps our
field names (sentence1, sentence2, score) onto a source's own.
"""

from __future__ import annotations

from bootstrap_embeddings.config import Source
from bootstrap_embeddings.errors import UserError

KEY = "embedder.dev.sts"
FIELDS = ("sentence1", "sentence2", "score")
FILE = "dev_sts.jsonl"


def sts_rows(source: Source, language: str) -> list[dict]:
    """{id, sentence1, sentence2, score} rows of the language's STS dev set."""
    from bootstrap_embeddings.data.tables import _load_dataset

    dataset = _load_dataset(source, KEY, language)
    names = {f: source.columns.get(f, f) for f in FIELDS}
    missing = [n for n in names.values() if n not in dataset.column_names]
    if missing:
        raise UserError(f"{KEY}: {source.name or source.path} ({language}): column(s) "
                        f"{', '.join(missing)} missing (columns: {', '.join(dataset.column_names)}"
                        f"); map sentence1, sentence2 and score with {KEY}.columns")
    rows = []
    for i, row in enumerate(dataset):
        first, second = (str(row[names[f]] or "").strip() for f in FIELDS[:2])
        try:
            score = float(row[names["score"]])
        except (TypeError, ValueError):
            raise UserError(f"{KEY}: {source.name or source.path} ({language}) row {i}: score "
                            f"{row[names['score']]!r} is not a number") from None
        if first and second:
            rows.append({"id": f"{language}:sts:{i}", "sentence1": first, "sentence2": second,
                         "score": score})
    if len(rows) < 2:
        raise UserError(f"{KEY}: {source.name or source.path} ({language}) has {len(rows)} "
                        "usable pair(s); a Spearman correlation needs more")
    return rows
