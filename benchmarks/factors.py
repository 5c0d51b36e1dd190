"""Each factor of a full-factorial sweep on its own: is its effect more than noise?

For each factor (a swept key with two values, e.g. `arch`), and each setting of the other
factors, this compares the runs at the factor's two values on env steps to solve (log-rank
test, runs that never solved censored: `acexp.analysis.survival.logrank`) and on the final greedy
evaluation return (Mann-Whitney U, `scipy.stats.mannwhitneyu`), and prints both p-values with
the two Kaplan-Meier medians and mean evaluation returns. No correction for the number of
comparisons is made: read p < 0.05 in one of many rows with care.

With `--eval-threshold X`, a run counts as solved at the first evaluation (`eval/return`, the
greedy policy's mean over `eval.episodes`) that reached X, instead of when its running training
return passed the env's threshold: for PPO on LunarLander, whose stochastic training policy
scores well below its greedy one, the latter leaves most runs censored at their budget.

    python -m benchmarks.factors <sweep dir> [--factors arch optim optim.max_grad_norm]
                                             [--eval-threshold X]
"""

import argparse
import math
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

from acexp.analysis import survival
from acexp.analysis.runs import Run, find_runs, group_runs, load_events
from acexp.analysis.stats import SEED_KEY, override_key
from acexp.analysis.tables import format_solve

EVAL_TAG = "eval/return"


def settings(run: Run) -> dict[str, str]:
    """The run's swept values by key, without the seed."""
    pairs = (o.lstrip("+~").split("=", 1) for o in run.overrides if "=" in o)
    return {override_key(k): v for k, v in pairs if override_key(k) != SEED_KEY}


def solved_by_evaluation(run: Run, threshold: float) -> dict:
    """The run's metrics with `steps_to_solve` the env step of its first evaluation whose mean
    return reached `threshold` (None if none did: censored at its `env_steps`)."""
    events = load_events(run.path)
    points = events.Scalars(EVAL_TAG) if EVAL_TAG in events.Tags()["scalars"] else []
    first = next((p.step for p in points if p.value >= threshold), None)
    return {**run.metrics, "steps_to_solve": first}


def _at(values: dict[str, str], keys: list[str]) -> dict[str, str | None]:
    return {k: values.get(k) for k in keys}


def _mean(values: list[float]) -> str:
    return f"{np.mean(values):.1f}" if values else "—"  # no evaluation in that sweep


def _median(times: survival.SolveTimes) -> str:
    s = survival.summarize(times)
    return "—" if math.isnan(s.median) else f"{s.median:,.0f}"


def _logrank(first: survival.SolveTimes, second: survival.SolveTimes) -> str:
    if not (first.solved.any() or second.solved.any()):
        return "— (none solved)"  # nothing to compare: both censored throughout
    return f"{survival.logrank(first, second):.3f}"


def compare(runs: list[Run], factor: str) -> list[str]:
    """Markdown rows: the factor's two values compared at each setting of the others."""
    values = sorted({settings(r)[factor] for r in runs})
    if len(values) != 2:
        return [f"| {factor} | {len(values)} values: only two-valued factors are compared |"]
    keys = {k for r in runs for k in settings(r)} - {factor}
    others = sorted(k for k in keys if len({settings(r).get(k) for r in runs}) > 1)
    rows = []
    for fixed in sorted({tuple(settings(r).get(k) for k in others) for r in runs}):
        where = dict(zip(others, fixed, strict=True))
        sides = [
            [
                r.metrics
                for r in runs
                if _at(settings(r), [*others, factor]) == {**where, factor: value}
            ]
            for value in values
        ]
        times = [survival.solve_times(side, unit="env_steps") for side in sides]
        evals = [[m["eval_return"] for m in side if m.get("eval_return") is not None]
                 for side in sides]  # fmt: skip
        eval_p = mannwhitneyu(*evals).pvalue if all(evals) else math.nan
        label = ",".join(f"{k}={v}" for k, v in where.items())
        rows.append(
            f"| {factor}: {values[0]} vs {values[1]} | {label} "
            f"| {_median(times[0])} vs {_median(times[1])} | {_logrank(*times)} "
            f"| {_mean(evals[0])} vs {_mean(evals[1])} | {eval_p:.3f} |"
        )
    return rows


def print_groups(runs: list[Run], threshold: float) -> None:
    """Per group: how many runs' greedy evaluation reached `threshold`, and when (KM)."""
    print(f"| group | runs | evaluation reached {threshold:g} | median env steps to reach it "
          "[95% CI] |\n|---|---|---|---|")  # fmt: skip
    for group in group_runs(runs):
        s = survival.summarize(survival.solve_times([r.metrics for r in group.runs], "env_steps"))
        print(f"| {group.label} | {s.runs} | {s.solved}/{s.runs} | {format_solve(s)} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--factors", nargs="+", default=["arch", "optim", "optim.max_grad_norm"])
    parser.add_argument("--eval-threshold", type=float, help="solved: first evaluation >= X")
    args = parser.parse_args()
    runs = [r for r in find_runs(args.sweep_dir) if r.status == "completed"]
    if args.eval_threshold is not None:
        for run in runs:
            run.metrics = solved_by_evaluation(run, args.eval_threshold)
        print_groups(runs, args.eval_threshold)
    print("| factor | other factors | median env steps to solve (KM) | log-rank p "
          "| eval return, mean | Mann-Whitney p |\n|---|---|---|---|---|---|")  # fmt: skip
    for factor in args.factors:
        print("\n".join(compare(runs, factor)))


if __name__ == "__main__":
    main()
