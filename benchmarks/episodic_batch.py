"""The per-episode trainer's batch on its members' own clocks against rounds, in this process.

One batch of the tutorial's runs (a member per seed and learning rate) is trained twice,
alternating `--repeats` times: with acexp's rule (a member whose episode has ended updates
once half the members in an episode have ended theirs) and in rounds of one episode each
(members update only when none plays, so every member waits for the round's longest episode:
the rule before 2026-11-22), reproduced by swapping the trainer's update rule. Prints each
one's wall time, batched steps and updates (medians), and the ratio of the times.

    python -m benchmarks.episodic_batch [--lrs 3e-2 3e-4] [--seeds 10] [--steps 10000]
                                        [--arch shared] [--repeats 2]
"""

import argparse
import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from hydra import compose, initialize_config_dir

import acexp.algos.episodic as episodic
from acexp.config.overrides import CONF
from acexp.run import train_members

OWN_CLOCKS = episodic.update_due


def rounds(playing: np.ndarray, resting: np.ndarray) -> bool:
    """Update only when no member plays: rounds of one episode each."""
    return False


RULES = {"own clocks": OWN_CLOCKS, "rounds": rounds}


def train_once(cfgs: list, rule) -> tuple[float, int, int]:
    """Wall time, batched steps and updates of one batch trained with `rule`."""
    updates = 0
    train = episodic.EpisodicTrainer.train

    def counted(self, members: np.ndarray) -> None:
        nonlocal updates
        updates += 1
        train(self, members)

    episodic.update_due, episodic.EpisodicTrainer.train = rule, counted
    try:
        with TemporaryDirectory() as tmp:
            start = time.perf_counter()
            trainer = train_members(cfgs, [Path(tmp) / str(k) for k in range(len(cfgs))])
            wall = time.perf_counter() - start
    finally:
        episodic.update_due, episodic.EpisodicTrainer.train = OWN_CLOCKS, train
    return wall, trainer.episodes.now, updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lrs", nargs="+", default=["3e-2", "3e-4"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--arch", default="shared")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfgs = [
            compose(
                "config",
                overrides=[
                    "algo=episodic",
                    f"arch={args.arch}",
                    f"optim.lr={lr}",
                    f"seed={seed}",
                    f"total_steps={args.steps}",
                    "stop_on_solve=false",
                    "log.progress=false",
                ],
            )  # fmt: skip
            for lr in args.lrs
            for seed in range(args.seeds)
        ]
    warm_up = [cfg.copy() for cfg in cfgs[:2]]
    for cfg in warm_up:
        cfg.total_steps = 500
    train_once(warm_up, OWN_CLOCKS)  # what a first batch pays once (imports, allocations)
    results: dict[str, list[tuple[float, int, int]]] = {name: [] for name in RULES}
    for _ in range(args.repeats):
        for name, rule in RULES.items():  # alternated, so a slow spell of the machine hits both
            results[name].append(train_once(cfgs, rule))
    print(f"{len(cfgs)} members (lr {', '.join(args.lrs)} x {args.seeds} seeds, {args.arch}), "
          f"{args.steps} env steps each, {len(cfgs) * args.steps:,} member-steps")  # fmt: skip
    walls = {}
    for name, runs in results.items():
        walls[name] = statistics.median(wall for wall, _, _ in runs)
        _, steps, updates = runs[0]
        print(f"  {name:10s} {walls[name]:6.1f} s, {steps:,} batched steps, {updates:,} updates")
    ratio = walls["rounds"] / walls["own clocks"]
    print(f"own clocks: {ratio:.2f}x faster than rounds (medians of {args.repeats})")


if __name__ == "__main__":
    main()
