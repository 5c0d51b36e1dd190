"""Seed-aggregated report of a Hydra multirun sweep: report.md, report.csv, runs.csv, factors.csv,
curves, solve times and one figure per factor compared.

Usage: python -m acexp.report <sweep_dir> [--out DIR] [--smooth N] [--points N]
                              [--reference KEY=VALUE ...]

Runs are found by their `.hydra/overrides.yaml`, grouped by their overrides without `seed=`,
and summarised over completed runs. Failed, interrupted and still-running (or crashed before
writing `metrics.json`) jobs are listed in the notes, so a partial sweep can be reported.
The curves are drawn from the points TensorBoard shows (`charts/episodic_return`, the mean of
the episodes that ended on one env step, weighted by their count from `charts/episodes`), as
curves.png (300 dpi) and curves.pdf (vector). When runs record `steps_to_solve`, times to solve
are Kaplan-Meier medians (a run that never solved is censored at its length) and solved.png /
solved.pdf show the fraction of runs solved over episodes and env steps. Runs with evaluation on
add the final evaluation's return (mean and CI over seeds); runs that record `parameters`, the
model's size. The factors section compares each swept key's values with every other key held
fixed (effect, interval, probability of improvement, Holm-corrected tests, a verdict), with
factor_KEY.png / .pdf per factor compared and factors.csv.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from acexp.analysis import factors as factors_mod
from acexp.analysis.plots import DPI, plot_curves, plot_factor, plot_solved
from acexp.analysis.runs import (  # noqa: F401  (load_run, read_returns: imported from here too)
    EVAL_METRIC,
    PARAMETERS_METRIC,
    ReportError,
    completed_runs,
    find_runs,
    group_runs,
    has_solve_times,
    legend_name,
    load_run,
    read_returns,
    recorded,
)
from acexp.analysis.tables import (
    common_line,
    markdown_notes,
    markdown_table,
    write_csv,
    write_runs_csv,
)
from acexp.analysis.verdicts import factors_markdown, verdict

REPORT_DEPS = ("scipy", "matplotlib", "tensorboard")


def _check_dependencies() -> None:
    for name in REPORT_DEPS:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ReportError(
                f"the report needs {name} ({exc}); install with: pip install 'acexp[report]'"
            ) from exc


def factor_file(key: str) -> str:
    """The PNG of a factor's figure: its key with anything but letters, digits, `._-` as `_`."""
    return f"factor_{re.sub(r'[^A-Za-z0-9._-]', '_', key)}.png"


def make_report(
    sweep_dir: Path,
    out_dir: Path | None = None,
    smooth: int = 10,
    points: int = 200,
    references: Sequence[str] = (),
) -> tuple[str, list[str]]:
    """Write report.md, report.csv, runs.csv, factors.csv, curves.png and curves.pdf for a
    sweep, solved.png and solved.pdf when its runs record when they solved, and a PNG and PDF
    per factor compared (`references`: `key=value` items naming a factor's reference value).

    Returns what the command prints (the table and each factor's verdict) and the files written.
    """
    _check_dependencies()
    runs = find_runs(sweep_dir)
    groups = group_runs(runs)
    factors = factors_mod.analyse(runs, references)  # bad --reference: before anything is written
    solve = has_solve_times(groups)
    evals, params = recorded(groups, EVAL_METRIC), recorded(groups, PARAMETERS_METRIC)
    out_dir = out_dir or sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {g.label: legend_name(g, sweep_dir) for g in groups}
    table = markdown_table(groups, solve, evals, params)
    figures = {f.key: factor_file(f.key) for f in factors if f.comparisons}
    section = factors_markdown(factors, figures)
    notes = markdown_notes(groups, sweep_dir, solve, evals, params)
    common = common_line(groups)
    pictures = "![curves](curves.png)\n\n" + ("![solved](solved.png)\n\n" if solve else "")
    pngs = ["curves.png", *(["solved.png"] if solve else []), *figures.values()]
    vectors = ", ".join(f"`{Path(n).with_suffix('.pdf')}`" for n in pngs)
    md = (
        f"# Sweep report: `{sweep_dir}`\n\n{common}{table}\n\n{pictures}"
        f"Per-run rows: `runs.csv`; per comparison: `factors.csv`; the figures as vector files: "
        f"{vectors}.\n\n{section}\n\n{notes}\n"
    )
    (out_dir / "report.md").write_text(md)
    write_csv(groups, out_dir / "report.csv", solve)
    write_runs_csv(groups, sweep_dir, out_dir / "runs.csv")
    factors_mod.write_factors_csv(factors, out_dir / "factors.csv")
    plot_curves(groups, out_dir / "curves.png", names, smooth=smooth, points=points)
    written = ["report.md", "report.csv", "runs.csv", "factors.csv", "curves.png", "curves.pdf"]
    if solve:
        completed = {names[g.label]: [r.metrics for r in completed_runs(g)] for g in groups}
        plot_solved(completed, out_dir / "solved.png", dpi=DPI)
        written += ["solved.png", "solved.pdf"]
    for factor in (f for f in factors if f.key in figures):
        plot_factor(factor, out_dir / figures[factor.key])
        written += [figures[factor.key], str(Path(figures[factor.key]).with_suffix(".pdf"))]
    family = factors_mod.tests(factors)
    printed = "\n".join([table, *([""] if factors else []), *(verdict(f, family) for f in factors)])
    return printed, written


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
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the value a factor's others are compared with (default: its first value)",
    )
    args = parser.parse_args(argv)
    if args.smooth < 1 or args.points < 2:
        parser.error("--smooth must be >= 1 and --points >= 2")
    try:
        printed, written = make_report(
            args.sweep_dir, args.out, args.smooth, args.points, args.reference
        )
    except ReportError as exc:
        print(f"acexp.report: error: {exc}", file=sys.stderr)
        return 2
    print(printed)
    print(f"wrote {', '.join(written)} to {args.out or args.sweep_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
