"""Compare strategies across DVC experiments: mean ± sd over seeds per strategy x language.

Reads `dvc exp show --json` (each experiment's params strategy / seed and its
metrics/eval/<lang>.json) and writes reports/comparison.md and reports/comparison.png.
Run from the project root after e.g.

    for s in 0 1 2; do for x in base english icl composition xl_lora; do
        dvc exp run -S strategy=$x -S seed=$s; done; done
    python -m scripts.compare_experiments

Use --json FILE to read a saved `dvc exp show --json` output instead of running dvc.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bootstrap_embeddings import report
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_file


def exp_show(all_commits: bool) -> list[dict]:
    cmd = ["dvc", "exp", "show", "--json"] + (["--all-commits"] if all_commits else [])
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError("dvc: not found on PATH (activate the project's .venv)") from None
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise UserError(f"{' '.join(cmd)} failed: {last[0]}")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="a saved `dvc exp show --json` output")
    parser.add_argument("--all-commits", action="store_true",
                        help="also experiments based on earlier commits (default: the current one)")
    parser.add_argument("--include-workspace", action="store_true",
                        help="also the workspace's current params and metrics")
    parser.add_argument("--out", type=Path, default=Path("reports"),
                        help="folder for comparison.md and comparison.png")
    args = parser.parse_args(argv)
    try:
        if args.json and not args.json.is_file():
            raise UserError(f"{args.json}: no such file")
        data = json.loads(args.json.read_text()) if args.json else exp_show(args.all_commits)
        rows = report.rows_from_exp_show(data, include_workspace=args.include_workspace)
        if not rows:
            raise UserError("no experiment has metrics/eval/<lang>.json; run `dvc exp run` first")
        table = report.aggregate_experiments(rows)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    report.plot_comparison(table, args.out / "comparison.png")
    with atomic_file(args.out / "comparison.md") as fh:
        fh.write(report.render_comparison(table))
    print(f"{args.out / 'comparison.md'}: {len(rows)} results from "
          f"{len({r['experiment'] for r in rows})} experiments")


if __name__ == "__main__":
    main()
