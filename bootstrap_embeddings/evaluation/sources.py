"""Where the local tasks' held-out pairs come from (light: no mteb import, so the
evaluate stage can check its inputs before loading mteb)."""

from __future__ import annotations

from dataclasses import dataclass

from bootstrap_embeddings.data.cldr import EVAL_FILE as CLDR_FILE


@dataclass(frozen=True)
class HeldOutSource:
    """Where a local task's pairs come from: the file the prepare stage writes, and what
    the task metadata says about them."""

    name: str  # "udhr" | "cldr": groups the tasks that share items
    file: str  # in data/prepared/<lang>/
    what: str  # "... between <lang> and English on <what>"
    reference: str
    domains: tuple[str, ...]
    sample_creation: str


UDHR = HeldOutSource(
    "udhr", "eval.jsonl",
    "held-out articles of the Universal Declaration of Human Rights (aligned paragraphs)",
    "https://github.com/wooorm/udhr", ("Legal", "Written"), "human-translated",
)
CLDR = HeldOutSource(
    "cldr", CLDR_FILE,
    "CLDR emoji short names (annotations, aligned through the emoji; the dev part left out)",
    "https://cldr.unicode.org/translation/characters/short-names-and-keywords",
    ("Written",), "human-translated and localized",
)


# eval.local_tasks entry -> the source its task reads
TASK_SOURCES = {"bitext": UDHR, "retrieval": UDHR, "cldr_bitext": CLDR, "cldr_retrieval": CLDR}


def sources(kinds: list[str]) -> list[HeldOutSource]:
    """The held-out sources that the named local tasks read, each once, in task order."""
    return list(dict.fromkeys(TASK_SOURCES[kind] for kind in kinds))
