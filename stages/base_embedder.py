"""Stage `base_embedder`: materialise `embedder.model` into models/base/embedder."""

import time

from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.files import atomic_dir

OUT = "models/base/embedder"


@stage_entry
def main(params) -> None:
    from bootstrap_embeddings.base_models import materialize_embedder

    start = time.perf_counter()
    with atomic_dir(OUT) as out:
        info = materialize_embedder(params.embedder.model, out)
    print(f"{OUT}: {info['kind']} {params.embedder.model} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
