"""Survival statistics of solve times: runs that never solved are right-censored, not dropped.

A median over solved runs alone is biased: it forgets the runs that ran long without solving.
Here each run is a solve time or, if it never solved, the length it ran (censored there), and
the fraction of runs solved by time t is the Kaplan-Meier estimate (`scipy.stats.ecdf` on
`CensoredData`) with Greenwood's variance and a log-log confidence band.

Pure functions on numbers (no file system); scipy is imported inside them, as in `stats`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

UNITS = {  # unit: (metric holding the solve time, metric holding the run's length)
    "episodes": ("episodes_to_solve", "episodes"),
    "env_steps": ("steps_to_solve", "env_steps"),
}
HALF = 0.5 + 1e-12  # a product of fractions can land a hair above an exact 0.5


@dataclass(frozen=True)
class SolveTimes:
    """Per run: when it solved (episodes or env steps), or how long it ran without solving."""

    times: np.ndarray  # float: the solve time, or the run's length if it never solved (censored)
    solved: np.ndarray  # bool


def solve_times(metrics: Sequence[Mapping[str, Any]], unit: str = "episodes") -> SolveTimes:
    """Solve times of runs from their `metrics.json` dicts, in `unit` ("episodes", "env_steps").

    A run solved when its `episodes_to_solve` / `steps_to_solve` is not null; otherwise it is
    censored at its `episodes` / `env_steps`. A run with neither number is left out.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {sorted(UNITS)}, not {unit!r}")
    solve_key, length_key = UNITS[unit]
    times, solved = [], []
    for m in metrics:
        if m.get(solve_key) is not None:
            times.append(float(m[solve_key]))
            solved.append(True)
        elif m.get(length_key) is not None:
            times.append(float(m[length_key]))
            solved.append(False)
    return SolveTimes(np.array(times, dtype=float), np.array(solved, dtype=bool))


def _survival(times: SolveTimes, confidence: float) -> tuple[np.ndarray, ...]:
    """Kaplan-Meier survival (fraction not yet solved) at each distinct time, with its band.

    Returns (t, survival, band low, band high). scipy leaves the log-log band undefined where
    the survival is 1 (no solve yet: no spread, so the band is [1, 1]) and where it is 0 (the
    last runs at risk all solved: Greenwood's variance is infinite). There the lower end is 0
    and the upper end keeps its last value: the survival cannot have risen since.
    """
    from scipy.stats import CensoredData, ecdf

    data = CensoredData(uncensored=times.times[times.solved], right=times.times[~times.solved])
    sf = ecdf(data).sf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "undefined at some observations"
        band = sf.confidence_interval(confidence, method="log-log")
    t, s = sf.quantiles, sf.probabilities
    low, high = band.low.probabilities.copy(), band.high.probabilities.copy()
    low[s >= 1], high[s >= 1] = 1.0, 1.0
    low[s <= 0] = 0.0
    for i in np.flatnonzero(s <= 0):
        high[i] = high[i - 1] if i > 0 else 1.0
    return t, s, low, high


def _first_below_half(t: np.ndarray, curve: np.ndarray) -> float:
    """First time the survival curve is at or below 0.5, NaN if it never is."""
    below = np.flatnonzero(curve <= HALF)
    return float(t[below[0]]) if below.size else math.nan


@dataclass(frozen=True)
class SolveSummary:
    """Kaplan-Meier median time to solve and its confidence interval, over `runs` runs.

    median: NaN when fewer than half the runs are estimated to solve (not reached).
    low: NaN when even the band's lower survival stays above 0.5 (the interval lies past
    the data). high: inf when the band's upper survival stays above 0.5 (not reached).
    """

    runs: int
    solved: int
    median: float
    low: float
    high: float


def summarize(times: SolveTimes, confidence: float = 0.95) -> SolveSummary:
    """KM median solve time with a Brookmeyer-Crowley style interval read off the band.

    median: the first time the estimated survival is <= 0.5 (as lifelines does; ties are
    handled by the KM estimate: runs censored at a solve time count as still at risk there).
    The band's lower survival crosses 0.5 first, giving the interval's low end; its upper
    survival crosses last, giving the high end (as lifelines'
    `median_survival_times(kmf.confidence_interval_)`).
    """
    runs, solved = int(times.times.size), int(times.solved.sum())
    if runs == 0:
        return SolveSummary(0, 0, math.nan, math.nan, math.inf)
    t, s, low, high = _survival(times, confidence)
    upper_end = _first_below_half(t, high)
    return SolveSummary(
        runs=runs,
        solved=solved,
        median=_first_below_half(t, s),
        low=_first_below_half(t, low),
        high=math.inf if math.isnan(upper_end) else upper_end,
    )


def fraction_solved(
    times: SolveTimes, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step-function points (x, fraction solved by x, CI low, CI high) for plotting.

    The fraction solved is 1 - KM survival, its band 1 - the survival's band. The points start
    at x = 0 (nothing solved) and end at the last run's time; draw them as steps that hold
    each value until the next x (`where="post"`). No runs: empty arrays.
    """
    if times.times.size == 0:
        return tuple(np.empty(0) for _ in range(4))  # type: ignore[return-value]
    t, s, low, high = _survival(times, confidence)
    start = [0.0] if t[0] > 0 else []
    zero = [0.0] * len(start)
    return (
        np.concatenate([start, t]),
        np.concatenate([zero, 1.0 - s]),
        np.concatenate([zero, 1.0 - high]),
        np.concatenate([zero, 1.0 - low]),
    )


def logrank(a: SolveTimes, b: SolveTimes) -> float:
    """Two-sided log-rank p-value that two groups solve at the same rate (scipy.stats.logrank).

    NaN when it is undefined: a group without runs, no run solved in either group, or no
    spread to test (every run in both groups solved at one same time).
    """
    from scipy.stats import CensoredData
    from scipy.stats import logrank as scipy_logrank

    if a.times.size == 0 or b.times.size == 0 or not (a.solved.any() or b.solved.any()):
        return math.nan
    x, y = (CensoredData(uncensored=g.times[g.solved], right=g.times[~g.solved]) for g in (a, b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when there is no spread: NaN
        return float(scipy_logrank(x, y).pvalue)


def censored_early(times: SolveTimes) -> bool:
    """Whether a run stopped unsolved sooner than a solved run needed to solve.

    Kaplan-Meier assumes that when a run stops says nothing about whether it would solve. A
    budget every run shares keeps that true; a cap in another unit does not: with a cap on
    episodes, a run whose policy collapsed (9-step episodes) stops after few env steps, and
    the env-step estimate then rests on the few runs still going, which are the good ones.
    """
    if not (times.solved.any() and (~times.solved).any()):
        return False
    return bool(times.times[~times.solved].min() < times.times[times.solved].max())
