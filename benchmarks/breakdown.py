"""Where a benchmark configuration spends its time: milliseconds per rollout, by phase.

Runs one configuration of `throughput` (A2C on CartPole) or `ppo_throughput` (HalfCheetah,
Pong) with timers around the environment step, acting, the training forward pass, the backward
pass and the rest of each update (zeroing, clipping, the optimizer step). A timer costs about
a microsecond a call.

    python -m benchmarks.breakdown {a2c,halfcheetah,pong} [--steps N]
                                   [--vectorization auto|sync|async|ale]
"""

import argparse
import collections
import functools
import time
from collections.abc import Callable

import torch

import acexp.algos.base
import acexp.algos.ppo
import acexp.optim.modes
from acexp.algos.on_policy import OnPolicyTrainer
from acexp.envs.make import VECTORIZATIONS, EpisodeReturns
from acexp.models import SharedActorCritic, UnsharedActorCritic
from acexp.runtime.tracking import EpisodeStats
from benchmarks.common import run_acexp

SECONDS: collections.Counter[str] = collections.Counter()
CALLS: collections.Counter[str] = collections.Counter()


def timed(label: str, function: Callable) -> Callable:
    @functools.wraps(function)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SECONDS[label] += time.perf_counter() - start
            CALLS[label] += 1

    return wrapper


def instrument() -> None:
    EpisodeReturns.step = timed("env step", EpisodeReturns.step)
    for model in (SharedActorCritic, UnsharedActorCritic):
        model.act = timed("acting", model.act)
        model.evaluate_actions = timed("training forward", model.evaluate_actions)
    torch.Tensor.backward = timed("backward", torch.Tensor.backward)
    update = timed("update", acexp.optim.modes.apply_update)
    for module in (acexp.algos.base, acexp.algos.ppo):  # they import it by name
        module.apply_update = update
    OnPolicyTrainer.collect = timed("collect", OnPolicyTrainer.collect)
    # The loop's time is the trainer's own clock: from start_clock (after the envs' first
    # reset, which reloads Atari ROMs) to the end of learn().
    start_clock, learn = EpisodeStats.start_clock, OnPolicyTrainer.learn

    def clock_started(stats: EpisodeStats) -> None:
        start_clock(stats)
        SECONDS["loop"] -= time.perf_counter()

    def learned(trainer: OnPolicyTrainer) -> None:
        learn(trainer)
        SECONDS["loop"] += time.perf_counter()

    EpisodeStats.start_clock, OnPolicyTrainer.learn = clock_started, learned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", choices=["a2c", "halfcheetah", "pong"])
    parser.add_argument("--steps", type=int, help="default: 200000, 16384, 4096 (pong)")
    parser.add_argument(
        "--vectorization", choices=VECTORIZATIONS, default="auto", help="PPO configs' vector envs"
    )
    args = parser.parse_args()
    instrument()
    if args.config == "a2c":
        from benchmarks.throughput import EQUAL

        sps = run_acexp(*EQUAL, f"total_steps={args.steps or 200_000}")["sps"]
    else:
        from benchmarks.ppo_throughput import acexp_sps

        steps = args.steps or (4_096 if args.config == "pong" else 16_384)
        sps = acexp_sps(args.config, steps, args.vectorization)
    s, rollouts = SECONDS, CALLS["collect"]
    rows = {
        "env step": s["env step"],
        "acting": s["acting"],
        "rest of collection": s["collect"] - s["env step"] - s["acting"],
        "training forward": s["training forward"],
        "backward": s["backward"],
        "zero_grad, clipping, step": s["update"] - s["backward"],
    }
    rows["other (GAE, batching, logs)"] = s["loop"] - sum(rows.values())
    print(
        f"{args.config} (env.vectorization={args.vectorization}): {sps:,.0f} SPS; "
        f"milliseconds per rollout ({rollouts} rollouts):"
    )
    for name, seconds in rows.items():
        print(f"  {name:28} {1000 * seconds / rollouts:8.2f}")


if __name__ == "__main__":
    main()
