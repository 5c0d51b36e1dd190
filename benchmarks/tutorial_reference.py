"""The PyTorch example "actor_critic.py", run as the reference for acexp's `algo=episodic`.

Source: pytorch/examples, reinforcement_learning/actor_critic.py, as of commit 89c7d75
(2025-08-23, "Upgrade to Gymnasium rather than Gym"). The algorithm below is that file's text:
the `Policy` model (Linear(4, 128) + ReLU, a softmax action head and a value head),
`select_action` (a Categorical sample, its log-prob and the value saved), `finish_episode`
(discounted returns with gamma 0.99, standardised by (R - mean) / (std + float32 eps), advantage
R - value.item(), the summed policy losses -log_prob * advantage plus the summed
smooth_l1_loss(value, R), one Adam step at lr 3e-2) and the main loop (running reward
0.05 * ep_reward + 0.95 * running_reward from 10, solved when it exceeds the env's
reward_threshold, at most 9,999 steps per episode).

Adaptations, each the least that its purpose needs:

Gymnasium (those the example made itself, in 2022 and 2025; its older text used gym):
  - `gym.make("CartPole-v1")`: reward_threshold 475, a TimeLimit of 500 steps (the example
    used CartPole-v0, threshold 195 and 200 steps, until 2022).
  - `env.seed(seed)` became `env.reset(seed=seed)`, the first reset, right after `make`;
    every episode then starts with `state, _ = env.reset()` (reset returns (obs, info)).
  - `env.step` returns (state, reward, terminated, truncated, info); an episode ends on
    `terminated or truncated`, so CartPole-v1's TimeLimit ends it at 500 steps.

Wrapping, so that one call is one run (`train`):
  - the module-level `args`, `env`, `model` and `optimizer` are locals of `train`;
    `select_action` and `finish_episode` take the model (and optimizer, gamma) as arguments
    instead of reading globals; `finish_episode` returns the loss it stepped on (detached,
    for the test).
  - seeding as the example: `env.reset(seed=seed)`, then `torch.manual_seed(seed)`, then the
    model; `seed` replaces `--seed` (default 543 there), `lr` the literal 3e-2.
  - `for i_episode in count(1)` became `range(1, max_episodes + 1)`: the spec's cap of 20,000
    episodes (of at most 9,999 steps, `range(1, 10000)` as in the example).
  - no printing, no rendering (`--render`, `--log-interval` dropped).
  - `shared=False` (not in the example; the spec's "same experiment with an unshared model"):
    the critic gets its own Linear(4, 128) + ReLU. It is created between the action head and
    the value head: the shared model still draws its initial weights exactly as the example
    does, and the unshared one in the order of acexp's `arch=unshared` (actor tower, actor
    head, critic tower, critic head).

Metrics bookkeeping (reads the loop's numbers, changes nothing in it), in the vocabulary of
acexp's metrics.json: `episodes`, `env_steps` (the sum of the episodes' lengths `t`), at the
solving episode `episodes_to_solve`, `steps_to_solve` and `seconds_to_solve`, `final_return`
(the mean of the last 100 episodes' returns), the final `running_return`, `wall_seconds` (from
the first episode, model built) and `sps`.

The running reward starts at 10, as in the example. acexp's EpisodeStats starts it at the first
episode's return instead. The two differ by (first return - 10) * 0.95^n after n episodes;
since passing 475 from 10 takes at least 59 episodes (490 * 0.95^n < 25), that is at most about
5% of the first return's excess over 10 at the earliest possible solve, and it fades from there:
a shift of at most a few episodes in the fastest runs, none in the others. Keeping the
example's 10 here is what lets the comparison show whether it matters.

The same seed does not give the same run in acexp: its layers draw the same initial numbers
from the same generator but place them transposed (`MemberLinear` fills its [in, out] storage),
and a batch of runs samples actions from one stream of all their seeds. So the comparison is of
distributions over seeds. Given the reference's initial weights and generator state, acexp's
per-episode trainer plays the reference's very episodes, action for action, until float
rounding parts them (tests/test_tutorial_reference.py).

Usage:
    python -m benchmarks.tutorial_reference --seeds 0..29 --lr 3e-2 --out DIR [--jobs 2]
        [--max-episodes N] [--unshared]
    python -m benchmarks.tutorial_reference compare REFERENCE_DIR ACEXP_SWEEP_DIR
        [--group 'arch=shared,optim.lr=0.03'] [--out DIR]

The first writes each run as `DIR/seed=<s>/` with `.hydra/overrides.yaml` and `metrics.json`,
as a Hydra sweep's job, so that `python -m acexp.report DIR` reads it; a seed whose
metrics.json exists is not run again. The second compares the two sets of runs: fraction
solved (Fisher's exact test), episodes to solve (Kaplan-Meier medians, log-rank test, runs
that never solved censored at their last episode), and draws both fraction-solved curves in
fidelity.png and fidelity.pdf.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import deque, namedtuple
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import yaml
from torch.distributions import Categorical

GAMMA = 0.99  # the example's --gamma default
MAX_EPISODES = 20_000  # the spec's cap; the example has none
FINAL_WINDOW = 100  # episodes averaged into final_return, as acexp's EpisodeStats
DEFAULT_GROUP = "arch=shared,optim.lr=0.03"

SavedAction = namedtuple("SavedAction", ["log_prob", "value"])
eps = np.finfo(np.float32).eps.item()


class Policy(nn.Module):
    """
    implements both actor and critic in one model (in two towers with shared=False)
    """

    def __init__(self, shared: bool = True) -> None:
        super().__init__()
        self.affine1 = nn.Linear(4, 128)

        # actor's layer
        self.action_head = nn.Linear(128, 2)

        # not in the example: the critic's own hidden layer (see the module's docstring)
        self.critic_affine = None if shared else nn.Linear(4, 128)

        # critic's layer
        self.value_head = nn.Linear(128, 1)

        # action & reward buffer
        self.saved_actions: list[SavedAction] = []
        self.rewards: list[float] = []

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        forward of both actor and critic
        """
        x = F.relu(self.affine1(state))

        # actor: choses action to take from state s_t
        # by returning probability of each action
        action_prob = F.softmax(self.action_head(x), dim=-1)

        # critic: evaluates being in the state s_t
        if self.critic_affine is not None:
            x = F.relu(self.critic_affine(state))
        state_values = self.value_head(x)

        # return values for both actor and critic as a tuple of 2 values:
        # 1. a list with the probability of each action over the action space
        # 2. the value from state s_t
        return action_prob, state_values


