"""Kaplan-Meier solve times at their edges, by hand: every run solving at once, a survival of
exactly one half, no runs, a solve at time 0, a group of one run, a stop at the last solve."""

import math

import numpy as np
import pytest

from acexp.analysis import survival
from acexp.analysis.survival import SolveTimes


def times(solved_at: list[float], censored_at: list[float] = ()) -> SolveTimes:
    return SolveTimes(
        np.array([*solved_at, *censored_at], dtype=float),
        np.array([True] * len(solved_at) + [False] * len(censored_at)),
    )


def test_no_runs() -> None:
    empty = survival.solve_times([])
    assert empty.times.dtype == float and empty.solved.dtype == bool  # as SolveTimes says
    s = survival.summarize(empty)
    assert (s.runs, s.solved) == (0, 0)
    assert math.isnan(s.median) and math.isnan(s.low) and s.high == math.inf
    assert len(survival.fraction_solved(empty)) == 4
    assert all(part.size == 0 for part in survival.fraction_solved(empty))


def test_every_run_solving_at_once() -> None:
    # S drops from 1 to 0 at t = 5: scipy's band is undefined at S = 0; the upper survival
    # keeps its value before (1: nothing had solved), the lower one is 0
    s = survival.summarize(times([5, 5, 5]))
    assert (s.median, s.low, s.high) == (5.0, 5.0, math.inf)
    x, solved, low, high = survival.fraction_solved(times([5, 5, 5]))
    assert list(x) == [0.0, 5.0] and list(solved) == [0.0, 1.0]
    assert list(low) == [0.0, 0.0] and list(high) == [0.0, 1.0]


def test_a_survival_of_exactly_one_half_is_the_median() -> None:
    # 2 of 4 solve at 10, 2 ran 20 without: S(10) = 0.5, "at or below one half": median 10
    assert survival.summarize(times([10, 10], [20, 20])).median == 10.0


def test_the_curve_starts_at_zero_once() -> None:
    assert list(survival.fraction_solved(times([3]))[0]) == [0.0, 3.0]
    assert list(survival.fraction_solved(times([0, 5]))[0]) == [0.0, 5.0]  # a solve at 0


def test_logrank_of_a_group_of_one_run_by_hand() -> None:
    # t=3: the one run solves, at risk 1 v 3: expected 1/4, variance 1 * 3 / 16; after it
    # nothing of its group is at risk. z = 0.75 / sqrt(0.1875) = 1.732: p = 0.0833
    p = survival.logrank(times([3]), times([5, 6], [7]))
    assert p == pytest.approx(0.08326, abs=1e-4)


def test_a_run_stopped_at_the_last_solve_time_is_not_stopped_sooner() -> None:
    assert not survival.censored_early(times([10, 40], [40]))
    assert survival.censored_early(times([10, 40], [39]))
