"""Pure statistics for sweep reports: grouping, bootstrap CIs, IQM, times to solve (Kaplan-Meier,
in `survival`) and learning-curve bands.

Nothing here touches the file system, so every function can be tested on hand-made numbers.
scipy is imported inside the functions that need it, so importing this module never fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from acexp.analysis import survival

SEED_KEY = "seed"
DEFAULTS_LABEL = "(defaults)"


def override_key(override: str) -> str:
    """Config key of a Hydra override (`+a.b=1` -> `a.b`), so prefixes don't split groups."""
    return override.split("=", 1)[0].lstrip("+~")


def group_overrides(overrides: Sequence[str]) -> tuple[str, ...]:
    """Overrides that define a group: all but `seed=` and `hydra*` keys, sorted.

    Sorting makes the group independent of the order the overrides were typed in.
    """
    kept = []
    for override in overrides:
        key = override_key(override)
        if key == SEED_KEY or key.startswith("hydra"):
            continue
        kept.append(override)
    return tuple(sorted(kept))


def group_label(overrides: Sequence[str], drop: Sequence[str] = ()) -> str:
    """Human-readable group name: the grouping overrides not in `drop` joined by `,`.

    `(defaults)` when nothing is left.
    """
    kept = [o for o in group_overrides(overrides) if o not in drop]
    return ",".join(kept) if kept else DEFAULTS_LABEL


