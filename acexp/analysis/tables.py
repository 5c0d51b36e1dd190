"""The report's tables: report.md's summary table and notes, report.csv (one row per group) and
runs.csv (one row per job)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from acexp.analysis import stats, survival
from acexp.analysis.runs import Group, completed_runs, stop_reasons
from acexp.analysis.survival import SolveSummary

RUN_METRICS = (
    "env_steps", "episodes", "final_return", "running_return", "eval_return", "eval_return_std",
    "solved", "steps_to_solve", "episodes_to_solve", "seconds_to_solve", "wall_seconds", "sps",
    "parameters",
)  # fmt: skip
CSV_STATS = (
    "n_jobs", "n_completed", "n_interrupted", "n_failed", "n_skipped", "n_return",
    "final_return_mean", "final_return_ci_low", "final_return_ci_high", "final_return_iqm",
    "n_eval", "eval_return_mean", "eval_return_ci_low", "eval_return_ci_high",
    "n_solved", "solved_fraction",
    "median_episodes_to_solve", "median_episodes_to_solve_ci_low",
    "median_episodes_to_solve_ci_high",
    "median_steps_to_solve", "median_steps_to_solve_ci_low", "median_steps_to_solve_ci_high",
    "mean_wall_seconds", "parameters",
)  # fmt: skip


def fmt(x: float, spec: str = ",.1f") -> str:
    """A number for the tables; `—` for NaN (no value) and inf (not reached)."""
    return "—" if not math.isfinite(x) else format(x, spec)


def format_solve(s: SolveSummary) -> str:
    return f"{fmt(s.median, ',.0f')} [{fmt(s.low, ',.0f')}, {fmt(s.high, ',.0f')}]"


def _mean_ci(mean: float, low: float, high: float) -> str:
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def _eval_cell(s: stats.RunSummary) -> str:
    """Eval return with its CI, and its n when some completed runs had no evaluation."""
    cell = _mean_ci(s.eval_mean, s.eval_ci_low, s.eval_ci_high)
    return cell if s.n_eval == s.n else f"{cell} (n={s.n_eval})"


def _parameters_text(parameters: tuple[int, int] | None, spec: str = "d") -> str:
    """One count, or `min-max` when the group's runs disagree; empty when not recorded."""
    if parameters is None:
        return ""
    low, high = (format(p, spec) for p in parameters)
    return low if low == high else f"{low}-{high}"


def markdown_table(
    groups: Sequence[Group], solve: bool = True, evals: bool = True, params: bool = True
) -> str:
    """The markdown summary table, one row per group; `solve`: with the times to solve,
    `evals`: with the final evaluation's return, `params`: with the parameter counts."""
    columns = ["group", "seeds", "final return: mean [95% CI]", "IQM"]
    if evals:
        columns.append("eval return: mean [95% CI]")
    if solve:
        columns += ["solved", "median episodes to solve [95% CI]",
                    "median env steps to solve [95% CI]"]  # fmt: skip
    columns.append("mean wall time (s)")
    if params:
        columns.append("parameters")
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for g in groups:
        s = g.summary
        cells = [g.label.replace("|", r"\|"), f"{s.n}/{len(g.runs)}",
                 _mean_ci(s.return_mean, s.return_ci_low, s.return_ci_high),
                 fmt(s.return_iqm)]  # fmt: skip
        if evals:
            cells.append(_eval_cell(s))
        if solve:
            solved = f"{fmt(s.solved_fraction, '.0%')} ({s.n_solved}/{s.n})"
            cells += [solved, format_solve(s.episodes_to_solve), format_solve(s.steps_to_solve)]
        cells.append(fmt(s.mean_wall_seconds))
        if params:
            cells.append(_parameters_text(s.parameters, ",d") or "—")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def common_line(groups: Sequence[Group]) -> str:
    """A markdown line naming the overrides every group shares, or nothing."""
    common = stats.common_overrides([g.overrides for g in groups])
    return f"Same in every run: `{' '.join(common)}`\n\n" if common else ""


def _censoring_notes(groups: Sequence[Group]) -> list[str]:
    """A warning for each unit in which some group's runs stopped unsolved before others had
    solved (e.g. an episode cap, read in env steps): there its median is biased low."""
    notes = []
    for unit, name in (("episodes", "episodes"), ("env_steps", "env steps")):
        early = [
            g.label
            for g in groups
            if survival.censored_early(
                survival.solve_times([r.metrics for r in completed_runs(g)], unit)
            )
        ]
        if early:
            notes.append(
                f"- Read the median {name} to solve of {', '.join(f'`{e}`' for e in early)} with "
                f"care: some runs stopped unsolved after fewer {name} than solved runs needed, "
                "which Kaplan-Meier takes as chance; if they stopped because they had failed "
                "(e.g. collapsed under a cap in another unit), that median is too low."
            )
    return notes


def _stopped_note(groups: Sequence[Group]) -> list[str]:
    """How many completed runs stopped before their env-step budget, and why."""
    why: dict[str, int] = {}
    for g in groups:
        for reason in stop_reasons(g).values():
            why[reason] = why.get(reason, 0) + 1
    if not why:
        return []
    counts = ", ".join(f"{n} {reason}" for reason, n in sorted(why.items()))
    return [
        f"- Stopped before their env-step budget: {counts} (completed runs). In the curves "
        "the mean goes on over the runs still going; that stretch is dashed."
    ]


