"""What each Pong run measured, read back from its directory: the rows of the comparison table
in docs/envs.md's Pong section.

    python -m benchmarks.pong_runs <run dir> [<run dir> ...]

Per run, one column: the greedy evaluations during training (TensorBoard's `eval/return` at
the logged step nearest each of --at), the agent step at which the mean of the last 100
training games first rises above 0, `metrics.json`'s `final_return` (the last 100 games), the
policy's entropy at the end (`losses/entropy`, nats), and the final model's games played by
`python -m acexp.evaluate`, greedy (`--deterministic`) and sampled, each the newest of the
run's `eval*.json` records of its kind, as mean ± std (min, max); `—` where a run has no such
record.

A directory without `metrics.json` is read from its event file alone, which is how a run of
CleanRL's `ppo_atari.py` is read (`benchmarks/cleanrl_pong.py`): it logs the same
`charts/episodic_return` and `losses/entropy`, one point a game.
"""

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from acexp.analysis.runs import load_events, read_returns
from acexp.analysis.stats import moving_average

GAMES = 100  # the training return is the mean of the last 100 games, as metrics.json's


def eval_at(events, steps: list[int]) -> list[str]:  # noqa: ANN001 (TensorBoard's accumulator)
    """The greedy return logged nearest each of `steps`."""
    if "eval/return" not in events.Tags().get("scalars", []):
        return ["—"] * len(steps)
    logged = {e.step: e.value for e in events.Scalars("eval/return")}
    return [f"{logged[min(logged, key=lambda s: abs(s - step))]:.1f}" for step in steps]


def first_above_zero(run_dir: Path) -> str:
    """The agent step at which the mean of the last 100 games first exceeds 0."""
    steps, returns, counts = read_returns(run_dir)
    mean = moving_average(returns, GAMES, counts)
    full = np.cumsum(counts) >= GAMES  # a mean over fewer games is not yet the last 100
    above = np.flatnonzero(full & (mean > 0))
    return f"{steps[above[0]] / 1e6:.2f}M" if above.size else "—"


def training_return(run_dir: Path) -> str:
    """The mean of the last 100 training games: `metrics.json`'s `final_return`, or, for a run
    without one, the mean of the last 100 games its event file logged."""
    metrics = run_dir / "metrics.json"
    if metrics.exists():
        return f"{json.loads(metrics.read_text()).get('final_return')}"
    _, returns, counts = read_returns(run_dir)
    played = np.repeat(returns, counts)[-GAMES:]  # a point logged for n games stands for each
    return f"{played.mean():.2f}" if played.size == GAMES else "—"


def last(events, tag: str) -> str:  # noqa: ANN001
    if tag not in events.Tags().get("scalars", []):
        return "—"
    return f"{events.Scalars(tag)[-1].value:.2f}"


def games(run_dir: Path, deterministic: bool) -> str:
    """The newest `acexp.evaluate` record of this kind, as mean ± std (min, max) over its games."""
    records = [json.loads(p.read_text()) for p in sorted(run_dir.glob("eval*.json"), key=_mtime)]
    kind = [r["returns"] for r in records if r.get("deterministic") == deterministic]
    if not kind:
        return "—"
    returns = kind[-1]
    spread = statistics.pstdev(returns)
    return f"{statistics.mean(returns):.2f} ± {spread:.2f} ({min(returns):g}, {max(returns):g})"


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def column(run_dir: Path, at: list[int]) -> list[str]:
    events = load_events(run_dir)
    return [
        *eval_at(events, at),
        first_above_zero(run_dir),
        training_return(run_dir),
        last(events, "losses/entropy"),
        games(run_dir, deterministic=True),
        games(run_dir, deterministic=False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument(
        "--at", type=int, nargs="+", default=[750_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000]
    )
    args = parser.parse_args()
    rows = [f"greedy eval (10 games) in training at {step:,} agent steps" for step in args.at]
    rows += [
        "last 100 training games first above 0",
        "last 100 training games at the end",
        "entropy at the end (nats)",
        "final model, greedy games",
        "final model, sampled games",
    ]
    columns = [column(run_dir, args.at) for run_dir in args.run_dirs]
    print("| | " + " | ".join(str(d) for d in args.run_dirs) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for i, row in enumerate(rows):
        print(f"| {row} | " + " | ".join(c[i] for c in columns) + " |")


if __name__ == "__main__":
    main()
