"""How much two sets of runs differ, and whether that is more than noise: the statistics of the
report's factors section, on numbers only (no file system), so that each is testable by hand.

Returns (higher is better) are compared by their means' difference with a percentile-bootstrap
interval, the probability of improvement and a Mann-Whitney test. Steps to solve, where a run
that never solved is right-censored at the length it ran, are compared by their restricted
means (the area under the Kaplan-Meier curve up to a horizon tau both sides reached: the mean
steps to solve with an unsolved run counted as tau when all runs had one budget), the
probability of improvement over the pairs that can be ordered, and a log-rank test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from acexp.analysis import stats, survival
from acexp.analysis.survival import SolveTimes

CONFIDENCE = 0.95
RESAMPLES = 9999
ALPHA = 0.05  # family-wise error of the section's tests (Holm)
POWER = 0.8  # the chance a power estimate asks for


def _bootstrap(samples: tuple[np.ndarray, ...], statistic, seed: int) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of `statistic(*samples, axis)`, each sample
    resampled on its own; (nan, nan) when a sample has fewer than two runs (no spread)."""
    if min(s.size for s in samples) < 2:
        return math.nan, math.nan
    low, high = stats.percentile_bootstrap(samples, statistic, CONFIDENCE, RESAMPLES, seed)
    return float(low), float(high)


def mean_difference(
    reference: Sequence[float], value: Sequence[float], seed: int = 0
) -> tuple[float, float, float]:
    """(mean(value) - mean(reference), 95% CI low, high): the percentile bootstrap, each side
    resampled on its own, as the table's intervals."""
    ref, val = np.asarray(reference, float), np.asarray(value, float)
    if not (ref.size and val.size):
        return math.nan, math.nan, math.nan
    low, high = _bootstrap(
        (ref, val), lambda r, v, axis: v.mean(axis=axis) - r.mean(axis=axis), seed
    )
    return float(val.mean() - ref.mean()), low, high


