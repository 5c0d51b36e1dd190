"""What changing one swept key does, with every other key held fixed: the comparisons behind the
report's factors section (its text: `verdicts`; its figures: `plots.plot_factor`).

A factor is a key (other than the seed) that takes two or more values among the completed
runs. For each setting of the other factors, each of its values is compared with a reference
value (the first in sorted order, numbers by size, unless the user names one) on the final
return (the final greedy evaluation when the runs evaluated) and, when runs record it, on env
steps to solve; `effects` has the statistics. All comparisons of a sweep form one family for
Holm's correction.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from acexp.analysis import effects, stats, survival
from acexp.analysis.runs import EVAL_METRIC, SOLVE_METRIC, UNSET, ReportError, Run
from acexp.analysis.survival import SolveTimes

MIN_RUNS = 2  # runs a side needs to be compared: one run has no spread


@dataclass(frozen=True)
class Outcome:
    """What a comparison measures."""

    key: str  # "return" or "steps" (factors.csv's outcome column)
    metric: str  # the metrics.json key
    name: str  # how the report names it
    censored: bool  # steps to solve: a run that never solved is censored at its length


RETURN = Outcome("return", "final_return", "final return", censored=False)
EVAL = Outcome("return", EVAL_METRIC, "eval return", censored=False)
STEPS = Outcome("steps", SOLVE_METRIC, "env steps to solve", censored=True)


@dataclass
class Side:
    """The runs at one value in one setting of the other keys, on one outcome."""

    value: str
    data: np.ndarray | SolveTimes  # returns, or solve times (censored)
    centre: float  # mean return, or restricted mean steps to solve
    low: float  # its 95% bootstrap CI
    high: float

    @property
    def n(self) -> int:
        return int(self.data.times.size if isinstance(self.data, SolveTimes) else self.data.size)


@dataclass
class Comparison:
    """One value against the reference, in one setting of the other keys, on one outcome."""

    factor: str
    where: str  # the other keys' values, `k=v,k=v`
    outcome: Outcome
    reference: Side
    value: Side
    difference: float  # value's statistic - reference's
    low: float
    high: float
    improvement: float  # P(a run at value is better than one at reference), ties half
    test: str
    p: float
    tau: float = math.nan  # restricted means' horizon (steps)
    p_holm: float = math.nan

    @property
    def better(self) -> str | None:
        """The value whose runs tend to be better (by the probability of improvement)."""
        if self.improvement == 0.5 or not math.isfinite(self.improvement):
            return None
        return self.value.value if self.improvement > 0.5 else self.reference.value

    @property
    def clear(self) -> bool:
        """More than noise: Holm-adjusted p below the family's alpha."""
        return self.p_holm < effects.ALPHA


@dataclass
class Cell:
    """One setting of the other factors, with each outcome's sides by value."""

    where: str
    sides: dict[str, dict[str, Side]] = field(default_factory=dict)  # outcome key -> value
    tau: float = math.nan


@dataclass
class Factor:
    key: str
    values: list[str]
    reference: str
    outcomes: list[Outcome]
    cells: list[Cell]
    comparisons: list[Comparison]
    too_few: int = 0  # comparisons left out: a side with fewer than MIN_RUNS runs
    together: list[str] = field(default_factory=list)  # keys set with it, value for value


