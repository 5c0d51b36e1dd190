"""Sweep report tests: statistics on hand-made numbers, then the real CLI on a fake sweep."""

from __future__ import annotations

import csv
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from acexp.analysis import stats, tables
from acexp.analysis.curves import curve_bands
from acexp.analysis.report import main
from acexp.analysis.runs import find_runs, group_runs, read_returns

ROOT = Path(__file__).resolve().parents[1]

# --- pure statistics -----------------------------------------------------------------------------


def test_iqm_of_known_list() -> None:
    # 8 values: trim 2 from each end, mean of 3, 4, 5, 6 = 4.5; the outlier 100 is ignored.
    assert stats.iqm([100, 1, 2, 3, 4, 5, 6, 7]) == pytest.approx(4.5)
    assert math.isnan(stats.iqm([]))


def test_bootstrap_ci_of_five_seeds_is_the_percentiles_of_every_resample() -> None:
    # The 5^5 = 3125 equally likely resamples of 1, 4, 2, 8, 5, enumerated: the mean is <= 1.8
    # with P 1.95 % and <= 2.0 with P 3.58 %, so the 2.5th percentile is 2.0; <= 6.0 with
    # P 97.09 % and <= 6.2 with P 98.05 %: the 97.5th is 6.2. (The 9999 resamples drawn land
    # there for any seed: each margin is some 3 standard errors of their fractions.)
    x = [1.0, 4.0, 2.0, 8.0, 5.0]
    means = np.array([np.mean(r) for r in itertools.product(x, repeat=len(x))])
    below = [(means <= v + 1e-9).mean() for v in (1.8, 2.0, 6.0, 6.2)]
    assert below == pytest.approx([0.01952, 0.03584, 0.97088, 0.98048])
    assert stats.bootstrap_ci(x, seed=3) == pytest.approx((2.0, 6.2), abs=1e-9)


def test_bootstrap_ci_degenerate_inputs() -> None:
    assert all(math.isnan(v) for v in stats.bootstrap_ci([7.0]))
    assert stats.bootstrap_ci([5.0, 5.0, 5.0]) == (5.0, 5.0)
    assert stats.bootstrap_ci([0.1, 0.1, 0.1]) == (0.1, 0.1)  # no rounding past the data


def test_bootstrap_ci_is_the_percentile_bootstrap_computed_by_hand() -> None:
    # Seeds 0, 0, 0, 10: a resample of 4 holds k tens, k ~ Binomial(4, 1/4), and its mean is
    # 2.5 k. P(k = 0) = 0.316 > 2.5 %, so the 2.5th percentile is 0; P(k <= 2) = 0.949 and
    # P(k <= 3) = 0.996 straddle 97.5 %, so the 97.5th percentile is 2.5 * 3 = 7.5.
    assert stats.bootstrap_ci([0.0, 0.0, 0.0, 10.0]) == (0.0, 7.5)
    # Seeds 0, 10: resample means 0, 5, 10 with P = 1/4, 1/2, 1/4: the interval is [0, 10].
    assert stats.bootstrap_ci([0.0, 10.0]) == (0.0, 10.0)


def test_grouping_strips_seed_and_hydra_keys() -> None:
    a = ["seed=1", "optim.lr=0.03", "hydra/launcher=joblib", "arch=shared"]
    b = ["arch=shared", "hydra.launcher.n_jobs=2", "optim.lr=0.03", "+seed=2"]
    assert stats.group_overrides(a) == ("arch=shared", "optim.lr=0.03")
    assert stats.group_label(a) == stats.group_label(b) == "arch=shared,optim.lr=0.03"
    assert stats.group_label(["seed=0", "hydra/launcher=joblib"]) == "(defaults)"
    assert stats.group_label(["+experiment=tutorial", "seed=0"]) == "+experiment=tutorial"


