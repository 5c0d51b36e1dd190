"""This checkout's speed against another checkout's (e.g. the commit before a change).

Three figures, each through the real CLI, alternating the two checkouts `--repeats` times and
comparing medians:

- solve: the training seconds until the default config solves CartPole (`seconds_to_solve`
  in metrics.json), seeds 0-2: `benchmarks.solve_time`'s acexp side;
- throughput: env steps per second of `benchmarks.throughput`'s A2C settings, 200k steps;
- batched: the wall time of `benchmarks.batched`'s CartPole sweep (32 runs of 200k env steps,
  `hydra/launcher=batched`), start-up included.

Each checkout runs with its own code (its directory first on PYTHONPATH) in this Python.

    python -m benchmarks.versus OTHER_CHECKOUT [--repeats 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.batched import FIGURES
from benchmarks.throughput import EQUAL

HERE = Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 2)


def acexp(tree: Path, args: list[str]) -> float:
    """Run `python -m acexp ARGS` with `tree`'s code; its wall time."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "acexp", *args, "log.progress=false"], cwd=tree,
                   env=env, check=True, capture_output=True, timeout=1200)  # fmt: skip
    return time.perf_counter() - start


def figures(tree: Path, out: Path) -> dict[str, float]:
    """The three figures of one checkout, once."""
    solve = []
    for seed in SEEDS:
        acexp(tree, [f"seed={seed}", f"hydra.run.dir={out / f'solve{seed}'}"])
        metrics = json.loads((out / f"solve{seed}" / "metrics.json").read_text())
        solve.append(metrics["seconds_to_solve"] or float("inf"))
    acexp(tree, [*EQUAL, "total_steps=200000", f"hydra.run.dir={out / 'throughput'}"])
    sps = json.loads((out / "throughput" / "metrics.json").read_text())["sps"]
    overrides, _ = FIGURES["cartpole"]
    batched = acexp(tree, ["-m", *overrides, "hydra/launcher=batched",
                           f"hydra.sweep.dir={out / 'batched'}"])  # fmt: skip
    return {"solve": statistics.median(solve), "throughput": sps, "batched": batched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (its top directory)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trees = {"this": HERE, "other": args.other.resolve()}
    seen: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for name, tree in trees.items():  # alternated: a slow spell hits both
                seen[name].append(figures(tree, Path(tmp, f"{name}{i}")))
                print(f"  {name} #{i + 1}: {seen[name][-1]}", flush=True)
    units = {"solve": "s to solve", "throughput": "env steps/s", "batched": "s wall"}
    for key, unit in units.items():
        this, other = (statistics.median(f[key] for f in seen[name]) for name in trees)
        faster = other / this if key != "throughput" else this / other
        print(f"{key}: this {this:,.2f} vs other {other:,.2f} {unit}: this is {faster:.3f}x "
              f"as fast (medians of {args.repeats})")  # fmt: skip


if __name__ == "__main__":
    main()
