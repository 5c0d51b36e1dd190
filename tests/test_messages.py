"""What the commands tell a user: missing extras named with their pip line, --help, the run's
log file, the final line, where evaluate wrote."""

import json
from pathlib import Path

import pytest

from acexp.runtime.tracking import EpisodeStats
from tests.conftest import acexp, acexp_without


def without(modules: list[str], module: str, args: list[str], cwd: Path) -> str:
    """stderr of `python -m <module> args` with `modules` unimportable; exit status 2."""
    result = acexp_without(modules, *args, cwd=cwd, module=module)
    assert result.returncode == 2, result.stderr
    return result.stderr.strip()


@pytest.mark.parametrize(
    ("plugin", "args", "option"),
    [
        ("hydra_joblib_launcher", ["-m", "seed=0,1", "hydra/launcher=joblib"], "launcher=joblib"),
        ("hydra_submitit_launcher", ["hydra/launcher=submitit_slurm"], "launcher=submitit_slurm"),
        ("hydra_optuna_sweeper", ["-m", "+hparams_search=optuna"], "sweeper=optuna"),
    ],
)
def test_missing_hydra_plugin_names_the_extra(
    plugin: str, args: list[str], option: str, tmp_path: Path
) -> None:
    stderr = without([f"hydra_plugins.{plugin}"], "acexp", args, tmp_path)
    assert stderr == (
        f"acexp: error: hydra/{option} needs an optional dependency: pip install 'acexp[launchers]'"
    )
    assert not (tmp_path / "outputs").exists()


def test_unknown_launcher_still_lists_the_options(tmp_path: Path) -> None:
    stderr = without([], "acexp", ["hydra/launcher=jobl"], tmp_path)
    assert stderr.startswith("acexp: error: hydra/launcher=jobl: no such option; hydra/launcher")
    assert "joblib" in stderr and "batched" in stderr


def test_report_without_matplotlib_names_the_extra(tmp_path: Path) -> None:
    stderr = without(["matplotlib"], "acexp.report", [str(tmp_path)], tmp_path)
    assert stderr.startswith("acexp.report: error: the report needs matplotlib")
    assert stderr.endswith("pip install 'acexp[report]'") and len(stderr.splitlines()) == 1


def test_help_says_what_acexp_is_and_lists_commands_and_groups(tmp_path: Path) -> None:
    result = acexp("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("acexp: actor-critic reinforcement learning experiments")
    for command in ["python -m acexp -m", "python -m acexp.report", "python -m acexp.evaluate"]:
        assert command in text
    assert "arch: shared, unshared" in text and "optim: joint, separate" in text
    assert "--cfg job               the config as composed (--resolve: interpolated)" in text
    assert "__main__" not in text and "powered by Hydra" not in text


@pytest.fixture(scope="module")
def solved_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A short run that solves: a reward threshold of 15, which random CartPole play passes."""
    cwd = tmp_path_factory.mktemp("solved")
    out = cwd / "run"
    args = ["total_steps=3000", "env.reward_threshold=15", "log.progress=false"]
    result = acexp(*args, f"hydra.run.dir={out}", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return out, result.stdout + result.stderr  # Hydra logs to stdout


def test_run_log_file_is_named_after_acexp(solved_run: tuple[Path, str]) -> None:
    out, _ = solved_run
    assert (out / "acexp.log").read_text().strip()
    assert not (out / "__main__.log").exists()


def test_final_line_says_what_solved_means(solved_run: tuple[Path, str]) -> None:
    out, output = solved_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["solved"]
    last = next(line for line in output.splitlines() if "results in" in line)
    assert f"solved (running return > 15 at env step {metrics['steps_to_solve']});" in last
    assert f"results in {out / 'metrics.json'}" in last


def test_outcome_when_not_solved_or_not_judged() -> None:
    stats = EpisodeStats(threshold=475.0)
    stats.record(20.0, env_steps=20)
    stats.record(40.0, env_steps=60)  # running return 0.05 * 40 + 0.95 * 20 = 21
    assert stats.outcome() == "not solved (running return 21.00; solved means > 475)"
    assert EpisodeStats(threshold=None).outcome() == (
        "solved: not judged (the env has no reward threshold)"
    )


def test_evaluate_says_where_it_wrote(solved_run: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = solved_run
    result = acexp(str(out), "--episodes", "1", cwd=tmp_path, module="acexp.evaluate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"; wrote {out / 'eval.json'}")
    assert json.loads((out / "eval.json").read_text())["episodes"] == 1
