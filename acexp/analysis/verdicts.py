"""The factors section of report.md: a verdict a reader can act on per factor, then each factor's
comparisons as a table and a figure (numbers from `factors`, statistics from `effects`)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

from acexp.analysis import effects
from acexp.analysis.factors import MIN_RUNS, Comparison, Factor, Outcome, Side, tests
from acexp.analysis.tables import fmt


def fmt_p(p: float) -> str:
    return "—" if not math.isfinite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _spec(outcome: Outcome, signed: bool = False) -> str:
    return ("+" if signed else "") + (",.0f" if outcome.censored else ",.1f")


def _unit(outcome: Outcome) -> str:
    return " env steps" if outcome.censored else ""


def _towards(c: Comparison, side: str) -> tuple[float, float, float, float]:
    """(difference, CI low, high, P) seen from `side`: its statistic minus the other's, and the
    chance that its run beats the other's (the comparison's own are the value's)."""
    if side == c.value.value:
        return c.difference, c.low, c.high, c.improvement
    return -c.difference, -c.high, -c.low, 1.0 - c.improvement


def _effect(c: Comparison, side: str) -> str:
    """`+12.3 [+4.1, +20.5], P = 0.81` from `side`: the difference, its interval, P(better)."""
    diff, low, high, p = _towards(c, side)
    spec = _spec(c.outcome, signed=True)
    interval = f" [{fmt(low, spec)}, {fmt(high, spec)}]" if math.isfinite(low) else ""
    return f"{fmt(diff, spec)}{_unit(c.outcome)}{interval}, P = {p:.2f}"


def _effects(comparisons: Sequence[Comparison], side: str) -> str:
    """One comparison's `_effect`, or the range of several's differences and P, from `side`."""
    if len(comparisons) == 1:
        return _effect(comparisons[0], side)
    seen = [_towards(c, side) for c in comparisons]
    spec = _spec(comparisons[0].outcome, signed=True)
    unit = _unit(comparisons[0].outcome)
    low, high = (fmt(f(d for d, *_ in seen), spec) for f in (min, max))
    p_low, p_high = (f"{f(p for *_, p in seen):.2f}" for f in (min, max))
    diff = (
        f"difference {low}{unit} in each" if low == high else f"differences {low} to {high}{unit}"
    )
    return diff + (f", P = {p_low}" if p_low == p_high else f", P = {p_low} to {p_high}")


def _better(c: Comparison) -> str:
    return "solves sooner" if c.outcome.censored else "scores higher"


def _settings(n: int) -> str:
    return f"{n} setting" + ("" if n == 1 else "s")


def outcome_verdict(comparisons: Sequence[Comparison], family: int) -> str:
    """One outcome's verdict over the settings of the other keys (see `verdict`)."""
    n = len(comparisons)
    tested = [c for c in comparisons if math.isfinite(c.p)]
    if not tested:
        return "nothing to test: no run solved at either value"
    if all(c.difference == 0 and c.improvement == 0.5 for c in comparisons):
        return (
            f"no difference in {'any of ' if n > 1 else ''}{_settings(n)} (difference 0, "
            "P = 0.50): the runs at both values did alike, and no number of seeds would tell "
            "an effect of zero"
        )
    clear = [c for c in tested if c.clear]
    rest = [c for c in tested if not c.clear]
    if clear and len({c.better for c in clear}) == 1:
        winner, worst = clear[0].better, fmt_p(max(c.p_holm for c in clear))
        within = (
            f"; within noise in the other {len(rest)} ({_effects(rest, winner)})" if rest else ""
        )
        return (
            f"`{winner}` {_better(clear[0])} in {len(clear)} of {_settings(n)}, more than noise "
            f"({_effects(clear, winner)}; Holm p {'<= ' if worst[0] != '<' else ''}{worst})"
            + within
        )
    if clear:
        parts = [
            f"`{c.better}` {_better(c)} where {c.where} ({_effect(c, c.better)})" for c in clear
        ]
        within = f"; within noise in the other {len(rest)}" if rest else ""
        return "depends on the other keys: " + "; ".join(parts) + within
    value, reference = tested[0].value.value, tested[0].reference.value
    ahead = {v: sum(c.better == v for c in tested) for v in (value, reference)}
    leader = value if ahead[value] >= ahead[reference] else reference
    typical = statistics.median(_towards(c, leader)[3] for c in tested)
    need = effects.seeds_needed(typical, family)
    seeds = (
        f"about {need:,.0f} seeds per value would tell at the median effect (P = {typical:.2f})"
        if math.isfinite(need)
        else "the median effect is none (P = 0.50): more seeds would not tell"
    )
    return (
        f"within noise at this many seeds: `{leader}` ahead in {ahead[leader]} of "
        f"{_settings(len(tested))} ({_effects(tested, leader)}); {seeds}"
    )


