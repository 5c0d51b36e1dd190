"""Kaplan-Meier solve times on numbers worked out by hand (arithmetic in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from acexp.analysis import survival
from acexp.analysis.survival import SolveTimes

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def _times(solved_at: list[float], censored_at: list[float] = ()) -> SolveTimes:
    times = np.array([*solved_at, *censored_at], dtype=float)
    solved = np.array([True] * len(solved_at) + [False] * len(censored_at))
    return SolveTimes(times, solved)


def _loglog_band(survival_at_t: float, greenwood_sum: float) -> tuple[float, float]:
    """The log-log band of a KM survival S by hand: Var(log S) = Greenwood's sum of
    d / (n (n - d)), so Var(log(-log S)) = sum / (log S)^2 and the band is
    exp(-exp(log(-log S) +- z se))."""
    se = math.sqrt(greenwood_sum) / abs(math.log(survival_at_t))
    centre = math.log(-math.log(survival_at_t))
    return math.exp(-math.exp(centre + Z95 * se)), math.exp(-math.exp(centre - Z95 * se))


# 5 runs: solved at 2, 3, 3, 5 episodes, one ran 4 episodes without solving.
# t=2: at risk 5, 1 solves: S = 1 - 1/5 = 0.8
# t=3: at risk 4, 2 solve:  S = 0.8 * (1 - 2/4) = 0.4   <- first S <= 0.5: median 3
# t=4: the censored run leaves; S stays 0.4
# t=5: at risk 1, 1 solves: S = 0.4 * (1 - 1/1) = 0
METRICS = [
    *({"episodes_to_solve": e, "episodes": 9, "steps_to_solve": 100 * e, "env_steps": 900}
      for e in (2, 3, 3, 5)),
    {"episodes_to_solve": None, "episodes": 4, "steps_to_solve": None, "env_steps": 400},
]  # fmt: skip


def test_solve_times_reads_solve_time_or_length() -> None:
    episodes = survival.solve_times(METRICS)
    assert list(episodes.times) == [2, 3, 3, 5, 4]
    assert list(episodes.solved) == [True, True, True, True, False]
    steps = survival.solve_times(METRICS, unit="env_steps")
    assert list(steps.times) == [200, 300, 300, 500, 400] and list(steps.solved) == list(
        episodes.solved
    )
    # a run with neither a solve time nor a length cannot be placed: left out
    assert survival.solve_times([{"episodes_to_solve": None}]).times.size == 0
    with pytest.raises(ValueError, match="unit"):
        survival.solve_times(METRICS, unit="seconds")


def test_km_fraction_solved_by_hand() -> None:
    x, solved, low, high = survival.fraction_solved(survival.solve_times(METRICS))
    assert list(x) == [0, 2, 3, 4, 5]
    assert solved == pytest.approx([0.0, 0.2, 0.6, 0.6, 1.0])  # 1 - S
    assert np.all(low <= solved) and np.all(solved <= high)
    assert (low[0], high[0]) == (0.0, 0.0)


def test_km_median_and_its_interval_by_hand() -> None:
    s = survival.summarize(survival.solve_times(METRICS))
    assert (s.runs, s.solved, s.median) == (5, 4, 3.0)
    # Low end: the band's lower survival at t=2 (S = 0.8, Greenwood 1/(5*4) = 0.05):
    # se = sqrt(0.05) / |log 0.8| = 1.0021, exp(-exp(log(0.2231) + 1.96 * 1.0021)) = 0.204 <= 0.5
    assert _loglog_band(0.8, 0.05)[0] == pytest.approx(0.2038, abs=1e-4)
    assert s.low == 2.0
    # High end: the upper survival is 0.753 at t=3 and 4 (next test); at t=5 S = 0 where the
    # band is undefined and keeps 0.753 > 0.5: never reached
    assert s.high == math.inf


def test_band_is_greenwood_log_log_by_hand() -> None:
    # t=3: S = 0.4, Greenwood sum = 1/(5*4) + 2/(4*2) = 0.05 + 0.25 = 0.3
    # se = sqrt(0.3) / |log 0.4| = 0.5477 / 0.9163 = 0.5978; log(-log 0.4) = -0.0874
    # survival band: exp(-exp(-0.0874 + 1.96 * 0.5978)) = 0.0520,
    #                exp(-exp(-0.0874 - 1.96 * 0.5978)) = 0.7528
    s_low, s_high = _loglog_band(0.4, 0.3)
    assert (s_low, s_high) == pytest.approx((0.05198, 0.75282), abs=1e-5)
    x, _, low, high = survival.fraction_solved(survival.solve_times(METRICS))
    at3 = list(x).index(3)
    assert low[at3] == pytest.approx(1 - s_high) and high[at3] == pytest.approx(1 - s_low)


def test_finite_interval_with_eight_runs_by_hand() -> None:
    # 8 runs solved at 1..8, none censored: after k solves S = (8 - k)/8 and Greenwood's sum
    # telescopes, 1/(n(n-1)) = 1/(n-1) - 1/n, to 1/(8 - k) - 1/8.
    s = survival.summarize(_times([1, 2, 3, 4, 5, 6, 7, 8]))
    assert s.median == 4.0  # S(4) = 4/8 = 0.5
    # t=1: S = 7/8, sum = 1/56: lower survival 0.387 <= 0.5, so the low end is 1
    assert _loglog_band(7 / 8, 1 / 7 - 1 / 8)[0] == pytest.approx(0.387, abs=1e-3)
    # t=6: S = 2/8, sum = 1/2 - 1/8 = 0.375: upper survival 0.558 > 0.5
    # t=7: S = 1/8, sum = 1/1 - 1/8 = 0.875: upper survival 0.423 <= 0.5: the high end is 7
    assert _loglog_band(2 / 8, 0.375)[1] == pytest.approx(0.558, abs=1e-3)
    assert _loglog_band(1 / 8, 0.875)[1] == pytest.approx(0.423, abs=1e-3)
    assert (s.low, s.high) == (1.0, 7.0)


def test_median_not_reached_when_most_runs_are_censored() -> None:
    # solved at 2, censored at 3, 4, 5, 6: S = 0.8 from t=2 on, never <= 0.5
    times = _times([2], [3, 4, 5, 6])
    s = survival.summarize(times)
    assert (s.runs, s.solved) == (5, 1) and math.isnan(s.median)
    assert s.low == 2.0  # lower survival at t=2 is 0.204 (as above): could be that early
    assert s.high == math.inf
    x, solved, _, _ = survival.fraction_solved(times)
    assert list(x) == [0, 2, 3, 4, 5, 6] and solved == pytest.approx([0, 0.2, 0.2, 0.2, 0.2, 0.2])


def test_all_censored_and_no_runs() -> None:
    s = survival.summarize(_times([], [3, 4]))
    assert (s.runs, s.solved) == (2, 0)
    assert math.isnan(s.median) and math.isnan(s.low) and s.high == math.inf
    x, solved, low, high = survival.fraction_solved(_times([], [3, 4]))
    assert list(x) == [0, 3, 4] and not solved.any() and not low.any() and not high.any()
    empty = survival.summarize(_times([]))
    assert (empty.runs, empty.solved) == (0, 0) and math.isnan(empty.median)
    assert all(a.size == 0 for a in survival.fraction_solved(_times([])))


def test_all_solved_reaches_one() -> None:
    x, solved, low, high = survival.fraction_solved(_times([1, 2]))
    # S: 1/2 at t=1, 0 at t=2. At S = 0 the fraction is 1 with band high 1, and the band's low
    # end keeps its last value (the upper survival at t=1 was 0.91: low 1 - 0.91)
    assert list(x) == [0, 1, 2] and solved == pytest.approx([0, 0.5, 1])
    assert high[-1] == 1.0 and low[-1] == pytest.approx(low[1])
    assert 1 - _loglog_band(0.5, 1 / 2)[1] == pytest.approx(low[1])
    assert survival.summarize(_times([1, 2])).median == 1.0


def test_ties_count_censored_runs_as_at_risk() -> None:
    # solved at 2, 2, censored at 2, solved at 3: at t=2 the run censored there is still at
    # risk, S = 1 - 2/4 = 0.5 (not 1 - 2/3), so the median is 2; t=3: S = 0.5 * (1 - 1/1) = 0
    times = _times([2, 2, 3], [2])
    assert survival.summarize(times).median == 2.0
    assert survival.fraction_solved(times)[1] == pytest.approx([0, 0.5, 1])


def test_logrank() -> None:
    a = _times([1, 2, 3], [4])
    assert survival.logrank(a, a) == pytest.approx(1.0)
    fast, never = _times(list(range(1, 11))), _times([], [100] * 10)
    assert survival.logrank(fast, never) < 1e-3
    assert math.isnan(survival.logrank(a, _times([])))
    assert math.isnan(survival.logrank(_times([], [1]), _times([], [2])))  # nothing solved
    same_time = _times([3, 3])  # every run solved at once: no variance to test against
    assert math.isnan(survival.logrank(same_time, same_time))


def test_logrank_chi_square_by_hand() -> None:
    # a solved at 1, 2; b solved at 3 and censored at 4. At each solve: E_a = n_a d / n,
    # V = n_a n_b d (n - d) / (n^2 (n - 1)):
    # t=1: n=4 (2+2), d=1: E_a = 2/4, V = 2*2*1*3 / (16*3) = 1/4
    # t=2: n=3 (1+2), d=1: E_a = 1/3, V = 1*2*1*2 / (9*2) = 2/9
    # t=3: n=2 (0+2), d=1: E_a = 0,   V = 0
    # O_a - E_a = 2 - 5/6 = 7/6, V = 17/36: chi2 = (49/36) / (17/36) = 49/17, 1 d.o.f.
    chi2 = 49 / 17
    p = math.erfc(math.sqrt(chi2 / 2))  # P(chi2_1 > x) = P(|Z| > sqrt x)
    assert survival.logrank(_times([1, 2]), _times([3], [4])) == pytest.approx(p)
    assert p == pytest.approx(0.0896, abs=1e-4)


def test_censored_early_flags_a_cap_in_another_unit() -> None:
    # an episode cap: collapsed runs stop after 5000 episodes of 9 steps = 45,000 env steps,
    # sooner than the runs that solved needed (160,128 and 422,599 steps)
    metrics = [
        {"steps_to_solve": 160_128, "episodes_to_solve": 939, "env_steps": 160_128},
        {"steps_to_solve": 422_599, "episodes_to_solve": 3193, "env_steps": 422_599},
        {"steps_to_solve": None, "episodes_to_solve": None, "env_steps": 45_000, "episodes": 5000},
    ]
    assert survival.censored_early(survival.solve_times(metrics, "env_steps"))
    assert not survival.censored_early(survival.solve_times(metrics, "episodes"))  # 5000 > 3193
    # a shared budget censors every unsolved run after every solve: nothing to flag
    assert not survival.censored_early(
        SolveTimes(np.array([10.0, 20, 30]), np.array([1, 1, 0], bool))
    )
    assert not survival.censored_early(SolveTimes(np.array([10.0]), np.array([True])))