def test_summarize_runs_by_hand() -> None:
    metrics = [
        {"final_return": 10.0, "solved": True, "steps_to_solve": 100, "episodes_to_solve": 5},
        {"final_return": 20.0, "solved": False, "steps_to_solve": None, "wall_seconds": 4.0,
         "env_steps": 500, "episodes": 20},
        {"final_return": None, "solved": True, "steps_to_solve": 300, "episodes_to_solve": 9},
    ]  # fmt: skip
    s = stats.summarize_runs(metrics)
    assert (s.n, s.n_return, s.n_solved) == (3, 2, 2)
    assert s.return_mean == pytest.approx(15.0)
    assert s.solved_fraction == pytest.approx(2 / 3)
    # Kaplan-Meier, the unsolved run censored at 500 steps: S(100) = 1 - 1/3 = 2/3,
    # S(300) = 2/3 * (1 - 1/2) = 1/3 <= 0.5: the median is 300 (not 200, the solved runs' median)
    assert (s.steps_to_solve.runs, s.steps_to_solve.solved) == (3, 2)
    assert s.steps_to_solve.median == 300.0 and s.episodes_to_solve.median == 9.0
    assert s.mean_wall_seconds == pytest.approx(4.0)


def test_summarize_runs_eval_return_and_parameters() -> None:
    # the final evaluation gets final_return's statistics; a run without it (evaluation off,
    # or written before parameters existed) is left out, not counted as zero
    metrics = [
        {"final_return": 1.0, "eval_return": 10.0, "parameters": 300},
        {"final_return": 2.0, "eval_return": 40.0, "parameters": 100},
        {"final_return": 3.0, "eval_return": None},
        {"final_return": 4.0, "eval_return": 70.0, "parameters": 100},
    ]
    s = stats.summarize_runs(metrics)
    assert (s.n, s.n_eval) == (4, 3) and s.eval_mean == 40.0
    # 3 seeds: each all-equal resample has P = 1/27 > 2.5 %, so the 95 % interval is [min, max]
    assert (s.eval_ci_low, s.eval_ci_high) == (10.0, 70.0)
    assert s.parameters == (100, 300)
    bare = stats.summarize_runs([{"final_return": 1.0}, {"final_return": 2.0}])
    assert bare.n_eval == 0 and math.isnan(bare.eval_mean) and math.isnan(bare.eval_ci_low)
    assert bare.parameters is None and bare.return_mean == 1.5


def test_curve_helpers_do_not_extrapolate() -> None:
    assert np.allclose(stats.moving_average([2, 4, 6, 8], 2), [2, 3, 5, 7])
    grid = np.array([0.0, 10.0, 15.0, 20.0, 25.0, 30.0])
    curve = stats.interpolate_curve([10, 20], [1.0, 3.0], grid)
    assert np.isnan(curve[[0, 4, 5]]).all()
    assert np.allclose(curve[1:4], [1.0, 2.0, 3.0])
    # the run went on to step 25 without finishing another episode: its return is still 3
    held = stats.interpolate_curve([10, 20], [1.0, 3.0], grid, end=25)
    assert np.allclose(held[1:5], [1.0, 2.0, 3.0, 3.0]) and np.isnan(held[[0, 5]]).all()


def test_moving_average_weighs_each_point_by_its_episodes() -> None:
    # points (mean 2 of 1 episode), (mean 4 of 2 episodes), (mean 6 of 1): episodes 2, 4, 4, 6;
    # the last two episodes at each point's last episode: 2, (4 + 4) / 2, (4 + 6) / 2
    assert np.allclose(stats.moving_average([2, 4, 6], 2, counts=[1, 2, 1]), [2, 4, 5])


def test_band_is_the_tables_interval_and_never_leaves_the_data() -> None:
    finals = [0.0, 0.0, 0.0, 10.0]
    curves = np.array([[1.0, 5.0, f] for f in finals])
    mean, low, high, count = stats.bootstrap_band(curves)
    assert (low[2], high[2]) == stats.bootstrap_ci(finals) == (0.0, 7.5)
    assert mean[2] == pytest.approx(2.5) and list(count) == [4, 4, 4]
    assert (low[0], high[0]) == (1.0, 1.0)  # every seed equal: no spread
    rng = np.random.default_rng(0)
    wild = rng.standard_cauchy((3, 50))  # few seeds, heavy tails: where mean +- 1.96 sem fails
    wild[2, 40:] = np.nan  # one seed's run ended
    mean, low, high, count = stats.bootstrap_band(wild)
    assert np.all(low >= np.nanmin(wild, axis=0)) and np.all(high <= np.nanmax(wild, axis=0))
    assert np.all(low <= mean) and np.all(mean <= high)
    one = stats.bootstrap_band(np.array([[1.0, 2.0], [3.0, np.nan]]))
    assert np.isnan(one[1][1]) and np.isnan(one[2][1])  # one seed: no band


