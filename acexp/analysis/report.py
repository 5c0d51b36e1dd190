"""Seed-aggregated report of a Hydra multirun sweep: report.md, report.csv, runs.csv, curves.

Usage: python -m acexp.report <sweep_dir> [--out DIR] [--smooth N] [--points N]

Runs are found by their `.hydra/overrides.yaml`, grouped by their overrides without `seed=`,
and summarised over completed runs. Failed, interrupted and still-running (or crashed before
writing `metrics.json`) jobs are listed in the notes, so a partial sweep can be reported.
The curves are drawn from the points TensorBoard shows (`charts/episodic_return`, the mean of
the episodes that ended on one env step, weighted by their count from `charts/episodes`), as
curves.png (300 dpi) and curves.pdf (vector). When runs record `steps_to_solve`, times to solve
are Kaplan-Meier medians (a run that never solved is censored at its length) and solved.png /
solved.pdf show the fraction of runs solved over episodes and env steps. Runs with evaluation on
add the final evaluation's return (mean and CI over seeds); runs that record `parameters`, the
model's size.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from acexp.analysis import stats, survival
from acexp.analysis.plots import plot_solved
from acexp.analysis.survival import SolveSummary

RETURN_TAG = "charts/episodic_return"
EPISODES_TAG = "charts/episodes"  # episodes so far: how many ended on each logged step
DPI = 300  # print-ready
REPORT_DEPS = ("scipy", "matplotlib", "tensorboard")
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
SOLVE_METRIC = "steps_to_solve"  # runs that record it can tell when they solved
EVAL_METRIC = "eval_return"  # only runs with evaluation on (eval.every_steps > 0) record it
PARAMETERS_METRIC = "parameters"  # runs written before it existed lack it


class ReportError(Exception):
    """Bad input that the CLI reports as one line and exit code 2."""


@dataclass
class Run:
    """One job directory: its overrides and, if it has written one, its metrics.json."""

    path: Path
    overrides: list[str]
    status: str  # completed | interrupted | failed | skipped | any unknown status string
    metrics: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def label(self) -> str:
        return stats.group_label(self.overrides)


@dataclass
class Group:
    """All jobs of one group with the summary of its completed runs."""

    label: str
    overrides: tuple[str, ...]
    runs: list[Run]
    summary: stats.RunSummary

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)


def _last_line(text: str) -> str:
    """Last non-empty line of an error (the exception message of a traceback), one line only."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else "(no error message)"


def load_run(job_dir: Path) -> Run:
    """Read one job directory; a missing or unreadable metrics.json marks the run skipped."""
    overrides_path = job_dir / ".hydra" / "overrides.yaml"
    try:
        overrides = yaml.safe_load(overrides_path.read_text()) or []
    except (OSError, yaml.YAMLError) as exc:
        raise ReportError(f"cannot read {overrides_path}: {' '.join(str(exc).split())}") from exc
    if not isinstance(overrides, list):
        raise ReportError(f"{overrides_path} is not a YAML list of overrides")
    overrides = [str(o) for o in overrides]
    metrics_path = job_dir / "metrics.json"
    if not metrics_path.is_file():
        return Run(job_dir, overrides, "skipped", note="no metrics.json (running or crashed)")
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return Run(job_dir, overrides, "skipped", note=f"unreadable metrics.json: {exc}")
    status = str(metrics.get("status", "unknown"))
    note = _last_line(metrics.get("error", "")) if status == "failed" else ""
    return Run(job_dir, overrides, status, metrics, note)


def find_runs(sweep_dir: Path) -> list[Run]:
    """All runs under `sweep_dir`, found by `.hydra/overrides.yaml` at any depth."""
    if not sweep_dir.is_dir():
        raise ReportError(f"sweep directory does not exist: {sweep_dir}")
    found = sorted(
        p.parent.parent for p in sweep_dir.rglob("overrides.yaml") if p.parent.name == ".hydra"
    )
    runs = [load_run(d) for d in found]
    if not runs:
        raise ReportError(f"no runs (.hydra/overrides.yaml) found under {sweep_dir}")
    return runs


def group_runs(runs: Sequence[Run], seed: int = 0) -> list[Group]:
    """Group runs by overrides minus seed and summarise each group's completed runs.

    Overrides that every group shares are left out of the group labels (see `common_line`).
    """
    common = stats.common_overrides([stats.group_overrides(r.overrides) for r in runs])
    by_label: dict[str, list[Run]] = {}
    for run in runs:
        by_label.setdefault(stats.group_label(run.overrides, drop=common), []).append(run)
    groups = []
    for label in sorted(by_label):
        members = by_label[label]
        completed = [r.metrics for r in members if r.status == "completed"]
        summary = stats.summarize_runs(completed, seed=seed)
        groups.append(Group(label, stats.group_overrides(members[0].overrides), members, summary))
    return groups


