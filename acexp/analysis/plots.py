"""The report's figures, each as a PNG (print-ready dpi) and the same figure as a PDF beside it:
curves (return over env steps per group), solved (Kaplan-Meier fraction of runs solved) and one
figure per factor (each run as a point, each value's mean and interval as a bar).

Curves and legends are named as TensorBoard names the runs (`runs.legend_name`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acexp.analysis import survival
from acexp.analysis.curves import curve_bands
from acexp.analysis.factors import Factor
from acexp.analysis.runs import RETURN_TAG, Group

DPI = 300  # print-ready
PANELS = (("episodes", "episodes"), ("env_steps", "env steps"))  # (unit, x label)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, dpi: int = DPI) -> None:
    fig.savefig(path, dpi=dpi)
    fig.savefig(path.with_suffix(".pdf"))
    _pyplot().close(fig)


def _curves_title(bands: Mapping[str, Any]) -> str:
    """What the lines and bands are: a mean over seeds, or one run (no interval)."""
    if bands and all(b.n == 1 for b in bands.values()):
        title = "One run" + (" per curve" if len(bands) > 1 else "") + ": no interval (one seed)"
    else:
        title = "Mean over seeds; band: 95% bootstrap CI of the mean, as in the table"
        if any(b.n == 1 for b in bands.values()):
            title += " (none for one run)"
    stopped: dict[str, int] = {}
    for band in bands.values():
        if band.ended.any():
            for why, n in band.stopped.items():
                stopped[why] = stopped.get(why, 0) + n
    if stopped:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(stopped.items()))
        title += f"\ndashed: after runs stopped before their budget ({reasons}); mean of the others"
    return title


def plot_curves(
    groups: Sequence[Group],
    path: Path,
    names: Mapping[str, str] | None = None,
    smooth: int = 10,
    points: int = 200,
) -> None:
    """Mean return over env steps per group, with the table's interval as a band
    (`curves.curve_bands`); `names`: each group's legend by its label."""
    plt = _pyplot()
    names = names or {}
    grid, bands = curve_bands(groups, smooth, points)
    fig, ax = plt.subplots(figsize=(7.0, 4.3))
    for label, band in bands.items():
        count = "one run" if band.n == 1 else f"n={band.n}"
        (line,) = ax.plot(
            grid,
            np.where(band.full, band.mean, np.nan),
            label=f"{names.get(label, label)} ({count})",
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
    ax.set_title(_curves_title(bands), fontsize="medium")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def _solved_panel(
    ax: Any, runs_by_group: Mapping[str, Sequence[Mapping[str, Any]]], unit: str
) -> None:
    for label, metrics in runs_by_group.items():
        times = survival.solve_times(metrics, unit)
        x, solved, low, high = survival.fraction_solved(times)
        if not x.size:
            continue
        (line,) = ax.step(x, solved, where="post", label=f"{label} (n={times.times.size})")
        color = line.get_color()
        ax.fill_between(x, low, high, step="post", color=color, alpha=0.15, lw=0)
        censored = times.times[~times.solved]
        at = np.searchsorted(x, censored, side="right") - 1  # the step each censoring falls on
        ax.plot(censored, solved[at], "|", color=color, markersize=8)


def plot_solved(
    runs_by_group: Mapping[str, Sequence[Mapping[str, Any]]], path: Path, dpi: int = DPI
) -> None:
    """Fraction of runs solved against episodes (left) and env steps (right), one step curve
    per group with its 95% log-log band, from each group's completed runs' metrics.json dicts
    (keyed by the group's legend). Runs that never solved are censored at the length they ran
    (`survival`); a tick on a curve marks each one."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(PANELS), figsize=(11.0, 4.8), sharey=True, layout="constrained")
    for ax, (unit, xlabel) in zip(axes, PANELS, strict=True):
        _solved_panel(ax, runs_by_group, unit)
        ax.set_xlabel(xlabel)
        ax.set_xlim(left=0)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of runs solved")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:  # below both panels: long group labels would hide the curves
        fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize="small")
    else:
        axes[0].text(0.5, 0.5, "no completed runs", ha="center", transform=axes[0].transAxes)
    fig.suptitle(
        "Kaplan-Meier estimate; band: 95% CI (log-log); |: a run that ended unsolved (censored)",
        fontsize="medium",
    )
    _save(fig, path, dpi)


def _wrap(where: str, width: int = 16) -> str:
    """A setting of the other keys as a tick label: one `key=value` a line, long ones broken
    after the `=`."""
    lines = (s if len(s) <= width else s.replace("=", "=\n", 1) for s in where.split(","))
    return "\n".join(lines)


def _factor_panel(ax: Any, factor: Factor, outcome_key: str, colors: Sequence[Any]) -> None:
    """Per setting of the other keys, each value's runs as points (hollow: never solved, at
    the length it ran) and its mean with the 95% CI as a bar beside them."""
    rng = np.random.default_rng(0)  # jitter only: the same figure every time
    width = 0.8 / len(factor.values)
    for i, cell in enumerate(factor.cells):
        for j, value in enumerate(factor.values):
            side = cell.sides[outcome_key].get(value)
            if side is None or not side.n:
                continue
            x = i - 0.4 + width * (j + 0.5)
            color = colors[j]
            if isinstance(side.data, survival.SolveTimes):
                y, filled = side.data.times, side.data.solved
            else:
                y, filled = side.data, np.ones(side.data.size, bool)
            jitter = x - width / 4 + rng.uniform(-width / 8, width / 8, y.size)
            ax.scatter(jitter[filled], y[filled], s=14, color=color, alpha=0.7, lw=0)
            ax.scatter(jitter[~filled], y[~filled], s=18, facecolors="none", edgecolors=color)
            if np.isfinite(side.centre):
                low = side.centre - side.low if np.isfinite(side.low) else 0.0
                high = side.high - side.centre if np.isfinite(side.high) else 0.0
                ax.errorbar(x + width / 4, side.centre, yerr=[[low], [high]], fmt="D", ms=5,
                            color=color, capsize=3, lw=1.5)  # fmt: skip
    ax.set_xticks(range(len(factor.cells)))
    ax.set_xticklabels([_wrap(c.where) for c in factor.cells], fontsize="x-small")
    ax.set_xlim(-0.5, len(factor.cells) - 0.5)
    ax.grid(alpha=0.3, axis="y")


def plot_factor(factor: Factor, path: Path) -> None:
    """One figure per factor: a panel per outcome, the values side by side at each setting of
    the other keys, in the colours of the legend."""
    plt = _pyplot()
    panels = factor.outcomes
    width = min(16.0, max(4.5, 1.0 + 0.45 * len(factor.cells) * max(len(factor.values), 2)))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width * len(panels), 4.6), squeeze=False, layout="constrained"
    )
    colors = [plt.get_cmap("tab10")(i % 10) for i in range(len(factor.values))]
    for ax, outcome in zip(axes[0], panels, strict=True):
        _factor_panel(ax, factor, outcome.key, colors)
        if outcome.censored:
            ax.yaxis.set_major_formatter(lambda y, _: f"{y:,.0f}")
            ax.set_ylabel(f"{outcome.name} (hollow: unsolved)\nbar: restricted mean, 95% CI")
        else:
            ax.set_ylabel(f"{outcome.name}\nbar: mean, 95% CI")
    handles = [
        plt.Line2D(
            [],
            [],
            marker="o",
            ls="",
            color=c,
            label=f"{v} (reference)" if v == factor.reference else v,
        )
        for v, c in zip(factor.values, colors, strict=True)
    ]
    fig.legend(handles=handles, title=factor.key, loc="outside right center", fontsize="small")
    fig.suptitle(
        f"{factor.key}: each run a point, at each setting of the other keys", fontsize="medium"
    )
    _save(fig, path)
