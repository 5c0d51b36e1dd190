"""Sweep report tests: statistics on hand-made numbers, then the real CLI on a fake sweep."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from acexp import stats

ROOT = Path(__file__).resolve().parents[1]

# --- pure statistics -----------------------------------------------------------------------------


def test_iqm_of_known_list() -> None:
    # 8 values: trim 2 from each end, mean of 3, 4, 5, 6 = 4.5; the outlier 100 is ignored.
    assert stats.iqm([100, 1, 2, 3, 4, 5, 6, 7]) == pytest.approx(4.5)
    assert math.isnan(stats.iqm([]))


def test_bootstrap_ci_contains_mean_and_is_deterministic() -> None:
    x = [1.0, 4.0, 2.0, 8.0, 5.0]
    low, high = stats.bootstrap_ci(x, seed=3)
    assert low < np.mean(x) < high
    assert min(x) <= low and high <= max(x)
    assert stats.bootstrap_ci(x, seed=3) == (low, high)


def test_bootstrap_ci_degenerate_inputs() -> None:
    assert all(math.isnan(v) for v in stats.bootstrap_ci([7.0]))
    assert stats.bootstrap_ci([5.0, 5.0, 5.0]) == (5.0, 5.0)


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
        {"final_return": 20.0, "solved": False, "steps_to_solve": None, "wall_seconds": 4.0},
        {"final_return": None, "solved": True, "steps_to_solve": 300, "episodes_to_solve": 9},
    ]
    s = stats.summarize_runs(metrics)
    assert (s.n, s.n_return, s.n_solved) == (3, 2, 2)
    assert s.return_mean == pytest.approx(15.0)
    assert s.solved_fraction == pytest.approx(2 / 3)
    assert s.median_steps_to_solve == pytest.approx(200.0)
    assert s.median_episodes_to_solve == pytest.approx(7.0)
    assert s.mean_wall_seconds == pytest.approx(4.0)


def test_curve_helpers_do_not_extrapolate() -> None:
    assert np.allclose(stats.moving_average([2, 4, 6, 8], 2), [2, 3, 5, 7])
    grid = np.array([0.0, 10.0, 15.0, 20.0, 30.0])
    curve = stats.interpolate_curve([10, 20], [1.0, 3.0], grid)
    assert np.isnan(curve[[0, 4]]).all()
    assert np.allclose(curve[1:4], [1.0, 2.0, 3.0])
    mean, low, high, count = stats.mean_band(np.array([[1.0, 2.0], [3.0, np.nan]]))
    assert np.allclose(mean, [2.0, 2.0]) and list(count) == [2, 1]
    sem = np.std([1.0, 3.0], ddof=1) / np.sqrt(2)
    assert low[0] == pytest.approx(2.0 - 1.96 * sem) and high[0] == pytest.approx(2.0 + 1.96 * sem)
    assert np.isnan(low[1]) and np.isnan(high[1])  # one seed: no band


# --- a hand-made sweep, reported through the real CLI --------------------------------------------

SHARED = "arch=shared,optim.lr=0.03"
UNSHARED = "arch=unshared,optim.lr=0.0003"
# (final_return, steps_to_solve, episodes_to_solve, wall_seconds) per seed; None = not solved
RUNS = {
    SHARED: [(400.0, None, None, 10.0), (480.0, 12000, 250, 20.0), (500.0, 15000, 330, 30.0)],
    UNSHARED: [(100.0, None, None, 5.0), (200.0, None, None, 6.0), (600.0, 40000, 1100, 7.0)],
}


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
            }  # fmt: skip
            _write_returns(
                _job(sweep, label, seed, metrics), seed, 0.0 if label == SHARED else 20.0
            )
    _job(sweep, SHARED, 3, {"status": "failed", "error": "boom", "final_return": 9999.0})
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
    assert float(shared["median_steps_to_solve"]) == pytest.approx(13500.0)
    assert float(shared["median_episodes_to_solve"]) == pytest.approx(290.0)
    assert float(shared["mean_wall_seconds"]) == pytest.approx(20.0)
    low, high = float(shared["final_return_ci_low"]), float(shared["final_return_ci_high"])
    assert 400.0 <= low < 460.0 < high <= 500.0

    # unshared: returns 100, 200, 600; solved 1 of 3; one job still running
    assert int(unshared["n_completed"]) == 3 and int(unshared["n_skipped"]) == 1
    assert float(unshared["final_return_mean"]) == pytest.approx(300.0)
    assert float(unshared["solved_fraction"]) == pytest.approx(1 / 3)
    assert float(unshared["median_steps_to_solve"]) == pytest.approx(40000.0)
    assert float(unshared["median_episodes_to_solve"]) == pytest.approx(1100.0)
    assert float(unshared["mean_wall_seconds"]) == pytest.approx(6.0)


def test_markdown_lists_failed_and_skipped(report: subprocess.CompletedProcess[str], sweep: Path):
    assert report.returncode == 0, report.stderr
    md = (sweep / "report.md").read_text()
    failed = md.split("### Failed runs", 1)[1].split("###", 1)[0]
    assert f"{SHARED},seed=3" in failed and "boom" in failed
    skipped = md.split("### Skipped", 1)[1]
    assert "running or crashed" in skipped and f"{UNSHARED},seed=3" in skipped
    assert "13,500 (2/3)" in md  # median steps to solve with how many solved


def test_curves_png_is_valid(report: subprocess.CompletedProcess[str], sweep: Path) -> None:
    import matplotlib.image

    assert report.returncode == 0, report.stderr
    png = sweep / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(png).ndim == 3


def test_read_returns_reads_event_files(sweep: Path) -> None:
    from acexp.report import read_returns

    steps, values = read_returns(sweep / f"{SHARED},seed=1")
    expected = np.cumsum(np.random.default_rng(1).integers(20, 60, size=40))
    assert np.array_equal(steps, expected)
    assert np.array_equal(values, np.arange(40) + 1.0)


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_bad_sweep_dir_exits_2_with_one_line(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "nope" if kind == "missing" else tmp_path
    cmd = [sys.executable, "-m", "acexp.report", str(target)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(target) in result.stderr and "Traceback" not in result.stderr
