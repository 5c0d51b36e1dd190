"""Batched runs against the joblib launcher: the same sweep, the same jobs, the same env steps.

Each figure runs one sweep through the real CLI twice, `hydra/launcher=batched` and
`hydra/launcher=joblib` (one job per core), alternating `--repeats` times, and divides the
aggregate env steps per second (all runs' env steps / the sweep's wall time, start-up
included) of the first by the second's, medians of the repeats. `learning` runs the default
CartPole config over 16 seeds both ways and tables what each run reached.

    python -m benchmarks.batched [cartpole tutorial halfcheetah learning] [--repeats N]
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

import numpy as np

from acexp.logs.hparams import EXPERIMENT_SUFFIX
from benchmarks.ppo_throughput import SETTINGS as PPO_SETTINGS

# name -> (the sweep's overrides, target ratio); fixed budgets, so both launchers do the same work
FIGURES = {
    "cartpole": (
        ["seed=range(16)", "optim.lr=4e-3,1e-3", "stop_on_solve=false"],  # 200k steps each
        5.0,
    ),
    "tutorial": (
        # 40 runs: shared/unshared x lr 3e-2, 3e-4 x 10 seeds
        [
            "+experiment=tutorial_sweep",
            "seed=range(10)",
            "optim.lr=3e-2,3e-4",
            "total_steps=10000",
            "stop_on_solve=false",
        ],  # fmt: skip
        10.0,
    ),
    # figure 4a's PPO (benchmarks/ppo_throughput.py): 64-64 nets, 8 envs, 10 epochs of minibatches
    # of 64; the preset's 256-256 nets make an update compute-bound, which batching cannot cut
    "halfcheetah": (
        ["algo=ppo", "seed=range(8)", "total_steps=100000", *PPO_SETTINGS["halfcheetah"][1]],
        3.0,
    ),
}
LEARNING = ["seed=range(16)"]  # the default config: A2C on CartPole, stop on solve
LAUNCHERS = {
    "batched": ["hydra/launcher=batched"],
    "joblib": ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={os.cpu_count()}"],
}


def sweep(out: Path, overrides: list[str], launcher: str) -> tuple[float, list[dict]]:
    """Run the sweep; its wall time and every run's metrics.json."""
    command = [sys.executable, "-m", "acexp", "-m", *overrides, *LAUNCHERS[launcher]]
    command += ["log.progress=false", f"hydra.sweep.dir={out}"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - start
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*/metrics.json"))]
    return wall, runs


def speed(name: str, repeats: int, tmp: Path) -> None:
    """The figure, end to end; and without each launcher's fixed cost (composing and
    starting the jobs, writing their files), measured as the wall time of the same sweep
    with one env step per run, whose stages are printed too."""
    overrides, target = FIGURES[name]
    walls: dict[str, list[float]] = {"batched": [], "joblib": []}
    fixed: dict[str, float] = {}
    for launcher in walls:
        out, started = tmp / f"{name}-{launcher}-fixed", time.time()
        fixed[launcher], _ = sweep(out, [*overrides, "total_steps=1"], launcher)
        print(f"  {name} {launcher}: fixed cost {fixed[launcher]:.1f} s: {stages(out, started)}")
    for i in range(repeats):
        for launcher in walls:  # alternated, so a slow spell of the machine hits both
            wall, runs = sweep(tmp / f"{name}-{launcher}-{i}", overrides, launcher)
            steps = sum(r["env_steps"] for r in runs)
            walls[launcher].append(wall)
            print(f"  {name} {launcher}: {len(runs)} runs, {steps:,} env steps in {wall:.1f} s")
    batched, joblib = (statistics.median(walls[k]) for k in ("batched", "joblib"))
    print(
        f"{name}: batched {steps / batched:,.0f} vs joblib {steps / joblib:,.0f} env steps/s: "
        f"{joblib / batched:.2f}x (target >= {target:g}; medians of {repeats})"
    )
    training = [walls[k] and statistics.median(walls[k]) - fixed[k] for k in walls]
    print(
        f"{name}: fixed cost of a 1-step sweep: batched {fixed['batched']:.1f} s, joblib "
        f"{fixed['joblib']:.1f} s; without it: {training[1] / training[0]:.2f}x"
    )


def stages(out: Path, started: float) -> str:
    """Where a 1-step sweep's time went, read from when it wrote its files (seconds from its
    start): its `multirun.yaml` once the command line is checked and Hydra has started; each
    job's `.hydra/hydra.yaml` once the jobs are composed and checked (the first) and every run
    directory is made (the last); the last `metrics.json`; the sweep's HParams file."""

    def since(path: Path) -> float:
        return path.stat().st_mtime - started

    made = sorted(since(p) for p in out.glob("*/.hydra/hydra.yaml"))
    trained = max(since(p) for p in out.glob("*/metrics.json"))
    (hparams,) = out.rglob(f"events.out.tfevents.*{EXPERIMENT_SUFFIX}")
    return (
        f"started and checked the command line {since(out / 'multirun.yaml'):.1f}, "
        f"composed and checked the jobs {made[0]:.1f}, made their directories {made[-1]:.1f}, "
        f"trained the last {trained:.1f}, wrote the HParams summary {since(hparams):.1f}"
    )


def learning(tmp: Path) -> None:
    print("| launcher | runs | solved | steps to solve: median [IQR] |")
    print("|---|---|---|---|")
    for launcher in ("batched", "joblib"):
        _, runs = sweep(tmp / f"learning-{launcher}", LEARNING, launcher)
        solved = [r["steps_to_solve"] for r in runs if r["solved"]]
        q1, median, q3 = np.percentile(solved, [25, 50, 75]) if solved else (np.nan,) * 3
        print(f"| {launcher} | {len(runs)} | {len(solved)} | {median:,.0f} [{q1:,.0f}-{q3:,.0f}] |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", nargs="*", default=[*FIGURES, "learning"])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with TemporaryDirectory() as tmp:
        for name in args.figures:
            if name == "learning":
                learning(Path(tmp))
            else:
                speed(name, args.repeats, Path(tmp))


if __name__ == "__main__":
    main()
