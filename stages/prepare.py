"""Stage `prepare <lang>`: anchors, monolingual text, training pairs and the held-out split."""

import logging

from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.data.prepare import prepare_language
from bootstrap_embeddings.errors import UserError


@stage_entry
def main(params, language=None) -> None:
    # `languages` is not read here: dvc.yaml's foreach over it picks the languages, and
    # the output for one language does not depend on which others are listed.
    if language is None:
        raise UserError("usage: python -m stages.prepare <language> (an ISO 639-3 code)")
    out = f"data/prepared/{language}"
    prepared = prepare_language(params, language)
    prepared.write(out)
    logging.getLogger(__name__).info("wrote %s: %s", out, prepared.manifest["counts"])


if __name__ == "__main__":
    main()
