"""The report's factors section on small made-up sweeps, against numbers worked out by hand."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from acexp.analysis import effects
from acexp.analysis.factors import analyse
from acexp.analysis.runs import find_runs
from acexp.analysis.survival import SolveTimes
from benchmarks import factors as factors_cli

ROOT = Path(__file__).resolve().parents[1]


def job(sweep: Path, overrides: list[str], metrics: dict) -> None:
    path = sweep / ",".join(overrides)
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "overrides.yaml").write_text(json.dumps(overrides))  # JSON is YAML
    (path / "metrics.json").write_text(json.dumps({"status": "completed", **metrics}))


def report(sweep: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "acexp.report", str(sweep), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def rows(sweep: Path) -> list[dict[str, str]]:
    with (sweep / "factors.csv").open() as f:
        return list(csv.DictReader(f))


def verdicts(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line.startswith("- **")]
    return {line.split("**")[1]: line for line in lines}


# --- the statistics on their own ---------------------------------------------------------------


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04 of m = 3: 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04,
    # made non-decreasing: 0.03, 0.06, 0.06; a NaN (no test) is not one of the m
    adjusted = effects.holm([0.01, 0.04, math.nan, 0.03])
    assert adjusted[[0, 1, 3]] == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(adjusted[2])
    assert effects.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_restricted_mean_stops_where_a_side_stopped_unsolved() -> None:
    # reference: solved at 100, stopped unsolved at 250 (an episode cap); value: solved at 300
    # and 400. Past 250 the reference's curve is unknown, so tau = 250: the reference's area
    # is 100 * 1 + 150 * 1/2 = 175, the value's 250 (nothing solved by then)
    ref = SolveTimes(np.array([100.0, 250.0]), np.array([True, False]))
    val = SolveTimes(np.array([300.0, 400.0]), np.array([True, True]))
    tau = effects.horizon([ref, val])
    assert tau == 250.0
    assert effects.restricted_mean(ref, tau)[0] == 175.0
    assert effects.restricted_mean(val, tau)[0] == 250.0
    # the pair (solved at 300, stopped at 250) cannot be ordered: half; (300 or 400 against
    # the solve at 100) the reference is first: P(value sooner) = (0 + 0.5 + 0 + 0.5) / 4
    assert effects.censored_improvement(ref, val) == 0.25


def test_seeds_needed_is_noethers_formula() -> None:
    # P = 0.625, one test: (1.95996 + 0.84162)^2 / (6 * 0.125^2) = 7.8489 / 0.09375 = 83.7
    assert effects.seeds_needed(0.625, tests=1) == 84
    # two tests: alpha 0.025, z(0.9875) = 2.24140: (3.08302)^2 / (6 * 0.5^2) = 6.34 -> 7
    assert effects.seeds_needed(1.0, tests=2) == 7
    assert effects.seeds_needed(0.5, tests=1) == math.inf


# --- made-up sweeps through the report ---------------------------------------------------------


def test_returns_by_hand(tmp_path: Path) -> None:
    # shared (the reference) 0, 0, 0, 0; unshared 0, 0, 0, 10
    for seed, ret in enumerate([0.0, 0.0, 0.0, 0.0]):
        job(tmp_path, ["arch=shared", f"seed={seed}"], {"final_return": ret})
    for seed, ret in enumerate([0.0, 0.0, 0.0, 10.0]):
        job(tmp_path, ["arch=unshared", f"seed={seed}"], {"final_return": ret})
    result = report(tmp_path)
    assert result.returncode == 0, result.stderr
    (row,) = rows(tmp_path)
    assert (row["factor"], row["reference"], row["value"]) == ("arch", "shared", "unshared")
    assert row["outcome"] == "return" and row["other_keys"] == "(no other key)"
    # difference 2.5; bootstrap: the reference's resamples are all 0, a resample of the other
    # holds k tens, k ~ Binomial(4, 1/4): P(k = 0) = 0.32 > 2.5 %, P(k <= 2) = 0.949 and
    # P(k <= 3) = 0.996 straddle 97.5 %, so the interval is [0, 2.5 * 3]
    assert float(row["difference"]) == 2.5
    assert (float(row["difference_ci_low"]), float(row["difference_ci_high"])) == (0.0, 7.5)
    # pairs: 4 wins (10 against each 0), 12 ties of 0 with 0: (4 + 12 / 2) / 16
    assert float(row["improvement"]) == 0.625
    # Mann-Whitney with ties: U = 10, mean 8; variance 4 * 4 / 12 * (9 - (7^3 - 7) / (8 * 7))
    # = 4, z = (10 - 8 - 0.5) / 2 = 0.75 (continuity correction): p = 2 (1 - Phi(0.75))
    p = math.erfc(0.75 / math.sqrt(2))
    assert float(row["p"]) == pytest.approx(p) and p == pytest.approx(0.4533, abs=1e-4)
    assert float(row["p_holm"]) == pytest.approx(p)  # the only test
    line = verdicts(result.stdout)["arch"]
    assert "final return: within noise at this many seeds: `unshared` ahead in 1 of 1" in line
    assert "+2.5 [+0.0, +7.5], P = 0.62" in line
    assert "about 84 seeds per value would tell" in line  # Noether at P = 0.625, one test
    assert "significant" not in (tmp_path / "report.md").read_text()


def test_censored_steps_by_hand(tmp_path: Path) -> None:
    # shared (the reference): solved at 300, one ran 400 steps without solving;
    # unshared: solved at 100 and 200 (runs stop once solved)
    runs = {"shared": [(300, 1.0), (None, 2.0)], "unshared": [(100, 3.0), (200, 4.0)]}
    for arch, seeds in runs.items():
        for seed, (solve, ret) in enumerate(seeds):
            metrics = {"steps_to_solve": solve, "env_steps": solve or 400, "final_return": ret}
            job(tmp_path, [f"arch={arch}", f"seed={seed}"], {**metrics, "solved": bool(solve)})
    result = report(tmp_path)
    assert result.returncode == 0, result.stderr
    by_outcome = {row["outcome"]: row for row in rows(tmp_path)}
    steps, returns = by_outcome["steps"], by_outcome["return"]
    # tau = 400 (the reference's longest run stopped unsolved there). Restricted means: shared
    # 300 + 100 * 1/2 = 350, unshared (100 + 200) / 2 = 150: difference -200. Bootstrap: each
    # side's resample is its own mean -50, +0 or +50 with P 1/4, 1/2, 1/4, so the difference
    # is -200 + {-100: 1/16, -50: 4/16, 0: 6/16, 50: 4/16, 100: 1/16}: [-300, -100]
    assert float(steps["tau"]) == 400.0
    assert (float(steps["reference_mean"]), float(steps["value_mean"])) == (350.0, 150.0)
    assert float(steps["difference"]) == -200.0
    assert (float(steps["difference_ci_low"]), float(steps["difference_ci_high"])) == (-300, -100)
    assert float(steps["improvement"]) == 1.0  # both solved before either reference run did
    # log-rank: chi2 = 49/17 (tests/test_survival.py works it through): p = 0.0896
    assert float(steps["p"]) == pytest.approx(math.erfc(math.sqrt(49 / 17 / 2)))
    # returns 1, 2 against 3, 4: U = 4 of 4, exact two-sided p = 2 / C(4, 2) = 1/3
    assert float(returns["p"]) == pytest.approx(1 / 3)
    # Holm over the two: 0.0896 * 2 = 0.179, then max(1/3 * 1, 0.179) = 1/3
    assert float(steps["p_holm"]) == pytest.approx(2 * float(steps["p"]))
    assert float(returns["p_holm"]) == pytest.approx(1 / 3)
    line = verdicts(result.stdout)["arch"]
    assert "env steps to solve: within noise at this many seeds: `unshared` ahead in 1 of 1" in line
    assert "-200 env steps [-300, -100], P = 1.00" in line
    assert "about 7 seeds per value would tell" in line  # P = 1 at alpha 0.05 / 2


def test_nothing_differs_says_so(tmp_path: Path) -> None:
    for arch in ("shared", "unshared"):
        for seed, (ret, solve) in enumerate([(1.0, 100), (2.0, 200), (3.0, None)]):
            metrics = {"final_return": ret, "steps_to_solve": solve, "env_steps": solve or 300}
            job(tmp_path, [f"arch={arch}", f"seed={seed}"], metrics)
    result = report(tmp_path)
    assert result.returncode == 0, result.stderr
    for row in rows(tmp_path):
        assert (float(row["difference"]), float(row["improvement"]), float(row["p"])) == (0, 0.5, 1)
    line = verdicts(result.stdout)["arch"]
    assert line.count("no difference in 1 setting (difference 0, P = 0.50)") == 2  # both outcomes
    assert "more than noise" not in line and "seeds per value would tell" not in line


def _clear_sweep(root: Path, flip: bool) -> None:
    """6 seeds a side, 1..6 against 11..16 (the second cell the other way round if `flip`):
    exact Mann-Whitney p = 2 / C(12, 6) = 2 / 924 in each cell."""
    for clip in ("0.5", "null"):
        for seed in range(6):
            low, high = seed + 1.0, seed + 11.0
            if flip and clip == "null":
                low, high = high, low
            for arch, ret in (("shared", low), ("unshared", high)):
                job(root, [f"arch={arch}", f"optim.max_grad_norm={clip}", f"seed={seed}"],
                    {"final_return": ret})  # fmt: skip


@pytest.mark.parametrize("flip", [False, True])
def test_an_effect_beyond_noise_is_named_with_its_size(tmp_path: Path, flip: bool) -> None:
    _clear_sweep(tmp_path, flip)
    factors = analyse(find_runs(tmp_path))
    arch = next(f for f in factors if f.key == "arch")
    assert [c.where for c in arch.comparisons] == [
        "optim.max_grad_norm=0.5", "optim.max_grad_norm=null"
    ]  # fmt: skip
    # 4 comparisons (arch at each clip, clip at each arch); the two arch ones have p = 2/924:
    # Holm multiplies the smaller by 4, the next by 3, then takes the running maximum
    assert [c.p for c in arch.comparisons] == pytest.approx([2 / 924] * 2)
    assert [c.p_holm for c in arch.comparisons] == pytest.approx([4 * 2 / 924] * 2)
    from acexp.analysis.factors import tests
    from acexp.analysis.verdicts import verdict

    line = verdict(arch, tests(factors))
    if flip:
        assert (
            "depends on the other keys: `unshared` scores higher where optim.max_grad_norm=0.5"
            in line
        )
        assert "`shared` scores higher where optim.max_grad_norm=null" in line
    else:
        assert "`unshared` scores higher in 2 of 2 settings, more than noise" in line
        assert "difference +10.0 in each, P = 1.00" in line and "Holm p <= 0.009" in line


def test_three_values_against_a_chosen_reference(tmp_path: Path) -> None:
    # numbers sort by size (3e-4 < 0.003 < 0.03), not as text ("0.003" < "0.03" < "3e-4")
    for lr, returns in (("3e-4", [1.0, 2.0]), ("0.003", [3.0, 4.0]), ("0.03", [5.0, 6.0])):
        for seed, ret in enumerate(returns):
            job(tmp_path, [f"optim.lr={lr}", f"seed={seed}"], {"final_return": ret})
    assert report(tmp_path).returncode == 0
    assert [(r["reference"], r["value"]) for r in rows(tmp_path)] == [
        ("3e-4", "0.003"), ("3e-4", "0.03")
    ]  # fmt: skip
    result = report(tmp_path, "--reference", "optim.lr=0.03")
    assert result.returncode == 0, result.stderr
    chosen = rows(tmp_path)
    assert [(r["reference"], r["value"]) for r in chosen] == [("0.03", "3e-4"), ("0.03", "0.003")]
    assert [float(r["difference"]) for r in chosen] == [-4.0, -2.0]
    line = verdicts(result.stdout)["optim.lr"]
    # told from the side ahead, the reference: 5.5 - 1.5 = +4.0; each side's resample is its
    # mean -0.5, +0 or +0.5 with P 1/4, 1/2, 1/4, so the interval is [4 - 1, 4 + 1]
    assert (
        "`3e-4` against `0.03`: final return: within noise at this many seeds: `0.03` ahead in "
        "1 of 1 setting (+4.0 [+3.0, +5.0], P = 1.00)"
    ) in line
    assert "| `0.003` against `0.03`: final return:" in line
    for bad, why in (("optim.lr=1", "optim.lr takes 3e-4, 0.003, 0.03, not '1'"),
                     ("arch=shared", "arch is not a swept key (swept: optim.lr)")):  # fmt: skip
        result = report(tmp_path, "--reference", bad)
        assert result.returncode == 2 and why in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_search_with_one_run_per_value_compares_nothing(tmp_path: Path) -> None:
    for trial, lr in enumerate(["0.001", "0.002", "0.004"]):  # as an Optuna search's trials
        job(tmp_path, [f"optim.lr={lr}", f"seed={trial}"], {"final_return": float(trial)})
    result = report(tmp_path)
    assert result.returncode == 0, result.stderr
    assert rows(tmp_path) == []
    line = verdicts(result.stdout)["optim.lr"]
    assert (
        line
        == "- **optim.lr**: not compared: no setting of the other keys has 2 runs at two values"
    )
    assert not list(tmp_path.glob("factor_*"))
    md = (tmp_path / "report.md").read_text()
    section = md.split("## Factors: what changing one setting does\n\n", 1)[1].split("\n\n## ")[0]
    assert section == line  # its verdict alone: no empty table, no notes on tests not made


def test_keys_that_change_only_together_are_named_not_compared(tmp_path: Path) -> None:
    """A preset against a variant that sets two keys at once, 2 seeds each: neither key's
    effect can be told apart from the other's, and the verdicts say so; arch, swept across
    both, is compared."""
    variant = ["algo.anneal_lr=false", "algo.vf_coef=0.25"]
    for seed in range(2):
        for arch in ("shared", "unshared"):
            job(tmp_path, [f"arch={arch}", f"seed={seed}"], {"final_return": 17.0 + seed})
            job(tmp_path, [*variant, f"arch={arch}", f"seed={seed}"], {"final_return": 16.0})
    result = report(tmp_path)
    assert result.returncode == 0, result.stderr
    lines = verdicts(result.stdout)
    assert lines["algo.anneal_lr"] == (
        "- **algo.anneal_lr**: not compared: it changes only together with algo.vf_coef"
    )
    assert lines["algo.vf_coef"] == (
        "- **algo.vf_coef**: not compared: it changes only together with algo.anneal_lr"
    )
    assert "not compared" not in lines["arch"] and "2 setting" in lines["arch"]


def test_factor_figures_and_the_benchmark_print_the_same_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    _clear_sweep(tmp_path, flip=False)
    result = report(tmp_path)
    assert result.returncode == 0, result.stderr
    md = (tmp_path / "report.md").read_text()
    for key in ("arch", "optim.max_grad_norm"):
        assert f"![factor {key}](factor_{key}.png)" in md
        with Image.open(tmp_path / f"factor_{key}.png") as png:
            assert png.format == "PNG" and round(png.info["dpi"][0]) >= 300
        assert (tmp_path / f"factor_{key}.pdf").read_bytes()[:5] == b"%PDF-"
    assert factors_cli.main([str(tmp_path)]) == 0
    printed = verdicts(capsys.readouterr().out)
    assert printed == verdicts(result.stdout) == verdicts(md) and len(printed) == 2


def test_solved_by_evaluation_is_the_first_evaluation_that_reached_the_threshold(
    tmp_path: Path,
) -> None:
    from torch.utils.tensorboard import SummaryWriter

    job(tmp_path, ["seed=0"], {"steps_to_solve": None, "env_steps": 200})
    (run,) = find_runs(tmp_path)
    with SummaryWriter(str(run.path)) as writer:
        for step, value in [(50, 150.0), (100, 210.0), (150, 190.0), (200, 230.0)]:
            writer.add_scalar(factors_cli.EVAL_TAG, value, step)
    assert factors_cli.solved_by_evaluation(run, 200.0)["steps_to_solve"] == 100
    assert factors_cli.solved_by_evaluation(run, 230.0)["steps_to_solve"] == 200
    unsolved = {**run.metrics, "steps_to_solve": None, "solved": False}
    assert factors_cli.solved_by_evaluation(run, 231.0) == unsolved


def test_eval_threshold_counts_each_groups_runs_whose_evaluation_reached_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from torch.utils.tensorboard import SummaryWriter

    first_reach = {("shared", 0): 100, ("shared", 1): None, ("unshared", 0): 50,
                   ("unshared", 1): 150}  # fmt: skip
    for (arch, seed), at in first_reach.items():
        job(tmp_path, [f"arch={arch}", f"seed={seed}"],
            {"steps_to_solve": None, "solved": False, "env_steps": 200})  # fmt: skip
        with SummaryWriter(str(tmp_path / f"arch={arch},seed={seed}")) as writer:
            for step in (50, 100, 150, 200):
                writer.add_scalar(factors_cli.EVAL_TAG, 210.0 if at and step >= at else 100.0, step)
    assert factors_cli.main([str(tmp_path), "--eval-threshold", "200"]) == 0
    out = capsys.readouterr().out
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines()
             if line.startswith("| arch=")]  # fmt: skip
    assert [c[:3] for c in cells] == [["arch=shared", "2", "1/2"], ["arch=unshared", "2", "2/2"]]
    # unshared reached it at 50 and 150: the Kaplan-Meier median is the first time half had
    assert cells[1][3].startswith("50 [")
    # the factors section below it compares those solve times: 100 and censored at 200
    # against 50 and 150
    assert "env steps to solve, restricted mean to 200" in out
