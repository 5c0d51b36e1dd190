"""The real command line as a subprocess; its TensorBoard event files read back."""

import json
import re
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import acexp


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """One run through the real command line, read by the tests below: separate optimizers,
    a log point and a console line at every update (no terminal: no progress bar); its
    directory and its console lines."""
    cwd = tmp_path_factory.mktemp("cli")
    out = cwd / "run"
    result = acexp("optim=separate", "optim.actor_lr=1e-3", "optim.critic_lr=5e-3",
                   "total_steps=3000", "stop_on_solve=false", "log.console_every_seconds=1e-9",
                   "log.every_steps=1", "log.progress=false", f"hydra.run.dir={out}",
                   cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no bar, no warning
    return out, result.stdout.splitlines()


def test_cli_run_writes_tensorboard_metrics_and_model(cli_run: tuple[Path, list[str]]) -> None:
    out, _ = cli_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["env_steps"] >= 3000
    assert (out / ".hydra" / "config.yaml").exists() and (out / "model.pt").exists()

    tags = scalars(out)
    for tag in [
        "charts/episodic_return",
        "charts/episodic_length",
        "charts/running_return",
        "losses/actor",
        "losses/critic",
        "losses/entropy",
        "perf/sps",
        "train/lr_actor",
        "train/lr_critic",
        "train/grad_norm_before_clip_actor",
        "train/grad_norm_after_clip_actor",
        "train/grad_norm_before_clip_critic",
        "train/grad_norm_after_clip_critic",
    ]:
        assert tag in tags, f"missing {tag}; have {sorted(tags)}"
    assert tags["train/lr_critic"][0][1] == pytest.approx(5e-3)
    # x axis is env steps, increasing, within the budget (+ one rollout)
    steps = [s for s, _ in tags["charts/episodic_return"]]
    assert steps == sorted(steps) and 0 < steps[-1] <= metrics["env_steps"]
    # one point per env step on which episodes ended; the running count loses none of them
    assert len(set(steps)) == len(steps)
    assert tags["charts/episodes"][-1] == (steps[-1], metrics["episodes"])
    # the final metrics and the running return are at the run's last step
    end = metrics["env_steps"]
    assert tags["result/final_return"] == [(end, pytest.approx(metrics["final_return"]))]
    assert tags["charts/running_return"][-1] == (end, pytest.approx(metrics["running_return"]))


def test_cli_bad_value_is_one_line_and_nonzero(tmp_path: Path) -> None:
    result = acexp("optim.lr=abc", f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "acexp: error: optim.lr='abc' is invalid; expected a number > 0"
    assert not (tmp_path / "bad" / "metrics.json").exists()


def test_cli_cfg_job_prints_the_resolved_config(tmp_path: Path) -> None:
    result = acexp("arch=unshared", "optim.lr=3e-4", "--cfg", "job", "--resolve", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "name: unshared" in result.stdout and "actor_lr: 0.0003" in result.stdout


PROGRESS = re.compile(
    r"\[[\d:, -]+\]\[acexp\]\[INFO\] - step (\d+)  running_return (\S+)  sps (\d+)"
)


def test_cli_console_lines_say_the_runs_progress_and_where_its_results_are(
    cli_run: tuple[Path, list[str]],
) -> None:
    """Without a terminal, a log line now and then (here at every update) gives the env step,
    the running return that TensorBoard shows at that step and the speed; the last line says
    how the run ended, its figures and where they are; the run's acexp.log keeps them all."""
    out, lines = cli_run
    assert (out / "acexp.log").read_text().splitlines() == lines
    metrics = json.loads((out / "metrics.json").read_text())
    progress = [PROGRESS.fullmatch(line) for line in lines[:-1]]
    assert all(progress), lines
    steps = [int(m[1]) for m in progress]
    assert steps == sorted(set(steps)) and steps[-1] == metrics["env_steps"]
    assert len(steps) == len(scalars(out)["losses/actor"])  # a line at every update
    assert all(int(m[3]) > 0 for m in progress)
    running = dict(scalars(out)["charts/running_return"])
    shown = {int(m[1]): m[2] for m in progress}
    assert shown[steps[0]] == "n/a"  # no episode had ended at the first update
    for step, value in shown.items():
        if value != "n/a":
            assert value == f"{running[step]:.1f}", step
    end = (
        f"completed: {metrics['env_steps']} env steps, final_return {metrics['final_return']}, "
        f"not solved (running return {metrics['running_return']:.2f}; solved means > 475); "
        f"results in {out / 'metrics.json'}, curves: tensorboard --logdir {out}"
    )
    assert lines[-1].endswith("[acexp][INFO] - " + end)