def markdown_notes(
    groups: Sequence[Group],
    sweep_dir: Path,
    solve: bool = True,
    evals: bool = True,
    params: bool = True,
) -> str:
    """Notes: how to read the table, then failed, interrupted and skipped jobs."""
    lines = [
        "- seeds: completed runs / jobs found. Statistics use completed runs only.",
        "- 95% CI: percentile bootstrap of the mean over seeds (scipy, fixed seed); `—` with "
        "a single seed, which has no spread. Few seeds give intervals that are too narrow.",
        "- IQM: mean of the middle 50% of seeds (scipy trim_mean 0.25).",
    ]
    if evals:
        lines.append(
            "- eval return: the greedy policy's mean return over `eval.episodes` (10 by default) "
            "episodes at the end of training; mean and 95% CI over seeds as for final return."
        )
    if solve:
        lines += [
            "- solved: (k/n) = solved / completed runs.",
            "- Medians to solve: runs that never solved count as censored at the length they "
            "ran: Kaplan-Meier, scipy.stats.ecdf. 95% CI from the log-log band (Greenwood), "
            "where it crosses 0.5; `—`: not reached (report.csv: empty, or `inf` for an "
            "interval's open upper end). Few seeds give wide, often open, intervals.",
            *_censoring_notes(groups),
        ]
    lines += _stopped_note(groups)
    if params:
        lines.append(
            "- parameters: trainable parameters of a run's model; min-max when its runs differ."
        )
    runs = [r for g in groups for r in g.runs]
    null_returns = sum(g.summary.n - g.summary.n_return for g in groups)
    if null_returns:
        lines.append(f"- {null_returns} completed run(s) had no final_return and are left out.")
    no_eval = sum(g.summary.n - g.summary.n_eval for g in groups)
    if evals and no_eval:
        lines.append(f"- {no_eval} completed run(s) had no eval_return (evaluation off).")
    sections = [("Failed runs", "failed"), ("Interrupted runs (not counted)", "interrupted"),
                ("Skipped runs", "skipped")]  # fmt: skip
    known = {"completed", "failed", "interrupted", "skipped"}
    out = ["## Notes", "", *lines]
    for title, status in [*sections, ("Runs with an unknown status (not counted)", None)]:
        chosen = [r for r in runs if (r.status == status if status else r.status not in known)]
        if chosen:
            out += ["", f"### {title} ({len(chosen)})", ""]
            for r in chosen:
                why = r.note or (f"status {r.status!r}" if status is None else "")
                then = f"continue with: `{r.resume}`" if r.resume else ""
                detail = "; ".join(part for part in (why, then) if part)
                rel = r.path.relative_to(sweep_dir) if r.path != sweep_dir else Path(".")
                out.append(f"- `{rel}`" + (f": {detail}" if detail else ""))
    return "\n".join(out)


def _solve_cells(s: SolveSummary, solve: bool) -> list[float]:
    return [s.median, s.low, s.high] if solve else [math.nan] * 3


def write_csv(groups: Sequence[Group], path: Path, solve: bool = True) -> None:
    """One row per group: label, one column per override key, then the statistics.

    Missing values (NaN: none, or a median not reached) are written as empty fields, an open
    upper end of an interval as `inf`; without `solve` the times to solve are left empty.
    `parameters` is one count, or `min-max` when the group's runs disagree.
    """
    keys = sorted({stats.override_key(o) for g in groups for o in g.overrides})
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["group", *keys, *CSV_STATS])
        for g in groups:
            s = g.summary
            values = dict(zip(map(stats.override_key, g.overrides), g.overrides, strict=True))
            row_keys = [values[k].split("=", 1)[1] if k in values else "" for k in keys]
            numbers = [len(g.runs), s.n, g.count("interrupted"), g.count("failed"),
                       g.count("skipped"), s.n_return, s.return_mean, s.return_ci_low,
                       s.return_ci_high, s.return_iqm, s.n_eval, s.eval_mean, s.eval_ci_low,
                       s.eval_ci_high, s.n_solved, s.solved_fraction,
                       *_solve_cells(s.episodes_to_solve, solve),
                       *_solve_cells(s.steps_to_solve, solve), s.mean_wall_seconds,
                       _parameters_text(s.parameters)]  # fmt: skip
            cells = ["" if isinstance(x, float) and math.isnan(x) else x for x in numbers]
            writer.writerow([g.label, *row_keys, *cells])


def write_runs_csv(groups: Sequence[Group], sweep_dir: Path, path: Path) -> None:
    """One row per job: its directory, group, seed, status, why it stopped before its budget
    (`stopped_early`: solved, episode cap; empty when it ran its budget), overrides, metrics
    and error."""
    runs = sorted((r for g in groups for r in g.runs), key=lambda r: r.path)
    group_of = {id(r): g.label for g in groups for r in g.runs}
    early = {k: why for g in groups for k, why in stop_reasons(g).items()}
    keys = sorted({stats.override_key(o) for r in runs for o in stats.group_overrides(r.overrides)})
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        head = ["run", "group", "seed", "status", "stopped_early", *keys, *RUN_METRICS, "error"]
        writer.writerow(head)
        for r in runs:
            values = {stats.override_key(o): o.split("=", 1)[1] for o in r.overrides if "=" in o}
            seed = values.get(stats.SEED_KEY, "")
            cells = [r.metrics.get(k) for k in RUN_METRICS]
            cells = ["" if v is None else v for v in cells]
            rel = r.path.relative_to(sweep_dir) if r.path != sweep_dir else Path(".")
            row = [str(rel), group_of[id(r)], seed, r.status, early.get(id(r), "")]
            writer.writerow([*row, *(values.get(k, "") for k in keys), *cells, r.note])