def select_action(model: Policy, state: np.ndarray) -> int:
    state = torch.from_numpy(state).float()
    probs, state_value = model(state)

    # create a categorical distribution over the list of probabilities of actions
    m = Categorical(probs)

    # and sample an action using the distribution
    action = m.sample()

    # save to action buffer
    model.saved_actions.append(SavedAction(m.log_prob(action), state_value))

    # the action to take (left or right)
    return action.item()


def finish_episode(model: Policy, optimizer: optim.Optimizer, gamma: float = GAMMA) -> torch.Tensor:
    """
    Training code. Calculates actor and critic loss and performs backprop.
    """
    R = 0
    saved_actions = model.saved_actions
    policy_losses = []  # list to save actor (policy) loss
    value_losses = []  # list to save critic (value) loss
    returns = []  # list to save the true values

    # calculate the true value using rewards returned from the environment
    for r in model.rewards[::-1]:
        # calculate the discounted value
        R = r + gamma * R
        returns.insert(0, R)

    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)

    for (log_prob, value), R in zip(saved_actions, returns, strict=True):
        advantage = R - value.item()

        # calculate actor (policy) loss
        policy_losses.append(-log_prob * advantage)

        # calculate critic (value) loss using L1 smooth loss
        value_losses.append(F.smooth_l1_loss(value, torch.tensor([R])))

    # reset gradients
    optimizer.zero_grad()

    # sum up all the values of policy_losses and value_losses
    loss = torch.stack(policy_losses).sum() + torch.stack(value_losses).sum()

    # perform backprop
    loss.backward()
    optimizer.step()

    # reset rewards and action buffer
    del model.rewards[:]
    del model.saved_actions[:]
    return loss.detach()


