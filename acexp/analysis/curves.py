"""Learning curves of a sweep's groups on one grid of env steps (drawn by `plots.plot_curves`).

Each completed seed's curve (a moving average of episodes) is put on a shared grid without
extrapolation. A run that spent its budget counts to its group's last step: budgets end on a
rollout's boundary, a few steps apart, and a run that ran its budget had not stopped. Only a
run that stopped before its budget (solved, or an episode cap) leaves the mean, which is then
over the seeds still running; that stretch is marked, with why those runs had stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from acexp.analysis import stats
from acexp.analysis.runs import Group, completed_runs, read_returns, stop_reasons


@dataclass
class Band:
    """One group's curve on the common grid: mean over seeds, its bootstrap CI, and where
    fewer seeds count because a seed's run had stopped before its budget (`ended`)."""

    n: int
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    full: np.ndarray  # every seed counts here
    ended: np.ndarray  # a seed's run had stopped early here; the mean is over the others
    stopped: dict[str, int] = field(default_factory=dict)  # why seeds stopped early: how many


def curve_bands(
    groups: Sequence[Group], smooth: int = 10, points: int = 200
) -> tuple[np.ndarray, dict[str, Band]]:
    """The grid of env steps and each group's band, by group label (see the module's doc)."""
    curves = {}
    for group in groups:
        reasons = stop_reasons(group)
        seeds = []
        for run in completed_runs(group):
            steps, values, counts = read_returns(run.path)
            if steps.size:
                end = float(run.metrics.get("env_steps") or steps.max())
                smoothed = stats.moving_average(values, smooth, counts)
                seeds.append((steps, smoothed, end, reasons.get(id(run), "")))
        if seeds:
            curves[group.label] = seeds
    max_step = max((seed[2] for seeds in curves.values() for seed in seeds), default=0.0)
    grid = np.linspace(0.0, max_step, points)
    bands = {}
    for label, seeds in curves.items():
        last = max(end for _, _, end, why in seeds)  # the group's budget's end
        on_grid = [
            stats.interpolate_curve(s, v, grid, end=end if why else last)
            for s, v, end, why in seeds
        ]
        mean, low, high, count = stats.bootstrap_band(np.array(on_grid))
        early = [end for _, _, end, why in seeds if why]
        ended = np.any([grid > end for end in early], axis=0) & (count > 0) if early else None
        stopped: dict[str, int] = {}
        for *_, why in seeds:
            if why:
                stopped[why] = stopped.get(why, 0) + 1
        bands[label] = Band(
            n=len(seeds),
            mean=mean,
            low=low,
            high=high,
            full=count == len(seeds),
            ended=np.zeros(grid.size, bool) if ended is None else ended,
            stopped=stopped,
        )
    return grid, bands