# --- a hand-made sweep, reported through the real CLI --------------------------------------------

SHARED = "arch=shared,optim.lr=0.03"
UNSHARED = "arch=unshared,optim.lr=0.0003"
RESUME = "python -m acexp resume=/elsewhere/job"  # a failed run's metrics.json names it
# (final_return, steps_to_solve, episodes_to_solve, wall_seconds) per seed; None = not solved
RUNS = {
    SHARED: [(400.0, None, None, 10.0), (480.0, 12000, 250, 20.0), (500.0, 15000, 330, 30.0)],
    UNSHARED: [(100.0, None, None, 5.0), (200.0, None, None, 6.0), (600.0, 40000, 800, 7.0)],
}
EVALS = {SHARED: [420.0, 470.0, 520.0], UNSHARED: [150.0, 250.0, 650.0]}  # eval_return per seed
PARAMETERS = {SHARED: 4610, UNSHARED: 8962}


def _job(sweep: Path, label: str, seed: int, metrics: dict | None) -> Path:
    overrides = [*label.split(","), f"seed={seed}", "hydra/launcher=joblib"]
    job = sweep / f"{label},seed={seed}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    return job


def _write_returns(job: Path, seed: int, offset: float) -> None:
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(seed)
    steps = np.cumsum(rng.integers(20, 60, size=40))  # seeds log at different env steps
    with SummaryWriter(log_dir=str(job)) as writer:
        for i, step in enumerate(steps):
            writer.add_scalar("charts/episodic_return", float(i + seed + offset), int(step))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sweep = tmp_path_factory.mktemp("multirun") / "2024-01-01" / "12-00-00"
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    for label, runs in RUNS.items():
        for seed, (ret, steps, episodes, wall) in enumerate(runs):
            metrics = {
                "status": "completed", "env_steps": 50000, "episodes": 900,
                "final_return": ret, "running_return": ret, "solved": steps is not None,
                "steps_to_solve": steps, "episodes_to_solve": episodes,
                "seconds_to_solve": None if steps is None else wall / 2,
                "wall_seconds": wall, "sps": 1000.0, "extra_key": [1, 2],
                "eval_return": EVALS[label][seed], "eval_return_std": 10.0 + seed,
                "parameters": PARAMETERS[label],
            }  # fmt: skip
            _write_returns(
                _job(sweep, label, seed, metrics), seed, 0.0 if label == SHARED else 20.0
            )
    failed = {"status": "failed", "error": "boom", "final_return": 9999.0, "eval_return": 9999.0,
              "resume": RESUME}  # fmt: skip
    _job(sweep, SHARED, 3, failed)
    _job(sweep, UNSHARED, 3, None)  # still running: no metrics.json yet
    return sweep


