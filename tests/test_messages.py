"""What the commands tell a user: missing extras named with their pip line, --help, the run's
log file, the final line, where evaluate wrote."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def without(modules: list[str], module: str, args: list[str], cwd: Path) -> str:
    """stderr of `python -m <module> args` with `modules` unimportable (None in sys.modules,
    set before anything loads them), as on an install without their extra; exit status 2."""
    code = (
        f"import runpy, sys; sys.modules.update(dict.fromkeys({modules!r})); "
        f"sys.argv = [{module!r}, *{args!r}]; "
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
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
