#!/usr/bin/env bash
# The README's measured table: every strategy (generative ones with and without the
# consistency filter) x seeds, on two languages, one named `dvc exp run` each. Cheap
# runs first, so an interrupted grid still gives whole rows; a re-run skips the
# experiments that already exist (delete one with `dvc exp remove NAME` to redo it).
#
#   bash scripts/measure_grid.sh [seeds...]      (default: 0 1 2)
#   STRATEGIES="base icl" bash scripts/measure_grid.sh 1   (a part of the grid)
#   python -m scripts.compare_experiments        (then: reports/comparison.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" PYTHONPATH="$PWD"

LANGS="${LANGS:-[hau,xho]}"
# every strategy in the registry, baselines first (bootstrap_embeddings/strategies/)
STRATEGIES="${STRATEGIES:-$(python -m bootstrap_embeddings.strategies | tr '\n' ' ')}"
GENERATIVE=" $(python -m bootstrap_embeddings.strategies --generative | tr '\n' ' ') "
SEEDS=("${@:-0 1 2}")
read -r -a SEEDS <<< "${SEEDS[*]}"

run() {  # run <strategy> <seed> <consistency on|off>
    local strategy=$1 seed=$2 cf=$3
    local enabled=false name="$strategy-cf$cf-s$seed"
    [ "$cf" = on ] && enabled=true
    if dvc exp list --name-only | grep -qx "$name"; then echo "=== $name: done before"; return; fi
    echo "=== $(date +%T) $name"
    # target `report`: only the stages this strategy needs (a bare run would retrain
    # every strategy's adapters under the new seed)
    dvc exp run -n "$name" -S "strategy=$strategy" -S "seed=$seed" \
        -S "languages=$LANGS" -S "filters.consistency.enabled=$enabled" report
}

for seed in "${SEEDS[@]}"; do
    for strategy in $STRATEGIES; do
        if [[ "$GENERATIVE" == *" $strategy "* ]]; then
            # the filter is downstream of generation: the second run re-does only the tail
            run "$strategy" "$seed" off; run "$strategy" "$seed" on
        else
            run "$strategy" "$seed" off  # real data only: the consistency filter does not apply
        fi
    done
done
echo "=== $(date +%T) done"
