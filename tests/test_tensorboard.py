"""What a researcher sees in TensorBoard, read back through its own HTTP API over a real sweep:
run names, the HPARAMS columns with their types and the declared metrics, every episode."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from acexp.analysis.report import read_returns
from acexp.logs.hparams import METRICS
from acexp.logs.logger import LOG_POINTS, resolve_every_steps
from tests.conftest import acexp, http_json, tensorboard

RUNS = {f"optim={mode},seed={seed}" for mode in ("joint", "separate") for seed in (0, 1)}
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """joint/separate optimizers x 2 seeds through joblib; total_steps etc. are the same in all."""
    tmp = tmp_path_factory.mktemp("tb")
    sweep = tmp / "sweep"
    result = acexp(
        "-m", "optim=joint,separate", "seed=0,1", "total_steps=4000", "stop_on_solve=false",
        "log.progress=false", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}", cwd=tmp,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return sweep, result


@pytest.fixture(scope="module")
def board(sweep: tuple[Path, subprocess.CompletedProcess], tmp_path_factory) -> str:
    with tensorboard(sweep[0], tmp_path_factory.mktemp("tblog") / "tb.log", RUNS) as base:
        yield base


def metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


def scalars(board: str, run: str, tag: str) -> list[tuple[int, float]]:
    points = http_json(f"{board}/data/plugin/scalars/scalars?run={run}&tag={tag}")
    return [(step, value) for _, step, value in points]


def session_groups(board: str) -> dict[str, dict]:
    body = {"experimentName": "", "startIndex": 0, "sliceSize": 100,
            "allowedStatuses": STATUSES, "colParams": []}  # fmt: skip
    groups = http_json(f"{board}/data/plugin/hparams/session_groups", body)["sessionGroups"]
    return {s["name"]: {**s, "hparams": g["hparams"]} for g in groups for s in g["sessions"]}


def test_runs_are_named_by_what_differs(board: str, sweep) -> None:
    sweep_dir, result = sweep
    assert set(http_json(f"{board}/data/runs")) == RUNS | {"."}  # ".": the sweep's HParams
    for run in RUNS:  # the full overrides stay in .hydra/, for the report
        overrides = yaml.safe_load((sweep_dir / run / ".hydra" / "overrides.yaml").read_text())
        assert {"total_steps=4000", "stop_on_solve=false"} <= {o.lower() for o in overrides}


def test_hparams_declares_the_metrics_of_metrics_json(board: str) -> None:
    experiment = http_json(f"{board}/data/plugin/hparams/experiment", {"experimentName": ""})
    tags = [m["name"]["tag"] for m in experiment["metricInfos"]]
    # the tab ticks the first five: the result first, not charts/... by alphabet
    assert tags[:5] == [f"hparams/{k}" for k in list(METRICS)[:5]]
    assert tags[0] == "hparams/final_return" and set(tags) >= {f"hparams/{k}" for k in METRICS}
    assert not any(t.startswith(("charts/", "losses/")) for t in tags)


def test_hparams_columns_have_their_own_types_and_every_runs_values(board: str) -> None:
    experiment = http_json(f"{board}/data/plugin/hparams/experiment", {"experimentName": ""})
    info = {h["name"]: h for h in experiment["hparamInfos"]}
    assert info["seed"]["type"] == "DATA_TYPE_STRING" and info["seed"]["differs"]
    assert set(info["seed"]["domainDiscrete"]) == {"0", "1"}
    assert set(info["optim.mode"]["domainDiscrete"]) == {"joint", "separate"}
    assert info["optim.mode"]["differs"] and not info["optim.name"]["differs"]
    assert info["stop_on_solve"]["type"] == "DATA_TYPE_BOOL"
    assert info["stop_on_solve"]["domainDiscrete"] == [False]
    assert info["env.normalize_reward"]["type"] == "DATA_TYPE_BOOL"
    assert info["optim.lr"]["type"] == "DATA_TYPE_FLOAT64"
    assert info["total_steps"]["domainDiscrete"] == [4000.0]
    for key in ("device", "env.id", "env.obs_norm", "torch_threads", "optim.actor_lr"):
        assert key in info, sorted(info)
    assert not {"resume", "objective", "log.every_steps", "checkpoint.keep"} & set(info)


def test_hparams_values_per_run_match_metrics_json(board: str, sweep) -> None:
    sweep_dir, _ = sweep
    sessions = session_groups(board)
    assert set(sessions) == RUNS
    for name, session in sessions.items():
        mode, seed = name.split(",")[0].split("=")[1], name.split("=")[-1]
        params = session["hparams"]
        assert params["seed"] == seed and params["optim.mode"] == mode
        assert params["stop_on_solve"] is False and params["env.normalize_reward"] is False
        assert params["total_steps"] == 4000 and params["arch.hidden_sizes"] == "[64, 64]"
        if mode == "joint":  # the unused learning rates are left out, and vice versa
            assert "optim.actor_lr" not in params and params["optim.lr"] == pytest.approx(4e-3)
        else:
            assert "optim.lr" not in params and params["optim.critic_lr"] == pytest.approx(4e-3)
        assert session["status"] == "STATUS_SUCCESS"
        expected = metrics(sweep_dir / name)
        values = {m["name"]["tag"]: m for m in session["metricValues"]}
        for key in ("final_return", "running_return", "episodes", "env_steps"):
            assert values[f"hparams/{key}"]["value"] == pytest.approx(expected[key], rel=1e-6)
            assert values[f"hparams/{key}"]["trainingStep"] == expected["env_steps"]  # the end
        assert values["hparams/solved"]["value"] == float(expected["solved"])


def test_every_episode_counts_and_the_report_reads_what_tensorboard_shows(
    board: str, sweep
) -> None:
    sweep_dir, _ = sweep
    for run in RUNS:
        expected = metrics(sweep_dir / run)
        shown = scalars(board, run, "charts/episodic_return")
        steps = [s for s, _ in shown]
        assert len(set(steps)) == len(steps)  # one point per step: none overwritten
        assert scalars(board, run, "charts/episodes")[-1][1] == expected["episodes"]
        report_steps, report_values, counts = read_returns(sweep_dir / run)
        assert list(report_steps) == steps
        assert np.allclose(report_values, [v for _, v in shown])
        assert counts.sum() == expected["episodes"]
        low = scalars(board, run, "charts/episodic_return_min")
        high = scalars(board, run, "charts/episodic_return_max")
        assert all(lo <= v <= hi for (_, lo), (_, v), (_, hi) in zip(low, shown, high, strict=True))


def test_curves_reach_the_end_with_enough_points(board: str, sweep) -> None:
    sweep_dir, _ = sweep
    for run in RUNS:
        end = metrics(sweep_dir / run)["env_steps"]
        assert scalars(board, run, "charts/running_return")[-1][0] == end
        cfg = OmegaConf.load(sweep_dir / run / ".hydra" / "config.yaml")
        updates = end // (cfg.algo.num_envs * cfg.algo.n_steps)
        losses = scalars(board, run, "losses/actor")
        assert len(losses) >= min(LOG_POINTS, updates) - 1  # every update, up to ~250 points
    assert resolve_every_steps("auto", 200_000) == 800 and resolve_every_steps(500, 10) == 500


def test_sweep_console_names_each_job_and_says_where_results_are(sweep) -> None:
    sweep_dir, result = sweep
    output = result.stdout + result.stderr
    for run in RUNS:
        (line,) = [x for x in output.splitlines() if f"[{run}] completed:" in x]
        assert f"{sweep_dir / run / 'metrics.json'}" in line
        assert f"tensorboard --logdir {sweep_dir / run}" in line
    assert result.stderr.strip().splitlines()[-1] == (
        f"acexp: sweep of 4 job(s): 4 completed; report: python -m acexp.report {sweep_dir}; "
        f"curves: tensorboard --logdir {sweep_dir}"
    )