def common_overrides(groups: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """Overrides shared by every group, when there are several groups (else none).

    They say nothing about how groups differ (e.g. `+experiment=...`, `total_steps=...`), so the
    report states them once instead of repeating them in every group's name.
    """
    distinct = {tuple(sorted(g)) for g in groups}
    if len(distinct) < 2:
        return ()
    first, *rest = distinct
    return tuple(o for o in first if all(o in g for g in rest))


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean (mean of the middle 50%): robust to one lucky or unlucky seed."""
    from scipy.stats import trim_mean

    x = np.asarray(values, dtype=float)
    return float(trim_mean(x, 0.25)) if x.size else math.nan


BOOTSTRAP_BATCH = 1000  # resamples drawn at a time: bounds memory on wide curve grids


def percentile_bootstrap(
    samples: tuple[np.ndarray, ...],
    statistic: Any,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the percentile-bootstrap interval of `statistic(*samples, axis=-1)`, each
    sample resampled on its own along its last axis, reproducible through `seed`.

    The percentile method (not BCa) stays defined when all values are equal (e.g. every seed
    hit the same return cap) and never leaves what the resamples can give.
    """
    from scipy.stats import bootstrap

    result = bootstrap(
        samples,
        statistic,
        vectorized=True,
        paired=False,
        axis=-1,
        confidence_level=confidence,
        n_resamples=n_resamples,
        batch=BOOTSTRAP_BATCH,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return result.confidence_interval.low, result.confidence_interval.high


def _bootstrap_columns(
    x: np.ndarray, confidence: float, n_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap CI of the mean of each column of `x` (rows: seeds, no NaN)."""
    n, m = x.shape
    low, high = np.full(m, np.nan), np.full(m, np.nan)
    if n < 2:
        return low, high
    same = np.all(x == x[0], axis=0)
    low[same], high[same] = x[0, same], x[0, same]
    spread = ~same
    if np.any(spread):
        ci_low, ci_high = percentile_bootstrap(
            (x[:, spread].T,), np.mean, confidence, n_resamples, seed
        )
        # never outside the data: a mean of equal floats can round a last digit past them
        low[spread] = np.clip(ci_low, x[:, spread].min(axis=0), x[:, spread].max(axis=0))
        high[spread] = np.clip(ci_high, x[:, spread].min(axis=0), x[:, spread].max(axis=0))
    return low, high


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean (`percentile_bootstrap`), never
    outside [min, max] of the values.

    Returns (nan, nan) for fewer than two values: one seed says nothing about spread, and
    reporting [x, x] would look like certainty. With only a handful of seeds any bootstrap
    interval is too narrow; read it together with n.
    """
    x = np.asarray(values, dtype=float).reshape(-1, 1)
    low, high = _bootstrap_columns(x, confidence, n_resamples, seed)
    return float(low[0]), float(high[0])


@dataclass(frozen=True)
class RunSummary:
    """Statistics over the completed runs (seeds) of one group."""

    n: int
    n_return: int
    return_mean: float
    return_ci_low: float
    return_ci_high: float
    return_iqm: float
    n_solved: int
    solved_fraction: float
    episodes_to_solve: survival.SolveSummary  # Kaplan-Meier: unsolved runs censored
    steps_to_solve: survival.SolveSummary
    mean_wall_seconds: float
    n_eval: int  # runs with a final evaluation (evaluation on)
    eval_mean: float
    eval_ci_low: float
    eval_ci_high: float
    parameters: tuple[int, int] | None  # (min, max) trainable parameters; None: not recorded


def _numbers(metrics: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    """Values of `key` that are present and not null."""
    return [float(m[key]) for m in metrics if m.get(key) is not None]


def mean_ci(
    values: Sequence[float], confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the mean over seeds with its `bootstrap_ci`; NaN without values."""
    low, high = bootstrap_ci(values, confidence=confidence, seed=seed)
    return (float(np.mean(values)) if len(values) else math.nan), low, high


def parameter_range(metrics: Sequence[Mapping[str, Any]]) -> tuple[int, int] | None:
    """(min, max) of the runs' `parameters`; runs written before it existed are left out."""
    counts = [int(m["parameters"]) for m in metrics if m.get("parameters") is not None]
    return (min(counts), max(counts)) if counts else None


def summarize_runs(
    metrics: Sequence[Mapping[str, Any]], confidence: float = 0.95, seed: int = 0
) -> RunSummary:
    """Aggregate the `metrics.json` dicts of one group's completed runs.

    Times to solve are Kaplan-Meier medians with their interval (`survival.summarize`): a run
    that never solved counts as censored at the length it ran, neither dropped nor a zero.
    Null `final_return` / `eval_return` / `wall_seconds` values are left out of their statistic;
    `eval_return` (the final evaluation) gets the same mean and CI as `final_return`.
    """
    returns = _numbers(metrics, "final_return")
    evals = _numbers(metrics, "eval_return")
    solved = [m for m in metrics if m.get("solved")]
    mean, low, high = mean_ci(returns, confidence, seed)
    eval_mean, eval_low, eval_high = mean_ci(evals, confidence, seed)
    walls = _numbers(metrics, "wall_seconds")
    return RunSummary(
        n=len(metrics),
        n_return=len(returns),
        return_mean=mean,
        return_ci_low=low,
        return_ci_high=high,
        return_iqm=iqm(returns),
        n_solved=len(solved),
        solved_fraction=len(solved) / len(metrics) if metrics else math.nan,
        episodes_to_solve=survival.summarize(survival.solve_times(metrics, "episodes"), confidence),
        steps_to_solve=survival.summarize(survival.solve_times(metrics, "env_steps"), confidence),
        mean_wall_seconds=float(np.mean(walls)) if walls else math.nan,
        n_eval=len(evals),
        eval_mean=eval_mean,
        eval_ci_low=eval_low,
        eval_ci_high=eval_high,
        parameters=parameter_range(metrics),
    )


def moving_average(
    values: Sequence[float], window: int, counts: Sequence[int] | None = None
) -> np.ndarray:
    """Trailing moving average over the last `window` episodes; the first points average over
    what exists so far.

    With `counts`, point i is the mean of counts[i] episodes (those that ended on one env
    step, as the logger writes them): it weighs as that many episodes.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0 or (window <= 1 and counts is None):
        return x
    n = np.ones(x.size, dtype=int) if counts is None else np.asarray(counts, dtype=int)
    episodes = np.repeat(x, n)  # each episode of a point at that point's mean
    csum = np.cumsum(np.insert(episodes, 0, 0.0))
    last = np.cumsum(n)  # index (1-based) of each point's last episode
    start = np.maximum(last - max(window, 1), 0)
    return (csum[last] - csum[start]) / (last - start)


def interpolate_curve(
    steps: Sequence[float],
    values: Sequence[float],
    grid: np.ndarray,
    end: float | None = None,
) -> np.ndarray:
    """One seed's curve on a common step grid, NaN where its run has no value (no extrapolation).

    From its last point to `end` (the run's last env step) the curve holds its last value:
    the run went on but finished no further episode, so its return is still that one.
    """
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    if s.size == 0:
        return np.full(grid.shape, np.nan)
    order = np.argsort(s, kind="stable")
    s, v = s[order], v[order]
    curve = np.interp(grid, s, v, left=np.nan, right=np.nan)
    if end is not None:
        curve[(grid > s[-1]) & (grid <= end)] = v[-1]
    return curve


def bootstrap_band(
    curves: np.ndarray, confidence: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Mean across seeds (rows) at each grid point, with the bootstrap CI of `bootstrap_ci`.

    Only seeds defined at a point count there; the band is NaN where fewer than two are (one
    curve has no spread) and never leaves [min, max] of the seeds there.
    Returns (mean, low, high, count).
    """
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    defined = ~np.isnan(curves)
    count = defined.sum(axis=0)
    mean = np.full(curves.shape[1], np.nan)
    some = count >= 1
    mean[some] = np.nansum(curves[:, some], axis=0) / count[some]
    low, high = np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    for mask in {tuple(col) for col in defined.T[count >= 2]}:  # seeds defined together
        rows = np.array(mask)
        cols = (defined == rows[:, None]).all(axis=0)
        low[cols], high[cols] = _bootstrap_columns(
            curves[np.ix_(rows, cols)], confidence, n_resamples, seed
        )
    return mean, low, high, count
