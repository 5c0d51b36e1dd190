"""What a researcher sees in TensorBoard, read back through its own HTTP API over a real sweep:
run names, the HPARAMS columns with their types and the declared metrics, every episode."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf
from tensorboard.plugins.hparams import api_pb2, metadata

from acexp.analysis.report import read_returns
from acexp.logs.hparams import experiment_summary
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


def test_runs_are_named_by_what_differs_and_are_all_runs(board: str, sweep) -> None:
    sweep_dir, result = sweep
    assert set(http_json(f"{board}/data/runs")) == RUNS  # the sweep's HParams is no run of its own
    for run in RUNS:  # the full overrides stay in .hydra/, for the report
        overrides = yaml.safe_load((sweep_dir / run / ".hydra" / "overrides.yaml").read_text())
        assert {"total_steps=4000", "stop_on_solve=false"} <= {o.lower() for o in overrides}


def test_hparams_declares_the_metrics_of_metrics_json(board: str, sweep) -> None:
    experiment = http_json(f"{board}/data/plugin/hparams/experiment", {"experimentName": ""})
    tags = [m["name"]["tag"] for m in experiment["metricInfos"]]
    # the tab ticks the first five: the result and how soon it solved, not charts/... by
    # alphabet
    first = ["final_return", "solved", "steps_to_solve", "episodes_to_solve", "running_return"]
    assert tags[:5] == [f"result/{k}" for k in first]
    for run in RUNS:  # every figure a run's metrics.json holds (its status is no number)
        figures = set(metrics(sweep[0] / run)) - {"status"}
        assert {f"result/{k}" for k in figures} <= set(tags), run
    assert not any(t.startswith(("charts/", "losses/")) for t in tags)


def test_the_final_metrics_group_sorts_after_the_curves(board: str) -> None:
    # SCALARS opens its first three tag groups, TIME SERIES its first two, in name order: the
    # one-point result/ scalars come after charts, losses and perf, so both leave them closed.
    tags = http_json(f"{board}/data/plugin/scalars/tags")
    for run in RUNS:
        groups = sorted({tag.split("/")[0] for tag in tags[run]})
        assert groups.index("result") >= 3 and groups[:3] == ["charts", "losses", "perf"]
        assert all(not g.startswith("hparams") for g in groups)


def test_hparams_columns_are_what_differs_with_their_own_types(board: str) -> None:
    experiment = http_json(f"{board}/data/plugin/hparams/experiment", {"experimentName": ""})
    info = {h["name"]: h for h in experiment["hparamInfos"]}
    assert info["seed"]["type"] == "DATA_TYPE_STRING" and info["seed"]["differs"]
    assert set(info["seed"]["domainDiscrete"]) == {"0", "1"}
    assert set(info["optim.mode"]["domainDiscrete"]) == {"joint", "separate"}
    # what every run that has it shares is no column (the tab would tick it among its first
    # five): here the learning rates, 4e-3 in each mode, which optim.mode tells apart
    assert set(info) == {"seed", "optim.mode"} and all(h["differs"] for h in info.values())


def test_hparams_columns_of_a_sweep_where_nothing_differs_are_all_settings() -> None:
    cfg = {"seed": "0", "total_steps": 4000, "stop_on_solve": False, "optim.name": "adam"}
    summary = experiment_summary([cfg, dict(cfg)], ["final_return"])
    data = metadata.parse_experiment_plugin_data(summary.value[0].metadata.plugin_data.content)
    info = {h.name: h for h in data.hparam_infos}
    assert set(info) == set(cfg) and not any(h.differs for h in info.values())
    assert info["stop_on_solve"].type == api_pb2.DATA_TYPE_BOOL
    assert [v.bool_value for v in info["stop_on_solve"].domain_discrete.values] == [False]
    assert info["total_steps"].type == api_pb2.DATA_TYPE_FLOAT64


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
            assert values[f"result/{key}"]["value"] == pytest.approx(expected[key], rel=1e-6)
            assert values[f"result/{key}"]["trainingStep"] == expected["env_steps"]  # the end
        assert values["result/solved"]["value"] == float(expected["solved"])


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


def test_the_readmes_flag_shows_every_point_of_a_long_curve(tmp_path: Path) -> None:
    # TensorBoard serves 1,000 points of a scalar series, sampled; the README's
    # --samples_per_plugin scalars=1000000 serves them all (scalars=0 would serve none)
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path / "run")) as writer:
        for step in range(2500):
            writer.add_scalar("charts/episodic_return", float(step % 500), step)
    for flags, points in [((), 1000), (("--samples_per_plugin", "scalars=1000000"), 2500)]:
        with tensorboard(tmp_path, tmp_path / "tb.log", {"run"}, flags) as base:
            deadline = time.monotonic() + 30
            while len(shown := scalars(base, "run", "charts/episodic_return")) < points:
                assert time.monotonic() < deadline, len(shown)  # still loading
                time.sleep(0.5)
            assert len(shown) == points


GAUSSIAN_RUNS = {"seed=0", "seed=1"}


@pytest.fixture(scope="module")
def gaussian_board(tmp_path_factory: pytest.TempPathFactory):
    """PPO with a Gaussian policy (Pendulum's Box actions), 2 seeds trained as one batch."""
    tmp = tmp_path_factory.mktemp("tb_gaussian")
    sweep = tmp / "sweep"
    result = acexp(
        "-m", "seed=0,1", "algo=ppo", "env.id=Pendulum-v1", "algo.num_envs=2",
        "algo.n_steps=64", "total_steps=512", "arch.log_std_init=-0.5", "log.progress=false",
        "hydra/launcher=batched", "hydra.launcher.n_jobs=1", f"hydra.sweep.dir={sweep}", cwd=tmp,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "batch 1/1 (2 jobs)" in result.stdout  # the two seeds trained as one batch
    with tensorboard(sweep, tmp / "tb.log", GAUSSIAN_RUNS) as base:
        yield sweep, base


def test_hparams_of_a_batched_ppo_gaussian_run_are_its_own_settings(gaussian_board) -> None:
    """Each member of a batch shows its own settings, PPO's and the Gaussian head's included,
    with their types, and its own final metrics."""
    sweep, board = gaussian_board
    sessions = session_groups(board)
    assert set(sessions) == GAUSSIAN_RUNS
    for name, session in sessions.items():
        params, expected = session["hparams"], metrics(sweep / name)
        assert params["seed"] == name.split("=")[1]  # a label, not the number 0.0
        assert (params["algo.name"], params["env.id"]) == ("ppo", "Pendulum-v1")
        assert params["arch.log_std_init"] == pytest.approx(-0.5)  # the Gaussian head's
        assert params["algo.clip_range"] == pytest.approx(0.2) and params["algo.n_epochs"] == 4
        assert params["algo.anneal_lr"] is True and params["optim.name"] == "adam"
        assert "algo.clip_range_vf" not in params  # null: nothing to show
        assert session["status"] == "STATUS_SUCCESS"
        values = {m["name"]["tag"]: m for m in session["metricValues"]}
        for key in ("final_return", "running_return", "episodes", "env_steps"):
            assert values[f"result/{key}"]["value"] == pytest.approx(expected[key], rel=1e-6)
        assert expected["env_steps"] >= 512 and expected["episodes"] >= 2  # 200 steps each
    finals = [metrics(sweep / name)["final_return"] for name in sorted(GAUSSIAN_RUNS)]
    assert finals[0] != finals[1]  # each member its own run, not one run shown twice
