"""The report's factors section for a sweep, printed; optionally with "solved" meaning the first
greedy evaluation that reached a threshold.

Without `--eval-threshold` this prints what `python -m acexp.report <sweep dir>` writes in
report.md's factors section (acexp/analysis/factors.py, verdicts.py), without its figures.

With `--eval-threshold X`, a run counts as solved at the first evaluation (`eval/return`, the
greedy policy's mean over `eval.episodes`) that reached X, instead of when its running training
return passed the env's threshold: for PPO on LunarLander, whose stochastic training policy
scores well below its greedy one, the latter leaves most runs censored at their budget. The
groups' table (Kaplan-Meier medians to that first evaluation) comes first.

    python -m benchmarks.factors <sweep dir> [--reference KEY=VALUE ...] [--eval-threshold X]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from acexp.analysis import survival
from acexp.analysis.factors import analyse
from acexp.analysis.runs import ReportError, Run, find_runs, group_runs, load_events
from acexp.analysis.tables import format_solve
from acexp.analysis.verdicts import factors_markdown

EVAL_TAG = "eval/return"


def solved_by_evaluation(run: Run, threshold: float) -> dict:
    """The run's metrics with `steps_to_solve` the env step of its first evaluation whose mean
    return reached `threshold` (None if none did: censored at its `env_steps`) and `solved`
    whether one did."""
    events = load_events(run.path)
    points = events.Scalars(EVAL_TAG) if EVAL_TAG in events.Tags()["scalars"] else []
    first = next((p.step for p in points if p.value >= threshold), None)
    return {**run.metrics, "steps_to_solve": first, "solved": first is not None}


def groups_table(runs: list[Run], threshold: float) -> str:
    """Per group: how many runs' greedy evaluation reached `threshold`, and when (KM)."""
    rows = [
        f"| group | runs | evaluation reached {threshold:g} | median env steps to reach it "
        "[95% CI] |",
        "|---|---|---|---|",
    ]
    for group in group_runs(runs):
        done = [r.metrics for r in group.runs if r.status == "completed"]
        s = survival.summarize(survival.solve_times(done, "env_steps"))
        rows.append(f"| {group.label} | {s.runs} | {s.solved}/{s.runs} | {format_solve(s)} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--reference", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--eval-threshold", type=float, help="solved: first evaluation >= X")
    args = parser.parse_args(argv)
    try:
        runs = find_runs(args.sweep_dir)
        if args.eval_threshold is not None:
            for run in (r for r in runs if r.status == "completed"):
                run.metrics = solved_by_evaluation(run, args.eval_threshold)
            print(groups_table(runs, args.eval_threshold) + "\n")
        print(factors_markdown(analyse(runs, args.reference), figures={}))
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
