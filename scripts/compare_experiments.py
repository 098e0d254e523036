"""Compare strategies across DVC experiments: scores over seeds with 95% intervals,
differences to base and parallel, cost.

With DVC experiments present, reads `dvc exp show --json` and each experiment's
per-item scores (git), writes reports/experiments.json (the export: commit it), then
reports/comparison.md, comparison.png and comparison_cost.png. Where `dvc exp show`
lists no experiment (a fresh clone), it rebuilds the same tables from the committed
export. Run from the project root after e.g. `bash scripts/measure_grid.sh`:

    python -m scripts.compare_experiments                 # dvc experiments, else the export
    python -m scripts.compare_experiments --from reports/experiments.json   # the export only

--json FILE reads a saved `dvc exp show --json` output (per-item scores from git).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bootstrap_embeddings import comparison, experiments
from bootstrap_embeddings.errors import UserError
from bootstrap_embeddings.files import atomic_file


def _collect(args) -> tuple[list[dict], str]:
    """The rows with their per-item scores, and where they came from."""
    if args.source is not None:
        data, read = experiments.read_export(args.source)
        origin = str(args.source)
    else:
        if args.json and not args.json.is_file():
            raise UserError(f"{args.json}: no such file")
        data = json.loads(args.json.read_text()) if args.json else experiments.exp_show(
            args.all_commits)
        read, origin = experiments.git_reader, str(args.json or "dvc exp show")
        if args.experiments_only:
            data = experiments.experiments_only(data)
    fresh_clone = (args.source is None and args.json is None
                   and not experiments.count_experiments(data))
    if fresh_clone and args.export.is_file():
        # no experiment here (a fresh clone has at most the commit's own results)
        print(f"no DVC experiment here; rebuilding from {args.export}")
        data, read = experiments.read_export(args.export)
        origin = str(args.export)
    rows = experiments.rows_from_exp_show(data, include_workspace=args.include_workspace)
    if not rows:
        raise UserError("no experiment has metrics/eval/<lang>.json; run `dvc exp run` first")
    experiments.attach_items(rows, read)
    if origin == "dvc exp show":
        experiments.write_export(args.export, data, rows)
        print(f"{args.export}: {len({r['experiment'] for r in rows})} experiments exported")
    return rows, origin


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path,
                        help="an export written by this script (no dvc needed)")
    parser.add_argument("--json", type=Path, help="a saved `dvc exp show --json` output")
    parser.add_argument("--all-commits", action="store_true",
                        help="also experiments based on earlier commits (default: the current one)")
    parser.add_argument("--experiments-only", action="store_true",
                        help="leave out the baseline commits' own results (only experiments)")
    parser.add_argument("--include-workspace", action="store_true",
                        help="also the workspace's current params and metrics")
    parser.add_argument("--export", type=Path, default=experiments.EXPORT,
                        help="where the export goes (and is read from on a fresh clone)")
    parser.add_argument("--out", type=Path, default=Path("reports"),
                        help="folder for comparison.md and the plots")
    args = parser.parse_args(argv)
    try:
        rows, origin = _collect(args)
        table = comparison.aggregate_experiments(rows)
        cost = comparison.cost_by_strategy(rows)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    comparison.plot_comparison(table, args.out / "comparison.png")
    if cost:
        comparison.plot_cost(table, cost, args.out / "comparison_cost.png")
    with atomic_file(args.out / "comparison.md") as fh:
        fh.write(comparison.render_comparison(table, cost))
    print(f"{args.out / 'comparison.md'}: {len(rows)} results from "
          f"{len({r['experiment'] for r in rows})} experiments ({origin})")


if __name__ == "__main__":
    main()