def load_events(job_dir: Path) -> Any:
    """Every scalar of a run's event files (TensorBoard's own reader, nothing sampled away)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def read_returns(job_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(env steps, mean episodic return, episodes) per logged point of one run.

    Each point is the mean of the episodes that ended on that env step; their count comes from
    the running episode count (runs logged before it existed count one episode per point).
    """
    acc = load_events(job_dir)
    tags = acc.Tags().get("scalars", [])
    if RETURN_TAG not in tags:
        return np.empty(0), np.empty(0), np.empty(0, dtype=int)
    events = acc.Scalars(RETURN_TAG)
    steps = np.array([e.step for e in events], float)
    values = np.array([e.value for e in events], float)
    counts = np.ones(steps.size, dtype=int)
    if EPISODES_TAG in tags:
        total = {e.step: e.value for e in acc.Scalars(EPISODES_TAG)}
        if all(step in total for step in steps):
            cumulative = np.array([total[step] for step in steps])
            counts = np.maximum(np.diff(cumulative, prepend=0).round(), 1).astype(int)
    return steps, values, counts


@dataclass
class Band:
    """One group's curve on the common grid: mean over seeds, its bootstrap CI, and where
    fewer seeds count because a seed's run had ended (`ended`)."""

    n: int
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    full: np.ndarray  # every seed counts here
    ended: np.ndarray  # a seed's run had ended here; the mean is over the others


def curve_bands(
    groups: Sequence[Group], smooth: int = 10, points: int = 200
) -> tuple[np.ndarray, dict[str, Band]]:
    """The grid of env steps and each group's band (see `plot_curves`)."""
    curves = {}
    for group in groups:
        seeds = []
        for run in (r for r in group.runs if r.status == "completed"):
            steps, values, counts = read_returns(run.path)
            if steps.size:
                end = float(run.metrics.get("env_steps") or steps.max())
                seeds.append((steps, stats.moving_average(values, smooth, counts), end))
        if seeds:
            curves[group.label] = seeds
    max_step = max((end for seeds in curves.values() for *_, end in seeds), default=0.0)
    grid = np.linspace(0.0, max_step, points)
    bands = {}
    for label, seeds in curves.items():
        on_grid = [stats.interpolate_curve(s, v, grid, end=end) for s, v, end in seeds]
        mean, low, high, count = stats.bootstrap_band(np.array(on_grid))
        ended = np.any([grid > end for *_, end in seeds], axis=0) & (count > 0)
        bands[label] = Band(len(seeds), mean, low, high, count == len(seeds), ended)
    return grid, bands