def _value_order(value: str) -> tuple:
    """Numbers by size first, then the rest alphabetically (`null` after `0.5`)."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def swept_keys(runs: Sequence[Run]) -> dict[str, list[str]]:
    """Each key (without the seed) with two or more values among `runs`, its values sorted."""
    keys = sorted({k for r in runs for k in r.settings})
    swept = {}
    for key in keys:
        values = {r.settings.get(key, UNSET) for r in runs}
        if len(values) > 1:
            swept[key] = sorted(values, key=_value_order)
    return swept


def parse_references(items: Sequence[str], swept: Mapping[str, list[str]]) -> dict[str, str]:
    """`key=value` items (`--reference`) as {key: value}; a key that is not swept or a value
    it does not take is a ReportError naming what there is."""
    chosen = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = stats.override_key(key)
        if not sep or not key:
            raise ReportError(f"--reference {item!r}: expected key=value, e.g. arch=shared")
        if key not in swept:
            names = ", ".join(swept) or "none"
            raise ReportError(f"--reference {item!r}: {key} is not a swept key (swept: {names})")
        if value not in swept[key]:
            raise ReportError(
                f"--reference {item!r}: {key} takes {', '.join(swept[key])}, not {value!r}"
            )
        chosen[key] = value
    return chosen


def outcomes_of(runs: Sequence[Run]) -> list[Outcome]:
    """The final return, or the final evaluation's when runs evaluated; steps to solve when
    runs record when they solved."""
    evaluated = any(r.metrics.get(EVAL_METRIC) is not None for r in runs)
    chosen = [EVAL if evaluated else RETURN]
    if any(SOLVE_METRIC in r.metrics for r in runs):
        chosen.append(STEPS)
    return chosen


def _side(value: str, runs: Sequence[Run], outcome: Outcome, tau: float) -> Side:
    metrics = [r.metrics for r in runs]
    if outcome.censored:
        times = survival.solve_times(metrics, "env_steps")
        return Side(value, times, *effects.restricted_mean(times, tau))
    returns = np.array(
        [float(m[outcome.metric]) for m in metrics if m.get(outcome.metric) is not None]
    )
    return Side(value, returns, *stats.mean_ci(returns))


def _compare(factor: str, cell: Cell, outcome: Outcome, ref: Side, val: Side) -> Comparison:
    if outcome.censored:
        diff = effects.restricted_mean_difference(ref.data, val.data, cell.tau)
        # fewer steps is better: P(value better) is P(value's run solves sooner)
        improvement = effects.censored_improvement(ref.data, val.data)
        test, p = "log-rank", effects.logrank(ref.data, val.data)
    else:
        diff = effects.mean_difference(ref.data, val.data)
        improvement = effects.probability_of_improvement(ref.data, val.data)
        test, p = "Mann-Whitney", effects.mann_whitney(ref.data, val.data)
    return Comparison(factor, cell.where, outcome, ref, val, *diff, improvement, test, p, cell.tau)


def changed_with(key: str, runs: Sequence[Run], swept: Mapping[str, list[str]]) -> list[str]:
    """The other swept keys whose value, in every run, goes with one value of `key` and only
    that one: their effects cannot be told apart from its effect in these runs."""
    together = []
    for other in (k for k in swept if k != key):
        pairs = {(r.settings.get(key, UNSET), r.settings.get(other, UNSET)) for r in runs}
        if len(pairs) == len(swept[key]) == len(swept[other]):
            together.append(other)
    return together


def _factor(key: str, values: list[str], reference: str, runs: Sequence[Run], swept) -> Factor:
    others = [k for k in swept if k != key]
    outcomes = outcomes_of(runs)
    by_cell: dict[tuple[str, ...], dict[str, list[Run]]] = {}
    for run in runs:
        setting = tuple(run.settings.get(k, UNSET) for k in others)
        by_cell.setdefault(setting, {}).setdefault(run.settings.get(key, UNSET), []).append(run)
    factor = Factor(
        key, values, reference, outcomes, [], [], together=changed_with(key, runs, swept)
    )
    for setting in sorted(by_cell, key=lambda s: [_value_order(v) for v in s]):
        at = by_cell[setting]
        where = ",".join(f"{k}={v}" for k, v in zip(others, setting, strict=True))
        cell = Cell(where or "(no other key)")
        times = [survival.solve_times([r.metrics for r in rs], "env_steps") for rs in at.values()]
        cell.tau = effects.horizon(times) if STEPS in outcomes else math.nan
        for outcome in outcomes:
            cell.sides[outcome.key] = {
                v: _side(v, at[v], outcome, cell.tau) for v in values if v in at
            }
        factor.cells.append(cell)
        for outcome in outcomes:
            sides = cell.sides[outcome.key]
            for value in (v for v in values if v != reference and v in sides):
                if reference not in sides:
                    continue
                if min(sides[reference].n, sides[value].n) < MIN_RUNS:
                    factor.too_few += 1
                    continue
                factor.comparisons.append(
                    _compare(key, cell, outcome, sides[reference], sides[value])
                )
    return factor


def analyse(runs: Sequence[Run], references: Sequence[str] = ()) -> list[Factor]:
    """Every factor of the completed `runs`, compared value by value against its reference
    (`references`: `key=value` items), with Holm's correction over all the comparisons."""
    completed = [r for r in runs if r.status == "completed"]
    swept = swept_keys(completed)
    chosen = parse_references(references, swept)
    factors = [
        _factor(key, values, chosen.get(key, values[0]), completed, swept)
        for key, values in swept.items()
    ]
    comparisons = [c for f in factors for c in f.comparisons]
    for c, adjusted in zip(comparisons, effects.holm([c.p for c in comparisons]), strict=True):
        c.p_holm = float(adjusted)
    return factors


def tests(factors: Sequence[Factor]) -> int:
    """How many comparisons had a p-value: the size of Holm's family."""
    return sum(math.isfinite(c.p) for f in factors for c in f.comparisons)


CSV_COLUMNS = (
    "factor", "other_keys", "reference", "value", "outcome", "n_reference", "n_value",
    "reference_mean", "reference_ci_low", "reference_ci_high",
    "value_mean", "value_ci_low", "value_ci_high",
    "difference", "difference_ci_low", "difference_ci_high",
    "improvement", "test", "p", "p_holm", "tau",
)  # fmt: skip


def write_factors_csv(factors: Sequence[Factor], path: Path) -> None:
    """One row per comparison; `*_mean` of steps is the restricted mean to `tau`; empty: none."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for c in (c for factor in factors for c in factor.comparisons):
            ref, val = c.reference, c.value
            row = [c.factor, c.where, ref.value, val.value, c.outcome.key, ref.n, val.n,
                   ref.centre, ref.low, ref.high, val.centre, val.low, val.high,
                   c.difference, c.low, c.high, c.improvement, c.test, c.p, c.p_holm,
                   c.tau]  # fmt: skip
            writer.writerow(["" if isinstance(x, float) and math.isnan(x) else x for x in row])
