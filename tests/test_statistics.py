"""acexp.analysis.stats on the cases its other tests leave open: keys of odd overrides, the
bootstrap's seed and resamples as documented, every field of a group's summary, and the edges of
the curve helpers (one point, no point, ties, a seed alone at a grid point)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import bootstrap

from acexp.analysis import stats

# 40 continuous values: the resampled means are all different, so the percentiles move with
# the random draws; with a handful of values they sit on the same few means for any seed.
DATA = np.random.default_rng(7).normal(10.0, 3.0, size=40)


def documented_interval(values, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """The interval bootstrap_ci documents: the percentile bootstrap of the mean, 9999
    resamples drawn by numpy's default generator seeded with `seed`, 1000 at a time."""
    result = bootstrap((np.asarray(values)[None],), np.mean, vectorized=True, axis=-1,
                       confidence_level=confidence, n_resamples=9999, batch=1000,
                       method="percentile", random_state=np.random.default_rng(seed))  # fmt: skip
    return float(result.confidence_interval.low[0]), float(result.confidence_interval.high[0])


def test_override_key_is_the_text_before_the_first_equals_sign() -> None:
    assert stats.override_key("+optim.lr=1e-3") == "optim.lr"
    assert stats.override_key("~env.kwargs") == "env.kwargs"
    assert stats.override_key("env.kwargs.name=a=b") == "env.kwargs.name"  # '=' in the value
    assert stats.override_key("+XLA.flag=1") == "XLA.flag"  # only + and ~ are stripped


def test_bootstrap_ci_is_the_documented_percentile_bootstrap() -> None:
    assert stats.bootstrap_ci(DATA) == documented_interval(DATA)
    assert stats.bootstrap_ci(DATA, seed=5) == documented_interval(DATA, seed=5)
    assert stats.bootstrap_ci(DATA, seed=5) != stats.bootstrap_ci(DATA, seed=6)
    assert stats.bootstrap_ci(DATA, confidence=0.5) == documented_interval(DATA, 0.5)
    wide, narrow = stats.bootstrap_ci(DATA), stats.bootstrap_ci(DATA, confidence=0.5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_mean_ci_is_the_mean_with_its_interval() -> None:
    mean, low, high = stats.mean_ci(DATA)
    assert mean == pytest.approx(DATA.mean()) and (low, high) == documented_interval(DATA)
    assert stats.mean_ci(DATA, confidence=0.5, seed=2)[1:] == documented_interval(DATA, 0.5, 2)
    assert all(math.isnan(v) for v in stats.mean_ci([]))


def test_summarize_runs_fills_every_field_with_its_own_statistic() -> None:
    returns = DATA[:10]
    metrics = [
        {"final_return": r, "eval_return": 2 * r, "wall_seconds": float(k), "solved": k < 6,
         "episodes_to_solve": 10 * (k + 1) if k < 6 else None, "episodes": 100,
         "steps_to_solve": 1000 * (k + 1) if k < 6 else None, "env_steps": 10_000}
        for k, r in enumerate(returns)
    ]  # fmt: skip
    s = stats.summarize_runs(metrics, confidence=0.5, seed=3)
    assert s.return_mean == pytest.approx(returns.mean())
    assert (s.return_ci_low, s.return_ci_high) == documented_interval(returns, 0.5, 3)
    # 10 values: scipy's trim_mean cuts int(0.25 * 10) = 2 from each end, the mean of 6 is left
    assert s.return_iqm == pytest.approx(np.sort(returns)[2:8].mean())
    assert (s.eval_ci_low, s.eval_ci_high) == documented_interval(2 * returns, 0.5, 3)
    assert s.mean_wall_seconds == pytest.approx(4.5)
    # 6 of 10 solved, at 10, 20, ..., 60 episodes: S drops by a tenth each; S(50) = 0.5
    assert (s.episodes_to_solve.median, s.steps_to_solve.median) == (50.0, 5000.0)
    at_95 = stats.summarize_runs(metrics)
    assert s.episodes_to_solve.low > at_95.episodes_to_solve.low  # a 50 % band is narrower
    assert s.steps_to_solve.low > at_95.steps_to_solve.low
    assert s.steps_to_solve.low == 1000 * s.episodes_to_solve.low / 10  # steps, not episodes
    assert at_95.return_ci_low == documented_interval(returns)[0]  # seed 0 by default
    empty = stats.summarize_runs([])
    assert empty.n == 0 and math.isnan(empty.solved_fraction)
    assert math.isnan(empty.mean_wall_seconds) and math.isnan(empty.return_iqm)


def test_iqm_cuts_whole_values_from_each_end() -> None:
    # 10 values: scipy's trim_mean cuts int(0.25 * 10) = 2 from each end: mean of the 6 left
    assert stats.iqm(list(range(10))) == pytest.approx(4.5)
    assert stats.iqm([1, 2, 3, 100]) == pytest.approx(2.5)  # ints are fine


def test_moving_average_of_one_episode_windows_and_single_points() -> None:
    assert np.allclose(stats.moving_average([2, 4, 6], 1, counts=[1, 2, 1]), [2, 4, 6])
    assert np.allclose(stats.moving_average([2, 4, 6], 1), [2, 4, 6])
    assert np.allclose(stats.moving_average([3.0], 5, counts=[4]), [3.0])
    assert stats.moving_average([], 3).size == 0
    # the window counts episodes, not points: 3 episodes back reaches into the first point
    assert np.allclose(stats.moving_average([0, 6], 3, counts=[2, 2]), [0, 4])


def test_interpolate_curve_edges() -> None:
    grid = np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    assert np.isnan(stats.interpolate_curve([], [], grid)).all()
    assert stats.interpolate_curve([], [], grid).shape == grid.shape
    one = stats.interpolate_curve([10], [7.0], grid, end=30)
    assert np.isnan(one[0]) and list(one[1:4]) == [7.0, 7.0, 7.0] and np.isnan(one[4])
    # three points: the curve holds the last value (5), after the last step (20) only
    held = stats.interpolate_curve([0, 10, 20], [1.0, 9.0, 5.0], grid, end=40)
    assert list(held) == [1.0, 9.0, 5.0, 5.0, 5.0]
    unordered = stats.interpolate_curve([20, 0, 10], [5.0, 1.0, 9.0], grid, end=40)
    assert list(unordered) == list(held)
    # many points logged at one step keep their order: the curve holds the last one written
    steps = [0.0] + [30.0] * 40
    values = [0.0] + list(range(40))
    tied = stats.interpolate_curve(steps, values, grid, end=40)
    assert tied[4] == 39.0


def test_band_counts_the_seeds_defined_at_each_point() -> None:
    curves = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, np.nan]])
    mean, low, high, count = stats.bootstrap_band(curves)
    assert list(count) == [2, 1, 0]
    assert mean[0] == 2.0 and mean[1] == 2.0 and np.isnan(mean[2])  # one seed: its own value
    assert mean.dtype == float and np.isnan(low[1:]).all() and np.isnan(high[1:]).all()
    # (to the last bits: the band's columns are resampled together)
    band = stats.bootstrap_band(np.stack([DATA, DATA + 1]).T, confidence=0.5, seed=4)
    assert (band[1][0], band[2][0]) == pytest.approx(documented_interval(DATA, 0.5, 4), rel=1e-12)
    default = stats.bootstrap_band(np.stack([DATA, DATA + 1]).T)
    assert (default[1][0], default[2][0]) == pytest.approx(documented_interval(DATA), rel=1e-12)


