"""Stage `check_params`: every value of params.yaml checked before any other stage runs.

`dvc repro` deletes a stage's outputs before it starts the stage, so a stage that
refused a bad value would leave the user with fewer outputs than before. Every stage
depends on this one's output, and this one on the whole of params.yaml: a bad value
stops `dvc repro` here, with one line naming it, before DVC touches any output. The
output's content never changes, so passing the check re-runs nothing downstream.
"""

from bootstrap_embeddings.cli import stage_entry
from bootstrap_embeddings.files import atomic_file

OUT = "data/params_checked.txt"


@stage_entry
def main(params) -> None:
    # stage_entry has loaded and validated params.yaml: only a valid file gets here
    with atomic_file(OUT) as fh:
        fh.write("params.yaml passed the checks of stages/check_params.py\n")


if __name__ == "__main__":
    main()
