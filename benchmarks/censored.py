"""Were a sweep's unsolved runs still improving when they stopped? Whether a cap on episodes
changes a conclusion.

A run that never solved is right-censored at the length it ran. If it had stalled (a policy
collapsed to the shortest episodes, or a plateau far below the threshold), a larger cap would
not have solved it either; if its returns were still rising, it might have. For each unsolved
run this reads its episode returns back from its event file and calls it improving when, over
its last `--window` episodes, return and episode index have a positive Spearman correlation at
p < 0.01.

    python -m benchmarks.censored <sweep dir> [--window 1000]
"""

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from acexp.analysis.report import find_runs, group_runs, read_returns

P_VALUE = 0.01


def trend(job_dir: Path, window: int) -> tuple[float, float, bool]:
    """(mean return over the first and the last tenth of the window, improving?)."""
    _, returns, counts = read_returns(job_dir)
    episodes = np.repeat(returns, counts)[-window:]  # a point's mean stands for its episodes
    if episodes.size < 10:
        return float("nan"), float("nan"), False
    rho, p = spearmanr(np.arange(episodes.size), episodes)
    tenth = max(episodes.size // 10, 1)
    improving = bool(rho > 0 and p < P_VALUE)
    return float(episodes[:tenth].mean()), float(episodes[-tenth:].mean()), improving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--window", type=int, default=1000, help="last episodes looked at")
    args = parser.parse_args()
    print(
        f"| group | unsolved / runs | still improving | return early -> late in the last "
        f"{args.window} episodes (median over unsolved runs) |\n|---|---|---|---|"
    )
    for group in group_runs(find_runs(args.sweep_dir)):
        done = [r for r in group.runs if r.status == "completed"]
        unsolved = [r for r in done if not r.metrics.get("solved")]
        trends = [trend(r.path, args.window) for r in unsolved]
        improving = sum(t[2] for t in trends)
        early = np.median([t[0] for t in trends]) if trends else float("nan")
        late = np.median([t[1] for t in trends]) if trends else float("nan")
        print(f"| {group.label} | {len(unsolved)}/{len(done)} | {improving} "
              f"| {early:.1f} -> {late:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