def plot_curves(groups: Sequence[Group], path: Path, smooth: int = 10, points: int = 200) -> None:
    """Mean return over env steps per group, with the table's interval as a band.

    Each completed seed's curve (a moving average of `smooth` episodes) is put on a shared grid
    without extrapolation; from its last episode to its run's last step it holds its value (the
    run went on, finishing no episode). Past the end of a seed's run (stopped when solved, or a
    smaller budget) the mean is over the seeds still running; that stretch is dashed. Writes
    `path` (PNG, 300 dpi) and the same figure as a PDF beside it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid, bands = curve_bands(groups, smooth, points)
    fig, ax = plt.subplots(figsize=(7.0, 4.3))
    for label, band in bands.items():
        (line,) = ax.plot(
            grid, np.where(band.full, band.mean, np.nan), label=f"{label} (n={band.n})"
        )
        if band.ended.any():
            tail = np.convolve(band.ended, np.ones(3), mode="same") > 0  # joins the lines
            ax.plot(grid, np.where(tail, band.mean, np.nan), "--", color=line.get_color())
        ax.fill_between(grid, band.low, band.high, color=line.get_color(), alpha=0.2, lw=0)
    if not bands:
        message = f"no '{RETURN_TAG}' data in completed runs"
        ax.text(0.5, 0.5, message, ha="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize="small")
    ax.set_xlabel("env steps")
    ax.set_ylabel(f"episodic return (moving average of {smooth} episodes)")
    title = "Mean over seeds; band: 95% bootstrap CI of the mean, as in the table"
    if any(band.ended.any() for band in bands.values()):
        title += "\ndashed: some seeds' runs had ended (e.g. solved); mean of the others"
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


def completed_runs(group: Group) -> list[Run]:
    return [r for r in group.runs if r.status == "completed"]


def recorded(groups: Sequence[Group], key: str) -> bool:
    """Whether any completed run's metrics.json has `key` (even if null): the table then shows
    its column, which would otherwise be all `—`."""
    return any(key in r.metrics for g in groups for r in completed_runs(g))


def has_solve_times(groups: Sequence[Group]) -> bool:
    """Whether any completed run records when it solved (the key, even if null)."""
    return recorded(groups, SOLVE_METRIC)


def _fmt(x: float, spec: str = ",.1f") -> str:
    """A number for the table; `—` for NaN (no value) and inf (not reached)."""
    return "—" if not math.isfinite(x) else format(x, spec)


def format_solve(s: SolveSummary) -> str:
    return f"{_fmt(s.median, ',.0f')} [{_fmt(s.low, ',.0f')}, {_fmt(s.high, ',.0f')}]"


def _fmt_mean_ci(mean: float, low: float, high: float) -> str:
    return f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]"


def _fmt_eval(s: stats.RunSummary) -> str:
    """Eval return with its CI, and its n when some completed runs had no evaluation."""
    cell = _fmt_mean_ci(s.eval_mean, s.eval_ci_low, s.eval_ci_high)
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
                 _fmt_mean_ci(s.return_mean, s.return_ci_low, s.return_ci_high),
                 _fmt(s.return_iqm)]  # fmt: skip
        if evals:
            cells.append(_fmt_eval(s))
        if solve:
            solved = f"{_fmt(s.solved_fraction, '.0%')} ({s.n_solved}/{s.n})"
            cells += [solved, format_solve(s.episodes_to_solve), format_solve(s.steps_to_solve)]
        cells.append(_fmt(s.mean_wall_seconds))
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
                detail = r.note or (f"status {r.status!r}" if status is None else "")
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
    """One row per job: its directory, group, seed, status, overrides, metrics and error."""
    runs = sorted((r for g in groups for r in g.runs), key=lambda r: r.path)
    group_of = {id(r): g.label for g in groups for r in g.runs}
    keys = sorted({stats.override_key(o) for r in runs for o in stats.group_overrides(r.overrides)})
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "group", "seed", "status", *keys, *RUN_METRICS, "error"])
        for r in runs:
            values = {stats.override_key(o): o.split("=", 1)[1] for o in r.overrides if "=" in o}
            seed = values.get(stats.SEED_KEY, "")
            cells = [r.metrics.get(k) for k in RUN_METRICS]
            cells = ["" if v is None else v for v in cells]
            rel = r.path.relative_to(sweep_dir) if r.path != sweep_dir else Path(".")
            row = [str(rel), group_of[id(r)], seed, r.status, *(values.get(k, "") for k in keys)]
            writer.writerow([*row, *cells, r.note])


def _check_dependencies() -> None:
    for name in REPORT_DEPS:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ReportError(
                f"the report needs {name} ({exc}); install with: pip install 'acexp[report]'"
            ) from exc


def make_report(
    sweep_dir: Path, out_dir: Path | None = None, smooth: int = 10, points: int = 200
) -> tuple[str, list[str]]:
    """Write report.md, report.csv, runs.csv, curves.png and curves.pdf for a sweep, and
    solved.png and solved.pdf when its runs record when they solved.

    Returns the markdown table and the names of the files written.
    """
    _check_dependencies()
    runs = find_runs(sweep_dir)
    groups = group_runs(runs)
    solve = has_solve_times(groups)
    evals, params = recorded(groups, EVAL_METRIC), recorded(groups, PARAMETERS_METRIC)
    out_dir = out_dir or sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(groups, solve, evals, params)
    notes = markdown_notes(groups, sweep_dir, solve, evals, params)
    common = common_line(groups)
    figures = "![curves](curves.png)\n\n" + ("![solved](solved.png)\n\n" if solve else "")
    vectors = "`curves.pdf`" + (", `solved.pdf`" if solve else "")
    md = (
        f"# Sweep report: `{sweep_dir}`\n\n{common}{table}\n\n{figures}"
        f"Per-run rows: `runs.csv`; the figures as vector files: {vectors}.\n\n{notes}\n"
    )
    (out_dir / "report.md").write_text(md)
    write_csv(groups, out_dir / "report.csv", solve)
    write_runs_csv(groups, sweep_dir, out_dir / "runs.csv")
    plot_curves(groups, out_dir / "curves.png", smooth=smooth, points=points)
    written = ["report.md", "report.csv", "runs.csv", "curves.png", "curves.pdf"]
    if solve:
        completed = {g.label: [r.metrics for r in completed_runs(g)] for g in groups}
        plot_solved(completed, out_dir / "solved.png", dpi=DPI)
        written += ["solved.png", "solved.pdf"]
    return table, written


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 for bad input, with a one-line message)."""
    parser = argparse.ArgumentParser(
        prog="python -m acexp.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "sweep_dir", type=Path, help="Hydra multirun dir, e.g. outputs/multirun/DATE/TIME"
    )
    parser.add_argument("--out", type=Path, default=None, help="output dir (default: sweep_dir)")
    parser.add_argument("--smooth", type=int, default=10, help="moving-average window, episodes")
    parser.add_argument("--points", type=int, default=200, help="points on the common step grid")
    args = parser.parse_args(argv)
    if args.smooth < 1 or args.points < 2:
        parser.error("--smooth must be >= 1 and --points >= 2")
    try:
        table, written = make_report(
            args.sweep_dir, args.out, smooth=args.smooth, points=args.points
        )
    except ReportError as exc:
        print(f"acexp.report: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    print(f"wrote {', '.join(written)} to {args.out or args.sweep_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