def train(
    seed: int, lr: float = 3e-2, max_episodes: int = MAX_EPISODES, shared: bool = True
) -> dict[str, Any]:
    """One run of the example: until solved or `max_episodes` episodes; its metrics."""
    if max_episodes < 1:
        raise ValueError(f"max_episodes must be at least 1, not {max_episodes}")
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    torch.manual_seed(seed)
    model = Policy(shared)
    optimizer = optim.Adam(model.parameters(), lr=lr)

    start = time.perf_counter()
    recent: deque[float] = deque(maxlen=FINAL_WINDOW)
    env_steps = 0
    solved_at: tuple[int, int, float] | None = None  # episodes, env steps, seconds
    running_reward = 10

    for i_episode in range(1, max_episodes + 1):
        # reset environment and episode reward
        state, _ = env.reset()
        ep_reward = 0

        # for each episode, only run 9999 steps so that we don't
        # infinite loop while learning
        for t in range(1, 10000):  # noqa: B007 (t, the episode's length, is read after)
            # select action from policy
            action = select_action(model, state)

            # take the action
            state, reward, terminated, truncated, _ = env.step(action)

            model.rewards.append(reward)
            ep_reward += reward
            if terminated or truncated:
                break
        env_steps += t
        recent.append(float(ep_reward))

        # update cumulative reward
        running_reward = 0.05 * ep_reward + (1 - 0.05) * running_reward

        # perform backprop
        finish_episode(model, optimizer)

        # check if we have "solved" the cart pole problem
        if running_reward > env.spec.reward_threshold:
            solved_at = (i_episode, env_steps, time.perf_counter() - start)
            break

    wall = time.perf_counter() - start
    env.close()
    episodes_to_solve, steps_to_solve, seconds_to_solve = solved_at or (None, None, None)
    return {
        "status": "completed",
        "solved": solved_at is not None,
        "episodes_to_solve": episodes_to_solve,
        "steps_to_solve": steps_to_solve,
        "seconds_to_solve": seconds_to_solve,
        "episodes": i_episode,
        "env_steps": env_steps,
        "final_return": float(np.mean(recent)),
        "running_return": float(running_reward),
        "wall_seconds": wall,
        "sps": env_steps / max(wall, 1e-9),
    }


# -- running seeds as a sweep -------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """`0..29` (inclusive), `0,3,7`, or a mix: `0..4,10`."""
    seeds: list[int] = []
    for part in text.split(","):
        first, dots, last = part.strip().partition("..")
        seeds.extend(range(int(first), int(last) + 1) if dots else [int(first)])
    return seeds


def overrides(seed: int, lr: float, max_episodes: int, shared: bool) -> list[str]:
    """The run's `.hydra/overrides.yaml`: acexp's keys where acexp has them, so that groups
    match an acexp sweep's (`arch=shared,optim.lr=0.03`), and `impl=tutorial`."""
    arch = "shared" if shared else "unshared"
    return [
        f"seed={seed}",
        "impl=tutorial",
        f"arch={arch}",
        f"optim.lr={lr}",
        f"algo.max_episodes={max_episodes}",
    ]


def run_seed(job: tuple[Path, int, float, int, bool]) -> tuple[int, dict[str, Any]]:
    """Run one seed into `out/seed=<seed>/` (skipped if its metrics.json exists)."""
    out, seed, lr, max_episodes, shared = job
    run_dir = out / f"seed={seed}"
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        return seed, json.loads(metrics_path.read_text())
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    (hydra_dir / "overrides.yaml").write_text(
        yaml.safe_dump(overrides(seed, lr, max_episodes, shared))
    )
    metrics = train(seed, lr, max_episodes, shared)
    tmp = metrics_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, metrics_path)  # whole or absent: the report never reads half a file
    return seed, metrics


