"""Figure 1: time to solve CartPole-v1, default `python -m acexp` against Stable-Baselines3.

Training wall time from the first env step until the running return (EMA 0.05 of episode
returns, as PyTorch's actor-critic example judges it) passes 475; median over seeds. SB3 A2C
and PPO use the rl-baselines3-zoo hyperparameters and are timed with the same criterion by a
callback (sb3_reference.py).
Runs are interleaved per seed so that machine load hits every contender alike.

    python -m benchmarks.solve_time [--seeds 0 1 2 3 4] [--overrides ...]
"""

import argparse

from benchmarks.common import median, run_acexp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--overrides", nargs="*", default=[], help="extra acexp overrides")
    parser.add_argument("--skip-sb3", action="store_true", help="acexp only (for tuning)")
    args = parser.parse_args()
    from benchmarks.sb3_reference import sb3_time_to_solve

    times: dict[str, list] = {"acexp": [], "sb3_a2c": [], "sb3_ppo": []}
    steps: dict[str, list] = {name: [] for name in times}
    for seed in args.seeds:
        m = run_acexp(f"seed={seed}", *args.overrides)
        times["acexp"].append(m["seconds_to_solve"])
        steps["acexp"].append(m["steps_to_solve"])
        for algo in [] if args.skip_sb3 else ["a2c", "ppo"]:
            r = sb3_time_to_solve(algo, seed)
            times[f"sb3_{algo}"].append(r["seconds"])
            steps[f"sb3_{algo}"].append(r["steps"])
        shown = {k: v[-1] for k, v in times.items() if v}
        print(f"seed {seed}: " + "  ".join(f"{k} {v}" for k, v in shown.items()), flush=True)
    print(f"{'':10}{'median s':>10}{'median steps':>14}")
    for name in times:
        if times[name]:
            print(f"{name:10}{median(times[name]):10.2f}{median(steps[name]):14,.0f}")
    if not args.skip_sb3:
        best = min(median(times["sb3_a2c"]), median(times["sb3_ppo"]))
        ratio = median(times["acexp"]) / best
        print(f"acexp / faster SB3 = {ratio:.2f} (target <= 0.25)")


if __name__ == "__main__":
    main()
