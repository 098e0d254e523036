"""`python -m bootstrap_embeddings.strategies [--generative | --real]`: the strategy names, one a line.

For scripts (scripts/measure_grid.sh) that need the registry's answer, not a copy of it.
"""

import argparse

from bootstrap_embeddings.strategies import registry

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
group = parser.add_mutually_exclusive_group()
group.add_argument("--generative", action="store_true", help="those the generator writes for")
group.add_argument("--real", action="store_true", help="those that train on real data only")
args = parser.parse_args()
for name, spec in registry().items():
    if (args.generative and not spec.generates) or (args.real and spec.generates):
        continue
    print(name)