def run_seeds(
    out: Path, seeds: Sequence[int], lr: float, max_episodes: int, shared: bool, jobs: int
) -> dict[int, dict[str, Any]]:
    """Every seed, `jobs` at a time, one torch thread each; prints a line per finished run."""
    torch.set_num_threads(1)
    todo = [(out, seed, lr, max_episodes, shared) for seed in seeds]
    results: dict[int, dict[str, Any]] = {}

    def show(seed: int, m: dict[str, Any]) -> None:
        results[seed] = m
        solved = f"solved at episode {m['episodes_to_solve']}" if m["solved"] else "not solved"
        print(
            f"seed {seed}: {solved}, {m['episodes']} episodes, {m['env_steps']} env steps, "
            f"{m['wall_seconds']:.1f} s",
            flush=True,
        )

    if jobs <= 1:  # in this process: simpler to debug, nothing to fork
        for job in todo:
            show(*run_seed(job))
    else:
        with Pool(jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            for seed, m in pool.imap_unordered(run_seed, todo):
                show(seed, m)
    return results


# -- comparing with an acexp sweep --------------------------------------------------------------


def _same_value(a: str, b: str) -> bool:
    """Override values equal as text or as numbers (`3e-2` and `0.03`)."""
    if a == b:
        return True
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    except ValueError:
        return False


def in_group(run_overrides: Sequence[str], group: Sequence[str]) -> bool:
    """Whether a run's overrides include every `key=value` of `group`."""
    from acexp.analysis.stats import override_key

    values = {override_key(o): o.split("=", 1)[-1] for o in run_overrides}
    for wanted in group:
        key, _, value = wanted.partition("=")
        if key not in values or not _same_value(values[key], value):
            return False
    return True


def load_metrics(sweep_dir: Path, group: Sequence[str], name: str) -> list[dict[str, Any]]:
    """The metrics of the completed runs in `group`; says on stderr what it left out."""
    from acexp.analysis.report import ReportError, find_runs

    try:
        runs = [r for r in find_runs(sweep_dir) if in_group(r.overrides, group)]
    except ReportError as exc:
        sys.exit(f"{name}: {exc}")
    if not runs:
        sys.exit(f"{name}: no run under {sweep_dir} has the overrides {','.join(group)}")
    left_out = [r for r in runs if r.status != "completed"]
    if left_out:
        statuses = sorted({r.status for r in left_out})
        print(
            f"{name}: {len(left_out)} of {len(runs)} runs left out ({', '.join(statuses)})",
            file=sys.stderr,
        )
    return [r.metrics | {"seed": _seed(r.overrides)} for r in runs if r.status == "completed"]


def _seed(run_overrides: Sequence[str]) -> str:
    return next((o.split("=", 1)[1] for o in run_overrides if o.startswith("seed=")), "?")


def fisher_p(solved_a: int, runs_a: int, solved_b: int, runs_b: int) -> float:
    """Two-sided p-value of Fisher's exact test on the fractions solved."""
    from scipy.stats import fisher_exact

    table = [[solved_a, runs_a - solved_a], [solved_b, runs_b - solved_b]]
    return float(fisher_exact(table).pvalue)


def plot_fraction_solved(sides: dict[str, Any], title: str, path: Path) -> None:
    """The Kaplan-Meier fraction of runs solved against episodes, one curve per side, with
    its confidence band; written as `path` (png, 300 dpi) and its .pdf."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from acexp.analysis.survival import fraction_solved

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, times in sides.items():
        x, estimate, low, high = (np.asarray(a, float) for a in fraction_solved(times))
        positive = x > 0  # a log axis: the curve starts at (1, 0) instead of (0, 0)
        x = np.concatenate([[1.0], x[positive]])
        estimate, low, high = (np.concatenate([[0.0], a[positive]]) for a in (estimate, low, high))
        n, solved = len(times.times), int(np.sum(times.solved))
        line = ax.step(x, estimate, where="post", label=f"{label} ({solved}/{n} solved)")[0]
        ax.fill_between(x, low, high, step="post", alpha=0.2, color=line.get_color())
    ax.set_xscale("log")  # solves come in hundreds of episodes, the cap is 20,000
    ax.set_xlabel("episodes")
    ax.set_ylabel("fraction of runs solved")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=10)  # no run solves in fewer than 59 episodes
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=300)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


def _episodes(x: float) -> str:
    """A median or bound in episodes; NaN or inf: fewer runs solved than it needs."""
    return f"{x:.0f}" if math.isfinite(x) else "not reached"


def _json_number(x: float) -> float | None:
    """JSON has no NaN or inf: null for a median or bound not reached, or a p undefined."""
    return x if math.isfinite(x) else None


def compare(reference_dir: Path, sweep_dir: Path, group: Sequence[str], out: Path) -> dict:
    """Print and return the comparison of the reference runs with the acexp runs of `group`;
    write fidelity.png, fidelity.pdf and fidelity.json into `out`."""
    from acexp.analysis.survival import logrank, solve_times, summarize

    metrics = {
        "tutorial": load_metrics(reference_dir, group, "reference"),
        "acexp": load_metrics(sweep_dir, group, "acexp"),
    }
    seeds = {name: sorted(m["seed"] for m in ms) for name, ms in metrics.items()}
    if seeds["tutorial"] != seeds["acexp"]:
        print(f"note: the seeds differ: {seeds}", file=sys.stderr)
    episodes = {name: solve_times(ms, "episodes") for name, ms in metrics.items()}
    steps = {name: solve_times(ms, "env_steps") for name, ms in metrics.items()}
    summaries = {name: summarize(times) for name, times in episodes.items()}
    a, b = summaries["tutorial"], summaries["acexp"]
    result = {
        "group": list(group),
        "sides": {
            name: {
                "runs": s.runs,
                "solved": s.solved,
                "fraction_solved": s.solved / s.runs,
                "median_episodes_to_solve": _json_number(s.median),
                "median_ci": [_json_number(s.low), _json_number(s.high)],
            }
            for name, s in summaries.items()
        },
        "logrank_p_episodes": logrank(episodes["tutorial"], episodes["acexp"]),
        "logrank_p_steps": logrank(steps["tutorial"], steps["acexp"]),
        "fisher_p_solved": fisher_p(a.solved, a.runs, b.solved, b.runs),
    }
    print(f"group: {','.join(group) or '(all runs)'}")
    print(f"{'':10}{'runs':>6}{'solved':>8}{'fraction':>10}   median episodes to solve [95% CI]")
    for name, s in summaries.items():
        print(
            f"{name:10}{s.runs:6d}{s.solved:8d}{s.solved / s.runs:10.3f}   "
            f"{_episodes(s.median)} [{_episodes(s.low)}, {_episodes(s.high)}]"
        )
    print(f"log-rank p, episodes to solve (unsolved censored): {result['logrank_p_episodes']:.3g}")
    print(f"log-rank p, env steps to solve: {result['logrank_p_steps']:.3g}")
    print(f"Fisher's exact p, fraction solved: {result['fisher_p_solved']:.3g}")

    out.mkdir(parents=True, exist_ok=True)
    title = (
        f"{','.join(group) or 'all runs'}: log-rank p = {result['logrank_p_episodes']:.2g}, "
        f"Fisher p = {result['fisher_p_solved']:.2g}"
    )
    plot_fraction_solved(episodes, title, out / "fidelity.png")
    written = {**result, **{k: _json_number(v) for k, v in result.items() if "_p_" in k}}
    (out / "fidelity.json").write_text(json.dumps(written, indent=2, allow_nan=False) + "\n")
    print(f"wrote fidelity.png, fidelity.pdf, fidelity.json to {out}")
    return result


# -- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        parser = argparse.ArgumentParser(
            prog="python -m benchmarks.tutorial_reference compare",
            description="Compare the reference runs with an acexp sweep's runs of one group.",
        )
        parser.add_argument("reference_dir", type=Path)
        parser.add_argument("sweep_dir", type=Path)
        parser.add_argument(
            "--group", default=DEFAULT_GROUP, help="overrides both sides' runs have ('' for all)"
        )
        parser.add_argument("--out", type=Path, help="where to write (default: reference_dir)")
        args = parser.parse_args(argv[1:])
        group = [g.strip() for g in args.group.split(",") if g.strip()]
        compare(args.reference_dir, args.sweep_dir, group, args.out or args.reference_dir)
        return
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tutorial_reference",
        description=__doc__.splitlines()[0],
        epilog="then: python -m benchmarks.tutorial_reference compare DIR ACEXP_SWEEP_DIR",
    )
    parser.add_argument("--seeds", type=parse_seeds, default=[543], help="e.g. 0..29 or 0,3,7")
    parser.add_argument("--lr", type=float, default=3e-2)
    parser.add_argument("--max-episodes", type=int, default=MAX_EPISODES)
    parser.add_argument("--unshared", action="store_true", help="separate actor and critic")
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    results = run_seeds(
        args.out, args.seeds, args.lr, args.max_episodes, not args.unshared, args.jobs
    )
    solved = [m["episodes_to_solve"] for m in results.values() if m["solved"]]
    median = f", median episodes to solve {np.median(solved):.0f}" if solved else ""
    print(f"{len(solved)} of {len(results)} runs solved{median}; runs in {args.out}")


if __name__ == "__main__":
    main()
