"""Stage `prepare_shared`: English NLI triplets, English text and XL-LoRA's parallel pairs."""

import logging

from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.data.prepare import prepare_shared

OUT = "data/prepared/shared"


@stage_entry
def main(params) -> None:
    prepared = prepare_shared(params)
    prepared.write(OUT)
    logging.getLogger(__name__).info("wrote %s: %s", OUT, prepared.manifest["counts"])


if __name__ == "__main__":
    main()