def probability_of_improvement(reference: Sequence[float], value: Sequence[float]) -> float:
    """P(a run at `value` beats one at `reference`) + P(tie) / 2 over all pairs of runs (higher
    is better): rliable's probability of improvement, Mann-Whitney's U / (n m)."""
    ref, val = np.asarray(reference, float), np.asarray(value, float)
    if not (ref.size and val.size):
        return math.nan
    diff = val[:, None] - ref[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def mann_whitney(reference: Sequence[float], value: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (scipy: exact for small samples without ties, else the
    normal approximation with tie and continuity corrections); NaN without runs on a side."""
    from scipy.stats import mannwhitneyu

    if not (len(reference) and len(value)):
        return math.nan
    return float(mannwhitneyu(value, reference, alternative="two-sided").pvalue)


def horizon(sides: Sequence[SolveTimes]) -> float:
    """The restricted means' tau: the longest time of any run, but no later than where a
    side's longest run stopped unsolved (past it that side's Kaplan-Meier curve is unknown)."""
    times = [s for s in sides if s.times.size]
    if not times:
        return math.nan
    tau = max(float(s.times.max()) for s in times)
    for s in times:
        longest = s.times.max()
        if (~s.solved & (s.times == longest)).any():
            tau = min(tau, float(longest))
    return tau


def _encode(times: SolveTimes) -> np.ndarray:
    """One number per run for the bootstrap, which resamples plain arrays: a solve time as
    itself, a censored run's length negated (times are positive)."""
    return np.where(times.solved, times.times, -times.times)


def _restricted_means(encoded: np.ndarray, tau: float) -> np.ndarray:
    """Kaplan-Meier restricted mean to `tau` of each row of encoded runs (last axis).

    Runs are taken one at a time in order of time, solves before censorings at a tie: a solve
    with k runs still at risk multiplies the survival by 1 - 1/k, which over d tied solves
    gives Kaplan-Meier's 1 - d/n. Past a row's last run the curve holds its last value.
    """
    times, solved = np.abs(encoded), encoded > 0
    order = np.lexsort((~solved, times), axis=-1)
    times = np.take_along_axis(times, order, axis=-1)
    solved = np.take_along_axis(solved, order, axis=-1)
    at_risk = times.shape[-1] - np.arange(times.shape[-1])
    curve = np.cumprod(np.where(solved, 1.0 - 1.0 / at_risk, 1.0), axis=-1)
    clipped = np.minimum(times, tau)
    before = np.concatenate([np.ones_like(curve[..., :1]), curve[..., :-1]], axis=-1)
    widths = np.diff(clipped, axis=-1, prepend=0.0)
    return (before * widths).sum(axis=-1) + curve[..., -1] * (tau - clipped[..., -1])


def restricted_mean(times: SolveTimes, tau: float) -> tuple[float, float, float]:
    """(restricted mean steps to solve up to `tau`, 95% bootstrap CI low, high) of one side."""
    if not times.times.size:
        return math.nan, math.nan, math.nan
    encoded = _encode(times)
    low, high = _bootstrap((encoded,), lambda x, axis: _restricted_means(x, tau), seed=0)
    return float(_restricted_means(encoded, tau)), low, high


def restricted_mean_difference(
    reference: SolveTimes, value: SolveTimes, tau: float, seed: int = 0
) -> tuple[float, float, float]:
    """(restricted mean of `value` - that of `reference`, 95% CI low, high); negative: the
    runs at `value` solve sooner. Both to the same `tau` (`horizon`)."""
    if not (reference.times.size and value.times.size):
        return math.nan, math.nan, math.nan
    ref, val = _encode(reference), _encode(value)
    low, high = _bootstrap(
        (ref, val),
        lambda r, v, axis: _restricted_means(v, tau) - _restricted_means(r, tau),
        seed,
    )
    return float(_restricted_means(val, tau) - _restricted_means(ref, tau)), low, high


def censored_improvement(reference: SolveTimes, value: SolveTimes) -> float:
    """P(a run at `value` solves sooner than one at `reference`) + P(neither) / 2 over pairs.

    A run solves sooner when it solved before the other solved or stopped. A pair that cannot
    be ordered (both unsolved, or one stopped unsolved before the other solved) counts half,
    as a tie does: with one budget for all, that is only a pair of unsolved runs.
    """
    if not (reference.times.size and value.times.size):
        return math.nan
    vt, vs = value.times[:, None], value.solved[:, None]
    rt, rs = reference.times[None, :], reference.solved[None, :]
    value_first = vs & ((vt < rt) | (~rs & (vt == rt)))
    reference_first = rs & ((rt < vt) | (~vs & (rt == vt)))
    return float(np.mean(value_first + 0.5 * (~value_first & ~reference_first)))


def logrank(reference: SolveTimes, value: SolveTimes) -> float:
    """Two-sided log-rank p-value (`survival.logrank`); NaN when nothing can be tested."""
    return survival.logrank(reference, value)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values over the finite ones (NaN stays NaN): the k-th
    smallest of m is multiplied by m - k + 1, then made non-decreasing, capped at 1. A test
    whose adjusted p is below alpha keeps the family-wise error of all m tests below alpha."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted


def seeds_needed(improvement: float, tests: int, alpha: float = ALPHA) -> float:
    """Seeds per value for an 80% chance that a rank test finds an effect of this probability
    of improvement at `alpha / tests` (Holm's threshold for the smallest p): Noether's formula
    n = (z(1 - a/2) + z(0.8))^2 / (6 (P - 1/2)^2). inf for no effect (P = 1/2)."""
    from scipy.stats import norm

    if not math.isfinite(improvement) or improvement == 0.5:
        return math.inf
    z = norm.ppf(1 - alpha / max(tests, 1) / 2) + norm.ppf(POWER)
    return float(max(2, math.ceil(z**2 / (6 * (improvement - 0.5) ** 2))))
