"""What each set-up of `+experiment=arch_optim_sweep` costs: wall time and parameters.

In a batched sweep the members of a batch share its wall time, so the sweep's `wall_seconds`
cannot say what one set-up costs. This trains each set-up alone, as a single run of the
sweep's settings with a fixed budget (seed 0, `--steps` env steps, no stop on solve and no
evaluation), alternating the set-ups `--repeats` times so that a slow spell of the machine
hits all of them, and prints the median wall time of each as a ratio to the first set-up
(shared network, one optimizer, clipping at 0.5), with its parameter count.

    python -m benchmarks.setup_cost [--steps 200000] [--repeats 3] [--experiment arch_optim_sweep]
"""

import argparse
import itertools
import statistics

from benchmarks.common import run_acexp

SETUPS = [
    [f"arch={arch}", f"optim={optim}", f"optim.max_grad_norm={clip}"]
    for arch, optim, clip in itertools.product(
        ["shared", "unshared"], ["joint", "separate"], ["0.5", "null"]
    )
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--experiment", default="arch_optim_sweep")
    args = parser.parse_args()
    common = [f"+experiment={args.experiment}", f"total_steps={args.steps}", "seed=0",
              "stop_on_solve=false", "eval.every_steps=0"]  # fmt: skip
    walls: list[list[float]] = [[] for _ in SETUPS]
    parameters = [0] * len(SETUPS)
    for _ in range(args.repeats):
        for i, setup in enumerate(SETUPS):
            metrics = run_acexp(*common, *setup)
            walls[i].append(metrics["wall_seconds"])
            parameters[i] = metrics["parameters"]
    reference = statistics.median(walls[0])
    print(f"| set-up | parameters | wall time, {args.steps:,} env steps (median of "
          f"{args.repeats}) | ratio to the first |\n|---|---|---|---|")  # fmt: skip
    for setup, wall, count in zip(SETUPS, walls, parameters, strict=True):
        median = statistics.median(wall)
        print(f"| {' '.join(setup)} | {count:,} | {median:.1f} s | {median / reference:.2f} x |")


if __name__ == "__main__":
    main()
