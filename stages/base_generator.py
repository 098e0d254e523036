"""Stage `base_generator`: materialise `generator.model` into models/base/generator."""

import time

from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.files import atomic_dir

OUT = "models/base/generator"


@stage_entry
def main(params) -> None:
    from bootstrap_embeddings.base_models import materialize_generator

    start = time.perf_counter()
    with atomic_dir(OUT) as out:
        info = materialize_generator(params.generator.model, out)
    print(f"{OUT}: {info['kind']} {params.generator.model} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
