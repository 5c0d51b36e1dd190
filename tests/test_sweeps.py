"""Real multirun sweeps through the CLI: run names, launchers, failures, report (TensorBoard's
view of a sweep: tests/test_tensorboard.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir

from acexp.runtime.objective import neg_steps_to_solve
from tests.conftest import CONF, acexp, make_cfg

TINY = "total_steps=1000"
JOBLIB_RUNS = {f"arch={a},seed={s}" for a in ("shared", "unshared") for s in (0, 1)}


def metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


def report_rows(sweep: Path) -> dict[str, dict[str, str]]:
    with (sweep / "report.csv").open() as f:
        return {row["group"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 archs x 2 seeds, two jobs at a time through the joblib launcher, then the report."""
    tmp = tmp_path_factory.mktemp("joblib")
    sweep = tmp / "sweep"
    result = acexp(
        "-m", "arch=shared,unshared", "seed=0,1", TINY,
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}",
        cwd=tmp,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = acexp(str(sweep), cwd=tmp, module="acexp.report")
    assert report.returncode == 0, report.stderr
    return sweep


def test_joblib_sweep_names_each_run_by_what_differs(joblib_sweep: Path) -> None:
    # the launcher's own overrides (hydra/launcher, hydra.launcher.n_jobs) are not in the names,
    # nor total_steps=1000, which every job shares; .hydra/overrides.yaml keeps it
    jobs = {p.name for p in joblib_sweep.iterdir() if p.is_dir()}
    assert jobs == JOBLIB_RUNS
    for job in jobs:
        assert metrics(joblib_sweep / job)["status"] == "completed"
        cfg = yaml.safe_load((joblib_sweep / job / ".hydra" / "config.yaml").read_text())
        assert cfg["torch_threads"] == 1
        overrides = yaml.safe_load((joblib_sweep / job / ".hydra" / "overrides.yaml").read_text())
        assert TINY in overrides


def test_report_numbers_match_the_runs_metrics(joblib_sweep: Path) -> None:
    rows = report_rows(joblib_sweep)
    assert set(rows) == {"arch=shared", "arch=unshared"}  # shared overrides left out of names
    assert "Same in every run: `total_steps=1000`" in (joblib_sweep / "report.md").read_text()
    for arch in ("shared", "unshared"):
        runs = [metrics(joblib_sweep / f"arch={arch},seed={s}") for s in (0, 1)]
        row = rows[f"arch={arch}"]
        assert int(row["n_completed"]) == 2 and int(row["n_failed"]) == 0
        returns = [m["final_return"] for m in runs]
        assert float(row["final_return_mean"]) == pytest.approx(np.mean(returns))
        assert float(row["mean_wall_seconds"]) == pytest.approx(
            np.mean([m["wall_seconds"] for m in runs])
        )
        low, high = float(row["final_return_ci_low"]), float(row["final_return_ci_high"])
        # 2 seeds: resample means min, mid, max with P = 1/4, 1/2, 1/4: the interval is [min, max]
        assert (low, high) == (min(returns), max(returns))


def test_report_compares_the_swept_key_on_the_runs_metrics(joblib_sweep: Path) -> None:
    from scipy.stats import mannwhitneyu

    with (joblib_sweep / "factors.csv").open() as f:
        rows = {row["outcome"]: row for row in csv.DictReader(f)}
    returns = {
        arch: [metrics(joblib_sweep / f"arch={arch},seed={s}")["final_return"] for s in (0, 1)]
        for arch in ("shared", "unshared")
    }
    row = rows["return"]  # the shared total_steps=1000 is not a factor
    assert (row["factor"], row["reference"], row["value"]) == ("arch", "shared", "unshared")
    assert float(row["difference"]) == pytest.approx(
        np.mean(returns["unshared"]) - np.mean(returns["shared"])
    )
    assert float(row["p"]) == mannwhitneyu(returns["unshared"], returns["shared"]).pvalue
    assert rows["steps"]["p"] == ""  # 1,000 steps solve nothing: no log-rank test
    md = (joblib_sweep / "report.md").read_text()
    assert "env steps to solve: nothing to test: no run solved at either value" in md
    assert "![factor arch](factor_arch.png)" in md and (joblib_sweep / "factor_arch.pdf").is_file()