def _seeds(factor: Factor) -> str:
    counts = sorted({s.n for c in factor.comparisons for s in (c.reference, c.value)})
    return f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def verdict(factor: Factor, family: int) -> str:
    """One markdown line: per value against the reference and per outcome, which is better, by
    how much, and whether that is more than noise (Holm) at this many seeds."""
    head = f"- **{factor.key}**"
    if factor.together:
        return f"{head}: not compared: it changes only together with {', '.join(factor.together)}"
    if not factor.comparisons:
        return (
            f"{head}: not compared: no setting of the other keys has {MIN_RUNS} runs at two values"
        )
    clauses = []
    for value in (v for v in factor.values if v != factor.reference):
        parts = []
        for outcome in factor.outcomes:
            chosen = [
                c for c in factor.comparisons if c.value.value == value and c.outcome == outcome
            ]
            if chosen:
                parts.append(f"{outcome.name}: {outcome_verdict(chosen, family)}")
        if parts:
            clauses.append(f"`{value}` against `{factor.reference}`: " + "; ".join(parts))
    settings = len({c.where for c in factor.comparisons})
    where = f"{_settings(settings)} of the other keys, " if len(factor.cells) > 1 else ""
    return f"{head} ({where}{_seeds(factor)} seeds per value): " + " | ".join(clauses)


def _side(side: Side, outcome: Outcome) -> str:
    spec = _spec(outcome)
    cell = f"{fmt(side.centre, spec)} [{fmt(side.low, spec)}, {fmt(side.high, spec)}]"
    if outcome.censored:
        return f"{cell}, solved {int(side.data.solved.sum())}/{side.n}"
    return f"{cell} (n={side.n})"


def _outcome_cell(c: Comparison) -> str:
    if c.outcome.censored:
        return f"{c.outcome.name}, restricted mean to {fmt(c.tau, ',.0f')}"
    return f"{c.outcome.name}, mean"


def factor_table(factor: Factor) -> str:
    """The factor's comparisons, one row each."""
    rows = [
        "| other keys | value | outcome | reference: mean [95% CI] | value: mean [95% CI] "
        "| difference [95% CI] | P(value better) | p (test) | Holm p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in factor.comparisons:
        spec = _spec(c.outcome, signed=True)
        interval = f"[{fmt(c.low, spec)}, {fmt(c.high, spec)}]"
        rows.append(
            f"| {c.where} | `{c.value.value}` | {_outcome_cell(c)} "
            f"| {_side(c.reference, c.outcome)} | {_side(c.value, c.outcome)} "
            f"| {fmt(c.difference, spec)} {interval} | {c.improvement:.2f} "
            f"| {fmt_p(c.p)} ({c.test}) | {fmt_p(c.p_holm)} |"
        )
    return "\n".join(rows)


def reading_notes(factors: Sequence[Factor]) -> list[str]:
    """How to read the section's numbers, as markdown list items."""
    family = tests(factors)
    return [
        "- Each factor is changed from its reference (its first value, numbers by size, or "
        "the one `--reference key=value` names) with every other swept key held at one "
        "setting; completed runs only, every seed of that setting.",
        "- difference: the value's statistic minus the reference's; 95% CI: percentile "
        "bootstrap, each side's runs resampled on their own (scipy, fixed seed).",
        "- P(value better): the chance that a run at the value beats a run at the reference, "
        "over all pairs, ties counted half (rliable's probability of improvement). For steps "
        "to solve, a run beats another when it solved before the other solved or stopped; a "
        "pair that cannot be ordered (both unsolved) counts half.",
        "- Steps to solve: the restricted mean to tau, the area under the Kaplan-Meier curve "
        "up to tau (the longest run, or sooner where a side's longest run stopped unsolved): "
        "with one budget for all runs, the mean steps to solve with an unsolved run counted "
        "as tau. Test: log-rank (scipy.stats.logrank), unsolved runs censored.",
        "- Returns: the mean; test: Mann-Whitney U (two-sided), which tests P(value better) = 0.5.",
        f"- Holm p: the p-values of all {family} comparisons of this section corrected together "
        f"(Holm's step-down method); below {effects.ALPHA} is called more than noise, with "
        "the effect beside it. A verdict within noise names the seeds per value that would "
        "give an 80% chance of Holm p below 0.05 at the median observed P (Noether's "
        f"formula for a rank test, (z(1 - 0.05/{2 * max(family, 1)}) + z(0.8))^2 / "
        "(6 (P - 0.5)^2)): a rough guide, as the observed P is itself noisy.",
    ]


def factors_markdown(factors: Sequence[Factor], figures: Mapping[str, str]) -> str:
    """The whole section: verdicts, then per factor its table and figure (`figures`: key ->
    PNG file name), then how to read it."""
    out = ["## Factors: what changing one setting does", ""]
    if not factors:
        out.append("No factor: every completed run has the same settings apart from its seed.")
        return "\n".join(out)
    family = tests(factors)
    out += [verdict(f, family) for f in factors]
    for f in factors:
        if not f.comparisons:
            continue  # its verdict line says why nothing was compared
        out += ["", f"### {f.key} (reference `{f.reference}`)", "", factor_table(f)]
        if f.too_few:
            out += ["", f"{f.too_few} comparison(s) left out: fewer than 2 runs on a side."]
        if f.key in figures:
            out += ["", f"![factor {f.key}]({figures[f.key]})"]
    if not any(f.comparisons for f in factors):
        return "\n".join(out)  # the verdicts say why nothing was compared: no tables to read
    return "\n".join([*out, "", *reading_notes(factors)])
