"""Pure statistics for sweep reports: grouping, bootstrap CIs, IQM and learning-curve bands.

Nothing here touches the file system, so every function can be tested on hand-made numbers.
scipy is imported inside the functions that need it, so importing this module never fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean, reproducible through `seed`.

    Returns (nan, nan) for fewer than two values: one seed says nothing about spread, and
    reporting [x, x] would look like certainty. The percentile method (not BCa) is used because
    it stays defined when all values are equal (e.g. every seed hit the same return cap). With
    only a handful of seeds any bootstrap interval is too narrow; read it together with n.
    """
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    result = bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return float(ci.low), float(ci.high)


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
    median_steps_to_solve: float
    median_episodes_to_solve: float
    mean_wall_seconds: float


def _numbers(metrics: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    """Values of `key` that are present and not null."""
    return [float(m[key]) for m in metrics if m.get(key) is not None]


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def summarize_runs(
    metrics: Sequence[Mapping[str, Any]], confidence: float = 0.95, seed: int = 0
) -> RunSummary:
    """Aggregate the `metrics.json` dicts of one group's completed runs.

    Medians to solve are taken over solved runs only; `n_solved` says how many that is.
    Null `final_return` / `wall_seconds` values are left out of their statistic.
    """
    returns = _numbers(metrics, "final_return")
    solved = [m for m in metrics if m.get("solved")]
    low, high = bootstrap_ci(returns, confidence=confidence, seed=seed)
    walls = _numbers(metrics, "wall_seconds")
    return RunSummary(
        n=len(metrics),
        n_return=len(returns),
        return_mean=float(np.mean(returns)) if returns else math.nan,
        return_ci_low=low,
        return_ci_high=high,
        return_iqm=iqm(returns),
        n_solved=len(solved),
        solved_fraction=len(solved) / len(metrics) if metrics else math.nan,
        median_steps_to_solve=_median(_numbers(solved, "steps_to_solve")),
        median_episodes_to_solve=_median(_numbers(solved, "episodes_to_solve")),
        mean_wall_seconds=float(np.mean(walls)) if walls else math.nan,
    )


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average; the first points average over what exists so far."""
    x = np.asarray(values, dtype=float)
    if window <= 1 or x.size == 0:
        return x
    csum = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, x.size + 1)
    start = np.maximum(idx - window, 0)
    return (csum[idx] - csum[start]) / (idx - start)


def interpolate_curve(
    steps: Sequence[float], values: Sequence[float], grid: np.ndarray
) -> np.ndarray:
    """One seed's curve on a common step grid; NaN outside its logged steps (no extrapolation)."""
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    if s.size == 0:
        return np.full(grid.shape, np.nan)
    order = np.argsort(s, kind="stable")
    return np.interp(grid, s[order], v[order], left=np.nan, right=np.nan)


def mean_band(curves: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, ...]:
    """Mean across seeds (rows) at each grid point, with a mean +/- z*sem band.

    Only seeds defined at a point count there. The band is NaN where fewer than two seeds are
    defined, since one curve has no spread. Returns (mean, low, high, count).
    """
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    count = np.sum(~np.isnan(curves), axis=0)
    mean = np.full(curves.shape[1], np.nan)
    sem = np.full(curves.shape[1], np.nan)
    some = count >= 1
    mean[some] = np.nansum(curves[:, some], axis=0) / count[some]
    many = count >= 2
    if np.any(many):
        sub = curves[:, many]
        var = np.nansum((sub - mean[many]) ** 2, axis=0) / (count[many] - 1)
        sem[many] = np.sqrt(var / count[many])
    return mean, mean - z * sem, mean + z * sem, count