@pytest.fixture(scope="module")
def report(sweep: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "acexp.report", str(sweep)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_succeeds_and_prints_table(report: subprocess.CompletedProcess[str]) -> None:
    assert report.returncode == 0, report.stderr
    assert "| group | seeds |" in report.stdout
    assert SHARED in report.stdout and UNSHARED in report.stdout
    assert "Traceback" not in report.stderr


def test_csv_matches_hand_computed_numbers(report: subprocess.CompletedProcess[str], sweep: Path):
    assert report.returncode == 0, report.stderr
    with (sweep / "report.csv").open() as f:
        rows = {row["group"]: row for row in csv.DictReader(f)}
    assert set(rows) == {SHARED, UNSHARED}
    shared, unshared = rows[SHARED], rows[UNSHARED]
    assert (shared["arch"], shared["optim.lr"]) == ("shared", "0.03")
    assert "seed" not in shared and "hydra/launcher" not in shared

    # shared: returns 400, 480, 500; solved 2 of 3 at 12000 / 15000 steps, 250 / 330 episodes
    assert int(shared["n_jobs"]) == 4 and int(shared["n_completed"]) == 3
    assert int(shared["n_failed"]) == 1 and int(shared["n_skipped"]) == 0
    assert float(shared["final_return_mean"]) == pytest.approx(460.0)  # failed 9999 not counted
    assert float(shared["final_return_iqm"]) == pytest.approx(460.0)  # n=3 trims nothing
    assert float(shared["solved_fraction"]) == pytest.approx(2 / 3)
    assert int(shared["n_solved"]) == 2
    # Kaplan-Meier, the unsolved run censored at 900 episodes: S(250) = 2/3,
    # S(330) = 2/3 * (1 - 1/2) = 1/3: median 330. Band (log-log, Greenwood) at 250:
    # sum 1/(3*2), se = sqrt(1/6) / |log 2/3| = 1.007, lower survival
    # exp(-exp(log(0.4055) + 1.96 * 1.007)) = 0.054 <= 0.5: low end 250. Upper survival at 330
    # (sum 1/6 + 1/2 = 2/3): 0.774, and it stays there: the high end is not reached.
    assert float(shared["median_episodes_to_solve"]) == 330.0
    assert float(shared["median_episodes_to_solve_ci_low"]) == 250.0
    assert shared["median_episodes_to_solve_ci_high"] == "inf"
    assert float(shared["median_steps_to_solve"]) == 15000.0  # same order in env steps
    assert float(shared["median_steps_to_solve_ci_low"]) == 12000.0
    assert shared["median_steps_to_solve_ci_high"] == "inf"
    assert float(shared["mean_wall_seconds"]) == pytest.approx(20.0)
    # 95 % percentile bootstrap of 3 seeds: a resample of three equal seeds has P = 1/27 > 2.5 %,
    # so the interval is [min, max] (at 90 % it would be [426.7, 493.3])
    low, high = float(shared["final_return_ci_low"]), float(shared["final_return_ci_high"])
    assert (low, high) == (400.0, 500.0)
    assert shared["parameters"] == "4610" and unshared["parameters"] == "8962"

    # unshared: returns 100, 200, 600; solved 1 of 3; one job still running
    assert int(unshared["n_completed"]) == 3 and int(unshared["n_skipped"]) == 1
    assert float(unshared["final_return_mean"]) == pytest.approx(300.0)
    assert float(unshared["solved_fraction"]) == pytest.approx(1 / 3)
    # 1 of 3 solved (at 800 episodes), 2 ran 900 without: S = 2/3 never reaches 0.5, so no
    # median (not the solved run's 800); the band's lower survival at 800 is 0.054 (as above)
    assert unshared["median_episodes_to_solve"] == "" and unshared["median_steps_to_solve"] == ""
    assert float(unshared["median_episodes_to_solve_ci_low"]) == 800.0
    assert float(unshared["median_steps_to_solve_ci_low"]) == 40000.0
    assert unshared["median_episodes_to_solve_ci_high"] == "inf"
    assert float(unshared["mean_wall_seconds"]) == pytest.approx(6.0)


def _header(md: str) -> str:
    return next(line for line in md.splitlines() if line.startswith("| group |"))


def test_eval_return_is_final_returns_statistic(
    report: subprocess.CompletedProcess[str], sweep: Path
) -> None:
    assert report.returncode == 0, report.stderr
    with (sweep / "report.csv").open() as f:
        rows = {row["group"]: row for row in csv.DictReader(f)}
    md = (sweep / "report.md").read_text()
    assert "eval return: mean [95% CI]" in _header(md) and "greedy policy" in md
    # shared: 420, 470, 520 -> 470 (the failed job's 9999 not counted); unshared -> 350
    for label, mean in ((SHARED, 470.0), (UNSHARED, 350.0)):
        row = rows[label]
        assert row["n_eval"] == "3" and float(row["eval_return_mean"]) == mean
        low, high = float(row["eval_return_ci_low"]), float(row["eval_return_ci_high"])
        assert (low, high) == (min(EVALS[label]), max(EVALS[label]))  # 3 seeds: as above
        assert f"| {mean:,.1f} [{low:,.1f}, {high:,.1f}] |" in md
    # the cost columns close each row: mean wall time, then parameters
    assert "| 20.0 | 4,610 |" in md and "| 6.0 | 8,962 |" in md


def test_markdown_lists_failed_and_skipped(report: subprocess.CompletedProcess[str], sweep: Path):
    assert report.returncode == 0, report.stderr
    md = (sweep / "report.md").read_text()
    failed = md.split("### Failed runs", 1)[1].split("###", 1)[0]
    assert f"{SHARED},seed=3`: boom; continue with: `{RESUME}`" in failed
    skipped = md.split("### Skipped", 1)[1]
    assert "running or crashed" in skipped and f"{UNSHARED},seed=3" in skipped
    assert "| 67% (2/3) | 330 [250, —] | 15,000 [12,000, —] |" in md
    assert "| 33% (1/3) | — [800, —] | — [40,000, —] |" in md
    assert "censored at the length they ran" in md


def test_runs_that_can_continue_name_the_command_that_does(tmp_path: Path) -> None:
    """An interrupted run with a checkpoint, and a batch member whose worker died, each name
    the command that continues it, in the sweep's summary line and in the report's notes."""
    from acexp.runtime.job_end import resume_command
    from acexp.sweeps.multirun import summary_line

    sweep = tmp_path / "sweep"
    done = _job(sweep, SHARED, 0, {"status": "completed"})
    stopped = _job(sweep, SHARED, 1, {"status": "interrupted", "signal": "SIGTERM"})
    (stopped / "checkpoints").mkdir()
    (stopped / "checkpoints" / "step_000000100.pt").write_bytes(b"")
    at_once = _job(sweep, SHARED, 2, {"status": "interrupted", "signal": "SIGINT"})  # none saved
    died = _job(sweep, UNSHARED, 0, {"status": "failed", "error": "worker died", "resume": RESUME})
    runs = find_runs(sweep)
    assert {r.path: r.resume for r in runs} == {
        done: "",
        stopped: resume_command(stopped),
        at_once: "",
        died: RESUME,
    }
    line, failed = summary_line(sweep, [r.path for r in runs])
    assert failed and line.startswith(
        f"acexp: sweep of 4 job(s): 1 completed, 1 failed, 2 interrupted: {stopped.name} "
        f"(SIGTERM); {at_once.name} (SIGINT); {died.name} (worker died); continue each"
    )
    continues = "; continue each from its checkpoint with: python -m acexp resume=<job dir>, "
    assert f"{continues}e.g. {resume_command(stopped)}; report: " in line
    notes = tables.markdown_notes(group_runs(runs), sweep)
    assert f"- `{stopped.name}`: continue with: `{resume_command(stopped)}`" in notes
    assert f"- `{died.name}`: worker died; continue with: `{RESUME}`" in notes


def test_curves_are_print_ready_png_and_vector_pdf(
    report: subprocess.CompletedProcess[str], sweep: Path
) -> None:
    from PIL import Image

    assert report.returncode == 0, report.stderr
    with Image.open(sweep / "curves.png") as png:
        assert png.format == "PNG" and round(png.info["dpi"][0]) >= 300
        assert png.size[0] >= 2000  # 7 inches at 300 dpi
    assert (sweep / "curves.pdf").read_bytes()[:5] == b"%PDF-"
    assert "![curves](curves.png)" in (sweep / "report.md").read_text()
    with Image.open(sweep / "solved.png") as png:
        assert png.format == "PNG" and round(png.info["dpi"][0]) >= 300
    assert (sweep / "solved.pdf").read_bytes()[:5] == b"%PDF-"
    assert "![solved](solved.png)" in (sweep / "report.md").read_text()
    assert "solved.png, solved.pdf" in report.stderr


def test_curves_band_and_dashes_tell_the_truth(sweep: Path) -> None:
    grid, bands = curve_bands(group_runs(find_runs(sweep)))
    assert set(bands) == {SHARED, UNSHARED} and grid[-1] == 50000
    for band in bands.values():
        # every run went on to env step 50,000, long after its last episode: no seed had
        # stopped, so nothing is dashed, and the mean stays over every seed to the end
        assert not band.ended.any() and band.full[-1]
        some = ~np.isnan(band.low)
        assert np.all(band.low[some] <= band.mean[some]) and np.all(
            band.mean[some] <= band.high[some]
        )
    for label, offset in ((SHARED, 0.0), (UNSHARED, 20.0)):
        # at the end each seed holds its last moving average: episodes 30-39 return i + seed
        held = [np.mean(np.arange(30, 40) + seed + offset) for seed in range(3)]
        band = bands[label]
        assert band.mean[-1] == pytest.approx(np.mean(held))
        assert (band.low[-1], band.high[-1]) == (min(held), max(held))  # 3 seeds, as above


def _solve_sweep(root: Path, runs: dict[str, list[int | None]], length: int) -> Path:
    """A sweep without event files; per group the episodes to solve of each seed (None: ran
    `length` episodes without solving); env steps are 100 per episode."""
    for label, solve_at in runs.items():
        for seed, episodes in enumerate(solve_at):
            solved = episodes is not None
            metrics = {
                "status": "completed", "env_steps": 100 * length, "episodes": length,
                "final_return": 1.0, "solved": solved, "episodes_to_solve": episodes,
                "steps_to_solve": 100 * episodes if solved else None,
            }  # fmt: skip
            _job(root, label, seed, metrics)
    return root


def test_report_gives_km_medians_with_censored_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # fast: solved at 10, 20, ..., 70 episodes; one seed ran 80 without solving (censored).
    # After k solves S = (8 - k)/8, so S(40) = 0.5: median 40. Greenwood's sum telescopes to
    # 1/(8 - k) - 1/8: lower survival at 10 (S = 7/8, sum 1/56) is 0.387 <= 0.5, low end 10;
    # upper survival at 60 (S = 1/4, sum 3/8) is 0.558, at 70 (S = 1/8, sum 7/8) 0.423 <= 0.5:
    # high end 70. (tests/test_survival.py works these through.)
    # never: two seeds ran 80 episodes without solving: nothing to estimate.
    sweep = _solve_sweep(
        tmp_path, {"arch=fast": [10, 20, 30, 40, 50, 60, 70, None], "arch=never": [None] * 2}, 80
    )
    assert main([str(sweep)]) == 0
    with (sweep / "report.csv").open() as f:
        rows = {row["group"]: row for row in csv.DictReader(f)}
    fast, never = rows["arch=fast"], rows["arch=never"]
    assert (fast["n_solved"], fast["solved_fraction"]) == ("7", str(7 / 8))
    columns = ("median_episodes_to_solve", "_ci_low", "_ci_high")
    assert [float(fast[columns[0] + c]) for c in ("", *columns[1:])] == [40.0, 10.0, 70.0]
    assert float(fast["median_steps_to_solve_ci_high"]) == 7000.0
    assert [never[columns[0] + c] for c in ("", *columns[1:])] == ["", "", "inf"]
    md = (sweep / "report.md").read_text()
    assert "| 88% (7/8) | 40 [10, 70] | 4,000 [1,000, 7,000] |" in md
    assert "| 0% (0/2) | — [—, —] | — [—, —] |" in md
    assert (sweep / "solved.png").is_file() and (sweep / "solved.pdf").is_file()
    assert "solved.png, solved.pdf" in capsys.readouterr().err


def test_report_without_solve_metric_has_no_solve_columns(tmp_path: Path) -> None:
    for seed in range(2):
        _job(tmp_path, "arch=shared", seed, {"status": "completed", "final_return": 1.0})
    assert main([str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "solved" not in md and not (tmp_path / "solved.png").exists()
    # nor eval or parameters columns: no run had evaluation on, none recorded parameters
    columns = "| group | seeds | final return: mean [95% CI] | IQM | mean wall time (s) |"
    assert _header(md) == columns
    assert "greedy" not in md and "- parameters" not in md
    with (tmp_path / "report.csv").open() as f:
        (row,) = csv.DictReader(f)
    assert row["median_episodes_to_solve_ci_high"] == "" and row["n_solved"] == "0"
    assert (row["n_eval"], row["eval_return_mean"], row["parameters"]) == ("0", "", "")


def test_parameters_that_differ_show_a_range_and_runs_without_eval_are_noted(
    tmp_path: Path,
) -> None:
    runs = [{"eval_return": 5.0, "parameters": 120}, {"eval_return": 7.0, "parameters": 100}, {}]
    for seed, extra in enumerate(runs):
        _job(tmp_path, "arch=shared", seed, {"status": "completed", "final_return": 1.0, **extra})
    assert main([str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    header = _header(md)
    assert header.endswith("| eval return: mean [95% CI] | mean wall time (s) | parameters |")
    assert "| 6.0 [5.0, 7.0] (n=2) | — | 100-120 |" in md  # the third run evaluated nothing
    assert "1 completed run(s) had no eval_return" in md
    with (tmp_path / "report.csv").open() as f:
        (row,) = csv.DictReader(f)
    assert (row["n_eval"], row["eval_return_mean"], row["parameters"]) == ("2", "6.0", "100-120")


def test_runs_csv_has_one_row_per_job(report: subprocess.CompletedProcess[str], sweep: Path):
    assert report.returncode == 0, report.stderr
    with (sweep / "runs.csv").open() as f:
        rows = {row["run"]: row for row in csv.DictReader(f)}
    assert len(rows) == 8
    first = rows[f"{SHARED},seed=1"]
    assert (first["group"], first["seed"], first["status"]) == (SHARED, "1", "completed")
    assert (first["arch"], first["optim.lr"]) == ("shared", "0.03")
    assert float(first["final_return"]) == 480.0 and first["steps_to_solve"] == "12000"
    assert (first["eval_return"], first["eval_return_std"]) == ("470.0", "11.0")
    assert first["parameters"] == "4610"
    assert rows[f"{SHARED},seed=3"]["status"] == "failed"
    assert rows[f"{SHARED},seed=3"]["error"] == "boom"
    assert rows[f"{UNSHARED},seed=3"]["status"] == "skipped"


def test_read_returns_reads_event_files(sweep: Path) -> None:

    steps, values, counts = read_returns(sweep / f"{SHARED},seed=1")
    expected = np.cumsum(np.random.default_rng(1).integers(20, 60, size=40))
    assert np.array_equal(steps, expected)
    assert np.array_equal(values, np.arange(40) + 1.0)
    assert np.array_equal(counts, np.ones(40))  # written without charts/episodes: one each


def test_read_returns_counts_the_episodes_of_each_point(tmp_path: Path) -> None:
    from acexp.logs.logger import RunLogger

    logger = RunLogger(tmp_path, total_steps=100, progress=False)
    for ret, step in [(1.0, 10), (3.0, 10), (5.0, 10), (2.0, 20), (4.0, 40), (6.0, 40)]:
        logger.episode(ret, 7, step)  # three envs ended on step 10, two on step 40
    logger.close()
    steps, values, counts = read_returns(tmp_path)
    assert list(steps) == [10, 20, 40] and list(values) == [3.0, 2.0, 5.0]
    assert list(counts) == [3, 1, 2]


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_bad_sweep_dir_exits_2_with_one_line(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "nope" if kind == "missing" else tmp_path
    cmd = [sys.executable, "-m", "acexp.report", str(target)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(target) in result.stderr and "Traceback" not in result.stderr


def test_runs_stopped_unsolved_before_others_solved_are_flagged(tmp_path: Path) -> None:
    solved = {"status": "completed", "solved": True, "final_return": 480.0, "wall_seconds": 1.0}
    _job(tmp_path, "arch=unshared", 0, {**solved, "steps_to_solve": 160_000,
                                         "episodes_to_solve": 939, "env_steps": 160_000,
                                         "episodes": 939})  # fmt: skip
    _job(tmp_path, "arch=unshared", 1, {**solved, "solved": False, "steps_to_solve": None,
                                         "episodes_to_solve": None, "env_steps": 45_000,
                                         "episodes": 5000})  # fmt: skip
    _job(tmp_path, "arch=shared", 0, {**solved, "steps_to_solve": 50_000,
                                       "episodes_to_solve": 300, "env_steps": 50_000,
                                       "episodes": 300})  # fmt: skip
    notes = tables.markdown_notes(group_runs(find_runs(tmp_path)), tmp_path)
    flagged = [line for line in notes.splitlines() if "with care" in line]
    assert len(flagged) == 1 and "env steps" in flagged[0]
    assert "`arch=unshared`" in flagged[0] and "`arch=shared`" not in flagged[0]


def _budget_job(
    root: Path, name: str, env_steps: int, solve: int | None, budget: int, overrides: str = ""
) -> Path:
    """A job in `root / name` with a config (its budget) and one episode return per 100 env
    steps; its overrides are `overrides`, else its name's."""
    from torch.utils.tensorboard import SummaryWriter

    job = root / name
    (job / ".hydra").mkdir(parents=True)
    listed = (overrides or name).split(",")
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in listed))
    (job / ".hydra" / "config.yaml").write_text(f"total_steps: {budget}\nstop_on_solve: true\n")
    metrics = {
        "status": "completed", "env_steps": env_steps, "episodes": env_steps // 100,
        "final_return": 1.0, "solved": solve is not None, "steps_to_solve": solve,
    }  # fmt: skip
    (job / "metrics.json").write_text(json.dumps(metrics))
    with SummaryWriter(log_dir=str(job)) as writer:
        for step in range(100, env_steps + 1, 100):
            writer.add_scalar("charts/episodic_return", 1.0, step)
    return job


def test_only_a_run_that_stopped_before_its_budget_is_marked(tmp_path: Path) -> None:
    from acexp.analysis.plots import _curves_title

    # one budget of 1,000 env steps: two runs spent it (ending 3 and 10 steps past it, as
    # rollouts end), the third solved at 600 and stopped there
    _budget_job(tmp_path, "arch=shared,seed=0", 1003, None, 1000)
    _budget_job(tmp_path, "arch=shared,seed=1", 1010, None, 1000)
    _budget_job(tmp_path, "arch=shared,seed=2", 600, 600, 1000)
    grid, bands = curve_bands(group_runs(find_runs(tmp_path)), points=101)
    (band,) = bands.values()
    assert band.stopped == {"solved": 1}
    assert np.array_equal(band.ended, grid > 600)  # not where the budget's two ends differ
    # every seed counts from its first episode (step 100) until the solved run stopped
    assert np.array_equal(band.full, (grid >= 100) & (grid <= 600))
    assert band.mean[-1] == 1.0  # the mean goes on over the two runs still going
    assert "dashed: after runs stopped before their budget (1 solved)" in _curves_title(bands)
    assert main([str(tmp_path)]) == 0
    with (tmp_path / "runs.csv").open() as f:
        stopped = {row["run"]: row["stopped_early"] for row in csv.DictReader(f)}
    assert stopped == {f"arch=shared,seed={s}": "" for s in (0, 1)} | {
        "arch=shared,seed=2": "solved"
    }
    assert "Stopped before their env-step budget: 1 solved" in (tmp_path / "report.md").read_text()
    # the same three runs, all spending their budget: nothing is dashed or said to have stopped
    (tmp_path / "arch=shared,seed=2" / ".hydra" / "config.yaml").write_text("total_steps: 600\n")
    grid, bands = curve_bands(group_runs(find_runs(tmp_path)), points=101)
    (band,) = bands.values()
    assert band.stopped == {} and not band.ended.any()
    assert band.full[grid >= 100].all()  # the run ending at 1,003 counts to the end, 1,010
    assert "dashed" not in _curves_title(bands)


def test_plots_name_runs_as_tensorboard_does_and_say_when_a_curve_is_one_run(
    tmp_path: Path,
) -> None:
    from acexp.analysis.plots import _curves_title
    from acexp.analysis.runs import legend_name

    single = _budget_job(tmp_path, "12-00-00", 500, None, 500, overrides="arch=shared,seed=3")
    (group,) = group_runs(find_runs(single))
    # a run reported on its own: the name of its directory, not its overrides
    assert group.label == "arch=shared" and legend_name(group, single) == "12-00-00"
    grid, bands = curve_bands([group])
    assert _curves_title(bands) == "One run: no interval (one seed)"
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for seed in (0, 1):
        _budget_job(sweep, f"arch=unshared,optim.lr=0.1,seed={seed}", 500, None, 500)
    _budget_job(sweep, "arch=shared,optim.lr=0.1,seed=0", 500, None, 500)
    groups = group_runs(find_runs(sweep))
    # the groups' runs named as in `tensorboard --logdir <sweep>`, seeds taken out
    names = [legend_name(g, sweep) for g in groups]
    assert names == ["arch=shared,optim.lr=0.1,seed=0", "arch=unshared,optim.lr=0.1"]
    title = _curves_title(curve_bands(groups)[1])
    assert title.startswith("Mean over seeds;") and title.endswith("(none for one run)")
