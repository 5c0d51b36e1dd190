"""The report's solved.png / solved.pdf: Kaplan-Meier fraction of runs solved, per group.

Runs that never solved are censored at the length they ran (`acexp.analysis.survival`); a tick on a
curve marks each one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acexp.analysis import survival

PANELS = (("episodes", "episodes"), ("env_steps", "env steps"))  # (unit, x label)


def _panel(ax: Any, runs_by_group: Mapping[str, Sequence[Mapping[str, Any]]], unit: str) -> None:
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
    runs_by_group: Mapping[str, Sequence[Mapping[str, Any]]], path: Path, dpi: int = 300
) -> None:
    """Fraction of runs solved against episodes (left) and env steps (right), one step curve
    per group with its 95% log-log band, from each group's completed runs' metrics.json dicts.

    Writes `path` (PNG at `dpi`) and the same figure as a PDF beside it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(11.0, 4.8), sharey=True, layout="constrained")
    for ax, (unit, xlabel) in zip(axes, PANELS, strict=True):
        _panel(ax, runs_by_group, unit)
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
    fig.savefig(path, dpi=dpi)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)