def test_common_overrides_of_two_groups_and_of_one() -> None:
    groups = [["arch=shared", "total_steps=9"], ["arch=unshared", "total_steps=9"]]
    assert stats.common_overrides(groups) == ("total_steps=9",)
    assert stats.common_overrides(groups[:1]) == ()  # one group: nothing to set apart
    assert stats.common_overrides([*groups, ["arch=cnn", "total_steps=8"]]) == ()


def test_moving_average_takes_counts_read_back_as_floats() -> None:
    # TensorBoard gives every scalar back as a float, episode counts too
    assert np.allclose(stats.moving_average([2, 4, 6], 2, counts=[1.0, 2.0, 1.0]), [2, 4, 5])


def test_interpolate_curve_holds_the_last_of_many_points_at_its_last_step() -> None:
    # 200 points on 4 steps, unordered: the hold after the last step (3) is the value of the
    # point written last at that step, as a stable sort keeps it
    steps = np.random.default_rng(3).integers(0, 4, size=200).astype(float)
    values = np.arange(200.0)
    held = stats.interpolate_curve(steps, values, np.array([4.0]), end=4)
    assert held[0] == values[steps == 3][-1]


def test_percentile_bootstrap_defaults_and_two_unpaired_samples() -> None:
    low, high = stats.percentile_bootstrap((DATA[None],), np.mean)
    assert (float(low[0]), float(high[0])) == documented_interval(DATA)

    def difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    a, b = DATA[:20][None], DATA[20:][None]  # two groups of 20 seeds, resampled apart
    low, high = stats.percentile_bootstrap((a, b), difference, confidence=0.9, seed=2)
    reference = bootstrap((a, b), difference, vectorized=True, paired=False, axis=-1,
                          confidence_level=0.9, n_resamples=9999, batch=1000,
                          method="percentile", random_state=np.random.default_rng(2))  # fmt: skip
    assert (low, high) == (reference.confidence_interval.low, reference.confidence_interval.high)
