"""Stage `prepare <lang>`: anchors, monolingual text, training pairs and the held-out split."""

import logging

from bootstrap_embeddings.cli import TargetLanguage, stage_entry
from bootstrap_embeddings.data.prepare import prepare_language


@stage_entry
def main(params, language: TargetLanguage) -> None:
    # `languages` only checks the argument: the output for one language does not depend
    # on which others are listed, so dvc.yaml does not declare it as this stage's param.
    out = f"data/prepared/{language}"
    prepared = prepare_language(params, language)
    prepared.write(out)
    logging.getLogger(__name__).info("wrote %s: %s", out, prepared.manifest["counts"])


if __name__ == "__main__":
    main()