def test_failing_job_through_submitit_is_reported_with_its_error(tmp_path: Path) -> None:
    # lr=1e30 passes validation (bad values are refused before a sweep starts) but diverges
    sweep = tmp_path / "sweep"
    result = acexp(
        "-m", "optim.lr=1e-3,1e30", TINY, "hydra/launcher=submitit_local",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    # every job ran; the sweep ends with one line naming the failure, and exit status 1
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Error executing job" not in result.stderr
    good, bad = sweep / "optim.lr=0.001", sweep / "optim.lr=1e+30"
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("acexp: sweep of 2 job(s): 1 completed, 1 failed: optim.lr=1e+30 (")
    assert "NonFiniteError: parameter " in summary
    assert summary.endswith(f"report: python -m acexp.report {sweep}; "
                            f"curves: tensorboard --logdir {sweep}")  # fmt: skip
    assert metrics(good)["status"] == "completed" and (good / "model.pt").exists()
    assert metrics(bad)["status"] == "failed"
    assert metrics(bad)["error"].startswith("NonFiniteError: parameter ")
    assert "holds nan at env step" in metrics(bad)["error"]
    report = acexp(str(sweep), cwd=tmp_path, module="acexp.report")
    assert report.returncode == 0, report.stderr
    md = (sweep / "report.md").read_text()
    failed = md.split("### Failed runs (1)", 1)[1]
    assert f"`{bad.name}`: NonFiniteError: parameter " in failed
    rows = report_rows(sweep)
    assert int(rows["optim.lr=1e+30"]["n_failed"]) == 1
    assert float(rows["optim.lr=0.001"]["final_return_mean"]) == pytest.approx(
        metrics(good)["final_return"]
    )


def test_optuna_search_returns_the_best_trials_objective(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = acexp(
        "-m", "+hparams_search=optuna", "hydra.sweeper.n_trials=2", TINY,
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trials = [metrics(p) for p in sweep.iterdir() if p.is_dir()]
    assert len(trials) == 2
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(m["final_return"] for m in trials))
    assert set(best["best_params"]) == {"optim.lr", "algo.ent_coef"}
    assert 1e-4 <= best["best_params"]["optim.lr"] <= 1e-2


def test_neg_steps_to_solve_ranks_unsolved_runs_last() -> None:
    cfg = make_cfg("total_steps=1000")
    assert neg_steps_to_solve({"steps_to_solve": 400}, cfg) == -400.0
    assert neg_steps_to_solve({"steps_to_solve": None}, cfg) == -1000.0


@pytest.mark.parametrize(
    ("preset", "batch_size", "params"),
    [
        ("tutorial_sweep", 30, {"seed", "arch", "optim.lr"}),
        ("arch_optim_sweep", 64, {"seed", "arch", "optim", "optim.max_grad_norm"}),
        ("arch_optim_sweep_lunarlander", 64, {"seed", "arch", "optim", "optim.max_grad_norm"}),
    ],
)
def test_presets_set_their_sweep_and_launcher(preset: str, batch_size: int, params: set) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", [f"+experiment={preset}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("BatchedLauncher")
    assert cfg.hydra.launcher.max_batch_size == batch_size
    assert cfg.hydra.launcher.n_jobs == -1  # one batch per core
    assert set(cfg.hydra.sweeper.params) == params
    assert cfg.log.progress is False and cfg.torch_threads == 1
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):  # same sweep on SLURM
        overrides = [f"+experiment={preset}", "hydra/launcher=submitit_slurm"]
        cfg = compose("config", overrides, return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert set(cfg.hydra.sweeper.params) == params
