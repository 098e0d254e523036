"""The three speed ratios of issue 12 in one run: the project's paths against the plain
library code a user would write.

    .venv/bin/python -m benchmarks.speed [--quick] [--runs N]

- generation: the project's generation path (`benchmarks.generation_speed`) against
  plain `model.generate` at batch 32, same prompts and sampling; greedy outputs checked
  identical;
- adapter: one step of the project's LoRA trainer against peft + `transformers.Trainer`
  on the same batch and loss, completion-only and all-token rows (the smaller ratio);
- embedder: the project's embedder trainer against a plain sentence-transformers trainer
  on the same triplets, losses checked equal.

Each part prints its own figures as it goes; the last three lines are
`generation ratio: X`, `adapter ratio: X`, `embedder ratio: X` (higher is faster than
plain), for scripts to read. The machine is shared and noisy: each ratio compares the
two paths side by side within one run.
"""

from __future__ import annotations

import argparse


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts and runs")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per path")
    args = parser.parse_args(argv)

    from benchmarks import generation_speed, training_speed

    generation = generation_speed.measure(quick=args.quick, runs=args.runs)
    training = training_speed.measure(quick=args.quick, runs=args.runs)
    for line in training_speed.report(training)[:-2]:
        print(line)
    ratios = {"generation": generation["ratio"], "adapter": training["adapter_ratio"],
              "embedder": training["embedder_ratio"]}
    for name, ratio in ratios.items():
        print(f"{name} ratio: {ratio:.2f}")
    return ratios


if __name__ == "__main__":
    main()
